"""Hostile answers: a registry that lies, floods, loops, injects or redirects elsewhere.

Everything here runs the real command line against the project's front (or, where the front
cannot misbehave that way, a few lines of a stdlib server) and checks the issue's contract:
refused in one line that names the problem, never a raw escape byte on the terminal, never an
endless loop, never memory without bound, and never a credential sent to another host.
"""

from __future__ import annotations

import base64
import json
import sys
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from docker_cghistory import history as history_module
from docker_cghistory.registry import MAX_BODY, MAX_TIMEOUTS
from tests.support.front import Front, fake_digest, format_timestamp, make_history, parse_timestamp
from tests.support.services import Builds, DockerConfig, Dockerd, Registry

from .helpers import (
    ESC,
    Run,
    add_repo,
    assert_clean,
    assert_one_line_error,
    hard_config,
    history_fault_path,
    run_completion,
    run_tool,
    scope_query,
)

pytestmark = pytest.mark.integration

NOW = datetime.now(timezone.utc).replace(microsecond=0)
GOOD_DIGEST = fake_digest("hostile", 0)
GOOD_TS = format_timestamp(NOW - timedelta(days=3))
SIX = make_history(6, NOW - timedelta(days=10), seed="hostile-six")
# A ceiling against hangs, not a performance bound: every run here ends in seconds (the drip,
# the slowest, in about 9 s; any run took up to 20 s with a load of 17 on 2 cores); one still
# running then is killed and fails as a hang.
CEILING_S = 300.0


def _page(*entries: dict[str, Any]) -> str:
    return json.dumps({"history": list(entries)})


def _entry(digest: Any = GOOD_DIGEST, stamp: Any = GOOD_TS) -> dict[str, Any]:
    return {"updateTimestamp": stamp, "digest": digest}


class QuietServer(ThreadingHTTPServer):
    """A stdlib server that does not print a traceback when a client hangs up mid-answer."""

    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], OSError):
            super().handle_error(request, client_address)


# --------------------------------------------------------------------------- hostile bodies
MARKER_NAME = "cghistory-was-here"
# (id, body, words the one-line refusal names)
BAD_DIGESTS = [
    ("uppercase hex", "sha256:" + "A" * 64),
    ("63 hex", "sha256:" + "a" * 63),
    ("65 hex", "sha256:" + "a" * 65),
    ("sha512", "sha512:" + "a" * 128),
    ("no algorithm", "a" * 64),
    ("empty", ""),
    ("not hex", "sha256:" + "g" * 64),
    ("trailing newline", "sha256:" + "a" * 64 + "\n"),
    ("ANSI colour", "sha256:" + "a" * 64 + "\x1b[31m"),
    ("OSC title", "\x1b]0;owned\x07sha256:" + "a" * 64),
    ("command substitution", f"sha256:$(touch {MARKER_NAME})"),
    ("backticks", f"sha256:`touch {MARKER_NAME}`"),
    ("semicolon", "sha256:" + "a" * 64 + f";touch {MARKER_NAME}"),
    ("path", "../../../../etc/passwd"),
    ("fullwidth digits", "sha256:" + "\uff11" * 64),
    ("zero-width space", "sha256:" + "a" * 64 + "\u200b"),
    ("a number", 12345),
    ("null", None),
    ("a list", ["sha256:" + "a" * 64]),
    ("an object", {"sha256": "a" * 64}),
]
BAD_TIMESTAMPS = [
    ("before 2000", "1999-12-31T23:59:59Z"),
    ("year 1", "0001-01-01T00:00:00Z"),
    ("year 9999", "9999-12-31T23:59:59Z"),
    ("three days ahead", format_timestamp(NOW + timedelta(days=3))),
    ("February 30", "2024-02-30T00:00:00Z"),
    ("hour 25", "2024-01-01T25:00:00Z"),
    ("leap second", "2016-12-31T23:59:60Z"),
    ("offset 24h", "2024-01-01T00:00:00+24:00"),
    ("overflows on conversion", "9999-12-31T23:59:59-23:59"),
    ("no date", "T12:00:00Z"),
    ("epoch number", 1_700_000_000),
    ("float", 1.5),
    ("NaN", float("nan")),
    ("null", None),
    ("empty", ""),
    ("with ESC", "2024-01-01T00:00:00Z\x1b[2J"),
]
BAD_SHAPES = [
    ("array", "[]"),
    ("string", '"history"'),
    ("number", "7"),
    ("null", "null"),
    ("history null", '{"history": null}'),
    ("history object", '{"history": {}}'),
    ("history string", '{"history": "sha256:..."}'),
    ("entry null", '{"history": [null]}'),
    ("entry list", json.dumps({"history": [[GOOD_TS, GOOD_DIGEST]]})),
    ("no timestamp", _page({"digest": GOOD_DIGEST})),
    ("no digest", _page({"updateTimestamp": GOOD_TS})),
    ("wrong key case", json.dumps({"History": [_entry()]})),
]
NOT_JSON = [
    ("4300+ digit number", '{"history": [{"digest": ' + "9" * 5000 + "}]}"),
    ("deep nesting", "[" * 200_000 + "]" * 200_000),
    ("deep objects", '{"a":' * 100_000 + "1" + "}" * 100_000),
    ("truncated JSON", '{"history": [{"updateTimestamp": "2024-'),
    ("binary", b"\x00\xff\xfe garbage\x1b[2J"),
    ("invalid UTF-8", b'{"history": [{"digest": "\xff\xfe"}]}'),
    ("HTML with ESC", "<html><title>\x1b[31mError\x1b[0m</title></html>"),
]

