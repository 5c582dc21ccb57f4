#!/bin/sh
# Runs once, when the primary's data directory is first created (docker-entrypoint-initdb.d): a role for the standby's
# streaming replication, allowed in from the compose network. Its password comes from the environment, never a file.
set -eu
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" <<SQL
CREATE ROLE replicator WITH REPLICATION LOGIN PASSWORD '${RPT_REPLICATION_PASSWORD}';
SQL
echo "host replication replicator all scram-sha-256" >> "$PGDATA/pg_hba.conf"
