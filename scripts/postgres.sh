# Sourced by scripts/test.sh: start a throwaway PostgreSQL cluster on 127.0.0.1 for the tests
# and export QUNYUN_TEST_PG_URL. Installs the server with apt when running as root without it.
PG_PORT="${QUNYUN_TEST_PG_PORT:-54329}"

find_pg_bin() {
  ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1
}

start_test_postgres() {
  local bin
  bin="$(find_pg_bin)"
  if [ -z "$bin" ] && [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
    bin="$(find_pg_bin)"
  fi
  [ -n "$bin" ] || return 1
  local data run_as=()
  data="$(mktemp -d /tmp/qunyun-pg.XXXXXX)"
  if [ "$(id -u)" = 0 ]; then
    id postgres >/dev/null 2>&1 || useradd --system --no-create-home postgres
    chown postgres "$data"
    run_as=(runuser -u postgres --)
  fi
  "${run_as[@]}" "$bin/initdb" -D "$data" -U qunyun --auth=trust -E UTF8 --locale=C.UTF-8 >/dev/null
  "${run_as[@]}" "$bin/pg_ctl" -D "$data" -l "$data/server.log" -w \
    -o "-c listen_addresses=127.0.0.1 -p $PG_PORT -k $data -c fsync=off" start >/dev/null
  "$bin/createdb" -h 127.0.0.1 -p "$PG_PORT" -U qunyun qunyun_test
  export QUNYUN_TEST_PG_URL="postgresql+psycopg://qunyun@127.0.0.1:$PG_PORT/qunyun_test"
  # Expanded now: the function's locals are gone by the time the shell exits.
  trap "$(printf '%q ' "${run_as[@]}" "$bin/pg_ctl") -D $(printf %q "$data") -m fast stop >/dev/null 2>&1 || true" EXIT
  echo "测试用 PostgreSQL 已启动 (test PostgreSQL up): 127.0.0.1:$PG_PORT"
}
