# Sourced by the benchmark scripts: the one daemon configuration they all use, and how they
# start a daemon on it.
#
# bench_config DIR PROVIDER-LINES [EXTRA-CORE-LINES] [AUTHENTICATOR-TABLES]
#   Writes DIR/config.toml: Direct authentication, a SQLite key store in DIR/kim, the socket
#   DIR/s.sock, log level warn, a 200 ms request timeout, and one provider table holding
#   PROVIDER-LINES (e.g. 'provider_type = "OpenSsl"'); EXTRA-CORE-LINES go into
#   [core_settings]; AUTHENTICATOR-TABLES, when given, replace the Direct authenticator. Both
#   bulwarkd and the upstream service read it.
bench_config() {
    mkdir -p "$1"
    local authenticators=${4:-'[authenticator]
auth_type = "Direct"'}
    cat >"$1/config.toml" <<CONF
[core_settings]
allow_root = true
log_level = "warn"
${3:-}

[listener]
listener_type = "DomainSocket"
timeout = 200
socket_path = "$1/s.sock"

$authenticators

[[key_manager]]
name = "sqlite-manager"
manager_type = "SQLite"
sqlite_db_path = "$1/kim/keys.sqlite3"

[[provider]]
key_info_manager = "sqlite-manager"
$2
CONF
}

# bench_start DIR BINARY [WORKING-DIR]
#   Starts BINARY on DIR/config.toml in WORKING-DIR (default DIR; Mbed TLS writes its key files
#   there), its output in DIR/daemon.log, and sets PID; returns once DIR/s.sock exists, and
#   fails, showing the log, if the daemon exits first.
bench_start() {
    (cd "${3:-$1}" && exec "$2" --config "$1/config.toml") >"$1/daemon.log" 2>&1 </dev/null &
    PID=$!
    for _ in $(seq 300); do
        [[ -S $1/s.sock ]] && return 0
        kill -0 "$PID" 2>/dev/null || { cat "$1/daemon.log" >&2; return 1; }
        sleep 0.1
    done
}
