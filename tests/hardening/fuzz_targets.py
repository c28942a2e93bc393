"""Fuzz targets: raw bytes in; a ``CghistoryError`` is the only exception allowed out.

Each target takes what an attacker controls, as bytes, through the same code the tool runs,
and checks a few invariants on what is accepted. ``scripts/fuzz.py`` drives them with atheris
(coverage-guided) or, where atheris is not installed, with hypothesis; ``test_properties``
runs them briefly in CI.

- ``history_json``: an HTTP body from the tag-history API (``Answer.json`` then
  ``history.parse_page``), then the paged read over a registry that always sends that page;
- ``dockerfile_rewrite`` / ``compose_rewrite``: a file's bytes through ``rewrite.rewrite``
  with every reference pinned; accepted files must keep every byte outside the references and
  be left as they are by a second pin;
- ``reference_text``: a reference typed on the command line or written in a file;
- ``time_text``: a ``--since``/``--at``/``--cooldown`` value.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path

from docker_cghistory import history, rewrite
from docker_cghistory.complete import core
from docker_cghistory.errors import CghistoryError
from docker_cghistory.reference import DIGEST_RE, parse_cli, parse_docker
from docker_cghistory.registry import Answer
from docker_cghistory.timespec import parse_age, parse_when

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=timezone.utc)
DIGEST = "sha256:" + "0123456789abcdef" * 4
REGISTRY = "fuzz.example"
CORPUS = Path(__file__).resolve().parents[1] / "corpus" / "pin"


def history_json(data: bytes) -> None:
    try:
        payload = Answer(200, {}, data, "https://fuzz.example/").json("tag history", REGISTRY)
        builds = history.parse_page(payload, REGISTRY, NOW)
    except CghistoryError:
        return
    for build in builds:
        assert DIGEST_RE.match(build.digest), build
        assert build.updated.utcoffset() == timedelta(0), build
    merged = history.merge([builds, builds[::-1]])
    assert merged == sorted(set(builds), reverse=True)
    if history.is_full(builds):
        # A registry that sends this page whatever the window: the read ends, one way or another.
        calls = [0]

        def same(_: history.Window) -> list[history.Build]:
            calls[0] += 1
            assert calls[0] < 200, "paged read does not end"
            return list(builds)

        def sequential(function, items):  # type: ignore[no-untyped-def]
            return [function(item) for item in items]

        with contextlib.suppress(CghistoryError):
            history.read_all(history.bounded(same), sequential, history.Window(None, None), NOW)


def _outside(text: str, sites: list[rewrite.Site]) -> list[str]:
    pieces, previous = [], 0
    for site in sorted(sites, key=lambda s: s.start):
        pieces.append(text[previous : site.start])
        previous = site.end
    pieces.append(text[previous:])
    return pieces


def _pin(site: rewrite.Site) -> str:
    return rewrite.pinned_text(site.text, DIGEST)


def _rewrite(path: str, kind: str, data: bytes) -> None:
    try:
        new, sites, _ = rewrite.rewrite(path, data, _pin, kind)
    except CghistoryError:
        return
    if new == data:
        return
    before, after = data.decode("utf-8"), new.decode("utf-8")
    again, _ = rewrite.find_sites(path, new, kind)
    assert _outside(before, sites) == _outside(after, again), "bytes outside references changed"
    twice, _, _ = rewrite.rewrite(path, new, _pin, kind)
    assert twice == new, "a second pin changed the file"


def dockerfile_rewrite(data: bytes) -> None:
    _rewrite("Dockerfile", rewrite.DOCKERFILE, data)


def compose_rewrite(data: bytes) -> None:
    _rewrite("compose.yaml", rewrite.COMPOSE, data)


def reference_text(data: bytes) -> None:
    text = data.decode("utf-8", "replace")
    for parser in (parse_cli, parse_docker):
        try:
            reference = parser(text)
        except CghistoryError:
            continue
        assert str(reference).isascii(), reference
        assert parser(str(reference)) == reference, (text, reference)
        if parser is parse_cli and reference.digest is None:
            # Completion keys its cache with a light copy of the parser: they must agree.
            light = core.split_reference(text, "cgr.dev", "chainguard")
            assert light is not None, text
            assert (light[0], light[1], light[2] or "latest") == (
                reference.registry, reference.repository, reference.tag_or_latest), (text, light)


def time_text(data: bytes) -> None:
    text = data.decode("utf-8", "replace")
    try:
        moment = parse_when(text, NOW)
    except CghistoryError:
        pass
    else:
        assert moment.start.utcoffset() == moment.end.utcoffset() == timedelta(0), text
        assert moment.start <= moment.end, text
    try:
        age = parse_age(text)
    except CghistoryError:
        pass
    else:
        assert age >= timedelta(0), text


TARGETS: dict[str, Callable[[bytes], None]] = {
    "history_json": history_json,
    "dockerfile_rewrite": dockerfile_rewrite,
    "compose_rewrite": compose_rewrite,
    "reference_text": reference_text,
    "time_text": time_text,
}


def seeds(name: str) -> list[bytes]:
    """Starting inputs: real shapes the fuzzer mutates (the pin corpus, history pages)."""
    if name == "history_json":
        entries = [{"updateTimestamp": f"2025-01-{day:02d}T02:00:00.{day:03d}Z",
                    "digest": "sha256:" + f"{day:02x}" * 32} for day in range(1, 8)]
        legacy = [{"UpdateTimestamp": e["updateTimestamp"], "Digest": e["digest"]}
                  for e in entries]
        full = [{"updateTimestamp": f"2024-{1 + i // 600:02d}-01T00:00:00Z".replace(
            "T00:00", f"T{i % 24:02d}:{i % 60:02d}"), "digest": "sha256:" + f"{i:064x}"}
            for i in range(1000)]
        return [json.dumps({"history": entries}).encode(),
                json.dumps({"history": legacy}).encode(),
                json.dumps({"history": full}).encode(),
                b'{"history": []}', b'{"errors": [{"code": "DENIED"}]}']
    if name in ("dockerfile_rewrite", "compose_rewrite"):
        folder = CORPUS / ("dockerfile" if name == "dockerfile_rewrite" else "compose")
        found = [path.read_bytes() for path in sorted(folder.glob("*.in"))]
        return found or [b"FROM python:3.12\n"]
    if name == "reference_text":
        return [b"python", b"python:3.12", b"cgr.dev/chainguard/python:latest",
                b"localhost:5000/a/b:c@" + DIGEST.encode(), b"[::1]:5000/x", b"foo.com/org/x"]
    return [b"2024-06-01", b"2024-06-01T09:30:00.123+02:00", b"7d", b"90m", b"now", b"2w"]
