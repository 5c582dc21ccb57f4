#!/bin/sh
# The standby: on first start, a base backup of the primary (-R writes primary_conninfo and standby.signal), naming
# itself "standby" so that the primary's synchronous_standby_names waits for it; then PostgreSQL as a hot standby.
set -eu
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  until pg_isready -h pg-primary -U "$POSTGRES_USER"; do sleep 1; done
  mkdir -p "$PGDATA" && chown postgres:postgres "$PGDATA" && chmod 700 "$PGDATA"
  PGPASSWORD="$RPT_REPLICATION_PASSWORD" gosu postgres pg_basebackup -h pg-primary -U replicator -D "$PGDATA" -R -X stream
  echo "primary_conninfo = 'host=pg-primary user=replicator password=${RPT_REPLICATION_PASSWORD} application_name=standby'" \
    >> "$PGDATA/postgresql.auto.conf"
fi
exec gosu postgres postgres -c hot_standby=on -c synchronous_commit=on
