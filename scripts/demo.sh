#!/usr/bin/env bash
# Show the main job end to end on one machine with no network beyond loopback: a real
# registry with real images, the Chainguard-compatible front (tests/support/front.py) holding
# their history (30 nightly builds of chainguard/python:latest, 10 of chainguard/busybox:latest
# whose /app/selftest fails from #2 on, and 7 multi-platform builds of chainguard/node:latest
# with SBOM attestations; see scripts/demo_images.py), and docker-cghistory listing them.
#
# Usage: scripts/demo.sh [--keep]
#   --keep  leave the registry and the front running afterwards and print the environment
#           that makes every README example work against them, and the command that stops them.
# Needs docker-registry and busybox-static; PYTHON overrides the interpreter.
set -euo pipefail

keep=0
case "${1:-}" in
    "") ;;
    --keep) keep=1 ;;
    -h|--help) sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "demo: unknown argument '$1' (usage: scripts/demo.sh [--keep])" >&2; exit 2 ;;
esac

cd "$(dirname "${BASH_SOURCE[0]}")/.."
PYTHON="${PYTHON:-python3}"
work="$(mktemp -d /tmp/cgh-demo.XXXXXX)"
pids=()
kept=0
cleanup() {
    local pid
    if [[ "$kept" == 1 ]]; then
        return
    fi
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

# 1. A real registry on a free loopback port. nohup: with --keep it outlives this terminal.
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
nohup docker-registry serve "$work/registry.yml" >"$work/registry.log" 2>&1 </dev/null &
pids+=("$!")
wait_for "docker-registry" "$PYTHON" -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$port/v2/', timeout=1)"

# 2. The builds, pushed as real images, and the front serving their history.
"$PYTHON" scripts/demo_images.py "http://127.0.0.1:$port" "$work/front.json"
nohup "$PYTHON" scripts/front.py --upstream "http://127.0.0.1:$port" --port 0 \
    --config "$work/front.json" >"$work/front.url" 2>"$work/front.log" </dev/null &
pids+=("$!")
wait_for "the front" test -s "$work/front.url"
front_url="$(head -1 "$work/front.url")"
front_host="${front_url#http://}"

# 3. A throw-away docker client configuration, so the demo never reads your credentials.
export DOCKER_CONFIG="$work/docker" XDG_CACHE_HOME="$work/cache"
mkdir -p "$DOCKER_CONFIG" "$XDG_CACHE_HOME"
# Logged in as the front's demo user (scripts/demo_images.py), as a cgr.dev user would be:
# a logged-in user reads every tag, and unknown tags get "did you mean" hints.
printf '{"auths": {"%s": {"auth": "%s"}}}\n' "$front_host" "$(printf demo:demo | base64)" \
    >"$DOCKER_CONFIG/config.json"

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

if [[ "$keep" == 0 ]]; then
    exit 0
fi

# 4. --keep: `docker cghistory` in the demo's docker configuration, a project to pin, the
# environment in a file to source, and a stop script.
if command -v docker >/dev/null; then
    "${cghistory[@]}" install --dir "$DOCKER_CONFIG/cli-plugins" >"$work/install.log" 2>&1 \
        || { echo "demo: installing the plugin failed:" >&2; cat "$work/install.log" >&2; exit 1; }
fi
mkdir -p "$work/project"
printf 'FROM %s/chainguard/python:latest\nRUN echo hello\n' "$front_host" >"$work/project/Dockerfile"
printf 'services:\n  app:\n    image: %s/chainguard/busybox\n' "$front_host" >"$work/project/compose.yaml"
# CGHISTORY_REGISTRY makes short names (python, busybox) mean the demo's registry, as they
# mean cgr.dev otherwise; the engine pulls from a loopback registry over plain HTTP by default.
cat >"$work/env.sh" <<ENV
export DOCKER_CONFIG='$DOCKER_CONFIG' XDG_CACHE_HOME='$XDG_CACHE_HOME' CGHISTORY_REGISTRY='$front_host'
ENV
cat >"$work/stop.sh" <<STOP
#!/bin/sh
kill ${pids[*]} 2>/dev/null
rm -rf '$work'
echo 'demo registry stopped'
STOP
chmod +x "$work/stop.sh"
kept=1

cat <<EOF

The demo registry keeps running (--keep): registry pid ${pids[0]}, front pid ${pids[1]}, at $front_host.
To use it from a shell (your own docker config and cache stay untouched):

  . $work/env.sh

which sets:

  DOCKER_CONFIG=$DOCKER_CONFIG
  XDG_CACHE_HOME=$XDG_CACHE_HOME
  CGHISTORY_REGISTRY=$front_host    (short names: python = $front_host/chainguard/python:latest)

Then every README example runs as written; the engine pulls over loopback, so it must run on
this machine (DOCKER_HOST or the default socket):

  docker cghistory python:latest
  docker cghistory python:latest -n 2 --format json
  docker cghistory pull python --previous --retag
  docker cghistory busybox
  (cd $work/project && docker cghistory pin && docker cghistory pin --check && echo pinned)
  docker cghistory bisect busybox --good 7 -- docker run --rm --network none {} /app/selftest
  docker cghistory node --platforms
  docker cghistory node --platform linux/amd64
  docker cghistory diff node

Without the docker CLI, use ${cghistory[*]} in place of "docker cghistory".
Stop it and remove its files with:

  $work/stop.sh      (that is: kill ${pids[*]}; rm -rf $work)
EOF
