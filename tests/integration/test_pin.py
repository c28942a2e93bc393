"""``docker cghistory pin``: Dockerfiles and compose files pinned end to end.

Every test writes a repository tree the tool has never seen, runs the real command (through the
docker CLI with the plugin installed in an isolated DOCKER_CONFIG, or the ``docker-cghistory``
console script directly) against the Chainguard-compatible front, and checks the files byte for
byte. Histories are synthetic (``make_history``), so the digest each reference must get is known
before the command runs; the expected files are written out in full below. Registries without
the history API are the session's plain docker-registry (images pushed to it over HTTP here) or
a front repository with ``history_api: False``.
"""

from __future__ import annotations

import difflib
import gzip
import hashlib
import io
import json
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import tarfile
import time
import urllib.request
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import yaml

from tests.support.front import Front, format_timestamp, make_history, parse_timestamp
from tests.support.services import DockerConfig, Registry, push_blob

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
HISTORY = "/_chainguard/history/"
NOW = datetime.now(timezone.utc).replace(microsecond=0)
DAY = timedelta(days=1)
OLD_MTIME_NS = 1_600_000_000 * 1_000_000_000  # 2020-09-13: "before the run" for every file
CONSOLE = str(Path(sys.executable).parent / "docker-cghistory")
if not os.path.exists(CONSOLE):
    CONSOLE = shutil.which("docker-cghistory") or CONSOLE


def recent(seed: str, n: int = 12, step: timedelta = DAY) -> list[list[str]]:
    """``n`` builds ``step`` apart, the newest an hour old (one guess window finds it)."""
    return make_history(n, NOW - timedelta(hours=1) - (n - 1) * step, step, seed=seed)


# The catalog the front serves for most tests: repository -> tag -> history (oldest first).
CATALOG: dict[str, dict[str, list[list[str]]]] = {
    "chainguard/go": {"1.22": recent("go:1.22")},
    "chainguard/static": {"latest": recent("static:latest")},
    "chainguard/busybox": {"latest": recent("busybox:latest")},
    "chainguard/python": {"3.12": recent("python:3.12"), "latest": recent("python:latest")},
    "chainguard/nginx": {"latest": recent("nginx:latest")},
    "chainguard/redis": {"latest": recent("redis:latest")},
    "chainguard/postgres": {"16": recent("postgres:16")},
}


def newest(repo: str, tag: str) -> str:
    return CATALOG[repo][tag][-1][1]


def serve(front: Front, catalog: dict[str, dict[str, list[list[str]]]]) -> None:
    for repo, tags in catalog.items():
        front.set_repo(repo, {"public": True, "public_tags": sorted(tags), "history": tags})
    front.reset_log()


@pytest.fixture
def catalog(front: Front) -> Front:
    serve(front, CATALOG)
    return front


# --------------------------------------------------------------------------- running pin
@dataclass
class Pin:
    """Runs ``pin`` one way: ``docker cghistory pin`` (plugin) or ``docker-cghistory pin``."""

    env: DockerConfig
    via: str

    def __call__(self, *args: str, cwd: Path, timeout: float = 60
                 ) -> subprocess.CompletedProcess[str]:
        if self.via == "docker":
            argv = ["docker", "cghistory", "pin", *args]
        else:
            argv = [CONSOLE, "pin", *args]
        raw = subprocess.run(argv, env=self.env.env, cwd=cwd, capture_output=True,
                             timeout=timeout, check=False)
        # Decoded by hand: text mode would turn the \r\n of a CRLF file's diff into \n.
        result = subprocess.CompletedProcess(argv, raw.returncode, raw.stdout.decode(),
                                             raw.stderr.decode())
        assert "Traceback" not in result.stderr, result.stderr
        return result


@pytest.fixture
def pin(docker_config: DockerConfig) -> Pin:
    return Pin(docker_config, "direct")


@pytest.fixture
def plugin_pin(plugin_env: DockerConfig) -> Pin:
    return Pin(plugin_env, "docker")


def status(result: subprocess.CompletedProcess[str], expected: int) -> None:
    assert result.returncode == expected, (
        f"exit {result.returncode}, wanted {expected}\nstdout:\n{result.stdout}\n"
        f"stderr:\n{result.stderr}"
    )


def summary(result: subprocess.CompletedProcess[str]) -> str:
    return result.stderr.splitlines()[0]


def error_lines(result: subprocess.CompletedProcess[str]) -> list[str]:
    return [line.strip() for line in result.stderr.splitlines() if line.strip().startswith(
        "error:")]


# --------------------------------------------------------------------------- trees
TOKEN = re.compile(r"<H>|<@([\w./-]+):([\w.-]+)>")


def fill(template: str, host: str, catalog: dict[str, dict[str, list[list[str]]]] = CATALOG,
         pick: int = -1) -> str:
    """``<H>`` is the front's host, ``<@repo:tag>`` is ``@`` and the wanted digest."""

    def one(match: re.Match[str]) -> str:
        if match.group(0) == "<H>":
            return host
        return "@" + catalog[match.group(1)][match.group(2)][pick][1]

    return TOKEN.sub(one, template)