BODY_CASES = (
    [(f"digest: {name}", _page(_entry(digest=value)), ("invalid history", "invalid digest"))
     for name, value in BAD_DIGESTS]
    + [(f"timestamp: {name}", _page(_entry(stamp=value)), ("invalid history", "timestamp"))
       for name, value in BAD_TIMESTAMPS]
    + [(f"shape: {name}", body, ("invalid history",)) for name, body in BAD_SHAPES]
    + [(f"not JSON: {name}", body, ("instead of JSON",)) for name, body in NOT_JSON]
)


@pytest.fixture(scope="module")
def body_runs(front: Front, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Run]:
    """Every hostile body served to ``list`` (each in a repository of its own), all at once."""
    base = tmp_path_factory.mktemp("bodies")
    jobs = []
    for index, (name, body, _) in enumerate(BODY_CASES):
        repo = f"hostile/body{index:03d}"
        reference = add_repo(front, repo, SIX)
        front.add_fault(history_fault_path(repo), "body", count=-1, after_auth=True, body=body)
        config = hard_config(base / f"c{index}")
        work = base / f"w{index}"
        work.mkdir()
        jobs.append((name, config.env, reference, work))

    def run(job: tuple[str, dict[str, str], str, Path]) -> tuple[str, Run]:
        name, env, reference, work = job
        return name, run_tool(env, "list", "-q", reference, cwd=work, timeout=CEILING_S)

    with ThreadPoolExecutor(max_workers=12) as pool:
        results = dict(pool.map(run, jobs))
    for _, _, _, work in jobs:  # nothing a digest said was ever executed
        assert not (work / MARKER_NAME).exists()
    assert not Path(MARKER_NAME).exists()
    return results


@pytest.mark.parametrize(("name", "words"), [(name, words) for name, _, words in BODY_CASES])
def test_hostile_history_bodies_are_refused_in_one_line(
    body_runs: dict[str, Run], name: str, words: tuple[str, ...]
) -> None:
    run = body_runs[name]
    assert_one_line_error(run, *words)  # and not killed at the ceiling
    assert run.stdout == ""


def test_bodies_that_look_odd_but_are_valid_are_accepted(front: Front, tmp_path: Path) -> None:
    """Extra keys, the early key spelling, mixed spellings, long fractions: all fine."""
    entries = [
        {"updateTimestamp": "2024-01-01T00:00:00Z", "digest": fake_digest("ok", 1), "x": [1]},
        {"UpdateTimestamp": "2024-01-02T00:00:00.1Z", "Digest": fake_digest("ok", 2)},
        {"updateTimestamp": "2024-01-03T00:00:00.123456789Z", "Digest": fake_digest("ok", 3)},
        {"updateTimestamp": "2024-01-04T01:00:00+01:00", "digest": fake_digest("ok", 4)},
    ]
    reference = add_repo(front, "hostile/odd-valid", SIX)
    front.add_fault(history_fault_path("hostile/odd-valid"), "body", count=-1, after_auth=True,
                    body=json.dumps({"history": entries[::-1], "extra": {"nested": True}}))
    run = run_tool(hard_config(tmp_path / "c").env, "list", "-q", reference, cwd=tmp_path)
    assert_clean(run)
    assert run.returncode == 0, run.describe()
    assert run.stdout.split() == [fake_digest("ok", i) for i in (4, 3, 2, 1)]


