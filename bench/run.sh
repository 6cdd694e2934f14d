#!/usr/bin/env bash
# Benchmarks bulwarkd against the upstream Parsec service on this machine and writes
# BENCHMARKS.md at the workspace root.
#
# One daemon runs at a time, each in its own temporary directory with its own socket:
#   bulwarkd-mbed      bulwarkd (release), provider MbedCrypto
#   bulwarkd-openssl   bulwarkd (release), provider OpenSsl (skipped if the config refuses it)
#   parsec-default     target/tools/bin/parsec 1.5.0, its default settings
#   parsec-busy        the same with idle_listener_sleep_duration = 0 (busy-polling listener)
# For each: both client libraries x every operation x the thread counts, then the daemon's CPU
# time over an idle period. Then the back ends called in process (the limit).
#
# Environment (all optional):
#   BENCH_DURATION  measured seconds per cell (default 3)
#   BENCH_WARMUP    warm-up seconds per cell (default 0.5)
#   BENCH_THREADS   thread counts (default 1,8)
#   BENCH_OPS       operations (default: all; see `bulwark-bench --help`)
#   BENCH_IDLE      idle-CPU sample, seconds (default 5)
#   BENCH_OUT       report file (default BENCHMARKS.md at the workspace root)
#   BENCH_CRITERION 0 to skip the criterion micro-benchmarks (default 1)
# Raw results (JSON lines) and daemon logs are kept in target/bench/.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
# shellcheck source=bench/config.sh
source bench/config.sh

DURATION=${BENCH_DURATION:-3}
WARMUP=${BENCH_WARMUP:-0.5}
THREADS=${BENCH_THREADS:-1,8}
OPS=${BENCH_OPS:-}
IDLE=${BENCH_IDLE:-5}
CRITERION=${BENCH_CRITERION:-1}
OUT=${BENCH_OUT:-$ROOT/BENCHMARKS.md}
UPSTREAM=$ROOT/target/tools/bin/parsec
BULWARKD=$ROOT/target/release/bulwarkd
BENCH=$ROOT/target/release/bulwark-bench
KEEP=$ROOT/target/bench
RESULTS=$KEEP/results.jsonl
COMMANDS=$KEEP/commands.txt
NOTES=$KEEP/notes.txt
MICRO=$KEEP/criterion.txt

WORK=$(mktemp -d -t bulwark-bench.XXXXXX)
DAEMON_PID=""
CRASHES=0

stop_daemon() {
    if [[ -n $DAEMON_PID ]]; then
        kill -TERM "$DAEMON_PID" 2>/dev/null || true
        # Give it 10 s to finish, then kill it.
        for _ in $(seq 100); do
            kill -0 "$DAEMON_PID" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$DAEMON_PID" 2>/dev/null || true
        wait "$DAEMON_PID" 2>/dev/null || true
        DAEMON_PID=""
    fi
}

