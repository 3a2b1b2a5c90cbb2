#!/bin/sh
# PostgreSQL as the official postgres image starts it: on first start, a cluster in
# $PGDATA with the POSTGRES_USER role (password POSTGRES_PASSWORD) and the POSTGRES_DB
# database; password authentication for every host; then the server in the foreground.
set -eu
if [ "${1:-}" != postgres ]; then
    exec "$@"
fi
# The server binaries of the one PostgreSQL version installed (pg_wrapper has no
# cluster to pick them by).
for bin in /usr/lib/postgresql/*/bin; do PATH="$bin:$PATH"; done
export PATH
user="${POSTGRES_USER:-postgres}"
db="${POSTGRES_DB:-$user}"
if [ -z "${POSTGRES_PASSWORD:-}" ]; then
    echo "postgres-entrypoint.sh: POSTGRES_PASSWORD is not set" >&2
    exit 1
fi
if [ ! -s "$PGDATA/PG_VERSION" ]; then
    pwfile=$(mktemp)
    printf '%s\n' "$POSTGRES_PASSWORD" >"$pwfile"
    initdb --username="$user" --pwfile="$pwfile" --auth-local=trust \
        --auth-host=scram-sha-256 --encoding=UTF8 --locale=C.UTF-8 -D "$PGDATA" >/dev/null
    rm -f "$pwfile"
    echo "host all all all scram-sha-256" >>"$PGDATA/pg_hba.conf"
    if [ "$db" != postgres ]; then
        pg_ctl -D "$PGDATA" -o "-c listen_addresses='' -k /tmp" -w start >/dev/null
        createdb -h /tmp -U "$user" "$db"
        pg_ctl -D "$PGDATA" -m fast -w stop >/dev/null
    fi
fi
shift
exec postgres -D "$PGDATA" -c listen_addresses='*' -k /tmp "$@"
