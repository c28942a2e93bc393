#!/usr/bin/env python3
"""Speed of ``pin`` on a repository tree, as a ratio against pinning a single reference.

Measured in one run, on this machine, against the project's registry front made to behave
like an HTTPS registry 50 ms away (50 ms added to every request, 100 ms more on the first
request of each new connection, for the TCP and TLS handshakes). The front serves 20
repositories, each a tag with 50 builds (the newest an hour old):

- many: ``docker-cghistory --registry HOST pin DIR`` on 200 files (Dockerfiles and compose
  files, each naming 4 to 6 of the 20 references in various spellings), a fresh copy of the
  tree and an empty cache every round;
- one: the same command on a tree holding a single Dockerfile with a single reference, empty
  cache: what resolving ONE reference costs.

Each distinct reference is resolved once, concurrently, so the tree should cost little more
than one reference: the target is ``many <= 3 x one``.

Usage: python3 scripts/bench_pin.py [--rounds N] [--files N] [--repos N] [--builds N] [--debug]
(--debug prints the ``--debug`` log of one extra many-files run: where the time goes.)
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


def console() -> list[str]:
    """The ``docker-cghistory`` console script of this Python, else ``python -m``."""
    script = Path(sys.executable).parent / "docker-cghistory"
    if script.exists():
        return [str(script)]
    found = shutil.which("docker-cghistory")
    return [found] if found else [sys.executable, "-m", "docker_cghistory"]


def timed(command: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    result = subprocess.run(command, env=env, capture_output=True, check=False)
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"benchmark command failed: {command}\n{result.stderr.decode()}")
    return elapsed


def write_tree(root: Path, host: str, repos: list[str], files: int) -> dict[str, list[str]]:
    """``files`` files naming the repos' ``latest`` tags; returns path -> repos it names."""
    named: dict[str, list[str]] = {}
    count = len(repos)
    for n in range(files):
        per_file = 4 + n % 3
        chosen = [repos[(n * 7 + k * 3) % count] for k in range(per_file)]
        # Several spellings of one tag: with and without ":latest", quoted or not.
        spelled = [f"{host}/{repo}" + (":latest" if k % 2 else "") for k, repo in
                   enumerate(chosen)]
        folder = root / f"service-{n % 25:02d}" / f"part-{n:03d}"
        folder.mkdir(parents=True)
        if n % 2:
            lines = [f"FROM {ref} AS stage{k}\nRUN echo {k}\n" for k, ref in enumerate(spelled)]
            (folder / "Dockerfile").write_text("# syntax=docker/dockerfile:1\n" + "".join(lines))
            named[str(folder / "Dockerfile")] = chosen
        else:
            quoted = [f'"{ref}"' if k % 3 == 0 else ref for k, ref in enumerate(spelled)]
            services = [f"  svc{k}:\n    image: {ref}\n" for k, ref in enumerate(quoted)]
            (folder / "compose.yaml").write_text("services:\n" + "".join(services))
            named[str(folder / "compose.yaml")] = chosen
    return named


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--files", type=int, default=200)
    parser.add_argument("--repos", type=int, default=20)
    parser.add_argument("--builds", type=int, default=50)
    parser.add_argument("--debug", action="store_true",
                        help="print the --debug log of one extra many-files run")
    options = parser.parse_args()

    end = datetime.now(timezone.utc) - timedelta(hours=1)
    step = timedelta(hours=12)
    repos = [f"chainguard/image{i:02d}" for i in range(options.repos)]
    histories = {repo: make_history(options.builds, end - step * (options.builds - 1), step,
                                    seed=repo, fractional="mixed") for repo in repos}
    front = Front(None, {"repos": {
        repo: {"public": True, "history": {"latest": histories[repo]}} for repo in repos}})
    front.start()
    front.set_latency(per_request_s=0.050, per_connection_s=0.100)
    work = Path(tempfile.mkdtemp(prefix="cghistory-bench-pin-"))
    try:
        env = dict(os.environ, DOCKER_CONFIG=str(work / "docker"), HOME=str(work))
        for name in ("DOCKER_HOST", "CGHISTORY_REGISTRY", "CGHISTORY_ORG"):
            env.pop(name, None)
        template = work / "template"
        named = write_tree(template, front.host, repos, options.files)
        single = work / "single-template"
        single.mkdir()
        (single / "Dockerfile").write_text(f"FROM {front.host}/{repos[0]}:latest\n")
        references = sum(len(chosen) for chosen in named.values())
        distinct = len({repo for chosen in named.values() for repo in chosen})
        base = [*console(), "--registry", front.host, "pin"]

        def fresh(kind: str, source: Path, number: int) -> tuple[list[str], dict[str, str]]:
            tree = work / f"{kind}-{number}"
            shutil.copytree(source, tree)
            cache = work / f"cache-{kind}-{number}"
            return [*base, str(tree)], dict(env, XDG_CACHE_HOME=str(cache))

        # Check correctness once before timing anything: every reference pinned to the newest.
        command, run_env = fresh("check", template, 0)
        front.reset_log()
        timed(command, run_env)
        history_requests = sum(1 for r in front.requests if "/_chainguard/history/" in r.path)
        tree = Path(command[-1])
        for path, chosen in named.items():
            text = (tree / Path(path).relative_to(template)).read_text()
            for repo in set(chosen):
                assert f"{repo}:latest@{histories[repo][-1][1]}" in text, (path, repo)
            assert text.count("@sha256:") == len(chosen), path

        samples: dict[str, list[float]] = {"one": [], "many": []}
        for number in range(1, options.rounds + 1):
            samples["one"].append(timed(*fresh("one", single, number)))
            samples["many"].append(timed(*fresh("many", template, number)))
        debug_log = ""
        if options.debug:
            command, run_env = fresh("debug", template, 0)
            started = time.perf_counter()
            result = subprocess.run([command[0], "--debug", *command[1:]], env=run_env,
                                    capture_output=True, text=True, check=False)
            debug_log = (f"--debug run: {(time.perf_counter() - started) * 1000:.0f} ms\n"
                         + result.stderr)
    finally:
        front.stop()
        shutil.rmtree(work, ignore_errors=True)

    median = {name: statistics.median(values) * 1000 for name, values in samples.items()}
    spread = {name: (min(values) * 1000, max(values) * 1000) for name, values in samples.items()}
    ratio = median["many"] / median["one"]
    print(f"pin, 50 ms per request + 100 ms per new connection, {options.repos} repos x "
          f"{options.builds} builds, cold cache, median of {options.rounds} rounds")
    print(f"  one file, one reference:              {median['one']:7.1f} ms   "
          f"(min {spread['one'][0]:.0f}, max {spread['one'][1]:.0f})")
    print(f"  {options.files} files, {references} references, {distinct} distinct: "
          f"{median['many']:7.1f} ms   (min {spread['many'][0]:.0f}, "
          f"max {spread['many'][1]:.0f})")
    print(f"  ratio {ratio:.2f}x (target <= 3x): {'met' if ratio <= 3 else 'MISSED'}; "
          f"history requests for the tree: {history_requests}")
    if debug_log:
        print(debug_log)


if __name__ == "__main__":
    main()