cleanup() {
    stop_daemon
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

note() {
    echo "$*" | tee -a "$NOTES" >&2
}

# Runs a command, logging it (with the temporary directory written as $WORK) for BENCHMARKS.md.
run() {
    local line="$*"
    echo "${line//$WORK/\$WORK}" >>"$COMMANDS"
    echo "+ ${line//$WORK/\$WORK}" >&2
    "$@"
}

mkdir -p "$KEEP"
rm -f "$KEEP"/*.config.toml "$KEEP"/*.log
: >"$RESULTS"
: >"$COMMANDS"
: >"$NOTES"
: >"$MICRO"
STARTED=$(date -u +%Y-%m-%dT%H:%M:%SZ)
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
SECONDS=0

echo "== building (release)" >&2
run cargo build --release -p bulwark-service -p bulwark-bench

# bulwarkd_config DIR PROVIDER: one provider of that type.
bulwarkd_config() {
    bench_config "$1" "provider_type = \"$2\""
}

# upstream_config DIR [EXTRA-CORE-LINE]: the upstream service on Mbed Crypto, its defaults unless
# told.
upstream_config() {
    bench_config "$1" 'provider_type = "MbedCrypto"' "${2:-}"
}

# start_daemon NAME DIR BINARY: starts it in DIR (Mbed TLS writes key files in the working
# directory) and waits for its socket; sets DAEMON_PID. Fails if it exits or does not answer.
start_daemon() {
    local name=$1 dir=$2 binary=$3
    (cd "$dir" && exec "$binary" --config "$dir/config.toml") >"$dir/daemon.log" 2>&1 </dev/null &
    DAEMON_PID=$!
    for _ in $(seq 300); do
        if ! kill -0 "$DAEMON_PID" 2>/dev/null; then
            wait "$DAEMON_PID" 2>/dev/null || true
            DAEMON_PID=""
            echo "$name exited at start-up:" >&2
            tail -5 "$dir/daemon.log" >&2
            return 1
        fi
        [[ -S $dir/s.sock ]] && return 0
        sleep 0.1
    done
    echo "$name did not create its socket in 30 s" >&2
    stop_daemon
    return 1
}

# check_alive NAME DIR BINARY WHEN: if the daemon died, notes it with its log's last lines,
# keeps the log and starts it again (same directory) so the next runs have a service.
check_alive() {
    local name=$1 dir=$2 binary=$3 when=$4 status=0
    kill -0 "$DAEMON_PID" 2>/dev/null && return 0
    wait "$DAEMON_PID" 2>/dev/null || status=$?
    CRASHES=$((CRASHES + 1))
    cp "$dir/daemon.log" "$KEEP/$name.crash-$CRASHES.log" 2>/dev/null || true
    note "CRASHED: $name exited (status $status) $when; the cells it did not answer are" \
        "missing. Last log lines: $(tail -3 "$dir/daemon.log" | tr '\n' ' ')" \
        "(whole log kept as target/bench/$name.crash-$CRASHES.log)."
    DAEMON_PID=""
    rm -f "$dir/s.sock"
    start_daemon "$name" "$dir" "$binary"
}

# bench_target NAME DIR BINARY: the load matrix for both clients, then the idle sample.
bench_target() {
    local name=$1 dir=$2 binary=$3 client
    local ops=()
    [[ -n $OPS ]] && ops=(--ops "$OPS")
    for client in upstream bulwark; do
        echo "== $name, client $client" >&2
        if ! run "$BENCH" --socket "$dir/s.sock" --client "$client" --target "$name" \
            --threads "$THREADS" --duration "$DURATION" --warmup "$WARMUP" "${ops[@]}" \
            --daemon-pid "$DAEMON_PID" --json "$RESULTS" --no-markdown >/dev/null; then
            note "FAILED: $name with the $client client stopped early (see the output of" \
                "bench/run.sh); its remaining cells are missing."
        fi
        check_alive "$name" "$dir" "$binary" "during the $client client's runs" || return 0
    done
    # Let the last connections close and the blocking threads park before sampling.
    sleep 1
    if ! run "$BENCH" --idle-cpu "$IDLE" --daemon-pid "$DAEMON_PID" --target "$name" \
        --json "$RESULTS" --no-markdown >/dev/null; then
        note "FAILED: the idle-CPU sample of $name."
    fi
}

# one_target NAME BINARY CONFIG-FUNCTION ARGS...
one_target() {
    local name=$1 binary=$2 config=$3
    shift 3
    local dir=$WORK/$name
    mkdir -p "$dir"
    "$config" "$dir" "$@"
    if ! start_daemon "$name" "$dir" "$binary"; then
        note "SKIPPED $name: the daemon did not start (log in target/bench/$name.log)."
        cp "$dir/daemon.log" "$KEEP/$name.log" 2>/dev/null || true
        return 0
    fi
    cp "$dir/config.toml" "$KEEP/$name.config.toml"
    bench_target "$name" "$dir" "$binary"
    stop_daemon
    cp "$dir/daemon.log" "$KEEP/$name.log"
}

# -------------------------------------------------------------------------------------------
one_target bulwarkd-mbed "$BULWARKD" bulwarkd_config MbedCrypto

check_dir=$WORK/check-openssl
mkdir -p "$check_dir"
bulwarkd_config "$check_dir" OpenSsl
if check_out=$(cd "$check_dir" && "$BULWARKD" --check --config "$check_dir/config.toml" 2>&1); then
    one_target bulwarkd-openssl "$BULWARKD" bulwarkd_config OpenSsl
else
    note "SKIPPED bulwarkd-openssl: this bulwarkd does not accept provider_type = \"OpenSsl\" yet" \
        "($(echo "$check_out" | tail -1))."
fi

if [[ -x $UPSTREAM ]]; then
    one_target parsec-default "$UPSTREAM" upstream_config
    one_target parsec-busy "$UPSTREAM" upstream_config "idle_listener_sleep_duration = 0"
else
    note "SKIPPED parsec-default and parsec-busy: $UPSTREAM is missing; install it with" \
        "\`cargo install parsec-service --version 1.5.0 --locked --root target/tools" \
        "--features mbed-crypto-provider,direct-authenticator\` (scripts/test.sh does)."
fi

echo "== in process" >&2
# Mbed TLS keys are volatile here, but run from a scratch directory all the same.
mkdir -p "$WORK/in-process"
if ! (cd "$WORK/in-process" && run "$BENCH" --in-process --threads "$THREADS" \
    --duration "$DURATION" --warmup "$WARMUP" --json "$RESULTS" --no-markdown >/dev/null); then
    note "FAILED: the in-process measurement (see the output of bench/run.sh)."
fi

if [[ $CRITERION == 1 ]]; then
    echo "== criterion micro-benchmarks" >&2
    for bench in "bulwark-interface codec" "bulwark-service dispatch"; do
        read -r package name <<<"$bench"
        if ! run cargo bench -p "$package" --bench "$name" -- --warm-up-time 0.5 \
            --measurement-time 2 --output-format bencher >>"$MICRO"; then
            note "FAILED: the criterion benchmark $package/$name."
        fi
    done
fi

# -------------------------------------------------------------------------------------------
echo "== writing $OUT" >&2
ELAPSED=$SECONDS
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)
CPU_MODEL=$(grep -m1 '^model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
COMMIT=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
DIRTY=""
if [[ -n $(git status --porcelain 2>/dev/null) ]]; then
    DIRTY=" (with uncommitted changes)"
fi
UPSTREAM_VERSION=$(cargo install --list --root target/tools 2>/dev/null |
    sed -n 's/^\(parsec-service v[^:]*\):.*/\1/p')
{
    echo "# Benchmarks"
    echo
    echo "Bulwark (\`bulwarkd\`, \`bulwark-client\`) against the upstream Parsec service 1.5.0"
    echo "and \`parsec-client\` 0.16, measured by \`bench/run.sh\`. Regenerate with"
    echo "\`bench/run.sh\` (about 15 minutes; \`BENCH_DURATION=1 bench/run.sh\` for a quick look)."
    echo
    echo "**Read the ratios, not the absolute numbers.** These figures come from a shared"
    echo "2-core virtual machine on which other engineers' builds may run at the same time; the"
    echo "load generator runs on the same two cores as the daemon it measures (its own CPU use is"
    echo "given for every cell). Each cell is short (${DURATION} s after ${WARMUP} s of warm-up),"
    echo "so differences under ~10 % are noise. The daemon's CPU time per operation (and, in"
    echo "process, the crypto's) depends least on what else runs on the machine: prefer it to"
    echo "throughput when the two disagree."
    echo
    echo "## Machine"
    echo
    echo "| | |"
    echo "| --- | --- |"
    echo "| CPUs (\`nproc\`) | $(nproc) |"
    echo "| CPU model | $CPU_MODEL |"
    echo "| memory | $(free -g | awk '/^Mem:/ {print $2}') GiB |"
    echo "| kernel | $(uname -srm) |"
    echo "| rustc | $(rustc --version) |"
    echo "| upstream service | ${UPSTREAM_VERSION:-not installed} (target/tools/bin/parsec) |"
    echo "| Bulwark commit | $COMMIT$DIRTY |"
    echo "| run | $STARTED, ${ELAPSED} s; load average before: $LOAD_BEFORE, after: $LOAD_AFTER |"
    echo
    echo "## Method"
    echo
    echo "- Closed loop: N client threads (1 and 8) each send one operation back to back; after"
    echo "  the warm-up, every completed operation's latency goes into one HDR histogram."
    echo "  Throughput is successful operations per wall second."
    echo "- \`upstream\` client: \`parsec-client\` 0.16, which opens a connection per request."
    echo "  \`bulwark\` client: \`bulwark-client\`, one shared \`Client\` whose connections are"
    echo "  kept open and reused (against the upstream service, which closes every connection,"
    echo "  it detects this and also opens one per request)."
    echo "- Operations: ping; list-providers; generate-random 32 B; SHA-256 of 1 KiB; ECDSA"
    echo "  P-256 sign and verify of a SHA-256 hash (one key per thread); RSA-2048 PKCS#1 v1.5"
    echo "  sign (one key shared by all threads); AES-128-GCM encrypt of 1 KiB (one key per"
    echo "  thread); generate + destroy of an ECC P-256 key (one operation = the two requests)."
    echo "- Daemons: Direct authenticator, SQLite key store, \`log_level = \"warn\"\`,"
    echo "  \`timeout = 200\` ms, everything else default; one daemon at a time, each in its own"
    echo "  temporary directory. \`parsec-busy\` is the upstream service with"
    echo "  \`idle_listener_sleep_duration = 0\`: its listener polls without sleeping, which"
    echo "  removes the up-to-10 ms wait for each connection and costs a core while idle."
    echo "- CPU: the load generator's own CPU time (getrusage) and the daemon's"
    echo "  (/proc/<pid>/stat utime + stime) over each measured phase, in cores (CPU seconds per"
    echo "  wall second; the machine has $(nproc)). Idle CPU: the daemon's CPU time over ${IDLE} s"
    echo "  with no client, after its load runs."
    echo "- In process: the same crypto called directly on OpenSSL (\`openssl\` crate) and Mbed"
    echo "  TLS (\`psa-crypto\`, calls serialised by one mutex as in bulwarkd) with N threads."
    echo
    if [[ -s $NOTES ]]; then
        echo "## Incidents and omissions in this run"
        echo
        sed 's/^/- /' "$NOTES"
        echo
    fi
    echo "## Results"
    echo
    "$BENCH" --report "$RESULTS"
    # Hand-kept: the targeted measurements of bench/one.sh and bench/fleet.sh, with the
    # status of each performance goal (not regenerated by this script).
    if [[ -s $ROOT/bench/targeted.md ]]; then
        cat "$ROOT/bench/targeted.md"
        echo
    fi
    # Every provider, hardware ones included (bench/providers.sh, which refreshes this part).
    if [[ -s $ROOT/bench/providers.md ]]; then
        echo "<!-- providers:begin -->"
        cat "$ROOT/bench/providers.md"
        echo "<!-- providers:end -->"
        echo
    fi
    # JWT-SVID against Unix peer credentials (bench/auth.sh, which refreshes this part).
    if [[ -s $ROOT/bench/auth.md ]]; then
        echo "<!-- auth:begin -->"
        cat "$ROOT/bench/auth.md"
        echo "<!-- auth:end -->"
        echo
    fi
    echo "## Micro-benchmarks (criterion)"
    echo
    echo "No socket: \`crates/interface/benches/codec.rs\` (header, framing, protobuf bodies) and"
    echo "\`crates/service/benches/dispatch.rs\` (\`Service::handle_bytes\` with the Mbed Crypto"
    echo "provider and a temporary key store). Run one with"
    echo "\`cargo bench -p bulwark-interface --bench codec\` or"
    echo "\`cargo bench -p bulwark-service --bench dispatch\` for criterion's full statistics."
    echo
    if [[ -s $MICRO ]]; then
        echo '```text'
        grep '^test ' "$MICRO"
        echo '```'
    else
        echo "(Not run: BENCH_CRITERION=0.)"
    fi
    echo
    echo "## Commands"
    echo
    echo "\`\$WORK\` is the run's temporary directory; each daemon ran in \`\$WORK/<name>\` as"
    echo "\`<binary> --config \$WORK/<name>/config.toml\`."
    echo
    echo '```sh'
    cat "$COMMANDS"
    echo '```'
    echo
    for cfg in "$KEEP"/*.config.toml; do
        [[ -e $cfg ]] || continue
        name=$(basename "$cfg" .config.toml)
        echo "<details><summary>$name configuration</summary>"
        echo
        echo '```toml'
        sed "s#$WORK#\$WORK#g" "$cfg"
        echo '```'
        echo
        echo "</details>"
        echo
    done
} >"$OUT"
echo "wrote $OUT in ${ELAPSED} s (raw results: $RESULTS)" >&2
