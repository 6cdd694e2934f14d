#!/usr/bin/env bash
# ECDSA P-256 sign and verify through bulwarkd on every provider, in one sitting: the two
# software providers, PKCS #11 on a SoftHSMv2 token and TPM on swtpm (both brought up here on
# temporary paths), each at 1 and 8 client threads with Bulwark's client (reused connections).
#
# Writes bench/providers.md (which bench/run.sh includes) and puts it in BENCHMARKS.md between
# the "providers" markers, or before the micro-benchmarks the first time. Environment (optional): BENCH_DURATION (default 3), BENCH_WARMUP
# (default 0.5), BENCH_THREADS (default 1,8), BENCH_OPS (default ecdsa-p256-sign,ecdsa-p256-verify).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
# shellcheck source=bench/config.sh
source bench/config.sh

DURATION=${BENCH_DURATION:-3}
WARMUP=${BENCH_WARMUP:-0.5}
THREADS=${BENCH_THREADS:-1,8}
OPS=${BENCH_OPS:-ecdsa-p256-sign,ecdsa-p256-verify}
KEEP=$ROOT/target/bench
RESULTS=$KEEP/providers.jsonl
TABLE=$ROOT/bench/providers.md
BULWARKD=$ROOT/target/release/bulwarkd
BENCH=$ROOT/target/release/bulwark-bench
SOFTHSM_LIB=$(ls /usr/lib/softhsm/libsofthsm2.so /usr/lib/*/softhsm/libsofthsm2.so 2>/dev/null | head -1)
for tool in softhsm2-util swtpm swtpm_setup; do
    command -v "$tool" >/dev/null || { echo "$tool missing: scripts/install-deps.sh --test" >&2; exit 1; }
done
[[ -n "$SOFTHSM_LIB" ]] || { echo "libsofthsm2.so missing: scripts/install-deps.sh --test" >&2; exit 1; }

cargo build --release -p bulwark-service -p bulwark-bench
mkdir -p "$KEEP"
: >"$RESULTS"
WORK=$(mktemp -d)
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

# SoftHSMv2 token.
export SOFTHSM2_CONF=$WORK/softhsm2.conf
mkdir -p "$WORK/tokens"
printf 'directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\n' \
    "$WORK/tokens" >"$SOFTHSM2_CONF"
softhsm2-util --init-token --free --label bench --so-pin 4321 --pin 1234 >/dev/null
SERIAL=$(softhsm2-util --show-slots | awk '/Serial number:/ && $3 != "" {print $3; exit}')

# swtpm, manufactured (endorsement key) on a temporary state directory.
mkdir -p "$WORK/tpm"
printf 'active_pcr_banks = sha256\n' >"$WORK/swtpm_setup.conf"
swtpm_setup --tpm2 --tpmstate "$WORK/tpm" --config "$WORK/swtpm_setup.conf" --createek \
    --overwrite >/dev/null
PORT=$((20000 + RANDOM % 20000))
swtpm socket --tpm2 --tpmstate dir="$WORK/tpm" \
    --server type=tcp,port=$PORT,bindaddr=127.0.0.1 \
    --ctrl type=tcp,port=$((PORT + 1)),bindaddr=127.0.0.1 \
    --flags not-need-init,startup-clear &
PIDS+=($!)
sleep 0.5

# run_provider LABEL PROVIDER-TABLE-LINES
run_provider() {
    local label=$1 provider=$2 dir=$WORK/$1
    mkdir -p "$dir"
    bench_config "$dir" "$provider"
    (cd "$dir" && exec "$BULWARKD" --config "$dir/config.toml") >"$dir/daemon.log" 2>&1 &
    local pid=$!
    PIDS+=("$pid")
    for _ in $(seq 200); do [[ -S "$dir/s.sock" ]] && break; sleep 0.05; done
    echo "== $label" >&2
    "$BENCH" --socket "$dir/s.sock" --target "bulwarkd-$label" --ops "$OPS" --threads "$THREADS" \
        --duration "$DURATION" --warmup "$WARMUP" --daemon-pid "$pid" --json "$RESULTS" --no-markdown
    kill "$pid"
    wait "$pid" 2>/dev/null || true
}

LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
run_provider openssl 'provider_type = "OpenSsl"'
run_provider mbed 'provider_type = "MbedCrypto"'
run_provider pkcs11 "provider_type = \"Pkcs11\"
library_path = \"$SOFTHSM_LIB\"
serial_number = \"$SERIAL\"
user_pin = \"1234\""
run_provider tpm "provider_type = \"Tpm\"
tcti = \"swtpm:host=127.0.0.1,port=$PORT\"
owner_hierarchy_auth = \"\""
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)

{
    echo "## Every provider: ECDSA P-256 through bulwarkd"
    echo
    echo "Measured $(date -u +%Y-%m-%dT%H:%M:%SZ) by \`bench/providers.sh\` ($DURATION s per cell after"
    echo "$WARMUP s of warm-up; load average before $LOAD_BEFORE, after $LOAD_AFTER). PKCS #11 runs on"
    echo "SoftHSMv2 $(dpkg-query -W -f='${Version}' softhsm2 2>/dev/null), TPM on swtpm"
    echo "$(dpkg-query -W -f='${Version}' swtpm 2>/dev/null) (a software TPM: every command is serialised, in one"
    echo "simulator process). Client: bulwark-client, one reused connection per thread."
    echo
    "$BENCH" --report "$RESULTS"
} >"$TABLE"

python3 - "$TABLE" <<'EOF'
import sys
table = open(sys.argv[1]).read()
text = open("BENCHMARKS.md").read()
begin, end = "<!-- providers:begin -->", "<!-- providers:end -->"
if begin in text:
    head, rest = text.split(begin, 1)
    tail = rest.split(end, 1)[1]
else:
    anchor = "## Micro-benchmarks (criterion)"
    head, tail = text.split(anchor, 1)
    tail = "\n\n" + anchor + tail
open("BENCHMARKS.md", "w").write(head.rstrip("\n") + "\n\n" + begin + "\n" + table + end + tail)
EOF
cat "$TABLE"
