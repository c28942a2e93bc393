#!/usr/bin/env bash
# The one way to run the checks, for developers and CI alike: CI starts from a fresh Debian
# machine as root, so this installs what the integration tests run for real (dockerd,
# docker-registry, busybox, the shells completion is tested in) before linting and testing.
# Usage: scripts/test.sh [pytest args...]
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
if [[ -n "${CI:-}" ]]; then
    export CI
fi
PYTHON="${PYTHON:-python3}"
PACKAGES=(docker.io docker-registry busybox-static zsh fish tmux bash-completion)

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
if [[ "${CI:-}" == "true" ]]; then
    # A throw-away CI machine's Debian python refuses pip (PEP 668) without this.
    export PIP_BREAK_SYSTEM_PACKAGES=1
fi
"$PYTHON" -m pip install -q -e '.[test]'

"$PYTHON" -m ruff check docker_cghistory tests scripts
"$PYTHON" -m pytest "$@"
