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

Then ``--platform`` (issue 14), against a second front over a real registry holding, for each
of the 20 repositories, three real multi-platform builds (OCI indexes of linux/amd64 and
linux/arm64 images; build 2 changes only arm64 in every other repository). The same 200-file
tree, every reference pinned (``NAME:latest@DIGEST``), a fresh copy and an empty cache every
round:

- update: ``pin --update DIR`` (every pin moves to the newest build);
- platform: ``pin --update --platform linux/amd64 DIR``: reads each pinned and each newest
  build's index as well, and moves only the pins whose amd64 image changed.

Two trees: pinned to build 1 (half the repositories changed nothing for amd64: their pins
stay) and pinned to build 0 (amd64 changed everywhere: every pin moves, the same writes as
without ``--platform``). The target is ``platform <= 1.5 x update`` for each.

Usage: python3 scripts/bench_pin.py [--rounds N] [--files N] [--repos N] [--builds N] [--debug]
       [--skip-platform]
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

from tests.support.front import Front, history_from_digests, make_history  # noqa: E402


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


def write_tree(root: Path, host: str, repos: list[str], files: int,
               pinned: dict[str, str] | None = None) -> dict[str, list[str]]:
    """``files`` files naming the repos' ``latest`` tags (``pinned``: each at that digest);
    returns path -> repos it names."""
    named: dict[str, list[str]] = {}
    count = len(repos)
    for n in range(files):
        per_file = 4 + n % 3
        chosen = [repos[(n * 7 + k * 3) % count] for k in range(per_file)]
        # Several spellings of one tag: with and without ":latest", quoted or not.
        spelled = [f"{host}/{repo}" + (":latest" if k % 2 else "") for k, repo in
                   enumerate(chosen)]
        if pinned is not None:  # a digest pin names its tag, or --update cannot move it
            spelled = [f"{host}/{repo}:latest@{pinned[repo]}" for repo in chosen]
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
    parser.add_argument("--skip-platform", action="store_true",
                        help="measure only the tree against one reference")
    options = parser.parse_args()
    if not options.skip_platform:
        platform_bench(options)

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


# --------------------------------------------------------------------------- --platform
PLATFORM = "linux/amd64"


def push_platform_builds(registry: object, repo: str, arm_only: bool) -> list[str]:
    """Three real multi-platform builds of ``repo:latest``, oldest first: each an OCI index of
    a linux/amd64 and a linux/arm64 image (one small layer each). Build 1 changes both; build 2
    changes arm64, and amd64 too unless ``arm_only`` (then its amd64 entry is build 1's)."""
    from tests.support.images.formats import Entry, make_layer
    from tests.support.images.oci import Pusher
    from tests.support.images.series import image_config, platform_of

    pusher = Pusher(registry, repo)  # type: ignore[arg-type]
    digests: list[str] = []
    previous_amd: dict[str, object] | None = None
    for number in range(3):
        entries = []
        for arch in ("amd64", "arm64"):
            if arch == "amd64" and number == 2 and arm_only and previous_amd is not None:
                entries.append(previous_amd)
                continue
            marker = f"{repo} build {number} {arch}\n".encode()
            layer = make_layer([Entry("build", marker)])
            created = f"2024-06-0{number + 1}T00:00:00Z"
            digest, body = pusher.image(image_config(arch, {"Cmd": ["/bin/sh"]}, created),
                                        [layer])
            entry = {"mediaType": "application/vnd.oci.image.manifest.v1+json",
                     "digest": digest, "size": len(body), "platform": platform_of(arch)}
            entries.append(entry)
            if arch == "amd64":
                previous_amd = entry
        digests.append(pusher.index(entries, tag="latest" if number == 2 else None))
    return digests


def platform_bench(options: argparse.Namespace) -> None:
    from tests.support.services import start_registry

    work = Path(tempfile.mkdtemp(prefix="cghistory-bench-pin-platform-"))
    registry = start_registry(work / "registry")
    front: Front | None = None
    repos = [f"chainguard/image{i:02d}" for i in range(options.repos)]
    samples: dict[str, list[float]] = {}
    try:
        builds = {repo: push_platform_builds(registry, repo, arm_only=i % 2 == 1)
                  for i, repo in enumerate(repos)}
        front = Front(registry.url, {"repos": {
            repo: {"public": True, "public_tags": ["latest"],
                   "history": {"latest": history_from_digests(builds[repo])}}
            for repo in repos}}).start()
        front.set_latency(per_request_s=0.050, per_connection_s=0.100)
        env = dict(os.environ, DOCKER_CONFIG=str(work / "docker"), HOME=str(work))
        for name in ("DOCKER_HOST", "CGHISTORY_REGISTRY", "CGHISTORY_ORG",
                     "CGHISTORY_PLATFORMS"):
            env.pop(name, None)
        templates = {}
        for at in (1, 0):
            template = work / f"pinned-to-{at}"
            named = write_tree(template, front.host, repos, options.files,
                               {repo: digests[at] for repo, digests in builds.items()})
            templates[at] = (template, named)
        base = [*console(), "--registry", front.host, "pin", "--update"]

        def fresh(kind: str, at: int, number: int,
                  extra: tuple[str, ...] = ()) -> tuple[list[str], dict[str, str]]:
            tree = work / f"{kind}-{at}-{number}"
            shutil.copytree(templates[at][0], tree)
            cache = work / f"cache-{kind}-{at}-{number}"
            return [*base, *extra, str(tree)], dict(env, XDG_CACHE_HOME=str(cache))

        # Correctness first: with --platform, a pin moves exactly where amd64 changed.
        for at in (1, 0):
            command, run_env = fresh("check", at, 0, ("--platform", PLATFORM))
            timed(command, run_env)
            template, named = templates[at]
            tree = Path(command[-1])
            for path, chosen in named.items():
                text = (tree / Path(path).relative_to(template)).read_text()
                for repo in set(chosen):
                    moved = at == 0 or repos.index(repo) % 2 == 0
                    want = builds[repo][2] if moved else builds[repo][at]
                    assert f"{repo}:latest@{want}" in text, (path, repo, at)
        for number in range(1, options.rounds + 1):
            for at in (1, 0):
                samples.setdefault(f"update-{at}", []).append(
                    timed(*fresh("update", at, number)))
                samples.setdefault(f"platform-{at}", []).append(
                    timed(*fresh("platform", at, number, ("--platform", PLATFORM))))
    finally:
        if front is not None:
            front.stop()
        registry.stop()
        shutil.rmtree(work, ignore_errors=True)

    median = {name: statistics.median(values) * 1000 for name, values in samples.items()}
    print(f"pin --update --platform {PLATFORM}, 50 ms per request + 100 ms per new connection, "
          f"{options.files} files, {options.repos} distinct tags of real multi-platform "
          f"builds, cold cache, median of {options.rounds} rounds")
    for at, what in ((1, "pinned to build 1 (half the pins stay)"),
                     (0, "pinned to build 0 (every pin moves)")):
        plain, platform = median[f"update-{at}"], median[f"platform-{at}"]
        ratio = platform / plain
        print(f"  {what}: --update {plain:7.1f} ms, --update --platform {platform:7.1f} ms; "
              f"ratio {ratio:.2f}x (target <= 1.5x): {'met' if ratio <= 1.5 else 'MISSED'}")


if __name__ == "__main__":
    main()