def test_a_hostile_digest_never_reaches_the_bisect_command(
    front: Front, registry: Registry, builds: Builds, dockerd: Dockerd, tmp_path: Path
) -> None:
    """bisect substitutes digests into a command: a digest with shell syntax must never get
    that far, even when the user's command goes through a shell."""
    reference = add_repo(front, "hostile/bisect", builds.history, registry=registry,
                         builds=builds)
    evil = [[ts, d] for ts, d in builds.history]
    evil[-2][1] = f"sha256:$(touch {tmp_path}/{MARKER_NAME})"
    front.add_fault(history_fault_path("hostile/bisect"), "body", count=-1, after_auth=True,
                    body=json.dumps({"history": [{"updateTimestamp": ts, "digest": d}
                                                 for ts, d in evil]}))
    config = hard_config(tmp_path / "c", dockerd)
    run = run_tool(config.env, "bisect", reference, "--good", "3", "--", "sh", "-c",
                   f"touch {tmp_path}/ran; echo {{}}", cwd=tmp_path)
    assert_one_line_error(run, "invalid history", "invalid digest")
    assert not (tmp_path / MARKER_NAME).exists() and not (tmp_path / "ran").exists()


def test_completion_offers_nothing_from_a_hostile_history(front: Front, tmp_path: Path) -> None:
    """A digest with escapes must not reach the shell's completion list (nor the cache)."""
    reference = add_repo(front, "hostile/complete", SIX)
    body = _page(*[_entry(digest=GOOD_DIGEST + "\x1b[31m")] * 3)
    front.add_fault(history_fault_path("hostile/complete"), "body", count=-1, after_auth=True,
                    body=body)
    config = hard_config(tmp_path / "c")
    # A test budget, so that the hostile page is read even on a loaded machine.
    run = run_completion(config.env, "__complete", "cghistory", "pull", reference, "--digest",
                         "", cwd=tmp_path)
    assert_clean(run)
    assert _history_requests(front, "hostile/complete") >= 1, "the history was never read"
    assert run.returncode == 0 and run.stdout.splitlines() == [":36"], run.describe()
    for path in (config.cache / "docker-cghistory").rglob("*"):
        # Not the key: 32 random bytes, of which one is 0x1b one time in 9.
        if path.is_file() and path.name != "key":
            assert b"\x1b" not in path.read_bytes(), path


# --------------------------------------------------------------------------- size limits
MEMORY_LIMIT_KB = 160 * 1024  # a list run needs ~55 MiB; 8 MiB of body may cost a few times that


@pytest.mark.parametrize(
    ("where", "options", "words"),
    [
        ("history", {"kind": "endless"}, ("more than", str(MAX_BODY))),
        ("history", {"kind": "endless", "length": 10**12}, ("1000000000000 bytes",)),
        ("history", {"kind": "endless", "length": MAX_BODY + 1}, (str(MAX_BODY + 1),)),
        ("history", {"kind": "body", "body": " " * (MAX_BODY + 10)}, ("refus",)),
        ("token", {"kind": "endless"}, ("more than", str(MAX_BODY))),
    ],
    ids=["chunked, never ends", "Content-Length 1 TB", "Content-Length limit+1",
         "9 MiB body", "token endpoint never ends"],
)
def test_bodies_past_the_limit_are_refused_without_exhausting_memory(
    front: Front, tmp_path: Path, where: str, options: dict[str, Any], words: tuple[str, ...]
) -> None:
    repo = f"hostile/size-{abs(hash(json.dumps(options, default=str))) % 10**6}"
    reference = add_repo(front, repo, SIX)
    kind = options.pop("kind")
    if where == "token":
        front.token_fault(kind, count=-1, **options)
    else:
        front.add_fault(history_fault_path(repo), kind, count=-1, after_auth=True, **options)
    run = run_tool(hard_config(tmp_path / "c").env, "list", "-q", reference, cwd=tmp_path,
                   timeout=CEILING_S)
    assert_one_line_error(run, *words)  # an endless body read for ever would be killed
    assert run.maxrss_kb < MEMORY_LIMIT_KB, run.describe()


