"""Faults x commands: every command recovers within its retry budget or fails with one line.

The matrix runs each fault of ``FAULTS`` against each command of ``COMMANDS`` (list, pull,
pin, completion through ``__complete``, bisect), once as a transient fault (the server
recovers after ``count`` bad answers) and once as a persistent one (it never does), against
the project's front with a real registry and dockerd behind it. Every case has a repository of
its own, so the faults are scoped to it and all cases run at once: a full matrix costs about
as long as its slowest case, not their sum.

What each case asserts (``check``):
- a recovered command gives exactly the answer it gives without faults (the listing, the
  pulled reference, the pinned file, the candidates, the bisect result);
- a failed command exits non-zero with ONE line on stderr naming the cause, leaves no ESC byte
  and no traceback, and ``pin`` leaves the file byte for byte as it was, with no temporary file;
- completion answers with either the right candidates or none, after exactly ONE request
  to the faulty endpoint (it never retries);
- the attempts are the retry budget's, counted at the front: a transient fault is met exactly
  ``count`` times, a persistent one ``MAX_ATTEMPTS`` times (``MAX_TIMEOUTS`` for a hang), a
  fault that is not retried once. That, not the wall clock, is what bounds a case; a process
  still running at ``CASE_CEILING_S`` is killed and fails as a hang.

Completion runs with a 60 s registry budget here (``helpers.run_completion``): with its real
1 s, a loaded machine can spend the second before the request reaches the front, and the case
then tests nothing. The real budget is tested by
``test_completion_serves_stale_candidates_when_the_registry_is_down`` and the concurrency test.

``HARDENING_REPORT=FILE`` writes the matrix as Markdown (docs/RELIABILITY.md quotes it).
"""

from __future__ import annotations

import json
import os
import random
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from docker_cghistory.registry import MAX_ATTEMPTS, MAX_TIMEOUTS
from tests.support.front import Front, history_from_digests, make_history
from tests.support.services import Builds, Dockerd, Registry

from .helpers import (
    Run,
    add_repo,
    assert_clean,
    assert_one_line_error,
    hard_config,
    history_fault_path,
    run_completion,
    run_tool,
    scope_query,
    start_tool,
)

pytestmark = pytest.mark.integration

COMMANDS = ("list", "pull", "pin", "complete", "bisect")
WORKERS = 16
# A ceiling against hangs only, not a performance bound: a command takes at most about 21 s
# (a hang: 2 x 10 s), a completion about 60 s (its test budget, when the registry hangs); with
# a load of 17 on 2 cores the slowest took 67 s. A process still running at the ceiling is
# killed, and the case fails as a hang.
CASE_CEILING_S = 300.0


@dataclass(frozen=True)
class Fault:
    """One misbehaviour of the front; ``words`` are what the one-line error must name."""

    name: str
    kind: str
    where: str = "history"  # history | token
    options: tuple[tuple[str, Any], ...] = ()
    transient: int | None = 2  # bad answers before recovery; None: no transient variant
    retried: bool = True  # within the retry budget (else even one bad answer fails)
    words: tuple[str, ...] = ()
    persistent: bool = True  # run a never-recovering variant too
    big: bool = False  # needs a history of several pages

    def kwargs(self) -> dict[str, Any]:
        return dict(self.options)


FAULTS = (
    Fault("429 with Retry-After", "status", options=(("status", 429), ("retry_after", 1)),
          words=("HTTP 429",)),
    Fault("429 without Retry-After", "status", options=(("status", 429),),
          words=("HTTP 429",)),
    Fault("429 Retry-After 120 s", "status", options=(("status", 429), ("retry_after", 120)),
          transient=1, retried=False, persistent=False, words=("throttling", "120")),
    Fault("500", "status", options=(("status", 500),), transient=1, retried=False,
          persistent=False, words=("HTTP 500",)),
    Fault("502", "status", options=(("status", 502),), words=("HTTP 502",)),
    Fault("503", "status", options=(("status", 503),), words=("HTTP 503",)),
    Fault("504", "status", options=(("status", 504),), words=("HTTP 504",)),
    Fault("connection reset", "reset", words=("reset",)),
    Fault("accepts, never answers", "hang", transient=1, words=("timed out",)),
    Fault("truncated body", "truncate", options=(("after_auth", True),), transient=1,
          words=("unreachable",)),
    Fault("HTML error page (502)", "html", options=(("status", 502),), words=("HTTP 502",)),
    Fault("HTML page (200)", "html", transient=1, retried=False, persistent=False,
          words=("HTML page",)),
    Fault("non-JSON body (200)", "nonjson", options=(("after_auth", True),), transient=1,
          retried=False, persistent=False, words=("instead of JSON",)),
    Fault("token endpoint 503", "status", where="token", options=(("status", 503),),
          words=("token", "HTTP 503")),
    Fault("token endpoint 500", "status", where="token", options=(("status", 500),),
          transient=1, retried=False, persistent=False, words=("token", "HTTP 500")),
    Fault("token endpoint reset", "reset", where="token", words=("token", "reset")),
    Fault("token endpoint hangs", "hang", where="token", transient=1,
          words=("token", "timed out")),
    Fault("token endpoint non-JSON", "nonjson", where="token", transient=1, retried=False,
          persistent=False, words=("token", "instead of JSON")),
    # The first page is answered, then every token is invalidated: later pages meet a 401.
    Fault("token expires mid-read", "expire", options=(("after_auth", True),),
          transient=1, persistent=False, big=True),
)


