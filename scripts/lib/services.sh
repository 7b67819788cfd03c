# Throwaway test services, shared by scripts/test.sh and scripts/reliability.sh (sourced, not
# run): installs Debian's postgresql and redis-server when missing, starts a PostgreSQL and a
# Redis server on free 127.0.0.1 ports in a temp folder, and exports
#   LEADGATE_TEST_POSTGRES_URL      postgres://leadgate@127.0.0.1:PORT/postgres
#   LEADGATE_TEST_POSTGRES_RESTART  a script: `$it SECONDS` stops PostgreSQL, waits, starts it
#   LEADGATE_TEST_REDIS_URL         redis://127.0.0.1:PORT
# An EXIT trap stops both servers and removes the folder. Call `start_test_services` once.

# Bounds, so a stuck step fails the run instead of hanging CI.
APT_TIMEOUT=900
SERVICE_START_TIMEOUT=60

as_root() {
  if [[ "$(id -u)" == "0" ]]; then "$@"
  elif command -v sudo >/dev/null 2>&1; then sudo "$@"
  else echo "need root (or sudo) to run: $*" >&2; return 1
  fi
}

pg_bindir() {
  local d
  d="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)"
  if [[ -n "$d" && -x "$d/initdb" && -x "$d/pg_ctl" ]]; then echo "$d"; fi
}

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
free_port() {
  local p=$(( 20000 + RANDOM % 20000 ))
  while port_in_use "$p"; do p=$(( p + 1 )); done
  echo "$p"
}

stop_test_services() {
  local rc=$?
  if [[ -n "${PGDATA:-}" && -f "$PGDATA/postmaster.pid" ]]; then
    timeout 30 "${RUN_PG[@]}" "$PG_BIN/pg_ctl" -D "$PGDATA" -w -t 20 stop -m immediate >/dev/null 2>&1 || true
  fi
  if [[ -n "${WORK:-}" && -f "$WORK/redis.pid" ]]; then
    local pid
    pid="$(cat "$WORK/redis.pid")"
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  fi
  if [[ -n "${WORK:-}" ]]; then
    rm -rf "$WORK" 2>/dev/null || { sleep 1; rm -rf "$WORK" || true; }
  fi
  exit "$rc"
}

# The console's browser test (tests/console_browser.rs) drives Debian's chromium through
# chromium-driver; it fails, never skips, without them.
install_browser() {
  local missing=()
  command -v chromium >/dev/null 2>&1 || missing+=(chromium)
  command -v chromedriver >/dev/null 2>&1 || missing+=(chromium-driver)
  if (( ${#missing[@]} > 0 )); then
    echo "installing ${missing[*]} (Debian packages) ..." >&2
    export DEBIAN_FRONTEND=noninteractive
    as_root timeout "$APT_TIMEOUT" apt-get update -q
    as_root timeout "$APT_TIMEOUT" apt-get install -y -q --no-install-recommends "${missing[@]}"
  fi
}

start_test_services() {
  # --- 1. Install Debian's postgresql and redis-server when missing ---------------------
  local missing=()
  [[ -n "$(pg_bindir)" ]] || missing+=(postgresql)
  command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
  if (( ${#missing[@]} > 0 )); then
    echo "installing ${missing[*]} (Debian packages) ..." >&2
    export DEBIAN_FRONTEND=noninteractive
    as_root timeout "$APT_TIMEOUT" apt-get update -q
    as_root timeout "$APT_TIMEOUT" apt-get install -y -q --no-install-recommends "${missing[@]}"
  fi
  PG_BIN="$(pg_bindir)"
  if [[ -z "$PG_BIN" ]]; then
    echo "PostgreSQL server binaries not found under /usr/lib/postgresql/*/bin after install" >&2
    exit 1
  fi

  # --- 2. Throwaway servers on free loopback ports -----------------------------------------
  WORK="$(mktemp -d "${TMPDIR:-/tmp}/leadgate-test.XXXXXX")"
  PGDATA="$WORK/pgdata"
  # initdb and postgres refuse to run as root: then the Debian package's `postgres` user runs them.
  RUN_PG=()
  if [[ "$(id -u)" == "0" ]]; then
    chown postgres "$WORK"
    chmod 755 "$WORK"
    RUN_PG=(runuser -u postgres --)
  fi
  trap stop_test_services EXIT
  trap 'exit 130' INT TERM

  local pg_port redis_port deadline
  pg_port="$(free_port)"
  "${RUN_PG[@]}" timeout "$SERVICE_START_TIMEOUT" "$PG_BIN/initdb" -D "$PGDATA" -U leadgate \
    --auth=trust --encoding=UTF8 --no-locale >"$WORK/initdb.log" 2>&1 \
    || { cat "$WORK/initdb.log" >&2; exit 1; }
  # Throwaway cluster: loopback only, room for several replicas per test, and fsync off (the
  # tests restart PostgreSQL cleanly; they never pull the machine's power).
  cat >>"$PGDATA/postgresql.conf" <<EOF
listen_addresses = '127.0.0.1'
port = $pg_port
unix_socket_directories = '$WORK'
max_connections = 300
fsync = off
full_page_writes = off
EOF
  "${RUN_PG[@]}" "$PG_BIN/pg_ctl" -D "$PGDATA" -l "$WORK/postgres.log" -w -t "$SERVICE_START_TIMEOUT" start >/dev/null \
    || { cat "$WORK/postgres.log" >&2; exit 1; }

  # What a test runs to restart PostgreSQL mid-run: `$LEADGATE_TEST_POSTGRES_RESTART SECONDS`
  # stops it (fast: connections are cut), keeps it down SECONDS, and starts it again.
  cat >"$WORK/pg-restart.sh" <<EOF
#!/usr/bin/env bash
set -euo pipefail
${RUN_PG[*]} "$PG_BIN/pg_ctl" -D "$PGDATA" -w -t $SERVICE_START_TIMEOUT -m fast stop >/dev/null
sleep "\${1:-0}"
${RUN_PG[*]} "$PG_BIN/pg_ctl" -D "$PGDATA" -l "$WORK/postgres.log" -w -t $SERVICE_START_TIMEOUT start >/dev/null
EOF
  chmod 755 "$WORK/pg-restart.sh"

  redis_port="$(free_port)"
  while [[ "$redis_port" == "$pg_port" ]]; do redis_port="$(free_port)"; done
  timeout "$SERVICE_START_TIMEOUT" redis-server --port "$redis_port" --bind 127.0.0.1 \
    --daemonize yes --save '' --appendonly no --dir "$WORK" \
    --pidfile "$WORK/redis.pid" --logfile "$WORK/redis.log"
  deadline=$(( SECONDS + SERVICE_START_TIMEOUT ))
  until port_in_use "$redis_port"; do
    if (( SECONDS > deadline )); then cat "$WORK/redis.log" >&2; echo "redis-server did not start" >&2; exit 1; fi
    sleep 0.1
  done

  export LEADGATE_TEST_POSTGRES_URL="postgres://leadgate@127.0.0.1:$pg_port/postgres"
  export LEADGATE_TEST_POSTGRES_RESTART="$WORK/pg-restart.sh"
  export LEADGATE_TEST_REDIS_URL="redis://127.0.0.1:$redis_port"
  echo "test services: PostgreSQL on 127.0.0.1:$pg_port, Redis on 127.0.0.1:$redis_port" >&2
}
