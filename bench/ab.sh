#!/usr/bin/env bash
# Compares bulwarkd binaries in one sitting: runs bench/one.sh on each in turn, ROUNDS times
# (A B A B ...), so that whatever else the machine does falls on all of them alike, then prints
# every run and each binary's median daemon CPU per request.
#
#   bench/ab.sh ROUNDS LABEL=BINARY [LABEL=BINARY...] -- KIND [bulwark-bench arguments...]
#
# KIND is bench/one.sh's (bulwarkd-openssl, bulwarkd-mbed). Only the first operation and thread
# count of the arguments are meaningful: give one of each. Example, the connection-per-request
# path as upstream clients take it:
#
#   bench/ab.sh 5 before=/tmp/bulwarkd-before after=target/release/bulwarkd -- \
#       bulwarkd-openssl --client upstream --ops ecdsa-p256-sign --threads 8 --duration 3 --warmup 0.5
#
# An entry LABEL=kind:OTHER-KIND runs bench/one.sh's OTHER-KIND (with the default bulwarkd)
# instead of KIND, e.g. `floor=kind:floor-openssl` for the reference server in the same sitting.
set -euo pipefail
START=$PWD
cd "$(dirname "$0")/.."
ROUNDS=$1
shift
binaries=()
while [[ $# -gt 0 && $1 != "--" ]]; do
    binaries+=("$1")
    shift
done
[[ ${1:-} == "--" ]] || { echo "usage: bench/ab.sh ROUNDS LABEL=BINARY... -- KIND [args]" >&2; exit 2; }
shift
KIND=$1
shift
OUT=$(mktemp -d -t bulwark-ab.XXXXXX)
trap 'rm -rf "$OUT"' EXIT

field() { grep -o "\"$1\":[^,}]*" | head -1 | cut -d: -f2; }

printf '%-10s %6s %16s %10s %8s\n' binary round "CPU/request µs" "ops/s" load
for round in $(seq "$ROUNDS"); do
    for entry in "${binaries[@]}"; do
        label=${entry%%=*}
        binary=${entry#*=}
        if [[ $binary == kind:* ]]; then
            bench/one.sh "${binary#kind:}" "$@" --json "$OUT/run.json" --no-markdown >/dev/null
        else
            [[ $binary == /* ]] || binary=$START/$binary
            BULWARKD=$binary bench/one.sh "$KIND" "$@" --json "$OUT/run.json" --no-markdown >/dev/null
        fi
        line=$(tail -1 "$OUT/run.json")
        ops=$(field ops_per_s <<<"$line")
        cores=$(field daemon_cpu_cores <<<"$line")
        load=$(field load_avg_1m <<<"$line")
        cpu=$(awk -v c="$cores" -v o="$ops" 'BEGIN { printf "%.1f", c / o * 1e6 }')
        printf '%-10s %6s %16s %10.0f %8s\n' "$label" "$round" "$cpu" "$ops" "$load"
        echo "$cpu" >>"$OUT/$label.cpu"
        rm -f "$OUT/run.json"
    done
done
echo
for entry in "${binaries[@]}"; do
    label=${entry%%=*}
    median=$(sort -n "$OUT/$label.cpu" | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }')
    echo "$label: median CPU per request $median µs over $ROUNDS runs"
done
