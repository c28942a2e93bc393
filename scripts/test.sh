#!/usr/bin/env bash
# The one way to run the checks, for developers and CI alike: CI starts from a fresh Debian
# machine as root, so this installs what the integration tests run for real (dockerd,
# docker-registry, busybox, the shells completion is tested in, pipx and python3-venv for the
# README's quick start) before linting and testing. Python packages go into a virtual
# environment in the checkout (.venv, made with $PYTHON, default python3), never into the
# interpreter itself, so this works with Debian's externally managed python (PEP 668).
# Usage: scripts/test.sh [pytest args...]
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
if [[ -n "${CI:-}" ]]; then
    export CI
fi
PYTHON="${PYTHON:-python3}"
PACKAGES=(docker.io docker-registry busybox-static zsh fish tmux bash-completion pipx python3-venv ca-certificates)

missing=()
for pkg in "${PACKAGES[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed'; then
        missing+=("$pkg")
    fi
done
if ((${#missing[@]})); then
    if [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null; then
        echo "scripts/test.sh: installing ${missing[*]}" >&2
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    else
        echo "scripts/test.sh: missing packages: ${missing[*]} (run as root to install them)" >&2
        if [[ "${CI:-}" == "true" ]]; then
            exit 1
        fi
    fi
fi

export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore
VENV="$PWD/.venv"
# Reuse .venv while its interpreter runs and is a virtual environment; rebuild it otherwise
# (say, after the python it was made from went away).
if ! "$VENV/bin/python" -c 'import sys; sys.exit(sys.prefix == sys.base_prefix)' 2>/dev/null; then
    echo "scripts/test.sh: creating $VENV with $PYTHON" >&2
    "$PYTHON" -m venv --clear "$VENV"
fi
"$VENV/bin/pip" install -q -e '.[test]'

# Tests and the processes they start find the venv's python and docker-cghistory first.
export VIRTUAL_ENV="$VENV"
export PATH="$VENV/bin:$PATH"
"$VENV/bin/ruff" check docker_cghistory tests scripts
"$VENV/bin/python" -m pytest "$@"
