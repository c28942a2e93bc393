#!/usr/bin/env python3
"""Speed of the listing and of the plugin metadata answer, as ratios against baselines.

Measured in one run, on this machine, against the project's registry front made to behave
like an HTTPS registry 50 ms away (50 ms added to every request, 100 ms more on the first
request of each new connection, for the TCP and TLS handshakes):

- listing a 2500-build tag with ``docker-cghistory`` against the documentation's own
  curl + jq recipe (a token request, then one history request, each curl on a new connection;
  it returns only the oldest 1000 builds). Cold = empty cache (first run ever), warm = the
  token and the window plan of the previous run are cached;
- the plugin's ``docker-cli-plugin-metadata`` answer (asked by the docker CLI before every
  invocation) through the installed launcher against bare ``python3 -c pass``.

Usage: python3 scripts/bench_list.py [--rounds N] [--builds N]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support.front import Front, make_history  # noqa: E402

REPO = "chainguard/python"


def timed(command: list[str] | str, env: dict[str, str], shell: bool = False) -> float:
    started = time.perf_counter()
    result = subprocess.run(command, env=env, shell=shell, capture_output=True,
                            check=False)
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"benchmark command failed: {command}\n{result.stderr.decode()}")
    return elapsed


def recipe(url: str) -> str:
    """The documentation's curl + jq recipe, pointed at the front."""
    return (
        f'tok=$(curl -s "{url}/token?scope=repository:{REPO}:pull" | jq -r .token); '
        f'curl -s -H "Authorization: Bearer $tok" '
        f'{url}/v2/{REPO}/_chainguard/history/latest | jq . > /dev/null'
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--builds", type=int, default=2500)
    options = parser.parse_args()

    end = datetime.now(timezone.utc) - timedelta(hours=1)
    history = make_history(options.builds, end - timedelta(hours=9) * (options.builds - 1),
                           step=timedelta(hours=9), fractional="mixed")
    front = Front(None, {"repos": {REPO: {"public": True, "history": {"latest": history}}}})
    front.start()
    front.set_latency(per_request_s=0.050, per_connection_s=0.100)
    work = Path(tempfile.mkdtemp(prefix="cghistory-bench-"))
    try:
        env = dict(os.environ, DOCKER_CONFIG=str(work / "docker"), HOME=str(work))
        env.pop("DOCKER_HOST", None)
        subprocess.run([sys.executable, "-m", "docker_cghistory", "install"], env=env,
                       check=True, stdout=subprocess.DEVNULL)
        launcher = str(work / "docker" / "cli-plugins" / "docker-cghistory")
        ours = [launcher, "cghistory", "--registry", front.host, "python:latest"]

        # Check correctness once before timing anything.
        check = subprocess.run([*ours, "-q"], env=dict(env, XDG_CACHE_HOME=str(work / "c0")),
                               capture_output=True, text=True, check=True)
        listed = check.stdout.split()
        assert listed == [digest for _, digest in reversed(history)], "listing is wrong"

        samples: dict[str, list[float]] = {"recipe": [], "cold": [], "warm": [],
                                           "python": [], "metadata": []}
        warm_env = dict(env, XDG_CACHE_HOME=str(work / "warm"))
        timed(ours, warm_env)  # fills the warm cache
        for round_number in range(options.rounds):
            samples["recipe"].append(timed(recipe(front.url), env, shell=True))
            cold_env = dict(env, XDG_CACHE_HOME=str(work / f"cold{round_number}"))
            samples["cold"].append(timed(ours, cold_env))
            samples["warm"].append(timed(ours, warm_env))
        for _ in range(options.rounds * 4):
            samples["python"].append(timed([sys.executable, "-c", "pass"], env))
            samples["metadata"].append(timed([launcher, "docker-cli-plugin-metadata"], env))
    finally:
        front.stop()
        shutil.rmtree(work, ignore_errors=True)

    median = {name: statistics.median(values) * 1000 for name, values in samples.items()}
    print(f"listing {options.builds} builds, 50 ms per request + 100 ms per new connection, "
          f"median of {options.rounds} rounds")
    print(f"  curl + jq recipe (oldest 1000 only): {median['recipe']:7.1f} ms")
    print(f"  docker-cghistory, cold cache:        {median['cold']:7.1f} ms   "
          f"ratio {median['cold'] / median['recipe']:.2f}x (target <= 1.5x)")
    print(f"  docker-cghistory, warm cache:        {median['warm']:7.1f} ms   "
          f"ratio {median['warm'] / median['recipe']:.2f}x")
    print(f"plugin metadata, median of {options.rounds * 4} runs")
    print(f"  python3 -c pass:                     {median['python']:7.1f} ms")
    print(f"  launcher docker-cli-plugin-metadata: {median['metadata']:7.1f} ms   "
          f"ratio {median['metadata'] / median['python']:.2f}x (target <= 0.3x)")


if __name__ == "__main__":
    main()
