#!/usr/bin/env bash
# Installs the Debian packages Bulwark needs to build and test; does nothing when they are there.
#   install-deps.sh          build dependencies (Mbed TLS through psa-crypto, OpenSSL, SQLite, TSS 2.0)
#   install-deps.sh --test   the same, plus what the test suite drives
set -euo pipefail

# libtss2-dev: the TPM provider links the TSS 2.0 libraries (tss-esapi).
packages=(cmake clang libclang-dev pkg-config libssl-dev libtss2-dev)
if [[ "${1:-}" == "--test" ]]; then
    # softhsm2 and swtpm: the real PKCS #11 token and TPM the hardware providers are tested on.
    packages+=(sqlite3 softhsm2 swtpm swtpm-tools)
    # gnutls-bin: p11tool changes a SoftHSM token's user PIN (softhsm2-util cannot).
    packages+=(gnutls-bin)
    # The system-service tests: systemd-socket-activate and systemd-analyze (systemd); the
    # Debian package built (dpkg-dev), checked (lintian) and installed in a Debian 12 root
    # (debootstrap); a real Prometheus server scraping the metrics endpoint.
    packages+=(systemd dpkg-dev lintian debootstrap prometheus)
fi

missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
    sudo=""
    [[ $(id -u) -eq 0 ]] || sudo="sudo"
    echo "installing: ${missing[*]}"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
command -v cargo >/dev/null || { echo "cargo not found: install Rust (rustup) first" >&2; exit 1; }