def test_a_body_dripping_one_byte_at_a_time_is_bounded(front: Front, tmp_path: Path) -> None:
    """Every byte arrives within the read timeout, so only a bound on the whole answer stops a
    server that takes minutes to send a page."""
    reference = add_repo(front, "hostile/drip", SIX)
    body = json.dumps({"history": [{"updateTimestamp": ts, "digest": d} for ts, d in SIX]})
    # A byte every 0.5 s, well inside the 5 s read timeout even when the machine is loaded:
    # ~375 s for the page.
    drip = front.add_fault(history_fault_path("hostile/drip"), "drip", count=-1,
                           after_auth=True, body=body, interval=0.5)
    config = hard_config(tmp_path / "c", CGHISTORY_TIMEOUT="5")
    # Two attempts of registry.ANSWER_TIMEOUTS (4) read timeouts each: about 41 s. The ceiling
    # is far above that, and below one page: a client that waits for the page is killed.
    run = run_tool(config.env, "list", "-q", reference, cwd=tmp_path, timeout=200)
    assert_one_line_error(run, "timed out", f"({MAX_TIMEOUTS} attempts)")
    assert drip.hits == MAX_TIMEOUTS, drip.hits


# --------------------------------------------------------------------------- endless histories
def _same_page(count: int = 1000) -> str:
    start = NOW - timedelta(days=400)
    return _page(*[_entry(fake_digest("same", i), format_timestamp(start + timedelta(hours=i)))
                   for i in range(count)])


def _history_requests(front: Front, repo: str) -> int:
    return sum(1 for r in front.requests if r.path.startswith(f"/v2/{repo}/_chainguard/"))


@pytest.mark.parametrize("command", ["list", "list -n 5", "pin", "complete"])
def test_a_server_ignoring_start_and_end_does_not_loop(front: Front, tmp_path: Path,
                                                       command: str) -> None:
    """Always the same full page of 1000 records, whatever the window: refused, few requests."""
    repo = f"hostile/same-{command.replace(' ', '').replace('-', '')}"
    reference = add_repo(front, repo, SIX)
    front.add_fault(history_fault_path(repo), "body", count=-1, after_auth=True,
                    body=_same_page())
    config = hard_config(tmp_path / "c")
    (tmp_path / "Dockerfile").write_text(f"FROM {reference}\n")
    args = {"list": ["list", "-q", reference], "list -n 5": ["list", "-n", "5", reference],
            "pin": ["pin", str(tmp_path)],
            "complete": ["__complete", "cghistory", "pull", reference, "--digest", ""]}[command]
    run = (run_completion if command == "complete" else run_tool)(config.env, *args,
                                                                   cwd=tmp_path)
    assert_clean(run)
    assert _history_requests(front, repo) >= 1, "the history was never read"
    if command == "complete":
        assert run.returncode == 0 and run.stdout.splitlines() == [":36"], run.describe()
    elif command == "pin":
        assert run.returncode == 1 and "same full page" in run.stderr, run.describe()
        assert (tmp_path / "Dockerfile").read_text() == f"FROM {reference}\n"
    else:
        assert_one_line_error(run, "same full page")
    assert _history_requests(front, repo) <= 70, _history_requests(front, repo)


def test_a_remembered_window_plan_does_not_loop_either(front: Front, tmp_path: Path) -> None:
    """A second listing fetches remembered windows at once; a server that then ignores start and
    end is refused just the same."""
    repo = "hostile/same-planned"
    big = make_history(2500, NOW - timedelta(hours=2) * 2501, timedelta(hours=2), seed="plan")
    reference = add_repo(front, repo, big)
    config = hard_config(tmp_path / "c")
    first = run_tool(config.env, "list", "-q", reference, cwd=tmp_path)
    assert first.returncode == 0 and len(first.stdout.split()) == 2500, first.describe()
    assert list((config.cache / "docker-cghistory" / "plans").iterdir())
    front.reset_log()
    front.add_fault(history_fault_path(repo), "body", count=-1, after_auth=True,
                    body=_same_page())
    again = run_tool(config.env, "list", "-q", reference, cwd=tmp_path)
    assert_one_line_error(again, "same full page")
    assert _history_requests(front, repo) <= 20


