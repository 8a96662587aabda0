#!/usr/bin/env bash
# Start a local PostgreSQL for the service-backed tests (prod deployment path) and print its URL.
# Installs the server from Debian's packages when missing. Idempotent.
set -euo pipefail
if ! command -v pg_ctlcluster >/dev/null 2>&1; then
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null) 1>&2
fi
VER=$(ls /usr/lib/postgresql | sort -n | tail -1)
pg_lsclusters -h | grep -q "^$VER main" || pg_createcluster "$VER" main >/dev/null
pg_ctlcluster "$VER" main start >/dev/null 2>&1 || true
for _ in $(seq 1 50); do
  su postgres -c "psql -h 127.0.0.1 -qAtc 'select 1'" >/dev/null 2>&1 && break || sleep 0.2
done
su postgres -c "psql -qAtc \"ALTER USER postgres PASSWORD 'postgres'\"" >/dev/null
su postgres -c "psql -qAtc \"SELECT 1 FROM pg_database WHERE datname='dagster_test'\"" | grep -q 1 \
  || su postgres -c "createdb dagster_test"
echo "postgresql://postgres:postgres@127.0.0.1:5432/dagster_test"
