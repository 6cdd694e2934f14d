#!/usr/bin/env bash
# Installs what the tests need and runs every check: format, lints, the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh --test

cargo fmt --all -- --check
# rustfmt does not follow the module declarations the operations table generates: name them.
rustfmt --edition 2021 --check crates/interface/src/ops/*.rs
cargo clippy --workspace --all-targets --locked -- -D warnings
# Supply chain (deny.toml): licences, banned and duplicate crates, sources (crates.io only).
# cargo-deny is built once into target/tools (~7 min), like the upstream tools below. The
# `advisories` check needs the RustSec database from GitHub, which CI cannot reach: run
# `cargo deny check` (all checks) and `cargo audit` where GitHub is reachable.
if [[ ! -x target/tools/bin/cargo-deny ]]; then
    cargo install cargo-deny --version 0.20.2 --locked --root target/tools
fi
PATH="$PWD/target/tools/bin:$PATH" cargo deny --locked check --hide-inclusion-graph \
    licenses bans sources
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --locked

# The upstream command-line tool, for the compatibility tests (built once, kept in target/).
if [[ ! -x target/tools/bin/parsec-tool ]]; then
    cargo install parsec-tool --version 0.7.0 --locked --root target/tools
fi
# The upstream service, for the same-results tests of our client (builds Mbed TLS: ~5 min).
if [[ ! -x target/tools/bin/parsec ]]; then
    cargo install parsec-service --version 1.5.0 --locked --root target/tools \
        --features mbed-crypto-provider,direct-authenticator
fi

cargo test --workspace --locked --no-fail-fast
# The end-to-end suite again, on the OpenSSL provider (the first run used Mbed Crypto).
BULWARK_E2E_PROVIDER=OpenSsl cargo test -p bulwark-service --test e2e --locked