@dataclass
class Case:
    slug: str
    fault: Fault
    command: str
    variant: str  # transient | persistent
    repo: str = ""
    reference: str = ""
    expected: dict[str, Any] = field(default_factory=dict)
    run: Run | None = None
    outcome: str = ""  # recovered | failed | no candidates | candidates
    problem: str | None = None
    injected: Any = None  # the front's Fault: how often it fired
    token_requests: int = 0

    @property
    def id(self) -> str:
        return f"{self.command}-{self.variant}-{self.fault.name}"

    @property
    def count(self) -> int:
        return -1 if self.variant == "persistent" else int(self.fault.transient or 1)

    @property
    def expect_recovery(self) -> bool:
        return self.variant == "transient" and self.fault.retried


def _cases() -> list[Case]:
    cases = []
    for fault in FAULTS:
        variants = ([("transient")] if fault.transient else []) + (
            ["persistent"] if fault.persistent else [])
        for variant in variants:
            for command in COMMANDS:
                cases.append(Case(f"c{len(cases):03d}", fault, command, variant))
    return cases


CASES = _cases()


# --------------------------------------------------------------------------- one case
def _good_script(digest: str) -> str:
    return f"import sys; sys.exit(0 if sys.argv[1].endswith({digest!r}) else 1)"


def _arguments(case: Case, workdir: Path) -> list[str]:
    ref = case.reference
    if case.command == "list":
        return ["list", "-q", ref]
    if case.command == "pull":
        return ["pull", ref, "--index", "1"]
    if case.command == "pin":
        return ["pin", str(workdir)]
    if case.command == "complete":
        return ["__complete", "cghistory", "pull", ref, "--digest", ""]
    if case.command == "bisect":
        good = case.expected["good"]
        # --keep: every case pulls the same six images (under names of its own), and one
        # case removing them while another pulls the same content races inside dockerd.
        # Removal after a bisect is tested in tests/integration/test_bisect.py.
        return ["bisect", ref, "--good", "2", "--bad", "0", "--keep", "--",
                sys.executable, "-c", _good_script(good), "{}"]
    raise AssertionError(case.command)


def _install_fault(front: Front, case: Case) -> None:
    fault = case.fault
    options = fault.kwargs()
    if fault.where == "token":
        case.injected = front.add_fault(r"^/token$", fault.kind, count=case.count,
                                        query_regex=scope_query(case.repo), **options)
    else:
        case.injected = front.add_fault(history_fault_path(case.repo), fault.kind,
                                        count=case.count, **options)