class CreepingRegistry:
    """An open registry whose history never ends: every page is 1000 records from ``start``
    (``overlap``: 999 records before it and one after), so each page moves on a little and a
    client that follows full pages reads for ever."""

    def __init__(self, overlap: bool) -> None:
        self.overlap = overlap
        self.requests = 0
        self.lock = threading.Lock()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                with owner.lock:
                    owner.requests += 1
                split = urlsplit(self.path)
                if split.path in ("/v2", "/v2/"):
                    body = b"{}"
                else:
                    query = parse_qs(split.query)
                    start = (parse_timestamp(query["start"][0]) if "start" in query
                             else datetime(2020, 1, 1, tzinfo=timezone.utc))
                    first = start - timedelta(seconds=998) if owner.overlap else start
                    body = json.dumps({"history": [
                        {"updateTimestamp": format_timestamp(first + timedelta(seconds=i)),
                         "digest": fake_digest("creep", int(first.timestamp()) + i)}
                        for i in range(1000)]}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = QuietServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.mark.parametrize("overlap", [False, True], ids=["advancing", "overlapping"])
def test_a_history_that_never_ends_is_cut_off(tmp_path: Path, overlap: bool) -> None:
    server = CreepingRegistry(overlap)
    try:
        run = run_tool(hard_config(tmp_path / "c").env, "list", "-q",
                       f"{server.host}/creep/forever:latest", cwd=tmp_path, timeout=120)
    finally:
        server.close()
    assert_one_line_error(run, "stopping")
    limit = history_module.MAX_RECORDS // 1000 + 2 * 8 + 70  # the cap, in-flight, windows
    assert server.requests <= limit, (server.requests, run.describe())
    assert run.maxrss_kb < MEMORY_LIMIT_KB * 2, run.describe()  # killed at 120 s if endless


# --------------------------------------------------------------------------- malformed HTTP
def _gzip_bomb(size: int = 1 << 30) -> bytes:
    """``size`` zero bytes, gzip-compressed (about a thousandth of it)."""
    import zlib

    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    block = b"\0" * (1 << 20)
    return b"".join(packer.compress(block) for _ in range(size >> 20)) + packer.flush()


def _raw(status_and_headers: str, body: bytes = b"") -> bytes:
    return status_and_headers.replace("\n", "\r\n").encode("latin-1") + b"\r\n" + body


MALFORMED = {
    "not HTTP": b"SSH-2.0-OpenSSH_9.6\r\n",
    "garbage status line": _raw("HTTP/1.1 abc\n"),
    "101 headers": _raw("HTTP/1.1 200 OK\n" + "".join(f"X-H{i}: v\n" for i in range(101))),
    "70 KB header line": _raw("HTTP/1.1 200 OK\nX-Long: " + "a" * 70_000 + "\n"),
    "Location not UTF-8": _raw("HTTP/1.1 302 Found\nLocation: /v2/\x9b\xff\x1b[2J\n"
                               "Content-Length: 0\n"),
    "bad chunk size": _raw("HTTP/1.1 200 OK\nTransfer-Encoding: chunked\n", b"zz\r\nabc\r\n"),
    "negative Content-Length": _raw("HTTP/1.1 200 OK\nContent-Length: -5\n", b"{}"),
    "two Content-Lengths": _raw("HTTP/1.1 200 OK\nContent-Length: 2\nContent-Length: 9\n",
                                b"{}"),
    "gzip garbage": _raw("HTTP/1.1 200 OK\nContent-Encoding: gzip\nContent-Length: 9\n",
                         b"notgzip!!"),
    "gzip bomb (1 GiB of zeros)": b"",  # filled in by the test (costs a second to build)
}


class RawServer:
    """Answers every connection with the same bytes, whatever was asked."""

    def __init__(self, answer: bytes) -> None:
        import socket

        self.answer = answer
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.stop = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            threading.Thread(target=self._answer, args=(conn,), daemon=True).start()

    def _answer(self, conn: Any) -> None:
        with conn:
            try:
                conn.settimeout(5)
                conn.recv(65536)
                conn.sendall(self.answer)
            except OSError:
                pass

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.sock.getsockname()[1]}"

    def close(self) -> None:
        self.stop.set()
        self.sock.close()