# path -> (content as written, content after ``pin``; None: must stay exactly as written).
TREE: dict[str, tuple[str, str | None]] = {
    # Multi-stage, --platform, a stage reference, COPY --from and RUN --mount from an image.
    "Dockerfile": (
        "# syntax=docker/dockerfile:1\n"
        "# Build stage\n"
        "FROM --platform=$BUILDPLATFORM <H>/chainguard/go:1.22 AS build\n"
        "WORKDIR /src\n"
        "COPY . .\n"
        "RUN --mount=type=cache,target=/root/.cache go build -o /out/app ./cmd/app\n"
        "\n"
        "FROM <H>/chainguard/static\n"
        "COPY --from=build /out/app /app\n"
        "COPY --from=<H>/chainguard/busybox:latest /bin/busybox /bin/busybox\n"
        "RUN --mount=type=bind,from=<H>/chainguard/busybox:latest,target=/bb /bb/bin/true\n"
        'ENTRYPOINT ["/app"]\n',
        "# syntax=docker/dockerfile:1\n"
        "# Build stage\n"
        "FROM --platform=$BUILDPLATFORM <H>/chainguard/go:1.22<@chainguard/go:1.22> AS build\n"
        "WORKDIR /src\n"
        "COPY . .\n"
        "RUN --mount=type=cache,target=/root/.cache go build -o /out/app ./cmd/app\n"
        "\n"
        "FROM <H>/chainguard/static:latest<@chainguard/static:latest>\n"
        "COPY --from=build /out/app /app\n"
        "COPY --from=<H>/chainguard/busybox:latest<@chainguard/busybox:latest> /bin/busybox "
        "/bin/busybox\n"
        "RUN --mount=type=bind,from=<H>/chainguard/busybox:latest<@chainguard/busybox:latest>,"
        "target=/bb /bb/bin/true\n"
        'ENTRYPOINT ["/app"]\n',
    ),
    # ARG-based bases (one with a default, one without: reported, left), and a heredoc whose
    # body looks like an instruction.
    "services/api/Dockerfile": (
        "ARG PYTHON=<H>/chainguard/python:3.12\n"
        "ARG RUNTIME\n"
        "FROM ${PYTHON} AS base\n"
        "RUN <<EOF\n"
        "echo building\n"
        "FROM <H>/chainguard/redis:latest\n"
        "EOF\n"
        "FROM ${RUNTIME}\n"
        "COPY --from=base /app /app\n"
        "FROM $PYTHON\n",
        "ARG PYTHON=<H>/chainguard/python:3.12<@chainguard/python:3.12>\n"
        "ARG RUNTIME\n"
        "FROM ${PYTHON} AS base\n"
        "RUN <<EOF\n"
        "echo building\n"
        "FROM <H>/chainguard/redis:latest\n"
        "EOF\n"
        "FROM ${RUNTIME}\n"
        "COPY --from=base /app /app\n"
        "FROM $PYTHON\n",
    ),
    # CRLF line endings (converted below) and a name docker finds with -f.
    "services/web/app.Dockerfile": (
        "FROM <H>/chainguard/nginx:latest\n"
        "COPY site /usr/share/nginx/html\n",
        "FROM <H>/chainguard/nginx:latest<@chainguard/nginx:latest>\n"
        "COPY site /usr/share/nginx/html\n",
    ),
    # The escape directive: backtick continuations, backslashes that are not escapes.
    "tools/Containerfile": (
        "# escape=`\n"
        "FROM <H>/chainguard/python:latest `\n"
        "    AS tools\n"
        "RUN echo C:\\path `\n"
        "    && echo done\n"
        "FROM tools\n",
        "# escape=`\n"
        "FROM <H>/chainguard/python:latest<@chainguard/python:latest> `\n"
        "    AS tools\n"
        "RUN echo C:\\path `\n"
        "    && echo done\n"
        "FROM tools\n",
    ),
    # Comments between continuation lines.
    "tools/Dockerfile.dev": (
        "FROM \\\n"
        "    --platform=linux/amd64 \\\n"
        "    # the base image is on the next line\n"
        "    <H>/chainguard/go:1.22 \\\n"
        "    AS dev\n"
        "RUN echo one && \\\n"
        "    # FROM <H>/chainguard/static:latest in a comment is not a FROM\n"
        "    echo two\n",
        "FROM \\\n"
        "    --platform=linux/amd64 \\\n"
        "    # the base image is on the next line\n"
        "    <H>/chainguard/go:1.22<@chainguard/go:1.22> \\\n"
        "    AS dev\n"
        "RUN echo one && \\\n"
        "    # FROM <H>/chainguard/static:latest in a comment is not a FROM\n"
        "    echo two\n",
    ),
    # Compose: an anchor merged by two services, comments, quoted and unquoted values, a build
    # without an image, an interpolated image (reported, left), a commented-out image.
    "deploy/compose.yaml": (
        "# Local stack\n"
        "x-python: &python\n"
        "  image: <H>/chainguard/python:3.12   # shared through the anchor\n"
        "  restart: unless-stopped\n"
        "\n"
        "services:\n"
        "  api:\n"
        "    <<: *python\n"
        '    command: ["python", "-m", "api"]\n'
        "  worker:\n"
        "    <<: *python\n"
        "  web:\n"
        '    image: "<H>/chainguard/nginx:latest"\n'
        "  cache:\n"
        "    image: '<H>/chainguard/redis'\n"
        "  db:\n"
        "    image: <H>/chainguard/postgres:16\n"
        "    # image: <H>/chainguard/postgres:15\n"
        "  local:\n"
        "    build: .\n"
        "  custom:\n"
        "    image: ${REGISTRY}/app:latest\n",
        "# Local stack\n"
        "x-python: &python\n"
        "  image: <H>/chainguard/python:3.12<@chainguard/python:3.12>   # shared through the "
        "anchor\n"
        "  restart: unless-stopped\n"
        "\n"
        "services:\n"
        "  api:\n"
        "    <<: *python\n"
        '    command: ["python", "-m", "api"]\n'
        "  worker:\n"
        "    <<: *python\n"
        "  web:\n"
        '    image: "<H>/chainguard/nginx:latest<@chainguard/nginx:latest>"\n'
        "  cache:\n"
        "    image: '<H>/chainguard/redis:latest<@chainguard/redis:latest>'\n"
        "  db:\n"
        "    image: <H>/chainguard/postgres:16<@chainguard/postgres:16>\n"
        "    # image: <H>/chainguard/postgres:15\n"
        "  local:\n"
        "    build: .\n"
        "  custom:\n"
        "    image: ${REGISTRY}/app:latest\n",
    ),
    # One reference pinned to an older build already (left alone without --update).
    "deploy/prod/docker-compose.prod.yml": (
        "services:\n"
        "  web:\n"
        "    image: <H>/chainguard/nginx:latest@OLD_NGINX\n"
        "  db:\n"
        "    image: <H>/chainguard/postgres:16\n",
        "services:\n"
        "  web:\n"
        "    image: <H>/chainguard/nginx:latest@OLD_NGINX\n"
        "  db:\n"
        "    image: <H>/chainguard/postgres:16<@chainguard/postgres:16>\n",
    ),
    # Files that must come out exactly as they went in.
    "README.md": ("FROM <H>/chainguard/go:1.22\n", None),
    "scratch/Dockerfile": ("FROM scratch\nCOPY app /app\n", None),
    "pinned/compose.yaml": (
        "services:\n  app:\n    image: <H>/chainguard/static:latest<@chainguard/static:latest>\n",
        None,
    ),
    "services/api/Dockerfile.dockerignore": ("node_modules\n*.log\n", None),
    ".git/Dockerfile": ("FROM <H>/chainguard/go:1.22\n", None),
    ".git/modules/sub/compose.yaml": ("services:\n  x:\n    image: <H>/chainguard/go:1.22\n", None),
    "vendor/lib/.git/Dockerfile": ("FROM <H>/chainguard/go:1.22\n", None),
}
CRLF = {"services/web/app.Dockerfile"}
MODES = {"tools/Containerfile": 0o755, "deploy/compose.yaml": 0o640}
OLD_NGINX = CATALOG["chainguard/nginx"]["latest"][3][1]


@dataclass
class Tree:
    root: Path
    before: dict[str, bytes]
    after: dict[str, bytes]

    def read(self) -> dict[str, bytes]:
        return {rel: (self.root / rel).read_bytes() for rel in self.before}

    def mtimes(self) -> dict[str, int]:
        return {rel: (self.root / rel).stat().st_mtime_ns for rel in self.before}

    def changed(self) -> set[str]:
        return {rel for rel in self.before if self.before[rel] != self.after[rel]}

    def check_lines(self, prefix: str) -> list[str]:
        """``--check``'s listing, derived from the expected files: ``path:line: old -> new``."""
        lines = []
        for rel in sorted(self.changed()):
            old = self.before[rel].decode().split("\n")
            new = self.after[rel].decode().split("\n")
            assert len(old) == len(new)
            for number, (a, b) in enumerate(zip(old, new, strict=True), start=1):
                if a == b:
                    continue
                for pinned in PINNED.finditer(b):
                    if pinned.group(0) not in a:  # the text before it is the same in both
                        written = WORD.match(a, pinned.start())
                        assert written is not None
                        lines.append(f"{prefix}{rel}:{number}: {written.group(0)} -> "
                                     f"{pinned.group(0)}")
        return lines


PINNED = re.compile(r"[^\s\"'=,`]+@sha256:[0-9a-f]{64}")
WORD = re.compile(r"[^\s\"'=,`]+")


def write_tree(root: Path, files: dict[str, tuple[str, str | None]], host: str,
               crlf: frozenset[str] | set[str] = frozenset(),
               modes: dict[str, int] | None = None) -> Tree:
    before, after = {}, {}
    for rel, (text, expected) in files.items():
        old = fill(text, host).replace("@OLD_NGINX", "@" + OLD_NGINX)
        new = old if expected is None else fill(expected, host).replace(
            "@OLD_NGINX", "@" + OLD_NGINX)
        if rel in crlf:
            old, new = old.replace("\n", "\r\n"), new.replace("\n", "\r\n")
        before[rel], after[rel] = old.encode(), new.encode()
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(before[rel])
        path.chmod((modes or {}).get(rel, 0o644))
        os.utime(path, ns=(OLD_MTIME_NS, OLD_MTIME_NS))
    return Tree(root, before, after)


