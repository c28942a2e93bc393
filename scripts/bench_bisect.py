#!/usr/bin/env python3
"""Runs of ``bisect --platform`` against ``bisect`` over the same builds, counted in one run.

16 nightly multi-platform builds (tests/support/images/grouped.py) whose linux/amd64 image
takes only 5 distinct values (runs of 4, 3, 3, 3, 3 builds sharing one manifest; arm64
changes every night, so every index digest is new), in the real registry behind the project's
front (50 ms added to every request, 100 ms more per new connection), pulled and run by a
private dockerd (root only). For every place the first bad amd64 image can be (image 1 to 4),
``bisect --good 15`` runs a test command that records each call, then runs the image it is
given (``docker run --rm {} cat /build``) and judges its marker; once with
``--platform linux/amd64`` and once without. Target: at most ceil(log2 5) + 2 = 5 runs with
``--platform``; the count without it is shown for comparison (its bound is
ceil(log2 16) + 2 = 6). Both must name the same first bad build.

Usage: sudo python3 scripts/bench_bisect.py
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support.front import Front  # noqa: E402
from tests.support.images import repo_configs  # noqa: E402
from tests.support.images.grouped import amd64_groups, push_grouped_series  # noqa: E402
from tests.support.services import start_dockerd, start_registry  # noqa: E402

PLATFORM = "linux/amd64"


def test_command(count: Path, bad: list[int]) -> list[str]:
    """Records the call, runs the image, and is bad when its amd64 image number is in
    ``bad`` (the marker reads ``fixtures/grouped:latest image N amd64``)."""
    pattern = "|".join(f'*" image {n} "*' for n in bad)
    script = (f'echo "$1" >> {count}; m=$(docker run --rm --network none "$1" cat /build) '
              f'|| exit 125; case "$m" in {pattern}) exit 1;; esac; exit 0')
    return ["sh", "-c", script, "sh", "{}"]


def bisect(launcher: str, tag: str, env: dict[str, str], work: Path, name: str,
           bad: list[int], platform: bool) -> tuple[dict[str, object], int, float]:
    """One bisect: its json result, the command's calls counted, the wall time."""
    count = work / f"{name}.count"
    count.write_text("")
    extra = ["--platform", PLATFORM] if platform else []
    started = time.perf_counter()
    done = subprocess.run([launcher, "cghistory", "bisect", tag, "--good", "15", *extra,
                           "--format", "json", "--", *test_command(count, bad)],
                          env=dict(env, XDG_CACHE_HOME=str(work / f"{name}.cache")),
                          capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"bisect failed ({name}):\n{done.stderr}")
    runs = len(count.read_text().split())
    document = json.loads(done.stdout)
    if runs != document["Tested"] + document["Skipped"] or runs != len(
            [r for r in document["Runs"] if r["ExitCode"] is not None]):
        raise SystemExit(f"{name}: {runs} calls counted, the result says otherwise")
    return document, runs, elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="cghistory-bench-bisect-"))
    registry = start_registry(work / "registry")
    dockerd = None
    front: Front | None = None
    rows = []
    try:
        series = push_grouped_series(registry)
        groups = amd64_groups(series)
        front = Front(registry.url, {"service": "cghistory-front",
                                     "repos": repo_configs([series])}).start()
        front.set_latency(per_request_s=0.050, per_connection_s=0.100)
        dockerd = start_dockerd(work / "dockerd")
        env = dict(os.environ, DOCKER_CONFIG=str(work / "docker"), HOME=str(work),
                   DOCKER_HOST=f"unix://{dockerd.socket_path}")
        subprocess.run([sys.executable, "-m", "docker_cghistory", "install"], env=env,
                       check=True, stdout=subprocess.DEVNULL)
        launcher = str(work / "docker" / "cli-plugins" / "docker-cghistory")
        tag = f"{front.host}/{series.repo}:{series.tag}"
        for first_bad in range(1, len(set(groups))):
            bad = list(range(first_bad, len(set(groups))))
            expected = series.builds[groups.index(first_bad)].digest
            results = {}
            for platform in (True, False):
                name = f"image{first_bad}-{'platform' if platform else 'plain'}"
                document, runs, elapsed = bisect(launcher, tag, env, work, name, bad,
                                                 platform)
                first = document["FirstBad"]
                if not isinstance(first, dict) or first["Digest"] != expected:
                    raise SystemExit(f"{name}: wrong first bad build {first}")
                results[platform] = (runs, elapsed, len(document.get("SameImage") or []))
            rows.append((first_bad, groups.index(first_bad), results))
    finally:
        if front is not None:
            front.stop()
        if dockerd is not None:
            dockerd.stop()
        registry.stop()
        shutil.rmtree(work, ignore_errors=True)

    distinct = len(set(groups))
    bound = math.ceil(math.log2(distinct)) + 2
    print(f"bisect over {len(groups)} builds, {distinct} distinct {PLATFORM} images "
          f"(runs of {', '.join(str(groups.count(g)) for g in range(distinct))} builds), "
          "first bad image 1..4; runs = test command calls")
    print(f"  {'first bad':<22}{'--platform':>12}{'':>4}{'without':>10}{'':>4}"
          f"{'same image':>11}")
    for first_bad, position, results in rows:
        (p_runs, p_time, same), (n_runs, n_time, _) = results[True], results[False]
        print(f"  image {first_bad} (build #{len(groups) - 1 - position:<2})     "
              f"{p_runs:>6} runs {p_time:5.1f}s {n_runs:>4} runs {n_time:5.1f}s"
              f"{same:>6} builds")
    worst_platform = max(r[2][True][0] for r in rows)
    worst_plain = max(r[2][False][0] for r in rows)
    total_platform = sum(r[2][True][0] for r in rows)
    total_plain = sum(r[2][False][0] for r in rows)
    print(f"  most runs: {worst_platform} with --platform (target <= {bound}), "
          f"{worst_plain} without (bound {math.ceil(math.log2(len(groups))) + 2}); "
          f"all four: {total_platform} vs {total_plain} runs")
    if worst_platform > bound:
        raise SystemExit(f"--platform took {worst_platform} runs, more than {bound}")


if __name__ == "__main__":
    main()
