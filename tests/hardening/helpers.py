"""Helpers shared by the hardening tests (issue #7).

- ``run_tool`` runs ``python -m docker_cghistory`` as a user would (its own process, stdin
  not a terminal) and measures what the issue asks about: wall-clock time and peak memory
  (``wait4`` rusage of exactly that child), plus stdout and stderr.
- ``assert_one_line_error`` is the contract every failing command must meet: a non-zero exit,
  exactly one non-empty line on stderr naming the cause, no traceback, no ESC byte.
- ``hard_config`` is an isolated docker client environment with ``CGHISTORY_TIMEOUT`` set low,
  so a fault that hangs is bounded by seconds, not by the 30 s default (but not so low that a
  slow answer from the front on a loaded machine passes for a hang).
- ``run_completion`` runs completion with a larger registry budget
  (``CGHISTORY_COMPLETION_TIMEOUT``), for tests that need it to reach the front however loaded
  the machine is.
- ``add_repo`` registers a repository of the test's own with the session front, so faults can
  be scoped to it and tests can run side by side without touching each other's requests.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.support.front import Front
from tests.support.services import (
    Builds,
    DockerConfig,
    Dockerd,
    Registry,
    copy_repo,
    make_docker_config,
)

ESC = "\x1b"
# Seconds: the read timeout every run in this folder uses (CGHISTORY_TIMEOUT). 2 s made a
# front slowed down by a load of 17 look like a registry that does not answer.
TIMEOUT_S = 10
# Seconds: completion's registry budget under ``run_completion`` (the product's is 1 s). On a
# 2-core machine with a load of 17, a plain `list` took 20 s and 15 s was once not enough for
# completion to reach the front; a completion facing a hang waits all of it.
COMPLETION_TEST_BUDGET_S = 60.0
ENTRY = ("-m", "docker_cghistory")
HISTORY_PATH = "/_chainguard/history/"
# A traceback or the CLI's bug path in an answer means an exception escaped the error design.
_BUG_WORDS = ("Traceback (most recent call last)", "unexpected error")


@dataclass
class Run:
    """One finished process: what it printed, how it ended, what it cost."""

    argv: list[str]
    returncode: int
    stdout: str
    stderr: str
    seconds: float
    maxrss_kb: int
    killed: bool = False

    @property
    def error_lines(self) -> list[str]:
        return [line for line in self.stderr.splitlines() if line.strip()]

    def describe(self) -> str:
        return (f"$ {' '.join(self.argv[2:])}\n-> exit {self.returncode} in {self.seconds:.2f}s"
                f"{' (KILLED: timeout)' if self.killed else ''}, {self.maxrss_kb} KiB\n"
                f"stdout: {self.stdout[-2000:]!r}\nstderr: {self.stderr[-2000:]!r}")


def start_tool(env: dict[str, str], args: Sequence[str], cwd: Path | str,
               stdout: Any, stderr: Any, entry: Sequence[str] = ENTRY
               ) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, *entry, *args], env=env, cwd=str(cwd),
        stdin=subprocess.DEVNULL, stdout=stdout, stderr=stderr,
    )


# Linux keeps a process's peak RSS across exec, and a child starts with its parent's pages:
# measured from pytest (hundreds of MB after a long run), every tool run would "use" that
# much. So a small launcher starts the tool and reports the tool's own peak (KiB) on a pipe.
_MEASURE = """
import os, sys
report = int(sys.argv[1])
os.set_inheritable(report, False)
pid = os.posix_spawn(sys.argv[2], sys.argv[2:], os.environ)
_, status, usage = os.wait4(pid, 0)
os.write(report, str(usage.ru_maxrss).encode())
code = os.waitstatus_to_exitcode(status)
sys.exit(code if code >= 0 else 128 - code)
"""


def run_tool(env: dict[str, str], *args: str, cwd: Path | str, timeout: float = 90.0,
             entry: Sequence[str] = ENTRY) -> Run:
    """Run the tool to its end and measure it. ``timeout`` is a ceiling against hangs, not a
    performance bound: the process is killed then, and ``assert_clean`` fails the test."""
    argv = [sys.executable, *entry, *args]
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        read_peak, write_peak = os.pipe()
        started = time.monotonic()
        proc = subprocess.Popen(
            [sys.executable, "-c", _MEASURE, str(write_peak), *argv], env=env, cwd=str(cwd),
            stdin=subprocess.DEVNULL, stdout=out, stderr=err, pass_fds=(write_peak,),
            start_new_session=True,
        )
        os.close(write_peak)
        killed = threading.Event()

        def kill() -> None:
            killed.set()
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, 9)

        timer = threading.Timer(timeout, kill)
        timer.daemon = True
        timer.start()
        try:
            proc.wait()
        finally:
            timer.cancel()
        with os.fdopen(read_peak, "rb") as peak:
            reported = peak.read().decode() or "0"
        seconds = time.monotonic() - started
        out.seek(0)
        err.seek(0)
        return Run(argv, proc.returncode, out.read().decode(errors="replace"),
                   err.read().decode(errors="replace"), seconds, int(reported),
                   killed.is_set())


def run_completion(env: dict[str, str], *args: str, cwd: Path | str, timeout: float = 300.0,
                   budget: float = COMPLETION_TEST_BUDGET_S) -> Run:
    """``run_tool`` for ``__complete``/argcomplete with a registry budget of ``budget`` s, so
    that what a test injected at the front is met even on a loaded machine; the real 1 s
    budget is exercised by plain ``run_tool``."""
    env = dict(env, CGHISTORY_COMPLETION_TIMEOUT=str(budget))
    return run_tool(env, *args, cwd=cwd, timeout=timeout)


def assert_clean(run: Run) -> None:
    """Nothing a hostile server sent reaches the terminal raw, and no bug path was taken."""
    assert ESC not in run.stderr, f"ESC byte on stderr\n{run.describe()}"
    assert ESC not in run.stdout, f"ESC byte on stdout\n{run.describe()}"
    for word in _BUG_WORDS:
        assert word not in run.stderr, f"an exception escaped\n{run.describe()}"
    assert not run.killed, f"still running at the harness timeout\n{run.describe()}"


def assert_one_line_error(run: Run, *words: str) -> str:
    """A failure as designed: exit != 0, ONE stderr line, naming the cause (``words``)."""
    assert_clean(run)
    assert run.returncode not in (0, None) and run.returncode > 0, run.describe()
    lines = run.error_lines
    assert len(lines) == 1, f"expected one line on stderr\n{run.describe()}"
    line = lines[0]
    for word in words:
        assert word.lower() in line.lower(), f"{word!r} not named\n{run.describe()}"
    return line


def has_words(text: str, *words: str) -> bool:
    return all(word.lower() in text.lower() for word in words)


def hard_config(base: Path, engine: Dockerd | None = None, **extra: str) -> DockerConfig:
    """An isolated client environment with short timeouts and no background completion fork."""
    config = make_docker_config(base, engine)
    config.env.update({"CGHISTORY_TIMEOUT": str(TIMEOUT_S), "CGHISTORY_NO_BACKGROUND": "1",
                       **extra})
    return config


def add_repo(front: Front, name: str, history: list[list[str]], *,
             registry: Registry | None = None, builds: Builds | None = None,
             **config: Any) -> str:
    """Register ``name`` with ``history`` under ``latest`` (public unless ``config`` says);
    with ``registry`` and ``builds`` its real manifests are copied so dockerd can pull it.
    Returns the reference ``HOST/NAME:latest`` for the command line."""
    if registry is not None and builds is not None:
        copy_repo(registry, builds.repo, name, builds.digests, tag="latest")
    front.set_repo(name, {"public": True, "history": {"latest": history}, **config})
    return f"{front.host}/{name}:latest"


def history_fault_path(name: str) -> str:
    return f"^/v2/{re.escape(name)}{re.escape(HISTORY_PATH)}"


def scope_query(name: str) -> str:
    """A ``query_regex`` matching token requests scoped to repository ``name``."""
    return re.escape(name.replace("/", "%2F") + "%3Apull")


def cache_files(cache_home: Path) -> list[Path]:
    root = cache_home / "docker-cghistory"
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


def cache_dirs(cache_home: Path) -> list[Path]:
    root = cache_home / "docker-cghistory"
    return [root, *sorted(p for p in root.rglob("*") if p.is_dir())] if root.exists() else []


def interrupt(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        proc.send_signal(signal.SIGINT)