def history_paths(front: Front) -> Counter[str]:
    return Counter(r.path for r in front.requests if HISTORY in r.path and r.method == "GET")


def no_temporary_files(root: Path) -> None:
    leftovers = [p for p in root.rglob("*.tmp") if p.name.startswith(".")]
    assert leftovers == []


# --------------------------------------------------------------------------- the tree
@pytest.mark.parametrize("via", ["docker", "direct"])
def test_an_unseen_tree_checked_diffed_pinned_and_pinned_again(
    catalog: Front, docker_config: DockerConfig, request: pytest.FixtureRequest, via: str,
    tmp_path: Path,
) -> None:
    run = request.getfixturevalue("plugin_pin") if via == "docker" else Pin(docker_config, via)
    root = tmp_path / "repo"
    tree = write_tree(root, TREE, catalog.host, CRLF, MODES)
    # The plugin run names no PATH (default "."), the direct one an absolute directory.
    paths, prefix = ([], "") if via == "docker" else ([str(root)], f"{root}/")
    assert tree.changed() == {
        "Dockerfile", "services/api/Dockerfile", "services/web/app.Dockerfile",
        "tools/Containerfile", "tools/Dockerfile.dev", "deploy/compose.yaml",
        "deploy/prod/docker-compose.prod.yml",
    }

    # --check: exit 1, one line per reference not pinned, nothing written.
    check = run("--check", *paths, cwd=root)
    status(check, 1)
    assert check.stdout.splitlines() == tree.check_lines(prefix)
    assert "9 files scanned" in summary(check)
    assert tree.read() == tree.before and set(tree.mtimes().values()) == {OLD_MTIME_NS}

    # --dry-run: the unified diff of exactly the expected change, nothing written.
    dry = run("--dry-run", *paths, cwd=root)
    status(dry, 0)
    wanted_diff = "".join(
        "".join(difflib.unified_diff(
            tree.before[rel].decode().splitlines(keepends=True),
            tree.after[rel].decode().splitlines(keepends=True),
            f"a/{prefix}{rel}", f"b/{prefix}{rel}"))
        for rel in sorted(tree.changed())
    )
    assert dry.stdout == wanted_diff
    assert tree.read() == tree.before and set(tree.mtimes().values()) == {OLD_MTIME_NS}

    # pin: exact bytes; untouched files keep bytes and mtime; modes kept; no temporary files.
    catalog.reset_log()
    pinned = run(*paths, cwd=root)
    status(pinned, 0)
    assert tree.read() == tree.after
    mtimes = tree.mtimes()
    for rel in tree.before:
        if rel in tree.changed():
            assert mtimes[rel] > OLD_MTIME_NS, rel
        else:
            assert mtimes[rel] == OLD_MTIME_NS, rel
    for rel, mode in MODES.items():
        assert stat.S_IMODE((root / rel).stat().st_mode) == mode, rel
    no_temporary_files(root)
    assert pinned.stdout.splitlines() == tree.check_lines(prefix)
    line = summary(pinned)
    assert line.startswith("9 files scanned, 13 references pinned, 0 updated, 2 already pinned")
    # Both build-argument skips and the interpolated compose image are reported.
    skipped = [x for x in pinned.stderr.splitlines() if x.strip().startswith("skipped")]
    assert len(skipped) == 2, pinned.stderr
    assert any("services/api/Dockerfile:" in x and "RUNTIME" in x for x in skipped)
    assert any("deploy/compose.yaml:22:" in x and "${REGISTRY}" in x for x in skipped)
    # 8 distinct (repo, tag) pairs to resolve, each asked for once (twice if refused first).
    asked = history_paths(catalog)
    assert len(asked) == 8 and max(asked.values()) <= 2, asked
    assert "/v2/chainguard/python/_chainguard/history/latest" in asked

    # Again: nothing to do, nothing asked, nothing written.
    catalog.reset_log()
    again = run(*paths, cwd=root)
    status(again, 0)
    assert again.stdout == ""
    assert summary(again).startswith("9 files scanned, 0 references pinned, 0 updated, "
                                     "15 already pinned")
    assert tree.read() == tree.after and tree.mtimes() == mtimes
    assert history_paths(catalog) == Counter()

    # --check after pinning: clean.
    status(run("--check", *paths, cwd=root), 0)


def test_update_moves_pins_and_check_update_sees_newer_builds(
    catalog: Front, pin: Pin, tmp_path: Path
) -> None:
    tree = write_tree(tmp_path, {"deploy/prod/docker-compose.prod.yml":
                                 TREE["deploy/prod/docker-compose.prod.yml"]}, catalog.host)
    rel = "deploy/prod/docker-compose.prod.yml"
    path = tmp_path / rel
    status(pin(cwd=tmp_path), 0)
    assert tree.read() == tree.after  # the old nginx pin stays without --update
    status(pin("--check", cwd=tmp_path), 0)

    newest_nginx = newest("chainguard/nginx", "latest")
    check = pin("--check", "--update", cwd=tmp_path)
    status(check, 1)
    pinned_old = f"{catalog.host}/chainguard/nginx:latest@{OLD_NGINX}"
    pinned_new = f"{catalog.host}/chainguard/nginx:latest@{newest_nginx}"
    assert check.stdout.splitlines() == [f"{rel}:3: {pinned_old} -> {pinned_new}"]
    assert path.read_bytes() == tree.after[rel]

    update = pin("--update", cwd=tmp_path)
    status(update, 0)
    assert path.read_bytes() == tree.after[rel].replace(OLD_NGINX.encode(), newest_nginx.encode())
    assert "0 references pinned, 1 updated, 1 already pinned" in summary(update)
    status(pin("--check", "--update", cwd=tmp_path), 0)

    # A newer build appears: --check --update fails, --check alone does not.
    newer = [format_timestamp(NOW - timedelta(minutes=5)), "sha256:" + "ab" * 32]
    catalog.set_history("chainguard/nginx", "latest", [*CATALOG["chainguard/nginx"]["latest"],
                                                       newer])
    check = pin("--check", "--update", cwd=tmp_path)
    status(check, 1)
    assert check.stdout.splitlines() == [
        f"{rel}:3: {pinned_new} -> {catalog.host}/chainguard/nginx:latest@{newer[1]}"]
    status(pin("--check", cwd=tmp_path), 0)


def test_digest_only(catalog: Front, pin: Pin, tmp_path: Path) -> None:
    files = {
        "Dockerfile": ("FROM <H>/chainguard/python:3.12 AS b\nFROM <H>/chainguard/static\n",
                       "FROM <H>/chainguard/python<@chainguard/python:3.12> AS b\n"
                       "FROM <H>/chainguard/static<@chainguard/static:latest>\n"),
        "compose.yaml": ('services:\n  web:\n    image: "<H>/chainguard/nginx:latest"\n',
                         'services:\n  web:\n    image: "<H>/chainguard/nginx'
                         '<@chainguard/nginx:latest>"\n'),
    }
    tree = write_tree(tmp_path, files, catalog.host)
    status(pin("--digest-only", cwd=tmp_path), 0)
    assert tree.read() == tree.after
    status(pin("--check", cwd=tmp_path), 0)


