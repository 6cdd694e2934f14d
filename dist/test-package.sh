#!/usr/bin/env bash
# The Debian package end to end, in a fresh Debian 12 root made by debootstrap (no systemd as
# PID 1): install with dpkg, start the installed bulwarkd under systemd-socket-activate, create,
# use and delete keys with the installed bulwark, upgrade to a higher version (keys and the
# edited configuration survive), remove (they stay), purge (they go). Also: lintian, and
# systemd-analyze verify and security on the installed units. Needs root.
#   --no-build   package the binaries already in target/release
set -euo pipefail
cd "$(dirname "$0")/.."
[[ $(id -u) -eq 0 ]] || { echo "test-package.sh: needs root (debootstrap, chroot)" >&2; exit 1; }

step() { printf '\n== %s (%ds)\n' "$*" "$SECONDS"; }
fail() { echo "test-package.sh: FAILED: $*" >&2; exit 1; }

step "building the package"
started=$SECONDS
packages=target/debian/test
rm -rf "$packages"
mkdir -p "$packages"
dist/package.sh "$@" --fast -o "$packages/first.deb"
# The upgrade: the same binaries under a higher package version.
dist/package.sh --no-build --fast --deb-revision 99 -o "$packages/second.deb"
first="$packages/first.deb"
second="$packages/second.deb"
echo "built $first and $second in $((SECONDS - started)) s"
dpkg --compare-versions "$(dpkg-deb -f "$second" Version)" gt "$(dpkg-deb -f "$first" Version)" ||
    fail "the upgrade's version is not higher"

step "lintian"
lintian --fail-on error "$first" || fail "lintian reports errors"

