#!/usr/bin/env bash
# Run a command with a real Redis at $REDIS_URL: use the one that answers there (default
# redis://127.0.0.1:6379/0), or start a throw-away redis-server on a free loopback port for the
# duration of the command and stop it afterwards.
# Usage: tests/with_redis.sh PYTHON ARGS...  (runs PYTHON ARGS; PYTHON must have the redis package)
set -euo pipefail
PY="$1"  # the command itself starts with this interpreter
export REDIS_URL="${REDIS_URL:-redis://127.0.0.1:6379/0}"

answers() {
  "$PY" - "$1" <<'PYEOF'
import sys, redis
try:
    redis.Redis.from_url(sys.argv[1], socket_connect_timeout=1, socket_timeout=1).ping()
except Exception:
    sys.exit(1)
PYEOF
}

if answers "$REDIS_URL"; then
  echo "tests: using the Redis at $REDIS_URL" >&2
  exec "$@"
fi

if ! command -v redis-server >/dev/null 2>&1; then
  echo "tests: no Redis answers at $REDIS_URL and redis-server is missing; installing Debian's redis-server" >&2
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq redis-server >/dev/null
fi

PORT=$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')
DIR=$(mktemp -d)
redis-server --port "$PORT" --bind 127.0.0.1 --save "" --appendonly no --dir "$DIR" \
  --daemonize no --logfile "$DIR/redis.log" &
REDIS_PID=$!
trap 'kill "$REDIS_PID" 2>/dev/null; wait "$REDIS_PID" 2>/dev/null; rm -rf "$DIR"' EXIT
export REDIS_URL="redis://127.0.0.1:$PORT/0"
for _ in $(seq 50); do answers "$REDIS_URL" && break; sleep 0.1; done
answers "$REDIS_URL" || { echo "tests: the throw-away redis-server did not start (log: $DIR/redis.log)" >&2; cat "$DIR/redis.log" >&2; exit 1; }
echo "tests: started a throw-away redis-server at $REDIS_URL" >&2
"$@"
