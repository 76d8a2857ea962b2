#!/usr/bin/env bash
# `make run`'s foreground: the web server (daphne) and the job worker side by side. Ctrl-C
# (or SIGTERM) stops both; if either exits, the other is stopped too.
set -uo pipefail
BIN=${BIN:-.venv/bin}
HOST=${HOST:-127.0.0.1}
PORT=${PORT:-8000}

pids=()
stop() {
  trap - INT TERM EXIT
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null; done
}
trap 'stop; exit 130' INT
trap 'stop; exit 143' TERM
trap stop EXIT

# daphne with secret-looking query parameters redacted from its access log (widgetsite/serve.py)
"$BIN/python" -m widgetsite.serve -b "$HOST" -p "$PORT" widgetsite.asgi:application &
pids+=($!)
"$BIN/python" manage.py worker &
pids+=($!)

# Whichever stops first takes the other down with it.
wait -n "${pids[@]}"
status=$?
echo "a process exited ($status); stopping the rest" >&2
exit "$status"
