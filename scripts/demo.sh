#!/usr/bin/env bash
# Show the main job end to end on one machine with no network beyond loopback: a real
# registry, the Chainguard-compatible front (tests/support/front.py) holding a 30-build
# history of chainguard/python:latest, and docker-cghistory listing it.
# Usage: scripts/demo.sh   (needs docker-registry; PYTHON overrides the interpreter)
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
PYTHON="${PYTHON:-python3}"
work="$(mktemp -d /tmp/cgh-demo.XXXXXX)"
pids=()
cleanup() {
    local pid
    for pid in "${pids[@]}"; do
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$work"
}
trap cleanup EXIT

wait_for() {  # wait_for DESCRIPTION COMMAND...: poll for up to 15 s
    local what="$1"
    shift
    for _ in $(seq 1 150); do
        if "$@" 2>/dev/null; then
            return 0
        fi
        sleep 0.1
    done
    echo "demo: $what did not come up" >&2
    cat "$work"/*.log >&2 || true
    return 1
}

# 1. A real registry on a free loopback port.
port="$("$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
cat >"$work/registry.yml" <<YAML
version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $work/registry
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$port
  secret: cghistory-demo
YAML
docker-registry serve "$work/registry.yml" >"$work/registry.log" 2>&1 &
pids+=("$!")
wait_for "docker-registry" "$PYTHON" -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$port/v2/', timeout=1)"

# 2. The front, with 30 nightly builds of chainguard/python:latest ending today.
"$PYTHON" - "$work/front.json" <<'PY'
import json
import sys
from datetime import datetime, timedelta, timezone

sys.path.insert(0, ".")
from tests.support.front import make_history

start = datetime.now(timezone.utc).replace(hour=2, minute=0, second=0, microsecond=0)
start -= timedelta(days=29)
history = make_history(30, start, timedelta(days=1), seed="demo", fractional="mixed")
config = {"repos": {"chainguard/python": {"public": True, "history": {"latest": history}}}}
with open(sys.argv[1], "w") as f:
    json.dump(config, f)
PY
"$PYTHON" scripts/front.py --upstream "http://127.0.0.1:$port" --port 0 \
    --config "$work/front.json" >"$work/front.url" 2>"$work/front.log" &
pids+=("$!")
wait_for "the front" test -s "$work/front.url"
front_url="$(head -1 "$work/front.url")"
front_host="${front_url#http://}"

# 3. A throw-away docker client configuration, so the demo never reads your credentials.
export DOCKER_CONFIG="$work/docker" XDG_CACHE_HOME="$work/cache"
mkdir -p "$DOCKER_CONFIG" "$XDG_CACHE_HOME"
echo '{}' >"$DOCKER_CONFIG/config.json"

if command -v docker-cghistory >/dev/null; then
    cghistory=(docker-cghistory)
else
    cghistory=("$PYTHON" -m docker_cghistory)
fi

echo "+ docker-cghistory --registry $front_host python:latest"
"${cghistory[@]}" --registry "$front_host" python:latest
echo
echo "+ docker-cghistory --registry $front_host python:latest --format json | head -3"
# Captured first: head closing the pipe early must not turn success into SIGPIPE.
json_lines="$("${cghistory[@]}" --registry "$front_host" python:latest --format json)"
printf '%s\n' "$json_lines" | head -3