# --------------------------------------------------------------------------- --at, --cooldown
# Ten builds a day apart at 06:00, every other one with milliseconds, long ago.
DATED = make_history(10, datetime(2024, 5, 1, 6, tzinfo=timezone.utc), DAY, seed="dated",
                     fractional="mixed")


def dated_tree(front: Front, root: Path) -> Path:
    serve(front, {"chainguard/python": {"3.12": DATED}})
    path = root / "Dockerfile"
    path.write_text(f"FROM {front.host}/chainguard/python:3.12\n")
    return path


@pytest.mark.parametrize(("when", "index"), [
    ("2024-05-04T12:00:00Z", 3),                  # between builds: the one before
    (DATED[5][0], 5),                             # exactly a build (with milliseconds)
    (DATED[4][0], 4),                             # exactly a build (whole seconds)
    (format_timestamp(parse_timestamp(DATED[5][0]) - timedelta(milliseconds=1), millis=True),
     4),                                          # a millisecond before it: the previous one
    ("2024-05-10T09:30:00+02:00", 9),             # an offset: 07:30Z, after the last build
    ("2024-05-07", 5),                            # a date: midnight, before 06:00 that day
])
def test_at_pins_the_build_current_then(front: Front, pin: Pin, tmp_path: Path, when: str,
                                        index: int) -> None:
    path = dated_tree(front, tmp_path)
    result = pin("--at", when, cwd=tmp_path)
    status(result, 0)
    assert path.read_text() == f"FROM {front.host}/chainguard/python:3.12@{DATED[index][1]}\n"


def test_at_before_the_first_build_is_reported(front: Front, pin: Pin, tmp_path: Path) -> None:
    path = dated_tree(front, tmp_path)
    before = path.read_bytes()
    result = pin("--at", "2024-04-30T00:00:00Z", cwd=tmp_path)
    status(result, 1)
    assert path.read_bytes() == before
    errors = error_lines(result)
    assert len(errors) == 1 and "chainguard/python:3.12" in errors[0] and "no build" in errors[0]


def test_cooldown_pins_the_newest_build_old_enough(catalog: Front, pin: Pin,
                                                   tmp_path: Path) -> None:
    history = CATALOG["chainguard/go"]["1.22"]  # daily, the newest an hour old
    path = tmp_path / "Dockerfile"
    for age, back in (("7d", 7), ("2h", 1), ("30m", 0), ("1w", 7)):
        path.write_text(f"FROM {catalog.host}/chainguard/go:1.22\n")
        status(pin("--cooldown", age, cwd=tmp_path), 0)
        wanted = history[-1 - back][1]
        assert path.read_text() == f"FROM {catalog.host}/chainguard/go:1.22@{wanted}\n", age
    status(pin("--cooldown", "1d", "--at", "2024-01-01", cwd=tmp_path), 2)


# --------------------------------------------------------------------------- failures
def test_unparseable_files_are_reported_and_left_the_rest_pinned(
    catalog: Front, pin: Pin, tmp_path: Path
) -> None:
    host = catalog.host
    good = write_tree(tmp_path, {
        "a/Dockerfile": ("FROM <H>/chainguard/go:1.22\n", "FROM <H>/chainguard/go:1.22"
                         "<@chainguard/go:1.22>\n"),
        "b/compose.yaml": ("services:\n  web:\n    image: <H>/chainguard/nginx:latest\n",
                           "services:\n  web:\n    image: <H>/chainguard/nginx:latest"
                           "<@chainguard/nginx:latest>\n"),
    }, host)
    bad = {
        "bad/Dockerfile": f"FROM {host}/chainguard/go:1.22\n# caf\xe9\n".encode("latin-1"),
        "bad/compose.yaml": (f"services:\n  web:\n    image: {host}/chainguard/nginx:latest\n"
                             "   broken: [\n").encode(),
        "bad/docker-compose.yml": b"services:\n  web:\n    image: [unclosed\n",
    }
    for rel, data in bad.items():
        (tmp_path / rel).parent.mkdir(exist_ok=True)
        (tmp_path / rel).write_bytes(data)
        os.utime(tmp_path / rel, ns=(OLD_MTIME_NS, OLD_MTIME_NS))
    result = pin(cwd=tmp_path)
    status(result, 1)
    assert good.read() == good.after
    for rel, data in bad.items():
        assert (tmp_path / rel).read_bytes() == data
        assert (tmp_path / rel).stat().st_mtime_ns == OLD_MTIME_NS
    errors = error_lines(result)
    assert len(errors) == 3, result.stderr
    assert any("bad/Dockerfile:2" in e and "UTF-8" in e for e in errors), errors
    assert any("bad/compose.yaml" in e and "YAML" in e for e in errors), errors
    assert any("bad/docker-compose.yml" in e and "YAML" in e for e in errors), errors
    assert "5 files scanned, 2 references pinned" in summary(result)
    assert "3 failed" in summary(result)


def test_a_tag_that_does_not_exist_is_reported_and_left(catalog: Front, pin: Pin,
                                                        tmp_path: Path) -> None:
    host = catalog.host
    catalog.update_repo("chainguard/python", public_tags=["3.12", "latest", "9.99"])
    tree = write_tree(tmp_path, {
        "Dockerfile": (
            "FROM <H>/chainguard/python:9.99 AS old\n"       # known repo, unknown tag
            "FROM <H>/chainguard/nothing-here:1\n"          # a repo the registry lacks
            "FROM <H>/chainguard/python:3.12\n",
            "FROM <H>/chainguard/python:9.99 AS old\n"
            "FROM <H>/chainguard/nothing-here:1\n"
            "FROM <H>/chainguard/python:3.12<@chainguard/python:3.12>\n",
        ),
        "compose.yaml": ("services:\n  x:\n    image: <H>/chainguard/python:9.99\n", None),
    }, host)
    result = pin(cwd=tmp_path)
    status(result, 1)
    assert tree.read() == tree.after
    assert (tmp_path / "compose.yaml").stat().st_mtime_ns == OLD_MTIME_NS
    errors = error_lines(result)
    assert len(errors) == 2, result.stderr  # one per distinct reference, not per site
    assert any(f"{host}/chainguard/python:9.99" in e and "not found" in e for e in errors)
    assert any(f"{host}/chainguard/nothing-here:1" in e and "not found" in e for e in errors)
    assert result.stdout.splitlines() == [
        f"Dockerfile:3: {host}/chainguard/python:3.12 -> "
        f"{host}/chainguard/python:3.12@{newest('chainguard/python', '3.12')}"]


