#!/usr/bin/env bash
# Start a throwaway PostgreSQL server on 127.0.0.1 for the tuning tests, and print
# its SQLAlchemy URL on stdout (everything else goes to stderr):
#
#   export MNISTLAB_TEST_PG_URL="$(.ci/start-postgres.sh)"
#   .ci/start-postgres.sh stop
#
# Idempotent: if the server is already running it only prints the URL. Needs the
# Debian package `postgresql` (initdb, pg_ctl). The cluster lives in its own data
# directory, not Debian's default cluster, so it never touches a real database.
# As root the server runs as the `postgres` user (PostgreSQL refuses to run as root).
#
# Settings (environment): MNISTLAB_PG_PORT (55432), MNISTLAB_PG_DIR
# (/tmp/mnistlab-postgres-PORT), MNISTLAB_PG_USER (mnistlab), MNISTLAB_PG_PASSWORD
# (mnistlab), MNISTLAB_PG_DB (mnistlab_test).
set -euo pipefail

port="${MNISTLAB_PG_PORT:-55432}"
dir="${MNISTLAB_PG_DIR:-/tmp/mnistlab-postgres-$port}"
user="${MNISTLAB_PG_USER:-mnistlab}"
password="${MNISTLAB_PG_PASSWORD:-mnistlab}"
db="${MNISTLAB_PG_DB:-mnistlab_test}"
action="${1:-start}"

say() { echo "start-postgres: $*" >&2; }
die() { say "error: $*"; exit 1; }

# initdb and pg_ctl are not on PATH in Debian: they live in /usr/lib/postgresql/N/bin.
bindir=""
for candidate in /usr/lib/postgresql/*/bin; do
  [[ -x "$candidate/initdb" ]] && bindir="$candidate"
done
if [[ -z "$bindir" ]] && command -v initdb >/dev/null; then
  bindir="$(dirname "$(command -v initdb)")"
fi
[[ -n "$bindir" ]] || die "PostgreSQL is not installed (no initdb); apt-get install postgresql"

# Run a command as the server's owner: `postgres` when we are root, else ourselves.
if [[ $EUID -eq 0 ]]; then
  id postgres >/dev/null 2>&1 || die "running as root but there is no 'postgres' user"
  owner=postgres
  as_owner() {
    if command -v runuser >/dev/null; then runuser -u postgres -- "$@"; else su postgres -s /bin/sh -c "$(printf '%q ' "$@")"; fi
  }
else
  owner="$(id -un)"
  as_owner() { "$@"; }
fi

data="$dir/data"
socket="$dir/socket"
url="postgresql://$user:$password@127.0.0.1:$port/$db"

if [[ "$action" == "stop" ]]; then
  if [[ -f "$data/postmaster.pid" ]]; then
    as_owner "$bindir/pg_ctl" -D "$data" -m fast -w stop >&2 || true
  fi
  exit 0
elif [[ "$action" != "start" ]]; then
  die "usage: $0 [start|stop]"
fi

psql_admin() { as_owner "$bindir/psql" -h "$socket" -p "$port" -U "$owner" -d postgres -v ON_ERROR_STOP=1 -qAt "$@"; }

if [[ ! -f "$data/PG_VERSION" ]]; then
  say "creating a cluster in $data"
  mkdir -p "$dir"
  rm -rf "$data" "$socket"
  mkdir -p "$data" "$socket"
  chown -R "$owner" "$dir"
  chmod 700 "$data"
  as_owner "$bindir/initdb" -D "$data" -U "$owner" --auth-local=trust --auth-host=scram-sha-256 \
    -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 \
    || as_owner "$bindir/initdb" -D "$data" -U "$owner" --auth-local=trust \
      --auth-host=scram-sha-256 -E UTF8 --locale=C >"$dir/initdb.log" 2>&1 \
    || die "initdb failed; see $dir/initdb.log: $(tail -n 3 "$dir/initdb.log" | tr '\n' ' ')"
fi

if ! as_owner "$bindir/pg_ctl" -D "$data" status >/dev/null 2>&1; then
  say "starting the server on 127.0.0.1:$port"
  # Only the loopback address; the Unix socket in our own directory (not /var/run).
  as_owner "$bindir/pg_ctl" -D "$data" -l "$dir/server.log" -w -t 60 \
    -o "-c listen_addresses=127.0.0.1 -p $port -k $socket -c max_connections=50" start >&2 \
    || die "the server did not start; see $dir/server.log: $(tail -n 3 "$dir/server.log" | tr '\n' ' ')"
fi

# The test user and database (CREATE ... only if missing, so a re-run is harmless).
sql_password="${password//\'/\'\'}"  # a quote in the password, doubled for SQL
psql_admin <<SQL >/dev/null || die "could not create user $user and database $db"
DO \$\$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$user') THEN
    CREATE ROLE "$user" LOGIN PASSWORD '$sql_password';
  ELSE
    ALTER ROLE "$user" LOGIN PASSWORD '$sql_password';
  END IF;
END \$\$;
SQL
if [[ "$(psql_admin -c "SELECT 1 FROM pg_database WHERE datname = '$db'")" != "1" ]]; then
  psql_admin -c "CREATE DATABASE \"$db\" OWNER \"$user\"" >/dev/null \
    || die "could not create database $db"
fi
say "ready: $(echo "$url" | sed 's/:[^:@]*@/:***@/')"
echo "$url"
