#!/usr/bin/env python3
"""Speed of a cached TAB, as a ratio against starting a bare Python.

Every TAB on ``docker cghistory`` starts the plugin, so the number that matters is how much a
completion answered from the cache costs on top of the interpreter itself. Measured in one
run, interleaved (so load on the machine hits every variant alike), median of ``--runs``:

- ``baseline``: ``python -c pass`` with this interpreter (the real binary, not a shim);
- ``launcher``: the plugin as docker runs it, the launcher ``docker-cghistory install``
  writes, asked ``__complete cghistory pull python --digest ''`` (300 cached builds);
- ``module``: the same through ``python -m docker_cghistory``;
- ``tags``: ``__complete cghistory python:`` (cached tags) through the launcher;
- ``proposal``: a launcher that runs ``python -c`` instead of ``python -m`` (skips runpy).

The cache is seeded in a private folder, so nothing here touches a registry, the engine or
the user's own cache; a cache miss would show up as a ~1 s outlier and a failed check. The
script also checks which modules a cached answer imports (none of requests, docker, argparse,
json, hashlib).

Usage: python3 scripts/bench_complete.py [--runs N] [--target RATIO]
"""

from __future__ import annotations

import argparse
import os
import resource
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

FORBIDDEN = ("requests", "docker", "argparse", "json", "hashlib", "urllib3", "argcomplete")
# The way __main__ routes a TAB: through the package's lazy export.
IMPORT_CHECK = """
import io, sys
before = set(sys.modules)
from docker_cghistory.__main__ import main
out = io.StringIO()
from docker_cghistory.complete import cobra_complete
cobra_complete(sys.argv[1:], stream=out, silence=False)
print(" ".join(sorted(set(sys.modules) - before)))
"""


def seed(env: dict[str, str]) -> None:
    """300 builds and 40 tags of cgr.dev/chainguard/python, fresh, in the private cache."""
    saved = dict(os.environ)
    os.environ.update(env)
    try:
        from docker_cghistory.complete import store

        now = int(time.time())
        builds = [f"{now - 3600 * 24 * i} sha256:{i:064x}" for i in range(300)]
        store.write_entry("builds", "cgr.dev/chainguard/python:latest", builds)
        store.write_entry("tags", "cgr.dev/chainguard/python",
                          ["latest", "latest-dev", *(f"3.{i}" for i in range(38))])
        store.write_entry("lists", "local", [])
    finally:
        os.environ.clear()
        os.environ.update(saved)


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_once(command: list[str], env: dict[str, str]) -> tuple[float, float, bytes]:
    """Wall time, CPU time (user + system, less sensitive to a busy machine) and stdout."""
    cpu = _cpu()
    started = time.perf_counter()
    result = subprocess.run(command, env=env, capture_output=True, check=False)
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"failed ({result.returncode}): {shlex.join(command)}\n"
                         f"{result.stderr.decode(errors='replace')}")
    return elapsed, _cpu() - cpu, result.stdout


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30, help="runs of each variant (>= 20)")
    parser.add_argument("--target", type=float, default=1.5, help="ratio to stay under")
    options = parser.parse_args()
    runs = max(options.runs, 20)
    python = os.path.realpath(sys.executable)

    with tempfile.TemporaryDirectory(prefix="cgh-bench-") as folder:
        base = Path(folder)
        for name in ("docker", "home", "cache"):
            (base / name).mkdir()
        env = {key: value for key, value in os.environ.items()
               if not key.startswith(("DOCKER_", "CGHISTORY_", "_ARGCOMPLETE", "COMP_"))
               and key != "PYTHONDONTWRITEBYTECODE"}
        # Installed packages run from .pyc files (pip compiles them); without them every TAB
        # would compile the completion modules again. A private prefix keeps the checkout clean.
        env.update(DOCKER_CONFIG=str(base / "docker"), HOME=str(base / "home"),
                   XDG_CACHE_HOME=str(base / "cache"), CGHISTORY_NO_BACKGROUND="1",
                   PYTHONPYCACHEPREFIX=str(base / "pycache"))
        seed(env)
        plugins = base / "docker" / "cli-plugins"
        run_once([python, "-m", "docker_cghistory", "install", "--dir", str(plugins)], env)
        launcher = str(plugins / "docker-cghistory")
        proposal = base / "docker-cghistory-c"
        proposal.write_text(
            "#!/bin/sh\n"
            f"exec {shlex.quote(python)} -c 'import sys; from docker_cghistory.__main__ "
            "import main; sys.exit(main())' \"$@\"\n")
        proposal.chmod(0o755)

        digest_args = ["__complete", "cghistory", "pull", "python", "--digest", ""]
        variants = {
            "baseline": [python, "-c", "pass"],
            "launcher": [launcher, *digest_args],
            "module": [python, "-m", "docker_cghistory", *digest_args],
            "tags": [launcher, "__complete", "cghistory", "python:"],
            "proposal": [str(proposal), *digest_args],
        }
        # Correctness first: a cached answer, and no heavy import on the way.
        *_, answer = run_once(variants["launcher"], env)
        lines = answer.decode().splitlines()
        if len(lines) != 301 or lines[-1] != ":36" or not lines[0].startswith("sha256:"):
            raise SystemExit(f"unexpected answer from the cache: {lines[:3]} ... {lines[-1:]}")
        *_, imported = run_once([python, "-c", IMPORT_CHECK, *digest_args], env)
        heavy = [name for name in imported.decode().split()
                 if name.split(".")[0] in FORBIDDEN]
        if heavy:
            raise SystemExit(f"a cached completion imported {', '.join(heavy)}")

        for command in variants.values():  # warm the page cache and .pyc files
            run_once(command, env)
        wall: dict[str, list[float]] = {name: [] for name in variants}
        cpu: dict[str, list[float]] = {name: [] for name in variants}
        for round_ in range(runs):
            names = list(variants)
            shift = round_ % len(names)
            for name in names[shift:] + names[:shift]:
                elapsed, used, _ = run_once(variants[name], env)
                wall[name].append(elapsed)
                cpu[name].append(used)

    medians = {name: statistics.median(values) for name, values in wall.items()}
    cpu_medians = {name: statistics.median(values) for name, values in cpu.items()}
    baseline, cpu_baseline = medians["baseline"], cpu_medians["baseline"]
    print(f"python: {python} ({runs} runs each, interleaved; medians; load average "
          f"{os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs)")
    print(f"modules a cached answer imports: {imported.decode().strip()}")
    print(f"  {'variant':<9} {'wall':>9} {'ratio':>6} {'cpu':>9} {'ratio':>6}   command")
    for name, command in variants.items():
        shown = shlex.join(command).replace(str(base), "$TMP")
        print(f"  {name:<9} {medians[name] * 1000:6.1f} ms  x{medians[name] / baseline:4.2f}"
              f" {cpu_medians[name] * 1000:6.1f} ms  x{cpu_medians[name] / cpu_baseline:4.2f}"
              f"   {shown}")
    ratio = medians["launcher"] / baseline
    verdict = "ok" if ratio <= options.target else "OVER TARGET"
    print(f"cached completion through the plugin launcher: x{ratio:.2f} of bare python "
          f"(wall; CPU x{cpu_medians['launcher'] / cpu_baseline:.2f}; "
          f"target <= x{options.target}): {verdict}")
    return 0 if ratio <= options.target else 1


if __name__ == "__main__":
    sys.exit(main())
