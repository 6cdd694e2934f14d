#!/usr/bin/env bash
# Runs bulwark-bench against one daemon started for the occasion, for quick before/after
# comparisons (bench/run.sh is the full matrix that writes BENCHMARKS.md).
#
#   bench/one.sh KIND [bulwark-bench arguments...]
#
# KIND: bulwarkd-mbed, bulwarkd-openssl, parsec-default, parsec-busy, or floor-openssl: the
# reference server `bulwark-floor` (what the wire protocol alone costs, see its documentation)
# in front of bulwarkd-openssl, measured alone. BULWARKD (default target/release/bulwarkd)
# picks the bulwarkd binary. The daemon runs in a fresh temporary
# directory; the `uptime` load is printed before and after. FSYNCS=1 also counts the daemon's
# fsync and fdatasync calls during the run (`perf stat` on the syscall tracepoints; root);
# SWITCHES=1 counts the daemon's context switches during the run (`perf stat`).
set -euo pipefail
# A binary named relative to where the script was started from.
if [[ -n ${BULWARKD:-} ]]; then BULWARKD=$(realpath "$BULWARKD"); fi
cd "$(dirname "$0")/.."
ROOT=$PWD
# shellcheck source=bench/config.sh
source bench/config.sh
KIND=$1
shift
BULWARKD=${BULWARKD:-$ROOT/target/release/bulwarkd}
BENCH=${BENCH:-$ROOT/target/release/bulwark-bench}
WORK=$(mktemp -d -t bulwark-one.XXXXXX)
PID=""
FLOOR_PID=""
cleanup() {
    if [[ -n $FLOOR_PID ]]; then
        kill -TERM "$FLOOR_PID" 2>/dev/null || true
        wait "$FLOOR_PID" 2>/dev/null || true
    fi
    if [[ -n $PID ]]; then
        kill -TERM "$PID" 2>/dev/null || true
        wait "$PID" 2>/dev/null || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT

case $KIND in
bulwarkd-mbed) BIN=$BULWARKD PROVIDER=MbedCrypto EXTRA="" ;;
bulwarkd-openssl) BIN=$BULWARKD PROVIDER=OpenSsl EXTRA="" ;;
floor-openssl) BIN=$BULWARKD PROVIDER=OpenSsl EXTRA="" ;;
parsec-default) BIN=$ROOT/target/tools/bin/parsec PROVIDER=MbedCrypto EXTRA="" ;;
parsec-busy) BIN=$ROOT/target/tools/bin/parsec PROVIDER=MbedCrypto EXTRA="idle_listener_sleep_duration = 0" ;;
*) echo "unknown kind $KIND" >&2; exit 2 ;;
esac
# EXTRA_CORE: more [core_settings] lines, e.g. "thread_pool_size = 8".
EXTRA="$EXTRA
${EXTRA_CORE:-}"
bench_config "$WORK" "provider_type = \"$PROVIDER\"" "$EXTRA"
bench_start "$WORK" "$BIN"
SOCKET=$WORK/s.sock
MEASURED=$PID
if [[ $KIND == floor-openssl ]]; then
    FLOOR=${FLOOR:-$ROOT/target/release/bulwark-floor}
    "$FLOOR" --listen "$WORK/floor.sock" --forward "$WORK/s.sock" 2>"$WORK/floor.log" &
    FLOOR_PID=$!
    for _ in $(seq 100); do
        [[ -S $WORK/floor.sock ]] && break
        sleep 0.1
    done
    SOCKET=$WORK/floor.sock
    MEASURED=$FLOOR_PID
fi
echo "# $KIND load before: $(cut -d' ' -f1-3 /proc/loadavg)"
PERF=""
if [[ ${FSYNCS:-0} == 1 ]]; then
    perf stat -x, -e syscalls:sys_enter_fsync,syscalls:sys_enter_fdatasync -p "$MEASURED" \
        -o "$WORK/fsyncs.csv" &
    PERF=$!
    sleep 0.5
fi
SWITCHES_PID=""
if [[ ${SWITCHES:-0} == 1 ]]; then
    perf stat -x, -e context-switches -p "$MEASURED" -o "$WORK/switches.csv" &
    SWITCHES_PID=$!
    sleep 0.5
fi
"$BENCH" --socket "$SOCKET" --target "$KIND" --daemon-pid "$MEASURED" "$@"
if [[ -n $PERF ]]; then
    kill -INT "$PERF"
    wait "$PERF" || true
    echo "# $KIND fsync calls: $(grep -E 'fsync|fdatasync' "$WORK/fsyncs.csv" | cut -d, -f1 | paste -sd+ | bc)"
fi
if [[ -n $SWITCHES_PID ]]; then
    kill -INT "$SWITCHES_PID"
    wait "$SWITCHES_PID" || true
    echo "# $KIND context switches: $(grep context-switches "$WORK/switches.csv" | cut -d, -f1)"
fi
echo "# $KIND load after: $(cut -d' ' -f1-3 /proc/loadavg)"