# --------------------------------------------------------------------------- no history API
def push_image(registry: Registry, repo: str, tag: str, marker: str) -> str:
    """A small real image (one layer holding /build = marker) pushed over the registry API;
    returns the manifest digest the registry answers for the tag."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        info = tarfile.TarInfo("build")
        info.size, info.mtime = len(marker), 1_700_000_000
        tar.addfile(info, io.BytesIO(marker.encode()))
    layer = gzip.compress(raw.getvalue(), mtime=0)
    config = json.dumps({
        "architecture": "amd64", "os": "linux", "config": {"Cmd": ["/bin/sh"]},
        "rootfs": {"type": "layers",
                   "diff_ids": ["sha256:" + hashlib.sha256(raw.getvalue()).hexdigest()]},
    }).encode()
    manifest = json.dumps({
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {"mediaType": "application/vnd.docker.container.image.v1+json",
                   "size": len(config), "digest": push_blob(registry, repo, config)},
        "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
                    "size": len(layer), "digest": push_blob(registry, repo, layer)}],
    }).encode()
    put = urllib.request.Request(
        f"{registry.url}/v2/{repo}/manifests/{tag}", method="PUT", data=manifest,
        headers={"Content-Type": "application/vnd.docker.distribution.manifest.v2+json"})
    with urllib.request.urlopen(put, timeout=10) as response:
        answered = response.headers["Docker-Content-Digest"]
    digest = "sha256:" + hashlib.sha256(manifest).hexdigest()
    assert answered == digest
    return digest


def test_registries_without_the_history_api(catalog: Front, registry: Registry, pin: Pin,
                                            tmp_path: Path) -> None:
    """A plain registry, and a front repo answering 404 for history: plain pinning reads the
    tag's current manifest digest; ``--at`` is refused for those references only."""
    plain = push_image(registry, "plain/app", "1.0", "plain-1.0")
    plain = push_image(registry, "plain/app", "1.0", "plain-1.0-rebuilt")  # the tag moved
    proxied = push_image(registry, "acme/tool", "2", "tool-2")
    catalog.set_repo("acme/tool", {"public": True, "public_tags": ["2"], "history_api": False,
                                   "history": {"2": DATED}})
    host, regs = catalog.host, registry.host
    text = (f"FROM {regs}/plain/app:1.0 AS a\n"
            f"FROM {host}/acme/tool:2 AS b\n"
            f"FROM {host}/chainguard/go:1.22\n")
    path = tmp_path / "Dockerfile"
    path.write_text(text)

    at = pin("--at", "1d", cwd=tmp_path)
    status(at, 1)
    go_then = [d for ts, d in CATALOG["chainguard/go"]["1.22"]
               if parse_timestamp(ts) <= NOW - DAY][-1]
    assert path.read_text() == text.replace("go:1.22\n", f"go:1.22@{go_then}\n")
    errors = error_lines(at)
    assert len(errors) == 2, at.stderr
    for ref, reg in ((f"{regs}/plain/app:1.0", regs), (f"{host}/acme/tool:2", host)):
        assert any(ref in e and "--at" in e and "history API" in e and reg in e
                   for e in errors), (ref, errors)

    path.write_text(text)
    plain_run = pin(cwd=tmp_path)
    status(plain_run, 0)
    assert path.read_text() == (
        f"FROM {regs}/plain/app:1.0@{plain} AS a\n"
        f"FROM {host}/acme/tool:2@{proxied} AS b\n"
        f"FROM {host}/chainguard/go:1.22@{newest('chainguard/go', '1.22')}\n")
    status(pin("--check", cwd=tmp_path), 0)


# --------------------------------------------------------------------------- scale, safety
def bench_catalog(repos: int = 10) -> dict[str, dict[str, list[list[str]]]]:
    return {f"bench/app{i}": {"latest": recent(f"app{i}:latest", 30, timedelta(hours=12)),
                              "1.0": recent(f"app{i}:1.0", 30, timedelta(hours=12))}
            for i in range(repos)}


