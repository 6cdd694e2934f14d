#!/usr/bin/env bash
# Goals 6 and 7 of the performance issue, on the OpenSSL provider:
#   1. a store of KEYS keys (default 100000, real wrapped ECC P-256 keys): start-up time to the
#      first Ping answer, and ECDSA sign p50 (1 thread), against an empty store;
#   2. resident memory idle, with CONNS (default 1000) idle connections held, and over a
#      SOAK-second (default 600) mixed run, sampled every 30 s.
# Prints its figures; raw output in target/bench/fleet/.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
# shellcheck source=bench/config.sh
source bench/config.sh
KEYS=${KEYS:-100000}
CONNS=${CONNS:-1000}
SOAK=${SOAK:-600}
BULWARKD=${BULWARKD:-$ROOT/target/release/bulwarkd}
BENCH=$ROOT/target/release/bulwark-bench
OUT=$ROOT/target/bench/fleet
mkdir -p "$OUT"
WORK=$(mktemp -d -t bulwark-fleet.XXXXXX)
PID=""
stop() {
    if [[ -n $PID ]]; then
        kill -TERM "$PID" 2>/dev/null || true
        wait "$PID" 2>/dev/null || true
        PID=""
    fi
}
trap 'stop; rm -rf "$WORK"' EXIT

# config DIR [EXTRA-CORE-LINES]: the OpenSSL provider.
config() {
    bench_config "$1" 'provider_type = "OpenSsl"' "${2:-}"
}

start() {
    rm -f "$1/s.sock"
    (cd "$1" && exec "$BULWARKD" --config "$1/config.toml") >>"$1/daemon.log" 2>&1 </dev/null &
    PID=$!
    for _ in $(seq 600); do
        [[ -S $1/s.sock ]] && "$BENCH" --socket "$1/s.sock" --ops ping --threads 1 \
            --duration 0.01 --warmup 0 --no-markdown >/dev/null 2>&1 && return 0
        kill -0 "$PID" 2>/dev/null || { tail "$1/daemon.log" >&2; return 1; }
        sleep 0.1
    done
    return 1
}

load() { echo "load $(cut -d' ' -f1-3 /proc/loadavg)"; }

FULL=$WORK/full EMPTY=$WORK/empty
# Populating is not what is measured: more requests in flight make it faster.
config "$FULL" "thread_pool_size = 8
max_requests_in_flight_per_client = 8"
start "$FULL"
echo "== populating $KEYS keys; $(load)"
"$BENCH" --socket "$FULL/s.sock" --populate "$KEYS" --threads 8 | tee "$OUT/populate.txt"
stop
ls -l "$FULL/kim" | tee "$OUT/store-size.txt"
config "$FULL"
config "$EMPTY"

echo "== start-up ($(load))"
for round in 1 2 3; do
    for dir in "$EMPTY" "$FULL"; do
        rm -f "$dir/s.sock"
        printf '%s round %s: ' "$(basename "$dir")" "$round"
        "$BENCH" --startup "$dir/config.toml" --daemon-bin "$BULWARKD" --socket "$dir/s.sock"
    done
done >"$OUT/startup.txt"
cat "$OUT/startup.txt"

echo "== ECDSA sign p50, 1 and 8 threads ($(load))"
: >"$OUT/sign.txt"
for round in 1 2; do
    for dir in "$EMPTY" "$FULL"; do
        start "$dir"
        "$BENCH" --socket "$dir/s.sock" --target "$(basename "$dir")-store" --ops ecdsa-p256-sign \
            --threads 1,8 --duration 3 --warmup 0.5 --daemon-pid "$PID" --no-markdown \
            >"$OUT/sign-run.txt"
        grep ops/s "$OUT/sign-run.txt" >>"$OUT/sign.txt"
        stop
    done
done
cat "$OUT/sign.txt"
echo "$(load)"

echo "== memory: idle, $CONNS connections held ($(load))"
config "$WORK/mem" "max_connections = 4096
max_connections_per_client = 4096"
start "$WORK/mem"
MEMPID=$PID
"$BENCH" --socket "$WORK/mem/s.sock" --ops ping --threads 1 --duration 0.5 --warmup 0.1 --no-markdown >/dev/null
sleep 2
echo "idle resident memory after one short run: $(grep VmRSS /proc/$MEMPID/status)" | tee "$OUT/memory.txt"
"$BENCH" --socket "$WORK/mem/s.sock" --hold "$CONNS" --duration 3 --daemon-pid "$MEMPID" | tee -a "$OUT/memory.txt"
sleep 2
echo "after the connections closed: $(grep VmRSS /proc/$MEMPID/status)" | tee -a "$OUT/memory.txt"

echo "== $SOAK s mixed run, resident memory every 30 s ($(load))"
: >"$OUT/soak.txt"
(
    end=$((SECONDS + SOAK))
    while ((SECONDS < end)); do
        "$BENCH" --socket "$WORK/mem/s.sock" --threads 8 --duration 5 --warmup 0 \
            --ops ping,random-32,sha256-1k,ecdsa-p256-sign,ecdsa-p256-verify,aes128gcm-encrypt-1k,ecc-p256-generate-destroy \
            --no-markdown >/dev/null 2>&1 || true
    done
) &
LOADER=$!
start_s=$SECONDS
while kill -0 "$LOADER" 2>/dev/null; do
    echo "t=$((SECONDS - start_s)) s $(grep VmRSS /proc/$MEMPID/status | tr -s ' ')" | tee -a "$OUT/soak.txt"
    sleep 30
done
wait "$LOADER" || true
sleep 2
echo "after the run: $(grep VmRSS /proc/$MEMPID/status | tr -s ' ')" | tee -a "$OUT/soak.txt"
echo "$(load)"