# A fresh root each time, unpacked from a tarball debootstrap made once per machine and set of
# packages (outside the checkout, like the tools): the libraries bulwarkd links (dpkg -i fails,
# naming it, if the package ever needs one more), and systemd for systemd-socket-activate, the
# sysusers/tmpfiles tools and systemd-analyze.
step "the Debian 12 root"
echo "the package depends on: $(dpkg-deb -f "$first" Depends)"
include="systemd,libc6,libgcc-s1,libssl3,libtss2-esys-3.0.2-0,libtss2-mu0,libtss2-tctildr0,passwd,procps"
cache="${BULWARK_CACHE_DIR:-$HOME/.cache/bulwark}/debootstrap"
tarball="$cache/bookworm-$(echo "$include" | sha256sum | cut -c1-16).tar"
if [[ ! -f "$tarball" ]]; then
    started=$SECONDS
    mkdir -p "$cache"
    fresh=$(mktemp -d /var/tmp/bulwark-debootstrap.XXXXXX)
    debootstrap --variant=minbase --include="$include" bookworm "$fresh" http://deb.debian.org/debian \
        >"$cache/debootstrap.log" 2>&1 || { tail -20 "$cache/debootstrap.log"; fail "debootstrap"; }
    rm -rf "$fresh"/var/cache/apt/archives/*.deb
    tar -C "$fresh" -cf "$tarball.tmp" .
    mv "$tarball.tmp" "$tarball"
    rm -rf "$fresh"
    echo "debootstrap took $((SECONDS - started)) s (cached in $tarball)"
fi
root=$(mktemp -d /var/tmp/bulwark-root.XXXXXX)
daemon=""
cleanup() {
    [[ -z "$daemon" ]] || kill "$daemon" 2>/dev/null || true
    umount "$root/proc" 2>/dev/null || true
    rm -rf "$root"
}
trap cleanup EXIT
tar -C "$root" -xf "$tarball"
chmod 0755 "$root" # the root directory of the system: the service user must traverse it
mount -t proc proc "$root/proc"
cp "$first" "$root/tmp/first.deb"
cp "$second" "$root/tmp/second.deb"
in_root() { chroot "$root" "$@"; }

start_daemon() {
    rm -f "$root/run/parsec/parsec.sock"
    # As systemd would: the service user, its state directory, the socket passed in.
    chroot --userspec=bulwark:bulwark "$root" /bin/sh -c \
        'cd /var/lib/parsec && exec systemd-socket-activate --listen=/run/parsec/parsec.sock --fdname=parsec /usr/bin/bulwarkd' \
        >>"$root/tmp/bulwarkd.log" 2>&1 &
    daemon=$!
    for _ in $(seq 300); do
        [[ -S "$root/run/parsec/parsec.sock" ]] && break
        sleep 0.1
    done
    [[ -S "$root/run/parsec/parsec.sock" ]] || { cat "$root/tmp/bulwarkd.log"; fail "no socket"; }
    # The first connection starts bulwarkd; the client waits for it.
    in_root bulwark --timeout 60 ping || { cat "$root/tmp/bulwarkd.log"; fail "ping"; }
    grep -q "listening on the socket passed by the service manager" "$root/tmp/bulwarkd.log" ||
        { cat "$root/tmp/bulwarkd.log"; fail "the passed socket was not used"; }
}
stop_daemon() {
    kill -TERM "$daemon"
    wait "$daemon" || { cat "$root/tmp/bulwarkd.log"; fail "bulwarkd did not stop cleanly"; }
    daemon=""
}

step "dpkg -i (first installation)"
in_root dpkg -i /tmp/first.deb
in_root getent passwd bulwark >/dev/null || fail "no bulwark user"
# Names as the root's own /etc/passwd and /etc/group give them.
[[ "$(in_root stat -c '%U:%G %a' /etc/parsec/config.toml)" == "root:bulwark 640" ]] ||
    fail "config.toml is $(in_root stat -c '%U:%G %a' /etc/parsec/config.toml)"
[[ "$(in_root stat -c '%U %a' /var/lib/parsec)" == "bulwark 700" ]] || fail "/var/lib/parsec"
grep -qx /etc/parsec/config.toml "$root/var/lib/dpkg/info/bulwark.conffiles" || fail "not a conffile"
[[ -L "$root/etc/systemd/system/sockets.target.wants/bulwarkd.socket" ]] || fail "socket not enabled"
[[ -L "$root/etc/systemd/system/multi-user.target.wants/bulwarkd.service" ]] || fail "service not enabled"
for f in /usr/share/man/man1/bulwark.1.gz /usr/share/man/man8/bulwarkd.8.gz \
    /usr/share/bash-completion/completions/bulwark /usr/share/zsh/vendor-completions/_bulwark \
    /usr/share/fish/vendor_completions.d/bulwark.fish; do
    [[ -f "$root$f" ]] || fail "$f is missing"
done

step "the installed units"
for unit in bulwarkd.service bulwarkd.socket; do
    out=$(in_root systemd-analyze verify --man=no "/lib/systemd/system/$unit" 2>&1) ||
        fail "systemd-analyze verify $unit: $out"
    [[ -z "$out" ]] || fail "systemd-analyze verify $unit: $out"
    echo "systemd-analyze verify $unit: clean"
done
score=$(in_root systemd-analyze security --offline=true /lib/systemd/system/bulwarkd.service 2>&1 |
    grep -o 'Overall exposure level for bulwarkd.service: [0-9.]* [A-Z]*')
echo "$score"
awk -v s="${score#*: }" 'BEGIN { exit !(s + 0 <= 2.0) }' || fail "exposure above 2.0"

step "keys with the installed bulwark, socket-activated bulwarkd"
start_daemon
in_root bulwark create-ecc-key -k kept
in_root bulwark create-ecc-key -k passing
in_root bulwark sign -k passing "signed inside the package test" >/dev/null
in_root bulwark delete-key -k passing
keys=$(in_root bulwark list-keys --output json)
grep -q '"kept"' <<<"$keys" && ! grep -q '"passing"' <<<"$keys" || fail "keys: $keys"
echo "# edited by the administrator" >>"$root/etc/parsec/config.toml"
stop_daemon

step "upgrade to $(dpkg-deb -f "$second" Version)"
in_root dpkg -i /tmp/second.deb
[[ "$(in_root dpkg-query -W -f='${Version}' bulwark)" == "$(dpkg-deb -f "$second" Version)" ]] ||
    fail "not upgraded"
grep -qx "# edited by the administrator" "$root/etc/parsec/config.toml" || fail "the edit was lost"
[[ "$(in_root stat -c '%U:%G %a' /etc/parsec/config.toml)" == "root:bulwark 640" ]] || fail "mode lost"
start_daemon
in_root bulwark list-keys --output json | grep -q '"kept"' || fail "the key did not survive"
in_root bulwark sign -k kept "signed after the upgrade" >/dev/null
stop_daemon

step "dpkg -r keeps keys and configuration, dpkg -P removes them"
in_root dpkg -r bulwark
[[ ! -e "$root/usr/bin/bulwarkd" ]] || fail "bulwarkd still installed"
[[ -f "$root/etc/parsec/config.toml" ]] || fail "remove lost the configuration"
[[ -n "$(find "$root/var/lib/parsec" -name '*.sqlite3')" ]] || fail "remove lost the key store"
in_root dpkg -P bulwark
[[ ! -e "$root/etc/parsec" && ! -e "$root/var/lib/parsec" ]] || fail "purge left files"
if in_root dpkg-query -W bulwark 2>/dev/null | grep -q .; then
    in_root dpkg-query -W -f='${Status}\n' bulwark | grep -q "not-installed" || fail "still known to dpkg"
fi

step "package test passed"
