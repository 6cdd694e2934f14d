#!/usr/bin/env bash
# Installs what a fresh Debian machine lacks, builds Bulwark, starts bulwarkd on its embedded
# default configuration and pings it with the CLI. The daemon keeps running afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh
cargo build --release --locked -p bulwark-service -p bulwark-cli

sudo=""
[[ $(id -u) -eq 0 ]] || sudo="sudo"
# The daemon refuses to run as root: it runs as a system user of its own, as in production.
id bulwark >/dev/null 2>&1 ||
    $sudo useradd --system --no-create-home --home-dir /var/lib/parsec --shell /usr/sbin/nologin bulwark
$sudo install -m 0755 target/release/bulwarkd target/release/bulwark /usr/local/bin/
$sudo install -d -o bulwark -g bulwark -m 0755 /run/parsec
$sudo install -d -o bulwark -g bulwark -m 0700 /var/lib/parsec
if ! bulwark ping >/dev/null 2>&1; then
    # Keys of the Mbed Crypto provider are files in the working directory: /var/lib/parsec.
    $sudo runuser -u bulwark -- sh -c 'cd /var/lib/parsec && exec /usr/local/bin/bulwarkd' \
        >/tmp/bulwarkd.log 2>&1 &
    for _ in $(seq 100); do
        [[ -S /run/parsec/parsec.sock ]] && break
        sleep 0.1
    done
fi
echo "bulwark ping: $(bulwark ping)"
echo "bulwarkd is running (log: /tmp/bulwarkd.log); stop it with: ${sudo:+$sudo }pkill -TERM -x bulwarkd"
