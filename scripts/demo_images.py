#!/usr/bin/env python3
"""Push the demo's builds to a registry and write the front's config for them.

Why real images: with them every README example (list, pull --previous --retag, pin, bisect)
can be replayed against the demo, not only the listing. Each build is two layers pushed
straight through the registry API, no engine needed: a shared base (static busybox and a few
applets) and a small layer with ``/build`` (which build this is) and ``/app/selftest`` (exit 0,
or 1 from the build that "broke"), which the README's bisect example runs.

Builds: ``chainguard/python:latest``, 30 nightly builds at 02:00 UTC ending today (every
other time with a fraction of a second, as cgr.dev writes them); ``chainguard/busybox:latest``,
10 builds a day apart ending 5 minutes ago, whose selftest fails from #2 (newest first) on;
``chainguard/node:latest``, the seven multi-platform builds of tests/support/images
(``push_build_series``: OCI indexes of linux/amd64 and linux/arm64 with SBOM attestations,
one build where only arm64 changed, one without arm64), for the diff and platform examples.
Usage: demo_images.py REGISTRY_URL FRONT_CONFIG_JSON
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import platform
import sys
import tarfile
import urllib.error
import urllib.request
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.front import format_timestamp, make_history  # noqa: E402
from tests.support.images import push_build_series, repo_configs  # noqa: E402

BUSYBOX = Path("/bin/busybox")
APPLETS = ("sh", "cat", "echo", "ls", "sleep", "true", "false", "env", "test", "grep")
LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"
CONFIG = "application/vnd.docker.container.image.v1+json"
MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
PYTHON_BUILDS, BUSYBOX_BUILDS, FIRST_BAD = 30, 10, 2  # FIRST_BAD: index, newest first
DEMO_USER, DEMO_PASSWORD = "demo", "demo"  # the login demo.sh writes to its docker config


def _tar(files: dict[str, tuple[int, bytes | None, str]]) -> bytes:
    """A deterministic tar: path -> (mode, content or None for a folder, symlink target)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path, (mode, data, link) in files.items():
            info = tarfile.TarInfo(path)
            info.mtime, info.mode = 1_700_000_000, mode
            if link:
                info.type, info.linkname = tarfile.SYMTYPE, link
            elif data is None:
                info.type = tarfile.DIRTYPE
            else:
                info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


class Pusher:
    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")

    def blob(self, repo: str, data: bytes) -> str:
        digest = _digest(data)
        head = urllib.request.Request(f"{self.url}/v2/{repo}/blobs/{digest}", method="HEAD")
        try:
            with urllib.request.urlopen(head, timeout=30):
                return digest
        except urllib.error.HTTPError:
            pass
        start = urllib.request.Request(f"{self.url}/v2/{repo}/blobs/uploads/", method="POST",
                                       data=b"")
        with urllib.request.urlopen(start, timeout=30) as response:
            location = response.headers["Location"]
        if location.startswith("/"):
            location = self.url + location
        separator = "&" if "?" in location else "?"
        put = urllib.request.Request(f"{location}{separator}digest={digest}", method="PUT",
                                     data=data,
                                     headers={"Content-Type": "application/octet-stream"})
        with urllib.request.urlopen(put, timeout=60):
            pass
        return digest

    def manifest(self, repo: str, reference: str, data: bytes) -> None:
        put = urllib.request.Request(f"{self.url}/v2/{repo}/manifests/{reference}",
                                     method="PUT", data=data,
                                     headers={"Content-Type": MANIFEST})
        with urllib.request.urlopen(put, timeout=30):
            pass


def _architecture() -> str:
    machine = platform.machine().lower()
    return {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm"}.get(machine, machine)


def push_build(pusher: Pusher, repo: str, base: bytes, marker: str, broken: bool) -> str:
    """One build: the shared base layer and a top layer saying which build it is."""
    test = ("#!/bin/sh\necho 'selftest: FAILED (" + marker + ")' >&2\nexit 1\n" if broken
            else "#!/bin/sh\necho 'selftest: ok (" + marker + ")'\n")
    top = _tar({"app": (0o755, None, ""), "app/selftest": (0o755, test.encode(), ""),
                "build": (0o644, marker.encode() + b"\n", "")})
    layers = []
    for tar in (base, top):
        packed = gzip.compress(tar, mtime=0)
        layers.append((pusher.blob(repo, packed), len(packed), _digest(tar)))
    config = json.dumps({
        "architecture": _architecture(), "os": "linux",
        "config": {"Cmd": ["/bin/sh"], "Env": ["PATH=/bin"]},
        "rootfs": {"type": "layers", "diff_ids": [diff for _, _, diff in layers]},
    }, sort_keys=True).encode()
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": MANIFEST,
        "config": {"mediaType": CONFIG, "size": len(config),
                   "digest": pusher.blob(repo, config)},
        "layers": [{"mediaType": LAYER, "size": size, "digest": digest}
                   for digest, size, _ in layers],
    }, sort_keys=True).encode()
    digest = _digest(manifest)
    pusher.manifest(repo, digest, manifest)
    return digest


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__.strip().splitlines()[-1], file=sys.stderr)
        return 2
    if not BUSYBOX.is_file():
        print(f"demo: {BUSYBOX} is missing (apt-get install busybox-static)", file=sys.stderr)
        return 1
    pusher, config_path = Pusher(argv[0]), Path(argv[1])
    busybox = BUSYBOX.read_bytes()
    base = _tar({"bin": (0o755, None, ""), "tmp": (0o1777, None, ""),
                 "bin/busybox": (0o755, busybox, ""),
                 **{f"bin/{applet}": (0o777, None, "busybox") for applet in APPLETS}})

    now = datetime.now(timezone.utc)
    start = now.replace(hour=2, minute=0, second=0, microsecond=0)
    if start > now:
        start -= timedelta(days=1)
    times = [t for t, _ in make_history(PYTHON_BUILDS, start - timedelta(days=PYTHON_BUILDS - 1),
                                        timedelta(days=1), seed="demo", fractional="mixed")]
    python = [[t, push_build(pusher, "chainguard/python", base, f"python build {i}", False)]
              for i, t in enumerate(times)]
    newest = now.replace(microsecond=0) - timedelta(minutes=5)
    busybox_history = []
    for i in range(BUSYBOX_BUILDS):  # oldest first; index newest-first is COUNT - 1 - i
        broken = BUSYBOX_BUILDS - 1 - i <= FIRST_BAD
        when = format_timestamp(newest - timedelta(days=BUSYBOX_BUILDS - 1 - i))
        busybox_history.append(
            [when, push_build(pusher, "chainguard/busybox", base, f"busybox build {i}", broken)])
    for repo, history in (("chainguard/python", python), ("chainguard/busybox",
                                                           busybox_history)):
        newest_digest = history[-1][1]
        get = urllib.request.Request(f"{pusher.url}/v2/{repo}/manifests/{newest_digest}",
                                     headers={"Accept": MANIFEST})
        with urllib.request.urlopen(get, timeout=30) as response:
            pusher.manifest(repo, "latest", response.read())
    node = push_build_series(pusher, repo="chainguard/node", tag="latest",
                             end=newest - timedelta(hours=1))
    repos = {
        "chainguard/python": {"public": True, "history": {"latest": python}},
        "chainguard/busybox": {"public": True, "history": {"latest": busybox_history}},
        **repo_configs([node]),
    }
    for repo in repos.values():  # demo.sh logs in as demo: tags lists, "did you mean" hints
        repo["users"] = {DEMO_USER: {"password": DEMO_PASSWORD}}
    config = {"repos": repos}
    config_path.write_text(json.dumps(config))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
