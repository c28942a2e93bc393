#!/usr/bin/env python3
"""Speed and memory of ``diff``, as ratios against a baseline measured in the same run.

Against the project's front over a real registry, made to behave like an HTTPS registry 50 ms
away (50 ms added to every request, 100 ms more on the first request of each new connection),
both with empty caches:

- ``diff`` of two attested builds (SBOMs by cosign's ``.att`` tag and by the referrers API,
  fixtures/python #5 and #4, linux/amd64) against ``list -q`` of the same tag
  (target: at most 2x);
- peak memory (``ru_maxrss`` of the plugin process) of the layer fallback on an image of more
  than 30 MB: two builds whose apk database lies in a lower layer under a 32 MB layer of
  random (incompressible) bytes, so the scan streams the whole big layer of each build, both
  builds at once (target: at most 100 MB).

Usage: python3 scripts/bench_diff.py [--rounds N] [--big-mb N]
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
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from bench_list import timed  # noqa: E402

from tests.support.front import Front, history_from_digests  # noqa: E402
from tests.support.images import push_build_series, repo_configs  # noqa: E402
from tests.support.images.formats import Entry, apk_installed, make_layer  # noqa: E402
from tests.support.images.oci import Pusher  # noqa: E402
from tests.support.images.series import image_config  # noqa: E402
from tests.support.services import start_registry  # noqa: E402

BIG_REPO = "bench/big"
_MEASURE = ("import resource, subprocess, sys\n"
            "done = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, "
            "stderr=subprocess.PIPE)\n"
            "sys.stderr.write(done.stderr.decode())\n"
            "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
            "sys.exit(done.returncode)\n")


def push_big(registry: object, megabytes: int) -> tuple[list[str], dict[str, str], int]:
    """Two plain linux/amd64 builds: apk database below, ``megabytes`` of random bytes above.

    Returns (digests oldest first, blob kinds, compressed size of the big layer)."""
    pusher = Pusher(registry, BIG_REPO)  # type: ignore[arg-type]
    big = make_layer([Entry("usr/share/bench/random.bin", os.urandom(megabytes * 1024 * 1024))])
    digests = []
    for number, openssl in enumerate(("3.3.0-r0", "3.3.1-r0")):
        database = make_layer([Entry("lib/apk/db/installed", apk_installed(
            {"busybox": "1.36.1-r6", "openssl": openssl, "zlib": "1.3.1-r0"}, "amd64"))])
        config = image_config("amd64", {"Env": [f"BUILD={number}"]},
                              f"2024-06-0{number + 1}T00:00:00Z")
        digest, _ = pusher.image(config, [database, big])
        digests.append(digest)
    pusher.manifest(_fetch(pusher, digests[-1]), "application/vnd.oci.image.manifest.v1+json",
                    tag="latest")
    return digests, dict(pusher.kinds), len(big.blob)


def _fetch(pusher: Pusher, digest: str) -> bytes:
    import urllib.request

    request = urllib.request.Request(
        f"{pusher.base}/manifests/{digest}",
        headers={"Accept": "application/vnd.oci.image.manifest.v1+json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return bytes(response.read())


def peak_rss_mb(command: list[str], env: dict[str, str]) -> float:
    """Peak resident memory of ``command`` (and anything it runs), in MiB."""
    done = subprocess.run([sys.executable, "-c", _MEASURE, *command], env=env,
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"benchmark command failed: {command}\n{done.stderr}")
    return int(done.stdout.split()[-1]) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--big-mb", type=int, default=32)
    options = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="cghistory-bench-diff-"))
    registry = start_registry(work / "registry")
    front: Front | None = None
    try:
        series = push_build_series(registry)
        big_digests, big_kinds, big_size = push_big(registry, options.big_mb)
        repos = repo_configs([series])
        repos[BIG_REPO] = {"public": True, "public_tags": ["latest"],
                           "history": {"latest": history_from_digests(big_digests)},
                           "blob_kinds": big_kinds}
        front = Front(registry.url, {"service": "cghistory-front", "repos": repos}).start()
        front.set_latency(per_request_s=0.050, per_connection_s=0.100)

        env = dict(os.environ, DOCKER_CONFIG=str(work / "docker"), HOME=str(work))
        env.pop("DOCKER_HOST", None)
        subprocess.run([sys.executable, "-m", "docker_cghistory", "install"], env=env,
                       check=True, stdout=subprocess.DEVNULL)
        launcher = str(work / "docker" / "cli-plugins" / "docker-cghistory")
        tag = f"{front.host}/{series.repo}:{series.tag}"
        diff = [launcher, "cghistory", "diff", tag, "5", "4", "--platform", "linux/amd64"]
        listing = [launcher, "cghistory", tag, "-q"]

        # Correctness first: the right packages, from the SBOMs, and no layer downloaded.
        front.reset_log()
        check = subprocess.run([*diff, "--format", "json"], capture_output=True, text=True,
                               check=True, env=dict(env, XDG_CACHE_HOME=str(work / "check")))
        document = json.loads(check.stdout)
        old, new = series.by_index(5), series.by_index(4)
        assert document["Packages"] == series.expected_diff(old, new,
                                                            "linux/amd64").packages
        assert document["Source"] == {"Old": "sbom", "New": "sbom"}
        assert not [d for d in front.blob_downloads(series.repo) if d.kind == "layer"]

        samples: dict[str, list[float]] = {"list": [], "diff": [], "diff-warm": []}
        warm = dict(env, XDG_CACHE_HOME=str(work / "warm"))
        timed(diff, warm)
        for number in range(options.rounds):
            samples["list"].append(timed(listing, dict(
                env, XDG_CACHE_HOME=str(work / f"list{number}"))))
            samples["diff"].append(timed(diff, dict(
                env, XDG_CACHE_HOME=str(work / f"diff{number}"))))
            samples["diff-warm"].append(timed(diff, warm))

        # Memory: the layer fallback over the big image, empty cache, no latency needed.
        front.set_latency()
        big_tag = f"{front.host}/{BIG_REPO}:latest"
        front.reset_log()
        big_diff = [launcher, "cghistory", "diff", big_tag, "--platform", "linux/amd64"]
        big_memory = peak_rss_mb(big_diff, dict(env, XDG_CACHE_HOME=str(work / "big")))
        layers_read = sum(1 for d in front.blob_downloads(BIG_REPO) if d.kind == "layer")
        shown = subprocess.run([*big_diff, "-q"], capture_output=True, text=True, check=True,
                               env=dict(env, XDG_CACHE_HOME=str(work / "big")))
        assert shown.stdout.split() == ["openssl"], shown.stdout
        list_memory = peak_rss_mb(listing, dict(env, XDG_CACHE_HOME=str(work / "listmem")))
    finally:
        if front is not None:
            front.stop()
        registry.stop()
        shutil.rmtree(work, ignore_errors=True)

    median = {name: statistics.median(values) * 1000 for name, values in samples.items()}
    print(f"diff of two attested builds vs list -q of the same tag (7 builds), 50 ms per "
          f"request + 100 ms per new connection, median of {options.rounds} rounds")
    print(f"  list -q, cold cache:          {median['list']:7.1f} ms")
    print(f"  diff 5 4, cold cache:         {median['diff']:7.1f} ms   "
          f"ratio {median['diff'] / median['list']:.2f}x (target <= 2x)")
    print(f"  diff 5 4, warm cache:         {median['diff-warm']:7.1f} ms   "
          f"ratio {median['diff-warm'] / median['list']:.2f}x")
    print(f"layer fallback on a {big_size / 1e6:.1f} MB (compressed) layer per build, "
          f"{layers_read} layer downloads")
    print(f"  peak RSS of diff:             {big_memory:7.1f} MiB  (target <= 100 MB)")
    print(f"  peak RSS of list -q:          {list_memory:7.1f} MiB  (for reference)")


if __name__ == "__main__":
    main()
