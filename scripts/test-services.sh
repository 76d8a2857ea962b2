#!/usr/bin/env bash
# Runs the database and realtime test suites again on PostgreSQL and Redis (the scale-out
# configuration) when they answer on 127.0.0.1; says plainly when they do not.
set -euo pipefail
PG_URL=${TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/test}
REDIS=${TEST_REDIS_URL:-redis://127.0.0.1:6379/15}
BIN=${BIN:-.venv/bin}
if ! "$BIN/python" - "$PG_URL" "$REDIS" <<'PY'
import sys
import psycopg
import redis
try:
    psycopg.connect(sys.argv[1], connect_timeout=3).close()
    redis.Redis.from_url(sys.argv[2], socket_connect_timeout=3).ping()
except Exception as exc:
    print(f"PostgreSQL/Redis not reachable ({exc}); the scale-out pass is NOT run.")
    sys.exit(1)
PY
then
  exit 0
fi
echo "Scale-out pass: the API and call socket suites on PostgreSQL + Redis"
DATABASE_URL="$PG_URL" REDIS_URL="$REDIS" "$BIN/python" -m pytest -q -p no:cacheprovider \
  tests/accounts tests/assistants tests/widgets tests/calls tests/webhooks