def _check(case: Case, workdir: Path) -> None:
    """Judge one finished case: sets ``outcome``, raises AssertionError on a broken contract."""
    run = case.run
    assert run is not None
    assert_clean(run)
    assert case.injected is not None and case.injected.hits >= 1, (
        f"the fault never fired\n{run.describe()}")
    hits, attempts = case.injected.hits, _attempts(case)
    assert hits == attempts, (
        f"the faulty endpoint was asked {hits} times, expected {attempts}\n{run.describe()}")
    if case.fault.kind == "expire" and case.command in ("list", "bisect"):
        # Later pages met the expiry and a new token was fetched mid-read.
        assert case.token_requests >= 2, f"{case.token_requests} token requests"
    expected = case.expected
    if case.command == "complete":
        assert run.returncode == 0, run.describe()
        lines = run.stdout.splitlines()
        assert lines and re.fullmatch(r":\d+", lines[-1]), run.describe()
        values = [line.split("\t")[0] for line in lines[:-1]]
        assert values in ([], expected["candidates"]), run.describe()
        assert run.stderr == "", run.describe()
        case.outcome = "candidates" if values else "no candidates"
        return
    if case.command == "pin":
        dockerfile = workdir / "Dockerfile"
        leftovers = sorted(p.name for p in workdir.iterdir() if p.name != "Dockerfile")
        assert not leftovers, f"temporary files left: {leftovers}\n{run.describe()}"
        content = dockerfile.read_bytes()
        if run.returncode == 0:
            assert content == expected["pinned"], run.describe()
            case.outcome = "recovered"
        else:
            assert content == expected["original"], f"file changed\n{run.describe()}"
            # pin reports per file: the summary line, then one error line naming the cause.
            errors = [line for line in run.error_lines if line.lstrip().startswith("error:")]
            assert len(errors) == 1 and len(run.error_lines) == 2, run.describe()
            for word in case.fault.words:
                assert word.lower() in errors[0].lower(), f"{word!r} not named\n{run.describe()}"
            assert run.returncode == 1, run.describe()
            case.outcome = "failed"
        _expect(case)
        return
    if run.returncode == 0:
        if case.command == "list":
            assert run.stdout == expected["listing"], run.describe()
        elif case.command == "pull":
            assert run.stdout.splitlines()[-1] == expected["pulled"], run.describe()
        elif case.command == "bisect":
            assert f"first bad build: {expected['first_bad']}" in run.stdout, run.describe()
        case.outcome = "recovered"
    else:
        assert_one_line_error(run, *case.fault.words)
        case.outcome = "failed"
    _expect(case)


def _attempts(case: Case) -> int:
    """How often the front must see the faulty request: the retry budget, counted."""
    if case.command == "complete":
        return 1  # one attempt, never a retry
    if case.variant == "transient":
        return case.count  # retried until the fault is spent (or not retried: 1)
    if case.fault.kind == "hang":
        return MAX_TIMEOUTS
    return MAX_ATTEMPTS


def _expect(case: Case) -> None:
    if case.expect_recovery:
        assert case.outcome == "recovered", (
            f"a transient fault was not survived\n{case.run.describe() if case.run else ''}")
    else:
        assert case.outcome == "failed", (
            f"expected a one-line failure\n{case.run.describe() if case.run else ''}")


# --------------------------------------------------------------------------- the matrix
@dataclass
class Matrix:
    cases: dict[str, Case]
    seconds: float


def _prepare(case: Case, front: Front, registry: Registry, builds: Builds, big: list[list[str]],
             workdir: Path) -> None:
    case.repo = f"hardening/{case.slug}"
    history = big if case.fault.big else builds.history
    case.reference = add_repo(front, case.repo, history, registry=registry, builds=builds)
    newest_first = [digest for _, digest in reversed(history)]
    name = f"{front.host}/{case.repo}"
    case.expected = {
        "listing": "".join(f"{digest}\n" for digest in newest_first),
        "pulled": f"{name}@{newest_first[1]}",
        "candidates": newest_first[:500],
        "good": newest_first[2],
        "first_bad": f"{name}@{newest_first[1]}",
        "original": f"FROM {case.reference}\n".encode(),
        "pinned": f"FROM {case.reference}@{newest_first[0]}\n".encode(),
    }
    if case.command == "pin":
        (workdir / "Dockerfile").write_bytes(case.expected["original"])
    _install_fault(front, case)


def _run_case(case: Case, env: dict[str, str], workdir: Path, front: Front) -> None:
    run = run_completion if case.command == "complete" else run_tool
    case.run = run(env, *_arguments(case, workdir), cwd=workdir, timeout=CASE_CEILING_S)
    scope = f"repository:{case.repo}:pull"
    case.token_requests = sum(1 for r in front.requests
                              if r.path == "/token" and scope in r.query.get("scope", []))
    try:
        _check(case, workdir)
    except AssertionError as error:
        case.problem = str(error)


def _big_history(builds: Builds) -> list[list[str]]:
    """2500 builds (three pages): synthetic ones, then the six real ones as the newest."""
    real = history_from_digests(builds.digests, step=timedelta(hours=1))
    oldest_real = datetime.fromisoformat(real[0][0].replace("Z", "+00:00"))
    synthetic = make_history(2494, oldest_real - timedelta(hours=2) * 2495, timedelta(hours=2),
                             seed="hardening-big")
    return synthetic + real


