"""``diff``'s arguments (commands/diff.py, its spec entry) and the default platform
(hostplatform.py): how OLD and NEW are read and placed, the full-reference form, the
errors, and the engine's answer over a real unix socket.

The registry side is a fake history; ``compare`` (which reads the builds) is replaced by a
recorder, so these check which builds the command chose and how it renders and exits.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import threading
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler
from socketserver import ThreadingMixIn, UnixStreamServer
from typing import Any

import pytest

from docker_cghistory import cli, hostplatform
from docker_cghistory.bisect import locate
from docker_cghistory.changes import ImageSize, PackageChanges, PackageVersion
from docker_cghistory.commands import diff
from docker_cghistory.diffreport import DiffReport, Side
from docker_cghistory.errors import SelectionError, UsageError
from docker_cghistory.history import Build
from docker_cghistory.platforms import Platform, local_platform
from docker_cghistory.reference import Reference, parse_cli
from tests.unit.terminal import Captured

NOW = datetime.now(timezone.utc)
DIGESTS = [f"sha256:{c * 64}" for c in "abcdef"]
BUILDS = [Build(NOW - timedelta(days=i, hours=1), d) for i, d in enumerate(DIGESTS)]


class FakeClient:
    credential = object()
    use_disk_cache = False

    def __init__(self) -> None:
        self.calls: list[dict] = []

    def history(self, reference: Reference, **kwargs: Any) -> list[Build]:
        self.calls.append(kwargs)
        last = kwargs.get("last")
        return BUILDS[:last] if last else list(BUILDS)


class FakeContext:
    default_registry, default_org, program = "cgr.dev", "chainguard", "docker cghistory"

    def __init__(self) -> None:
        self.clients: dict[str, FakeClient] = {}

    def parse(self, text: str) -> Reference:
        return parse_cli(text)

    def client(self, registry: str) -> FakeClient:
        return self.clients.setdefault(registry, FakeClient())


class Recorder:
    """Stands in for ``compare``: remembers what it was asked, answers ``differs``."""

    def __init__(self, identical: bool = False) -> None:
        self.identical = identical
        self.calls: list[tuple[diff.Named, diff.Named, Platform]] = []

    def __call__(self, old: diff.Named, new: diff.Named, contents: Any, platform: Platform,
                 **kwargs: Any) -> DiffReport:
        self.calls.append((old, new, platform))
        side = Side(old.index, old.digest, "sha256:" + "1" * 64, old.updated, "sbom",
                    ImageSize(10, 1))
        other = Side(new.index, new.digest, "sha256:" + ("1" if self.identical else "2") * 64,
                     new.updated, "sbom", ImageSize(20, 2))
        changes = PackageChanges() if self.identical else PackageChanges(
            added=(PackageVersion("zlib", "1.3"),))
        return DiffReport("img", str(platform), side, other, changes, (),
                          identical=self.identical)


@pytest.fixture
def recorder(monkeypatch: pytest.MonkeyPatch) -> Recorder:
    found = Recorder()
    monkeypatch.setattr(diff, "compare", found)
    return found


def args(*words: str) -> argparse.Namespace:
    command, namespace = cli.parse(["diff", *words], "docker cghistory")
    assert command.name == "diff"
    return namespace


def run(*words: str, context: FakeContext | None = None) -> tuple[int, Captured]:
    streams = Captured()
    code = diff.run(args(*words), context or FakeContext(), streams)  # type: ignore[arg-type]
    return code, streams


def test_defaults_compare_the_previous_build_with_the_newest(recorder: Recorder) -> None:
    context = FakeContext()
    code, streams = run("python", "--platform", "linux/arm64/v8", context=context)
    assert code == 0
    old, new, platform = recorder.calls[0]
    assert (old.index, old.digest, new.index, new.digest) == (1, DIGESTS[1], 0, DIGESTS[0])
    assert old.updated == BUILDS[1].timestamp
    assert str(platform) == "linux/arm64"
    assert context.clients["cgr.dev"].calls == [{"last": 2}]  # only the newest two are read
    assert "zlib" in streams.out


@pytest.mark.parametrize(("old", "new", "expected"), [
    ("4", "2", (4, 2)),
    ("dddddd", "0", (3, 0)),  # a hex prefix with a letter
    ("sha256:eeeeee", "bbbbbbb", (4, 1)),
    ((NOW - timedelta(days=2)).strftime("%Y-%m-%dT%H:%M:%SZ"), "0", (2, 0)),
    ("3d", "1", (3, 1)),  # an age: the build current three days ago
])
def test_old_and_new_are_read_as_bisect_reads_a_build(recorder: Recorder, old: str, new: str,
                                                       expected: tuple[int, int]) -> None:
    context = FakeContext()
    assert run("python", old, new, "--platform", "linux/amd64", context=context)[0] == 0
    got_old, got_new, _ = recorder.calls[0]
    assert (got_old.index, got_new.index) == expected
    assert got_old.digest == DIGESTS[expected[0]]
    both_indexes = old.isdigit() and new.isdigit()
    assert context.clients["cgr.dev"].calls == ([{"last": max(expected) + 1}] if both_indexes
                                                 else [{}])


@pytest.mark.parametrize("text", ["not-a-build", "sha256:xyz", ""])
def test_an_unreadable_build_is_the_usage_error_bisect_gives(recorder: Recorder,
                                                             text: str) -> None:
    with pytest.raises(UsageError) as ours:
        run("python", text, "--platform", "linux/amd64")
    with pytest.raises(UsageError) as bisects:
        locate(BUILDS, text, None, NOW)
    assert str(ours.value) == str(bisects.value).replace("--good", "OLD")
    assert recorder.calls == []


@pytest.mark.parametrize("text", ["17", "ffffff0"])
def test_a_build_the_history_lacks_is_the_error_bisect_gives(recorder: Recorder,
                                                            text: str) -> None:
    with pytest.raises(SelectionError) as ours:
        run("python", "1", text, "--platform", "linux/amd64")
    with pytest.raises(SelectionError) as bisects:
        locate(BUILDS, "5", text, NOW)
    assert str(ours.value) == str(bisects.value).replace("--bad", "NEW")


def test_two_full_references_need_no_history(recorder: Recorder) -> None:
    context = FakeContext()
    first = f"docker.io/library/alpine@{DIGESTS[0]}"
    second = f"docker.io/library/alpine:3.20@{DIGESTS[1]}"
    assert run(first, second, "--platform", "linux/amd64", context=context)[0] == 0
    old, new, _ = recorder.calls[0]
    assert (old.digest, new.digest) == (DIGESTS[0], DIGESTS[1])
    assert old.index is None and old.updated is None and new.index is None
    assert old.reference.registry == "docker.io"
    assert all(client.calls == [] for client in context.clients.values())


@pytest.mark.parametrize("words", [
    [f"python@{DIGESTS[0]}"],
    [f"python@{DIGESTS[0]}", "1"],
    [f"python@{DIGESTS[0]}", f"python@{DIGESTS[1]}", "0"],
])
def test_a_full_reference_needs_a_second_one(recorder: Recorder, words: list[str]) -> None:
    with pytest.raises(UsageError):
        run(*words, "--platform", "linux/amd64")
    assert recorder.calls == []


@pytest.mark.parametrize("words", [
    ["python", "--platform", "linux"],
    ["python", "--format", "yaml"],
    ["python", "1", "0", "2"],
])
def test_bad_options_are_usage_errors(recorder: Recorder, words: list[str]) -> None:
    with pytest.raises(UsageError):
        run(*words)
    assert recorder.calls == []


def test_exit_code_judges_the_platform_image(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(diff, "compare", Recorder(identical=False))
    assert run("python", "--platform", "linux/amd64", "--exit-code")[0] == 1
    assert run("python", "--platform", "linux/amd64")[0] == 0
    monkeypatch.setattr(diff, "compare", Recorder(identical=True))
    code, streams = run("python", "--platform", "linux/amd64", "--exit-code", "-q")
    assert (code, streams.out) == (0, "")


def test_formats(recorder: Recorder) -> None:
    document = json.loads(run("python", "--platform", "linux/amd64", "--format", "json")[1].out)
    assert document["Packages"]["Added"] == [{"Name": "zlib", "Version": "1.3"}]
    markdown = run("python", "--platform", "linux/amd64", "--format", "markdown")[1].out
    assert "| zlib |  | 1.3 |" in markdown
    assert run("python", "--platform", "linux/amd64", "-q")[1].out == "zlib\n"


def test_without_platform_the_engine_is_asked(recorder: Recorder,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hostplatform, "host_platform",
                        lambda *a, **k: Platform("linux", "s390x"))
    run("python")
    assert str(recorder.calls[0][2]) == "linux/s390x"


# --- hostplatform ---------------------------------------------------------------------------


class _Engine(ThreadingMixIn, UnixStreamServer):
    daemon_threads = True


def _engine(path: str, answer: bytes, status: int = 200) -> _Engine:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.server.paths.append(self.path)  # type: ignore[attr-defined]
            self.send_response(status)
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def address_string(self) -> str:
            return "engine"

        def log_message(self, *args: Any) -> None:
            pass

    server = _Engine(path, Handler)
    server.paths = []  # type: ignore[attr-defined]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def test_the_engine_answers_over_its_unix_socket(tmp_path) -> None:
    path = str(tmp_path / "docker.sock")
    server = _engine(path, json.dumps({"Os": "linux", "Arch": "arm64", "Version": "28"}).encode())
    try:
        environ = {"DOCKER_HOST": f"unix://{path}"}
        assert hostplatform.host_platform(environ) == Platform("linux", "arm64")
        assert server.paths == ["/version"]  # type: ignore[attr-defined]
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("answer", [b"not json", b"[]", b'{"Os": 1}'])
def test_a_garbled_engine_answer_falls_back_to_this_machine(tmp_path, answer: bytes) -> None:
    path = str(tmp_path / "docker.sock")
    server = _engine(path, answer)
    try:
        assert hostplatform.host_platform({"DOCKER_HOST": f"unix://{path}"}) == local_platform()
    finally:
        server.shutdown()
        server.server_close()


def test_an_engine_that_never_answers_costs_the_timeout_only(tmp_path) -> None:
    path = str(tmp_path / "silent.sock")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(1)  # accepts, never answers
    try:
        found = hostplatform.in_background({"DOCKER_HOST": f"unix://{path}"}, timeout=0.2)
        assert found() == local_platform()
    finally:
        listener.close()


@pytest.mark.parametrize("environ", [
    {"DOCKER_HOST": "unix:///nonexistent/docker.sock"},
    {"DOCKER_HOST": "ssh://user@host"},
    {"DOCKER_HOST": "tcp://127.0.0.1:1", "DOCKER_TLS_VERIFY": "1"},
    {"DOCKER_CONTEXT": "no-such-context"},
])
def test_no_engine_to_ask_means_this_machine(environ: dict[str, str]) -> None:
    assert hostplatform.host_platform(environ) == local_platform()


def test_only_plain_addresses_are_asked() -> None:
    assert hostplatform.engine_host({"DOCKER_HOST": "unix:///run/docker.sock"}) \
        == "unix:///run/docker.sock"
    assert hostplatform.engine_host({"DOCKER_HOST": "tcp://10.0.0.1:2375"}) \
        == "tcp://10.0.0.1:2375"
    assert hostplatform.engine_host({"DOCKER_HOST": "tcp://10.0.0.1:2376",
                                     "DOCKER_TLS_VERIFY": "1"}) is None
    assert hostplatform.engine_host({"DOCKER_HOST": "ssh://me@box"}) is None
    assert hostplatform.engine_host({}) == "unix:///var/run/docker.sock"
    assert "docker" not in {name.split(".")[0] for name in _imported_by_engine_host()}


def _imported_by_engine_host() -> set[str]:
    """Modules a fresh interpreter imports to find and ask the engine (docker-py must not be
    among them for a plain socket)."""
    import subprocess
    import sys

    code = ("import sys; from docker_cghistory import hostplatform; "
            "hostplatform.host_platform({'DOCKER_HOST': 'unix:///nonexistent.sock'}); "
            "print('\\n'.join(sys.modules))")
    found = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           check=True, env=dict(os.environ))
    return set(found.stdout.split())


def test_layer_progress_is_one_line_redrawn_then_erased() -> None:
    streams = Captured(tty=True)
    progress = diff._LayerProgress(streams)
    progress(1_500_000)
    progress(10)  # within the redraw interval: counted, not drawn
    assert progress.total == 1_500_010
    progress.done()
    assert streams.err.count("reading image layers") == 1
    assert "1.5 MB" in streams.err
    assert streams.err.endswith("\r\x1b[2K") and "\n" not in streams.err
    quiet = Captured()
    diff._LayerProgress(quiet).done()
    assert quiet.err == ""
