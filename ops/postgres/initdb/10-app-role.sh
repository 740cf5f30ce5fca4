#!/bin/sh
# Run once by the postgres image on a fresh data dir (/docker-entrypoint-initdb.d): the role
# hookstream connects as. Not a superuser and without BYPASSRLS, or PostgreSQL would skip the
# tenant row-level security policies for it; it owns the database, so it can run the migrations.
set -eu
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
    -v app="$HOOKSTREAM_DB_USER" -v password="$HOOKSTREAM_DB_PASSWORD" -v db="$POSTGRES_DB" <<'SQL'
CREATE ROLE :"app" LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS PASSWORD :'password';
ALTER DATABASE :"db" OWNER TO :"app";
SQL