@pytest.fixture(scope="module")
def matrix(front: Front, registry: Registry, builds: Builds, dockerd: Dockerd,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[Matrix]:
    base = tmp_path_factory.mktemp("faults")
    big = _big_history(builds)
    jobs = []
    for case in CASES:
        home = base / case.slug
        config = hard_config(home / "client", dockerd)
        workdir = home / "work"
        workdir.mkdir(parents=True)
        _prepare(case, front, registry, builds, big, workdir)
        jobs.append((case, config.env, workdir, front))
    started = time.monotonic()
    order = list(jobs)
    random.Random(7).shuffle(order)  # slow cases spread over the pool
    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        list(pool.map(lambda job: _run_case(*job), order))
    result = Matrix({case.id: case for case in CASES}, time.monotonic() - started)
    report = os.environ.get("HARDENING_REPORT")
    if report:
        Path(report).write_text(render_report(result))
    yield result
    front.reset()


def render_report(matrix: Matrix) -> str:
    """The fault x command table: outcome and wall-clock seconds of every case."""
    rows = []
    for fault in FAULTS:
        for variant in ("transient", "persistent"):
            cells = []
            for command in COMMANDS:
                case = matrix.cases.get(f"{command}-{variant}-{fault.name}")
                if case is None:
                    break
                verdict = case.outcome + (" **FAIL**" if case.problem else "")
                seconds = case.run.seconds if case.run else float("nan")
                cells.append(f"{verdict} ({seconds:.1f} s)")
            else:
                count = "×1" if variant == "transient" and fault.transient == 1 else (
                    f"×{fault.transient}" if variant == "transient" else "always")
                rows.append(f"| {fault.name} | {fault.where} | {count} | " + " | ".join(cells)
                            + " |")
    header = ("| fault | where | bad answers | " + " | ".join(COMMANDS) + " |\n"
              "| --- | --- | --- | " + " | ".join("---" for _ in COMMANDS) + " |\n")
    survived = sum(1 for c in matrix.cases.values() if c.outcome == "recovered")
    failed = sum(1 for c in matrix.cases.values() if c.outcome == "failed")
    empty = sum(1 for c in matrix.cases.values() if c.outcome == "no candidates")
    broken = sum(1 for c in matrix.cases.values() if c.problem)
    slowest = max(c.run.seconds for c in matrix.cases.values() if c.run)
    problems = "".join(f"\n### {case.id}\n\n```\n{case.problem}\n```\n"
                       for case in matrix.cases.values() if case.problem)
    return (header + "\n".join(rows) + "\n\n"
            f"{len(matrix.cases)} cases in {matrix.seconds:.1f} s ({WORKERS} at a time); "
            f"{survived} recovered, {failed} failed with one line, {empty} completions answered "
            f"nothing within the budget, {broken} broke the contract; slowest case "
            f"{slowest:.1f} s.\n" + problems)


@pytest.mark.parametrize("case_id", [case.id for case in CASES])
def test_fault_matrix(matrix: Matrix, case_id: str) -> None:
    case = matrix.cases[case_id]
    assert case.problem is None, case.problem


# --------------------------------------------------------------------------- beyond the matrix
def test_completion_serves_stale_candidates_when_the_registry_is_down(
    front: Front, builds: Builds, tmp_path: Path
) -> None:
    """A cached build list older than its TTL is still served when the refresh fails, and the
    real 1 s budget holds: the read timeout is raised to 10 min, so a completion that waited on
    the registry instead of its budget would be killed at the ceiling (3 min), however loaded
    the machine is."""
    reference = add_repo(front, "hardening/stale", builds.history)
    config = hard_config(tmp_path / "client")
    words = ["__complete", "cghistory", "pull", reference, "--digest", ""]
    # Filling the cache needs the registry: a test budget, so load cannot leave it empty.
    first = run_completion(config.env, *words, cwd=tmp_path)
    expected = [digest for _, digest in reversed(builds.history)]
    assert [line.split("\t")[0] for line in first.stdout.splitlines()[:-1]] == expected
    for path in (config.cache / "docker-cghistory" / "complete").rglob("*"):
        if path.is_file():
            os.utime(path, (time.time() - 3600, time.time() - 3600))
    history = front.add_fault(history_fault_path("hardening/stale"), "hang", count=-1)
    token = front.token_fault("hang", count=-1)
    again = run_tool(dict(config.env, CGHISTORY_TIMEOUT="600"), *words, cwd=tmp_path,
                     timeout=180)
    assert_clean(again)  # not killed: it did not wait for the 600 s read timeout
    assert again.returncode == 0, again.describe()
    assert [line.split("\t")[0] for line in again.stdout.splitlines()[:-1]] == expected
    assert history.hits + token.hits <= 1, "completion retried"  # 0: load spent the budget


def test_pull_fails_in_one_line_when_the_engine_cannot_fetch_the_build(
    front: Front, registry: Registry, builds: Builds, dockerd: Dockerd, tmp_path: Path
) -> None:
    """The history reads fine, then the registry fails the engine's own download."""
    name = "hardening/engine-pull"
    reference = add_repo(front, name, builds.history, registry=registry, builds=builds)
    front.add_fault(f"^/v2/{re.escape(name)}/manifests/sha256:", "status", status=500, count=-1)
    config = hard_config(tmp_path / "client", dockerd)
    run = run_tool(config.env, "pull", reference, "--index", "1", cwd=tmp_path,
                   timeout=CASE_CEILING_S)
    assert_one_line_error(run, "500")


def test_plugin_path_fails_in_one_line(front: Front, builds: Builds, tmp_path: Path) -> None:
    """Through the docker CLI (``docker cghistory``) the failure is still exactly one line."""
    reference = add_repo(front, "hardening/plugin", builds.history)
    config = hard_config(tmp_path / "client")
    installed = config.cghistory("install", "--dir", str(config.plugins_dir))
    assert installed.returncode == 0, installed.stderr
    fault = front.add_fault(history_fault_path("hardening/plugin"), "status", status=500,
                            count=-1)
    result = config.run("docker", "cghistory", reference, timeout=CASE_CEILING_S)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 1, result
    assert len(lines) == 1 and "HTTP 500" in lines[0], result.stderr
    assert "\x1b" not in result.stderr
    assert fault.hits == 1, f"a 500 is not retried, yet it was asked {fault.hits} times"


# --------------------------------------------------------------------------- pin is atomic
PIN_FILES = 200


def _pin_tree(root: Path, reference: str) -> dict[Path, bytes]:
    originals = {}
    for index in range(PIN_FILES):
        folder = root / f"svc{index:03d}"
        folder.mkdir(parents=True)
        # Every file differs (comments, CRLF, a BOM) so a mix-up would show.
        newline = "\r\n" if index % 3 == 0 else "\n"
        bom = "\ufeff" if index % 7 == 0 else ""
        text = (f"{bom}# service {index}{newline}FROM {reference} AS base{newline}"
                f"RUN echo {index}{newline}" + f"# padding {'x' * (index * 13 % 4000)}{newline}")
        (folder / "Dockerfile").write_bytes(text.encode())
        originals[folder / "Dockerfile"] = text.encode()
    return originals


@pytest.mark.parametrize("how", ["SIGKILL", "SIGINT"])
def test_pin_never_leaves_a_file_half_written(front: Front, builds: Builds, tmp_path: Path,
                                              how: str) -> None:
    """Interrupted at random moments, every file is either exactly as it was or fully pinned."""
    reference = add_repo(front, f"hardening/atomic-{how.lower()}", builds.history)
    newest = builds.history[-1][1]
    config = hard_config(tmp_path / "client")
    rng = random.Random(how)
    kills = 0
    # Interrupt 5 runs. Under load a run can finish before it is struck: such a trial still
    # checks the files, and another is started (at most 20).
    for trial in range(20):
        if kills >= 5:
            break
        root = tmp_path / f"tree{trial}"
        originals = _pin_tree(root, reference)
        proc = start_tool(config.env, ["pin", str(root)], root, subprocess.DEVNULL,
                          subprocess.PIPE)
        # Wait until the first file is pinned (the write phase), then strike at a random point.
        deadline = time.monotonic() + 120  # a ceiling against hangs; ends on the first write
        first = next(iter(originals))
        while time.monotonic() < deadline and proc.poll() is None:
            if first.read_bytes() != originals[first]:
                break
            time.sleep(0.002)
        time.sleep(rng.uniform(0, 0.05))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL if how == "SIGKILL" else signal.SIGINT)
            kills += 1
        _, stderr = proc.communicate(timeout=60)
        pinned = 0
        for path, original in originals.items():
            now = path.read_bytes()
            want = original.replace(f"FROM {reference} ".encode(),
                                    f"FROM {reference}@{newest} ".encode())
            assert now in (original, want), f"{path} is half-written: {now[:200]!r}"
            pinned += now == want
        temporaries = [p for p in root.rglob("*.tmp")]
        if how == "SIGINT":
            assert not temporaries, temporaries
            assert b"\x1b" not in stderr and b"Traceback" not in stderr, stderr
        else:
            assert len(temporaries) <= 1, temporaries  # at most the one being written
    assert kills >= 3, "the pin runs ended before they could be interrupted"


def test_matrix_report_renders(matrix: Matrix) -> None:
    text = render_report(matrix)
    assert text.count("\n| ") >= len(FAULTS)
    json.dumps({case.id: case.outcome for case in matrix.cases.values()})
