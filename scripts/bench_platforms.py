#!/usr/bin/env python3
"""Speed of ``list -n 30 --platform linux/amd64`` as a ratio against ``list -n 30``, measured in
one run against the project's front over a real registry, made to behave like an HTTPS registry
50 ms away (50 ms added to every request, 100 ms more on the first request of each new
connection, for the TCP and TLS handshakes).

The tag is a 40-build multi-platform series (tests/support/images/many.py: linux/amd64 and
linux/arm64 apk images, each with an SPDX SBOM through the referrers API; amd64 unchanged on
every third build). First run = empty cache (a new XDG_CACHE_HOME each round): the listing
reads each build's index, and the child manifest it names for the platform, in parallel.
Cached = the cache of an earlier identical run (token, window plan, indexes and manifests by
digest). Targets (issue 14): first run at most 2x, cached at most 1.2x, each against the
plain listing in the same state.

Usage: python3 scripts/bench_platforms.py [--rounds N] [--builds N]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from bench_list import timed  # noqa: E402

from tests.support.front import Front  # noqa: E402
from tests.support.images import Series, repo_configs  # noqa: E402
from tests.support.images.many import push_many_series  # noqa: E402
from tests.support.services import start_registry  # noqa: E402


@dataclass
class Bench:
    """A front over a registry holding the many-builds series, and the installed plugin."""

    work: Path
    front: Front
    series: Series
    env: dict[str, str]
    launcher: str

    @property
    def tag(self) -> str:
        return f"{self.front.host}/{self.series.repo}:{self.series.tag}"

    def command(self, *args: str) -> list[str]:
        return [self.launcher, "cghistory", self.tag, *args]

    def cache(self, name: str) -> dict[str, str]:
        return dict(self.env, XDG_CACHE_HOME=str(self.work / "cache" / name))

    def output(self, command: list[str], cache: str) -> str:
        return subprocess.run(command, env=self.cache(cache), capture_output=True, text=True,
                              check=True).stdout


@contextmanager
def bench(builds: int) -> Iterator[Bench]:
    work = Path(tempfile.mkdtemp(prefix="cghistory-bench-platforms-"))
    registry = start_registry(work / "registry")
    front: Front | None = None
    try:
        series = push_many_series(registry, count=builds)
        front = Front(registry.url, {"service": "cghistory-front",
                                     "repos": repo_configs([series])}).start()
        env = dict(os.environ, DOCKER_CONFIG=str(work / "docker"), HOME=str(work))
        env.pop("DOCKER_HOST", None)
        subprocess.run([sys.executable, "-m", "docker_cghistory", "install"], env=env,
                       check=True, stdout=subprocess.DEVNULL)
        launcher = str(work / "docker" / "cli-plugins" / "docker-cghistory")
        yield Bench(work, front, series, env, launcher)
    finally:
        if front is not None:
            front.stop()
        registry.stop()
        shutil.rmtree(work, ignore_errors=True)


def measure(b: Bench, commands: dict[str, list[str]], rounds: int) -> dict[str, dict[str, float]]:
    """Median ms of each command, first run (empty cache) and cached, interleaved per round
    so that the machine's load hits every command alike."""
    b.front.set_latency(per_request_s=0.050, per_connection_s=0.100)
    samples: dict[str, dict[str, list[float]]] = {
        name: {"first": [], "cached": []} for name in commands}
    for name, command in commands.items():
        timed(command, b.cache(f"{name}-warm"))  # fills the cached state
    for number in range(rounds):
        for name, command in commands.items():
            samples[name]["first"].append(timed(command, b.cache(f"{name}-{number}")))
            samples[name]["cached"].append(timed(command, b.cache(f"{name}-warm")))
    b.front.set_latency()
    return {name: {state: statistics.median(values) * 1000 for state, values in kinds.items()}
            for name, kinds in samples.items()}


def report(title: str, medians: dict[str, dict[str, float]], baseline: str,
           targets: dict[str, tuple[float, float]], print_: Callable[[str], None] = print
           ) -> None:
    print_(title)
    base = medians[baseline]
    for name, values in medians.items():
        line = f"  {name:40} first {values['first']:7.1f} ms   cached {values['cached']:7.1f} ms"
        if name in targets:
            first, cached = values["first"] / base["first"], values["cached"] / base["cached"]
            line += (f"   ratio first {first:.2f}x (target <= {targets[name][0]}x), "
                     f"cached {cached:.2f}x (target <= {targets[name][1]}x)")
        print_(line)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--builds", type=int, default=40)
    options = parser.parse_args()
    with bench(options.builds) as b:
        plain = b.command("-n", "30")
        platform = b.command("-n", "30", "--platform", "linux/amd64")
        # Correct before timed: every row's amd64 digest is the one pushed.
        rows = [json.loads(line) for line in
                b.output([*platform, "--format", "json"], "check").splitlines()]
        wanted = list(reversed(b.series.platform_digests("linux/amd64")))[:30]
        assert [row["PlatformDigest"] for row in rows] == wanted, "wrong platform digests"
        assert any(row["SameAs"] is not None for row in rows), "no SAME row"
        medians = measure(b, {"list -n 30": plain,
                              "list -n 30 --platform linux/amd64": platform}, options.rounds)
    report(f"{options.builds}-build multi-platform tag, 50 ms per request + 100 ms per new "
           f"connection, median of {options.rounds} rounds", medians, "list -n 30",
           {"list -n 30 --platform linux/amd64": (2, 1.2)})


if __name__ == "__main__":
    main()