def test_malformed_http_answers_fail_in_one_line(tmp_path: Path) -> None:
    """Broken status lines, header floods, bad framing and compression bombs: one line each,
    quickly, and the bomb is not inflated into memory."""
    cases = dict(MALFORMED)
    cases["gzip bomb (1 GiB of zeros)"] = _raw(
        "HTTP/1.1 200 OK\nContent-Encoding: gzip\nContent-Type: application/json\n"
        f"Content-Length: {len(bomb := _gzip_bomb())}\n", bomb)
    servers = {name: RawServer(answer) for name, answer in cases.items()}

    def run(name: str) -> tuple[str, Run]:
        config = hard_config(tmp_path / f"c{abs(hash(name))}")
        return name, run_tool(config.env, "list", "-q", f"{servers[name].host}/raw/x:latest",
                              cwd=tmp_path, timeout=CEILING_S)

    try:
        with ThreadPoolExecutor(max_workers=len(cases)) as pool:
            results = dict(pool.map(run, cases))
    finally:
        for server in servers.values():
            server.close()
    for name, result in results.items():
        assert_one_line_error(result), name  # and not killed at the ceiling
        assert result.maxrss_kb < MEMORY_LIMIT_KB, (name, result.describe())


# --------------------------------------------------------------------------- escape sequences
EVIL = "\x1b]0;owned\x07\x1b[2J\x1b[31mEVIL\x1b[0m\x9b31m\r\n"
ESC_CASES = [
    ("500 JSON error", {"kind": "status", "status": 500,
                        "body": json.dumps({"errors": [{"code": EVIL, "message": EVIL}]})}),
    ("403 JSON error", {"kind": "status", "status": 403,
                        "body": json.dumps({"errors": [{"code": "DENIED", "message": EVIL}]})}),
    ("404 JSON error", {"kind": "status", "status": 404,
                        "body": json.dumps({"errors": [{"code": "NOT_FOUND", "message": EVIL}]})}),
    ("400 plain text", {"kind": "status", "status": 400, "body": EVIL,
                        "content_type": "text/plain"}),
    ("502 HTML page", {"kind": "html", "status": 502, "body": f"<html>{EVIL}</html>"}),
    ("200 HTML page", {"kind": "html", "status": 200, "body": f"<html>{EVIL}</html>"}),
    ("503 Retry-After", {"kind": "status", "status": 503, "retry_after": "\x1b[2J 1"}),
    ("redirect Location", {"kind": "redirect", "location": f"http://127.0.0.1:9/{EVIL}"}),
    ("token error", {"kind": "status", "status": 401, "body": json.dumps({"details": EVIL}),
                     "where": "token"}),
    ("token with ESC", {"kind": "body", "body": json.dumps({"token": "\x1b[31mtok"}),
                        "where": "token"}),
    ("token not JSON", {"kind": "nonjson", "body": EVIL, "where": "token"}),
]


def test_escape_sequences_from_the_server_never_reach_the_terminal(
    front: Front, tmp_path: Path
) -> None:
    """Error bodies, headers and tokens full of terminal escapes: stderr holds no ESC byte (nor
    a C1 CSI), with and without --debug (whose log and traceback show every request)."""
    jobs = []
    for index, (name, spec), debug in [(i, case, debug) for debug in (False, True)
                                        for i, case in enumerate(ESC_CASES)]:
        spec = dict(spec)
        repo = f"hostile/esc{int(debug)}{index:02d}"
        reference = add_repo(front, repo, SIX)
        kind = spec.pop("kind")
        if spec.pop("where", "history") == "token":
            front.add_fault(r"^/token$", kind, count=-1, query_regex=scope_query(repo), **spec)
        else:
            front.add_fault(history_fault_path(repo), kind, count=-1, **spec)
        jobs.append((name, reference, hard_config(tmp_path / f"c{int(debug)}{index}"), debug))

    def run(job: tuple[str, str, DockerConfig, bool]) -> tuple[tuple[str, bool], Run]:
        name, reference, config, debug = job
        args = ["list", "-q", reference] + (["--debug"] if debug else [])
        return (name, debug), run_tool(config.env, *args, cwd=tmp_path, timeout=60)

    with ThreadPoolExecutor(max_workers=len(jobs)) as pool:
        results = dict(pool.map(run, jobs))
    for (name, debug), result in results.items():
        assert result.returncode != 0, (name, result.describe())
        assert ESC not in result.stderr and "\x9b" not in result.stderr, (name, result.describe())
        assert "EVIL" not in result.stderr and "owned" not in result.stderr, (name,
                                                                                result.describe())
        if not debug:
            assert_one_line_error(result)


