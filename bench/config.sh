# Sourced by the benchmark scripts: the one daemon configuration they all use.
#
# bench_config DIR PROVIDER-LINES [EXTRA-CORE-LINES]
#   Writes DIR/config.toml: Direct authentication, a SQLite key store in DIR/kim, the socket
#   DIR/s.sock, log level warn, a 200 ms request timeout, and one provider table holding
#   PROVIDER-LINES (e.g. 'provider_type = "OpenSsl"'); EXTRA-CORE-LINES go into
#   [core_settings]. Both bulwarkd and the upstream service read it.
bench_config() {
    mkdir -p "$1"
    cat >"$1/config.toml" <<CONF
[core_settings]
allow_root = true
log_level = "warn"
${3:-}

[listener]
listener_type = "DomainSocket"
timeout = 200
socket_path = "$1/s.sock"

[authenticator]
auth_type = "Direct"

[[key_manager]]
name = "sqlite-manager"
manager_type = "SQLite"
sqlite_db_path = "$1/kim/keys.sqlite3"

[[provider]]
key_info_manager = "sqlite-manager"
$2
CONF
}
