#!/usr/bin/env bash
# Installs what the tests need and runs every check: format, lints, supply chain, docs, and the
# whole test suite (the end-to-end part once per software provider).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh --test

# Tools built from crates.io: cargo-deny, and the upstream parsec-tool and Parsec service (the
# compatibility oracles of the tests). Building them takes minutes, so they are kept once per
# machine outside the checkout (BULWARK_TOOLS_DIR) and linked in as target/tools, where the
# tests look for them. A fresh machine builds them here.
if [[ -d target/tools && ! -L target/tools ]]; then
    tools="$PWD/target/tools"
else
    tools="${BULWARK_TOOLS_DIR:-$HOME/.cache/bulwark/tools}"
    mkdir -p "$tools" target
    ln -sfn "$tools" target/tools
fi
# A tool is built again when the arguments it was built with change (a stamp beside it).
install_tool() {
    local binary=$1
    shift
    local stamp="$tools/bin/.$binary.args" args="$*"
    if [[ ! -x "$tools/bin/$binary" || "$(cat "$stamp" 2>/dev/null)" != "$args" ]]; then
        cargo install --locked --force --root "$tools" "$@"
        echo "$args" >"$stamp"
    fi
}
install_tool cargo-deny cargo-deny --version 0.20.2
install_tool parsec-tool parsec-tool --version 0.7.0
install_tool cargo-deb cargo-deb --version 3.8.0
# The providers whose on-disk keys the migration tests create with the upstream service.
install_tool parsec parsec-service --version 1.5.0 \
    --features mbed-crypto-provider,pkcs11-provider,tpm-provider,direct-authenticator

cargo fmt --all -- --check
# rustfmt does not follow the module declarations the operations table generates: name them.
rustfmt --edition 2021 --check crates/interface/src/ops/*.rs
# Clippy also holds the declared rust-version (`incompatible_msrv`: no standard-library API
# newer than it); the machine has one toolchain, so no build with the older compiler runs here.
cargo clippy --workspace --all-targets --locked -- -D warnings
# The same lints with the hardware providers (features pkcs11, tpm) compiled out.
cargo clippy -p bulwark-service --all-targets --no-default-features --locked -- -D warnings
# The fuzz targets, a workspace of their own (cargo-fuzz builds them with nightly), compile.
cargo check --manifest-path fuzz/Cargo.toml --locked --bins --target-dir target
# Supply chain (deny.toml): licences, banned and duplicate crates, sources (crates.io only).
# The `advisories` check needs the RustSec database from GitHub, which CI cannot reach: run
# `cargo deny check` (all checks) and `cargo audit` where GitHub is reachable.
"$tools/bin/cargo-deny" --locked check --hide-inclusion-graph licenses bans sources
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --locked

# The provider conformance suite, on every provider (the hardware ones on a SoftHSMv2 token and
# a swtpm TPM the tests bring up on temporary paths), then its tally: behaviours passed in full,
# partly (the rest refused as the provider states), or refused as not supported.
conformance_log=$(mktemp)
cargo test -p bulwark-service --lib --locked conformance_suite -- --nocapture 2>&1 | tee "$conformance_log"
echo "conformance tally (count, provider, outcome):"
grep -oE 'conformance [A-Za-z0-9]+ [a-z0-9_]+: (passed|partial|not supported)' "$conformance_log" \
    | cut -d' ' -f2,4- | sort | uniq -c
rm -f "$conformance_log"

cargo test --workspace --locked --no-fail-fast -- --skip conformance_suite
# The end-to-end suite again, on the Mbed Crypto provider (the first run used the default,
# OpenSSL).
BULWARK_E2E_PROVIDER=MbedCrypto cargo test -p bulwark-service --test e2e --locked

# The Debian package, built in release mode and installed, upgraded and purged in a Debian 12
# root (debootstrap'ed once per machine, then unpacked fresh each run).
dist/test-package.sh