# --------------------------------------------------------------------------- redirects
class Recorder:
    """A server on another address that records every request's headers."""

    def __init__(self, host: str, answer: bytes) -> None:
        self.seen: list[tuple[str, str, dict[str, str]]] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                owner.seen.append((self.command, self.path, dict(self.headers.items())))
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            do_POST = do_HEAD = do_GET

        self.server = QuietServer((host, 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def recorders() -> Iterator[list[Recorder]]:
    answer = _page(_entry()).encode()
    made = [Recorder("127.0.0.2", answer), Recorder("127.0.0.1", answer)]
    yield made
    for recorder in made:
        recorder.close()


SECRET_HEADERS = ("authorization", "proxy-authorization", "cookie")
USER, PASSWORD, IDENTITY = "hostile-user", "hostile-PASS-7d1e", "hostile-IDTOK-51aa"


@pytest.mark.parametrize("credential", ["auths", "identitytoken"])
@pytest.mark.parametrize("what", ["history", "token"])
def test_a_redirect_to_another_host_carries_no_credentials(
    front: Front, tmp_path: Path, recorders: list[Recorder], what: str, credential: str
) -> None:
    """The registry (or its token endpoint) redirects to another address, or another port of
    the same one: the request arrives there without Authorization, and nothing secret in it."""
    repo = f"hostile/redirect-{what}-{credential}"
    reference = add_repo(front, repo, SIX, public=False,
                         users={USER: {"password": PASSWORD}},
                         identity_tokens={IDENTITY: USER})
    config = hard_config(tmp_path / "c")
    host = front.host
    entry = ({"auth": base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()}
             if credential == "auths" else {"identitytoken": IDENTITY})
    config.write({"auths": {host: entry}})
    for recorder in recorders:
        target = f"{recorder.url}/elsewhere/{what}?x=1"
        if what == "token":
            front.token_fault("redirect", count=1, location=target,
                              status=307 if credential == "identitytoken" else 302)
        else:
            front.add_fault(history_fault_path(repo), "redirect", count=1, after_auth=True,
                            location=target)
        run_tool(config.env, "list", "-q", reference, "--debug", cwd=tmp_path)
    for recorder in recorders:
        assert recorder.seen, f"{recorder.url} was never reached"
        for method, path, headers in recorder.seen:
            lowered = {k.lower(): v for k, v in headers.items()}
            for name in SECRET_HEADERS:
                assert name not in lowered, (recorder.url, method, path, headers)
            flat = json.dumps([path, headers])
            for secret in (PASSWORD, IDENTITY, base64.b64encode(f"{USER}:{PASSWORD}".encode())
                           .decode(), front.token_prefix or "\0"):
                assert secret not in flat, (recorder.url, headers)


def test_hostile_redirect_loop_is_bounded(front: Front, tmp_path: Path) -> None:
    """A history that redirects to itself for ever ends in one line, quickly."""
    repo = "hostile/redirect-loop"
    reference = add_repo(front, repo, SIX)
    loop = front.add_fault(history_fault_path(repo), "redirect", count=-1, after_auth=True,
                           location=f"{front.url}/v2/{repo}/_chainguard/history/latest")
    run = run_tool(hard_config(tmp_path / "c").env, "list", "-q", reference, cwd=tmp_path)
    assert_one_line_error(run, "loop")
    # One attempt: the request and the redirects requests follows (30), not 5 retries of it.
    assert loop.hits <= 31, loop.hits

