#!/usr/bin/env bash
# Builds the Debian package target/debian/bulwark_<version>_<arch>.deb: both binaries in
# release mode, the CLI's manual page and shell completions, then cargo-deb (metadata in
# crates/service/Cargo.toml). Extra arguments go to cargo-deb (e.g. --deb-revision 2).
#   --no-build   package the binaries already in target/release
set -euo pipefail
cd "$(dirname "$0")/.."

build=1
if [[ "${1:-}" == "--no-build" ]]; then
    build=0
    shift
fi
((build == 0)) || cargo build --release --locked -p bulwark-service -p bulwark-cli

generated=target/release/dist
mkdir -p "$generated"
target/release/bulwark man | gzip -9n >"$generated/bulwark.1.gz"
target/release/bulwark completions bash >"$generated/bulwark.bash"
target/release/bulwark completions zsh >"$generated/_bulwark"
target/release/bulwark completions fish >"$generated/bulwark.fish"

# cargo-deb is built once per machine into the tools directory (scripts/test.sh).
PATH="$PWD/target/tools/bin:$PATH" cargo deb -p bulwark-service --no-build --locked --strip "$@"
