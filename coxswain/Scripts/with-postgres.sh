#!/usr/bin/env bash
# with-postgres.sh CMD [ARGS...]: runs CMD with a scratch PostgreSQL 15 cluster (Debian's
# postgresql-15; root, since initdb runs as the postgres user) on a free loopback port, and
# PHAROS_DSN_FILE naming a 0600 file with its DSN (the password is in the file only). The
# cluster and its directory are removed when CMD ends. `make bench` runs cox-bench under it.
set -euo pipefail
bin=/usr/lib/postgresql/15/bin
[ -x "$bin/initdb" ] || { echo "with-postgres: PostgreSQL 15 is not installed (make deps)" >&2; exit 2; }
dir=$(mktemp -d /tmp/pharos-pg.XXXXXX)
chmod 700 "$dir"
stop() {
    runuser -u postgres -- env -C / "$bin/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
    rm -rf "$dir"
}
trap stop EXIT
umask 077
password=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
printf '%s\n' "$password" > "$dir/pw"
chown -R postgres:postgres "$dir"
runuser -u postgres -- env -C / "$bin/initdb" -D "$dir/data" -U pharos --pwfile="$dir/pw" --auth-local=trust \
    --auth-host=scram-sha-256 --locale=C --encoding=UTF8 --no-sync >/dev/null
rm -f "$dir/pw"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
runuser -u postgres -- env -C / "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 30 \
    -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c max_connections=200" start >/dev/null
printf 'postgres://pharos:%s@127.0.0.1:%s/postgres\n' "$password" "$port" > "$dir/dsn"
export PHAROS_DSN_FILE="$dir/dsn"
"$@"