def spread_tree(root: Path, host: str, files: int = 200) -> dict[str, tuple[str, str]]:
    """``files`` Dockerfiles and compose files naming 20 references (10 repos x 2 tags) in
    several spellings, each file 4 of them; returns path -> (written, wanted) templates."""
    tree: dict[str, tuple[str, str]] = {}
    for n in range(files):
        picks = [(3 * n + 7 * k) % 20 for k in range(4)]  # 4 distinct of the 20 in each file
        refs = [(f"bench/app{j % 10}", ("latest", "1.0")[j // 10]) for j in picks]
        spelled = [f"<H>/{repo}" + ("" if tag == "latest" and k % 2 else f":{tag}")
                   for k, (repo, tag) in enumerate(refs)]
        pinned = [f"<H>/{repo}:{tag}<@{repo}:{tag}>" for repo, tag in refs]
        if n % 2:
            body = "".join(f"FROM {r} AS s{k}\n" for k, r in enumerate(spelled))
            want = "".join(f"FROM {r} AS s{k}\n" for k, r in enumerate(pinned))
            name = f"svc{n:03d}/Dockerfile"
        else:
            body = "services:\n" + "".join(f"  s{k}:\n    image: {r}\n"
                                           for k, r in enumerate(spelled))
            want = "services:\n" + "".join(f"  s{k}:\n    image: {r}\n"
                                           for k, r in enumerate(pinned))
            name = f"svc{n:03d}/compose.yaml"
        tree[name] = (body, want)
    return tree


def test_each_distinct_reference_is_resolved_once(front: Front, pin: Pin,
                                                  tmp_path: Path) -> None:
    catalog = bench_catalog()
    serve(front, catalog)
    files = spread_tree(tmp_path, front.host)
    for rel, (text, _) in files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(fill(text, front.host, catalog))
    result = pin(cwd=tmp_path)
    status(result, 0)
    for rel, (_, want) in files.items():
        assert (tmp_path / rel).read_text() == fill(want, front.host, catalog), rel
    assert "200 files scanned, 800 references pinned" in summary(result)
    asked = history_paths(front)
    wanted = {f"/v2/bench/app{i}/_chainguard/history/{tag}" for i in range(10)
              for tag in ("latest", "1.0")}
    assert set(asked) == wanted
    # Per distinct reference: a read of its newest builds, and one more when the newest build
    # is older than the first guess; never one per site (there are 800).
    assert max(asked.values()) <= 2 and sum(asked.values()) <= 2 * len(wanted), asked
    tokens = [r for r in front.requests if r.path == "/token"]
    assert len(tokens) <= 20


def test_a_failing_reference_leaves_files_old_or_new_and_modes_kept(
    catalog: Front, pin: Pin, tmp_path: Path
) -> None:
    """The registry breaks for one reference in the middle of the run: files holding only
    good references are pinned, those holding only the broken one are untouched, a file with
    both gets the good one pinned; nothing is half written and modes are kept."""
    catalog.add_fault(r"/chainguard/redis/_chainguard/history/", "status", count=-1,
                      status=500, after_auth=True)
    tree = write_tree(tmp_path, {
        "ok/Dockerfile": ("FROM <H>/chainguard/go:1.22\n",
                          "FROM <H>/chainguard/go:1.22<@chainguard/go:1.22>\n"),
        "broken/Dockerfile": ("FROM <H>/chainguard/redis:latest\n", None),
        "mixed/compose.yaml": (
            "services:\n  c:\n    image: <H>/chainguard/redis:latest\n"
            "  w:\n    image: <H>/chainguard/nginx:latest\n",
            "services:\n  c:\n    image: <H>/chainguard/redis:latest\n"
            "  w:\n    image: <H>/chainguard/nginx:latest<@chainguard/nginx:latest>\n",
        ),
    }, catalog.host, modes={"ok/Dockerfile": 0o600, "mixed/compose.yaml": 0o664,
                            "broken/Dockerfile": 0o444})
    result = pin(cwd=tmp_path)
    status(result, 1)
    assert tree.read() == tree.after
    assert (tmp_path / "broken/Dockerfile").stat().st_mtime_ns == OLD_MTIME_NS
    assert stat.S_IMODE((tmp_path / "ok/Dockerfile").stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "mixed/compose.yaml").stat().st_mode) == 0o664
    errors = error_lines(result)
    assert len(errors) == 1 and "chainguard/redis:latest" in errors[0] and "500" in errors[0]
    no_temporary_files(tmp_path)


def test_killed_while_writing_every_file_is_old_or_new(front: Front, pin: Pin,
                                                       tmp_path: Path) -> None:
    """SIGKILL as soon as the first file changes: each file holds its old or its new bytes."""
    catalog = bench_catalog()
    serve(front, catalog)
    files = spread_tree(tmp_path, front.host, files=400)
    old = {rel: fill(text, front.host, catalog).encode() for rel, (text, _) in files.items()}
    new = {rel: fill(want, front.host, catalog).encode() for rel, (_, want) in files.items()}
    for rel, data in old.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(data)
    watched = [tmp_path / rel for rel in sorted(old)]
    proc = subprocess.Popen([CONSOLE, "pin"], cwd=tmp_path, env=pin.env.env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120  # a ceiling against hangs; ends at the first write
        while proc.poll() is None and time.monotonic() < deadline:
            if any(p.stat().st_size != len(old[str(p.relative_to(tmp_path))])
                   for p in watched[:40]):
                break
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(timeout=10)
    states: Counter[str] = Counter()
    for rel in old:
        data = (tmp_path / rel).read_bytes()
        assert data in (old[rel], new[rel]), rel
        states["new" if data == new[rel] else "old"] += 1
    assert states["new"] >= 1, states


# --------------------------------------------------------------------------- pre-commit hook
HOOKS = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())


def hook_files(root: Path) -> list[str]:
    """What pre-commit hands the hook: tracked files whose path matches ``files``."""
    (hook,) = HOOKS
    pattern = re.compile(hook["files"])
    found = sorted(str(p.relative_to(root)) for p in root.rglob("*")
                   if p.is_file() and ".git" not in p.relative_to(root).parts)
    return [rel for rel in found if pattern.search(rel)]


def test_pre_commit_hook_fails_then_passes(catalog: Front, pin: Pin, tmp_path: Path) -> None:
    """The hook's entry with the files pre-commit would pass: 1 before pinning, 0 after."""
    (hook,) = HOOKS
    write_tree(tmp_path, {rel: TREE[rel] for rel in (
        "Dockerfile", "tools/Dockerfile.dev", "services/web/app.Dockerfile",
        "deploy/compose.yaml", "deploy/prod/docker-compose.prod.yml", "README.md",
        "scratch/Dockerfile")}, catalog.host)
    files = hook_files(tmp_path)
    assert "README.md" not in files and len(files) == 6
    entry = hook["entry"].split()
    assert entry[0] == "docker-cghistory"
    before = pin(*entry[2:], *files, cwd=tmp_path)
    status(before, 1)
    assert len(before.stdout.splitlines()) == 11
    status(pin(*files, cwd=tmp_path), 0)
    status(pin(*entry[2:], *files, cwd=tmp_path), 0)


def test_pre_commit_hook_passes_with_a_dockerignore_next_to_the_dockerfile(
    catalog: Front, pin: Pin, tmp_path: Path
) -> None:
    (hook,) = HOOKS
    write_tree(tmp_path, {
        "Dockerfile": ("FROM <H>/chainguard/go:1.22<@chainguard/go:1.22>\n", None),
        "Dockerfile.dockerignore": ("node_modules\n*.log\n", None),
    }, catalog.host)
    result = pin(*hook["entry"].split()[2:], *hook_files(tmp_path), cwd=tmp_path)
    status(result, 0)


@pytest.mark.parametrize("path", [
    "Dockerfile", "api/Dockerfile.prod", "web/app.Dockerfile", "Containerfile", "compose.yml",
    "deploy/docker-compose.ci.yaml", "compose.override.yaml", "README.md", "Makefile",
    "compose.json", "docs/Dockerfiles.txt",
    "dockerfile",
    "svc/app.dockerfile",
    "Dockerfile.dockerignore",
    "Dockerfile.d/README.md",
    "Dockerfile-prod", "svc/Dockerfile_ci", "Containerfile-arm64", "app.containerfile",
    "Dockerfile-prod.dockerignore", "Compose.yaml", "prod-Dockerfile.txt",
])
def test_the_hook_checks_exactly_what_pin_would_pin(path: str) -> None:
    """The hook's ``files`` must select what ``pin DIR`` selects by name, no more, no less."""
    from docker_cghistory.rewrite import kind_by_name

    (hook,) = HOOKS
    selected_by_pin = kind_by_name(os.path.basename(path)) is not None
    selected_by_hook = bool(re.search(hook["files"], path)) and not re.search(
        hook.get("exclude", "^$"), path)
    assert selected_by_hook == selected_by_pin


# --------------------------------------------------------------------------- known bugs
def test_update_of_a_digest_only_pin_never_switches_tags(catalog: Front, pin: Pin,
                                                         tmp_path: Path) -> None:
    path = tmp_path / "Dockerfile"
    path.write_text(f"FROM {catalog.host}/chainguard/python:3.12\n")
    older = CATALOG["chainguard/python"]["3.12"][5]
    status(pin("--digest-only", "--at", older[0], cwd=tmp_path), 0)
    digest_only = f"FROM {catalog.host}/chainguard/python@{older[1]}\n"
    assert path.read_text() == digest_only
    pin("--update", cwd=tmp_path)
    # Whatever --update does with a pin that names no tag, it must not be latest's build.
    assert newest("chainguard/python", "latest") not in path.read_text()


def test_the_dry_run_diff_applies_with_git_apply(catalog: Front, pin: Pin,
                                                 tmp_path: Path) -> None:
    tree = write_tree(tmp_path, {rel: TREE[rel] for rel in ("Dockerfile", "deploy/compose.yaml")},
                      catalog.host)
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run([*git, "init", "-q", "."], cwd=tmp_path, check=True)
    dry = pin("--dry-run", cwd=tmp_path)
    status(dry, 0)
    (tmp_path / "pin.diff").write_text(dry.stdout)
    applied = subprocess.run([*git, "apply", "pin.diff"], cwd=tmp_path, capture_output=True,
                             text=True, check=False)
    assert applied.returncode == 0, applied.stderr
    assert tree.read() == tree.after


def test_file_names_are_sanitized_on_stdout(catalog: Front, pin: Pin, tmp_path: Path) -> None:
    name = "Dockerfile.\x1b[31mred\x1b[0m"
    (tmp_path / name).write_text(f"FROM {catalog.host}/chainguard/go:1.22\n")
    check = pin("--check", cwd=tmp_path)
    status(check, 1)
    assert "\x1b" not in check.stdout


# ------------------------------------------------------------------ files pin must not write
def test_symlinks_out_of_the_tree_are_not_followed_and_secrets_never_printed(
    catalog: Front, pin: Pin, tmp_path: Path
) -> None:
    """``Dockerfile -> ../outside/Dockerfile``, a symlinked folder leading outside, and a
    ``Containerfile -> ~/.aws/credentials``: none is read or rewritten, the credentials never
    appear in the output; a symlink that stays inside the tree is pinned through."""
    host = catalog.host
    root, outside = tmp_path / "repo", tmp_path / "outside"
    (outside / "shared").mkdir(parents=True)
    outside_text = f"FROM {host}/chainguard/go:1.22\n"
    (outside / "Dockerfile").write_text(outside_text)
    (outside / "shared" / "compose.yaml").write_text(
        f"services:\n  a:\n    image: {host}/chainguard/redis:latest\n")
    secret = "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
    credentials = tmp_path / "home" / ".aws" / "credentials"
    credentials.parent.mkdir(parents=True)
    credentials.write_text(f"[default]\naws_access_key_id = AKIAIOSFODNN7EXAMPLE\n{secret}\n")
    tree = write_tree(root, {
        "base/Dockerfile": ("FROM <H>/chainguard/static\n",
                            "FROM <H>/chainguard/static:latest<@chainguard/static:latest>\n"),
    }, host)
    (root / "Dockerfile").symlink_to(Path("..", "outside", "Dockerfile"))
    (root / "shared").symlink_to(outside / "shared", target_is_directory=True)
    (root / "Containerfile").symlink_to(credentials)
    (root / "app.Dockerfile").symlink_to(Path("base", "Dockerfile"))

    check = pin("--check", cwd=root)
    for text in (check.stdout, check.stderr):
        assert "AKIA" not in text and "wJalr" not in text and "[default]" not in text
    status(check, 1)  # base/Dockerfile is not pinned yet
    explicit = pin("--check", "Containerfile", cwd=root)
    status(explicit, 2)
    assert explicit.stdout == "" and "AKIA" not in explicit.stderr
    assert explicit.stderr.strip().splitlines() == [explicit.stderr.strip()]

    result = pin(cwd=root)
    status(result, 0)
    assert tree.read() == tree.after
    assert (root / "app.Dockerfile").is_symlink()
    assert (outside / "Dockerfile").read_text() == outside_text
    assert "redis:latest@" not in (outside / "shared" / "compose.yaml").read_text()
    assert "wJalr" in credentials.read_text()
    skipped = [x.strip() for x in result.stderr.splitlines() if x.strip().startswith("skipped")]
    assert skipped == [
        f"skipped {name}: a symlink to a file outside the directory being pinned; not followed"
        for name in ("Containerfile", "Dockerfile")]
    assert "AKIA" not in result.stdout + result.stderr


def test_an_edit_made_while_references_resolve_is_kept(front: Front, pin: Pin,
                                                      tmp_path: Path) -> None:
    """The registry is slow; a line added to one file while pin waits on it is not lost: that
    file is refused (run again), the other is pinned, the exit status is 1."""
    serve(front, CATALOG)
    tree = write_tree(tmp_path, {
        "edited/Dockerfile": ("FROM <H>/chainguard/go:1.22\n", None),
        "other/Dockerfile": ("FROM <H>/chainguard/static:latest\n",
                             "FROM <H>/chainguard/static:latest<@chainguard/static:latest>\n"),
    }, front.host)
    front.set_latency(per_request_s=1.0)
    proc = subprocess.Popen([CONSOLE, "pin"], cwd=tmp_path, env=pin.env.env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120  # a ceiling against hangs; ends at the 1st request
        while not front.requests and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        with open(tmp_path / "edited/Dockerfile", "a") as handle:
            handle.write("RUN echo added while pin waited\n")
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 1, stderr
    assert (tmp_path / "edited/Dockerfile").read_bytes() == (
        tree.before["edited/Dockerfile"] + b"RUN echo added while pin waited\n")
    assert (tmp_path / "other/Dockerfile").read_bytes() == tree.after["other/Dockerfile"]
    errors = [x.strip() for x in stderr.decode().splitlines() if x.strip().startswith("error:")]
    assert errors == ["error: edited/Dockerfile: changed while pinning; run again"]
    assert "edited/Dockerfile" not in stdout.decode()
    no_temporary_files(tmp_path)


def test_hard_linked_and_read_only_files_are_refused_the_rest_pinned(
    catalog: Front, pin: Pin, tmp_path: Path
) -> None:
    root = tmp_path / "repo"
    tree = write_tree(root, {
        "linked/Dockerfile": ("FROM <H>/chainguard/go:1.22\n", None),
        "readonly/compose.yaml": ("services:\n  a:\n    image: <H>/chainguard/redis:latest\n",
                                  None),
        "ok/Dockerfile": ("FROM <H>/chainguard/static:latest\n",
                          "FROM <H>/chainguard/static:latest<@chainguard/static:latest>\n"),
    }, catalog.host, modes={"readonly/compose.yaml": 0o444})
    other_link = tmp_path / "elsewhere.Dockerfile"
    os.link(root / "linked/Dockerfile", other_link)

    for flag in ("--check", "--dry-run"):  # they write nothing, so they refuse nothing
        looked = pin(flag, cwd=root)
        status(looked, 1 if flag == "--check" else 0)
        assert error_lines(looked) == []

    result = pin(cwd=root)
    status(result, 1)
    assert tree.read() == tree.after
    assert other_link.read_bytes() == tree.before["linked/Dockerfile"]
    assert os.path.samefile(other_link, root / "linked/Dockerfile")
    assert stat.S_IMODE((root / "readonly/compose.yaml").stat().st_mode) == 0o444
    assert (root / "readonly/compose.yaml").stat().st_mtime_ns == OLD_MTIME_NS
    assert error_lines(result) == [
        "error: linked/Dockerfile: has 2 hard links, which would keep the old text; "
        "not written",
        "error: readonly/compose.yaml: read-only; not written",
    ]
    assert result.stdout.splitlines() == [
        f"ok/Dockerfile:1: {catalog.host}/chainguard/static:latest -> {catalog.host}/"
        f"chainguard/static:latest@{newest('chainguard/static', 'latest')}"]
    assert "1 reference pinned" in summary(result) and "2 failed" in summary(result)
    no_temporary_files(root)


def test_the_dry_run_diff_shows_no_raw_escape(catalog: Front, pin: Pin, tmp_path: Path) -> None:
    """A comment holding terminal escapes is shown escaped (\\x1b), as errors are."""
    text = (f"# \x1b]0;pwned\x07\x1b[2J\x9b1m\nFROM {catalog.host}/chainguard/go:1.22\n"
            "RUN echo\tdone\n")
    (tmp_path / "Dockerfile").write_text(text)
    dry = pin("--dry-run", cwd=tmp_path)
    status(dry, 0)
    assert "\x1b" not in dry.stdout and "\x07" not in dry.stdout and "\x9b" not in dry.stdout
    assert " # \\x1b]0;pwned\\x07\\x1b[2J\\x9b1m\n" in dry.stdout
    assert " RUN echo\tdone\n" in dry.stdout
    assert (tmp_path / "Dockerfile").read_text() == text


# --------------------------------------------------------------------------- one image, one build
def test_image_and_previous_through_the_docker_cli(catalog: Front, plugin_pin: Pin,
                                                   tmp_path: Path) -> None:
    """``--image python:latest --previous`` (a short name, read with the user's defaults)
    moves python:latest only; ``--digest`` with the 12 characters ``list`` shows pins that
    build; the other references stay as written."""
    host = catalog.host
    plugin_pin.env.env["CGHISTORY_REGISTRY"] = host
    history = CATALOG["chainguard/python"]["latest"]
    text = (f"FROM {host}/chainguard/python:latest AS app\n"
            f"FROM {host}/chainguard/python:3.12 AS other_tag\n"
            f"FROM {host}/chainguard/go:1.22\n")
    path = tmp_path / "Dockerfile"
    path.write_text(text)
    result = plugin_pin("--image", "python:latest", "--previous", cwd=tmp_path)
    status(result, 0)
    previous = f"{host}/chainguard/python:latest@{history[-2][1]}"
    assert path.read_text() == text.replace(f"{host}/chainguard/python:latest", previous)
    assert result.stdout.splitlines() == [
        f"Dockerfile:1: {host}/chainguard/python:latest -> {previous}"]
    assert summary(result).startswith("1 file scanned, 1 reference pinned, 0 updated, ")

    older = history[-5][1]
    result = plugin_pin("--image", "python:latest", "--digest", older[7:19], "--update",
                        cwd=tmp_path)
    status(result, 0)
    assert path.read_text() == text.replace(f"{host}/chainguard/python:latest",
                                            f"{host}/chainguard/python:latest@{older}")
    assert summary(result).startswith("1 file scanned, 0 references pinned, 1 updated")

    usage = plugin_pin("--previous", cwd=tmp_path)
    status(usage, 2)
    assert "exactly one --image IMAGE:TAG" in usage.stderr and usage.stdout == ""


def test_rollback_of_a_pin_a_bot_made(catalog: Front, pin: Pin, tmp_path: Path) -> None:
    """A bot pinned the newest (broken) build. Selecting the previous one says the file is
    pinned to another build and changes nothing; --check fails; --update moves it; then
    --check with the same selector passes, and without one too."""
    host = catalog.host
    history = CATALOG["chainguard/python"]["latest"]
    broken, good = history[-1][1], history[-2][1]
    compose = tmp_path / "compose.yaml"
    text = f"services:\n  app:\n    image: {host}/chainguard/python:latest@{broken}\n"
    compose.write_text(text)
    image = f"{host}/chainguard/python:latest"
    select = ("--image", image, "--previous")

    left = pin(*select, cwd=tmp_path)
    status(left, 0)
    assert compose.read_text() == text and left.stdout == ""
    assert summary(left) == ("1 file scanned, 0 references pinned, 0 updated, 0 already "
                             "pinned, 1 pinned to other builds, 0 skipped")
    assert left.stderr.splitlines()[-1] == ("  1 reference pinned to other builds than the "
                                            "selected one: --update moves it")

    check = pin("--check", *select, cwd=tmp_path)
    status(check, 1)
    assert check.stdout.splitlines() == [f"compose.yaml:3: {image}@{broken} -> {image}@{good}"]

    moved = pin("--update", *select, cwd=tmp_path)
    status(moved, 0)
    assert compose.read_text() == text.replace(broken, good)
    assert moved.stdout.splitlines() == [f"compose.yaml:3: {image}@{broken} -> {image}@{good}"]
    status(pin("--check", *select, cwd=tmp_path), 0)
    status(pin("--check", cwd=tmp_path), 0)  # no selector: pinned is pinned
    status(pin("--check", "--update", cwd=tmp_path), 1)  # but not to the newest build


@pytest.mark.parametrize("args", [("--check",), ()])
def test_check_with_no_file_found_fails(catalog: Front, plugin_pin: Pin, tmp_path: Path,
                                        args: tuple[str, ...]) -> None:
    (tmp_path / "README.md").write_text("FROM python\n")
    (tmp_path / "src").mkdir()
    result = plugin_pin(*args, cwd=tmp_path)
    status(result, 1)
    assert result.stdout == ""
    assert result.stderr.startswith("docker cghistory: no Dockerfile or compose file found in . ")
    assert len(result.stderr.splitlines()) == 1
    assert catalog.requests == []  # nothing to ask the registry


def test_variable_defaults_are_pinned_and_strict_fails_on_the_rest(
    catalog: Front, pin: Pin, tmp_path: Path
) -> None:
    host = catalog.host
    files = {
        "compose.yaml": (
            "services:\n"
            "  app:\n"
            "    image: ${APP_IMAGE:-<H>/chainguard/python:latest}\n"
            "  cache:\n"
            "    image: \"${CACHE_IMAGE-<H>/chainguard/redis}\"\n"
            "  custom:\n"
            "    image: ${CUSTOM_IMAGE}\n",
            "services:\n"
            "  app:\n"
            "    image: ${APP_IMAGE:-<H>/chainguard/python:latest<@chainguard/python:latest>}\n"
            "  cache:\n"
            "    image: \"${CACHE_IMAGE-<H>/chainguard/redis:latest<@chainguard/redis:latest>}\"\n"
            "  custom:\n"
            "    image: ${CUSTOM_IMAGE}\n",
        ),
        "Dockerfile-prod": ("ARG BASE\nFROM $BASE\n", None),
    }
    tree = write_tree(tmp_path, files, host)
    status(pin("--check", cwd=tmp_path), 1)
    pinned = pin(cwd=tmp_path)
    status(pinned, 0)
    assert tree.read() == tree.after
    assert summary(pinned) == ("2 files scanned, 2 references pinned, 0 updated, 0 already "
                               "pinned, 2 skipped")
    skipped = sorted(x.strip() for x in pinned.stderr.splitlines()[1:])
    assert skipped == [
        "skipped Dockerfile-prod:2: $BASE: build argument BASE has no default value",
        "skipped compose.yaml:7: ${CUSTOM_IMAGE}: uses variable interpolation: no default "
        "value to pin (write ${VAR:-IMAGE})",
    ]
    status(pin("--check", cwd=tmp_path), 0)
    strict = pin("--check", "--strict", cwd=tmp_path)
    status(strict, 1)
    assert error_lines(strict) == ["error: --strict: 2 skipped (listed above): a reference "
                                   "that cannot be pinned cannot be checked"]
    # docker compose reads the default we wrote: the pinned reference, variable kept.
    config = yaml.safe_load((tmp_path / "compose.yaml").read_text())
    assert config["services"]["app"]["image"].startswith("${APP_IMAGE:-")


def test_format_json_for_ci(catalog: Front, plugin_pin: Pin, tmp_path: Path) -> None:
    host = catalog.host
    history = CATALOG["chainguard/python"]["latest"]
    (tmp_path / "Dockerfile").write_text(
        f"FROM {host}/chainguard/python:latest@{history[-1][1]}\n"
        f"FROM {host}/chainguard/go:1.22\n"
        f"FROM {host}/chainguard/nothing-here:1\n")
    result = plugin_pin("--check", "--format", "json", "--cooldown", "2d", cwd=tmp_path)
    status(result, 1)
    objects = [json.loads(line) for line in result.stdout.splitlines()]
    go = CATALOG["chainguard/go"]["1.22"]
    then = [d for ts, d in history if parse_timestamp(ts) <= NOW - 2 * DAY][-1]
    go_then = [d for ts, d in go if parse_timestamp(ts) <= NOW - 2 * DAY][-1]
    assert [{k: o[k] for k in ("File", "Line", "Status", "New")} for o in objects] == [
        {"File": "Dockerfile", "Line": 1, "Status": "other-build",
         "New": f"{host}/chainguard/python:latest@{then}"},
        {"File": "Dockerfile", "Line": 2, "Status": "pinned",
         "New": f"{host}/chainguard/go:1.22@{go_then}"},
        {"File": "Dockerfile", "Line": 3, "Status": "failed", "New": None},
    ]
    assert "not found" in objects[2]["Reason"]
    assert objects[0]["Old"] == f"{host}/chainguard/python:latest@{history[-1][1]}"


@pytest.mark.parametrize("mode", [[], ["--update"], ["--check"], ["--update", "--check"],
                                  ["--dry-run"], ["--update", "--dry-run"],
                                  ["--format", "json"], ["--update", "--format", "json"]])
def test_on_one_pipe_the_references_come_first_and_the_summary_last(
        catalog: Front, pin: Pin, tmp_path: Path, mode: list[str]) -> None:
    """As a terminal, ``2>&1`` or a CI log shows them: stdout is block-buffered on a pipe, so
    pin must flush it before the summary, in every mode."""
    older = CATALOG["chainguard/static"]["latest"][-3][1]
    (tmp_path / "Dockerfile").write_text(f"FROM {catalog.host}/chainguard/go:1.22\n"
                                         f"FROM {catalog.host}/chainguard/static:latest@{older}\n")
    raw = subprocess.run([CONSOLE, "pin", *mode], env=pin.env.env, cwd=tmp_path,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60,
                         check=False)
    lines = raw.stdout.decode().splitlines()
    assert "Traceback" not in raw.stdout.decode()
    at = next(i for i, line in enumerate(lines) if line.startswith("1 file scanned, "))
    assert at > 0, lines  # a reference line (or the diff) before it
    assert all(line.startswith("  ") for line in lines[at + 1:]), lines  # then only the summary
    assert any("Dockerfile" in line for line in lines[:at]), lines
