#!/usr/bin/env bash
# One uid loads the daemon with long work at full concurrency while another measures it: the
# figures of SECURITY.md's "Exhaustion of connections, threads or requests by one local
# client". Run as root (the attacker runs as uid 65534).
#
#   bench/fair.sh KIND ATTACK [VICTIM-OPS]
#
# KIND: bulwarkd-openssl or bulwarkd-mbed (the daemon with default limits; BULWARKD picks the
# binary, default target/release/bulwarkd). ATTACK: the attacker's operation, e.g.
# rsa4096-generate-destroy or rsa8192-sign, on ATTACK_THREADS (default 32) threads of uid 65534.
# VICTIM-OPS (default ping,ecc-p256-generate-destroy): measured by root on one thread, each for
# VICTIM_SECONDS (default 5), once the attack runs. The victim's lines and the load average are
# printed; the attacker's own line follows when it stops.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
# shellcheck source=bench/config.sh
source bench/config.sh
KIND=$1
ATTACK=$2
VICTIM_OPS=${3:-ping,ecc-p256-generate-destroy}
ATTACK_THREADS=${ATTACK_THREADS:-32}
VICTIM_SECONDS=${VICTIM_SECONDS:-5}
BULWARKD=${BULWARKD:-$ROOT/target/release/bulwarkd}
BENCH=${BENCH:-$ROOT/target/release/bulwark-bench}
WORK=$(mktemp -d -t bulwark-fair.XXXXXX)
PID=""
ATTACKER=""
cleanup() {
    for pid in $ATTACKER $PID; do
        kill -TERM "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$WORK"
}
trap cleanup EXIT

case $KIND in
bulwarkd-mbed) PROVIDER=MbedCrypto ;;
bulwarkd-openssl) PROVIDER=OpenSsl ;;
*) echo "unknown kind $KIND" >&2; exit 2 ;;
esac
bench_config "$WORK" "provider_type = \"$PROVIDER\""
# The attacker's uid must reach the socket; the bench binary too.
chmod 0755 "$WORK"
cp "$BENCH" "$WORK/bulwark-bench"
chmod 0755 "$WORK/bulwark-bench"
mkdir "$WORK/daemon" "$WORK/attacker"
chown 65534:65534 "$WORK/attacker"
bench_start "$WORK" "$BULWARKD" "$WORK/daemon"
# The attack lasts longer than the victim's runs.
ATTACK_SECONDS=$((VICTIM_SECONDS * $(tr ',' '\n' <<<"$VICTIM_OPS" | wc -l) + 15))
setpriv --reuid=65534 --regid=65534 --clear-groups \
    "$WORK/bulwark-bench" --socket "$WORK/s.sock" --target "$KIND-attacker" --ops "$ATTACK" \
    --threads "$ATTACK_THREADS" --warmup 0 --duration "$ATTACK_SECONDS" --no-markdown \
    --ready-file "$WORK/attacker/ready" >"$WORK/attacker.json" 2>"$WORK/attacker.log" &
ATTACKER=$!
# Wait until the attacker's set-up is done (an RSA-8192 key takes a while to make), then until
# its threads have their requests queued.
for _ in $(seq 3000); do
    [[ -e $WORK/attacker/ready ]] && break
    kill -0 "$ATTACKER" 2>/dev/null || { cat "$WORK/attacker.log" >&2; exit 1; }
    sleep 0.1
done
[[ -e $WORK/attacker/ready ]] || { echo "the attacker's set-up did not finish" >&2; exit 1; }
sleep "${ATTACK_SETTLE:-3}"
echo "# $KIND under $ATTACK x$ATTACK_THREADS (uid 65534), load before: $(cut -d' ' -f1-3 /proc/loadavg)"
"$BENCH" --socket "$WORK/s.sock" --target "$KIND-victim" --ops "$VICTIM_OPS" --threads 1 \
    --warmup 0.5 --duration "$VICTIM_SECONDS" --daemon-pid "$PID" --no-markdown
echo "# $KIND load after: $(cut -d' ' -f1-3 /proc/loadavg)"
wait "$ATTACKER" || true
ATTACKER=""
echo "# attacker:"
cat "$WORK/attacker.json"
