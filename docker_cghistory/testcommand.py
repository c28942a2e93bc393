"""Running bisect's test command on one build: ``{}`` and ``CGHISTORY_IMAGE`` name it.

The adapter around ``subprocess``: the command's output goes to our stderr (stdout is kept for
the result), its exit status comes back for ``bisect.classify`` to judge, and a command that
cannot start at all raises ``CannotRun`` instead of passing for a verdict. A bare program name
is looked up on PATH's absolute entries only (``programs.find_program``), so a checkout cannot
slip its own ``docker`` in through an empty or relative PATH entry; a word with a ``/`` is the
user's explicit path and runs as given.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Sequence
from typing import IO

from .errors import CghistoryError, sanitize
from .programs import find_program

IMAGE_ENV = "CGHISTORY_IMAGE"


class CannotRun(CghistoryError):
    """The test command does not start at all (a typo, not a verdict on a build)."""


def substitute(command: Sequence[str], image: str) -> list[str]:
    """Every ``{}`` in every word becomes the build, as ``find -exec`` and ``xargs -I`` do."""
    return [word.replace("{}", image) for word in command]


def run_command(command: Sequence[str], image: str, *, output: IO[str],
                env: dict[str, str] | None = None) -> int:
    """Run the test on one build and return its exit status (negative: killed by a signal).

    The command's stdout goes to ``output``, the bisect's stderr, so that stdout holds nothing
    but the result; a stream with a descriptor gets the command's output directly, any other
    (a test's ``StringIO``) gets both of its streams copied in. A command that cannot start at
    all is the user's typo, not a verdict on a build: it stops the bisect instead of marking
    every build bad.
    """
    argv = substitute(command, image)
    if not argv:
        raise CannotRun("no test command to run")
    environment = dict(os.environ if env is None else env)
    environment[IMAGE_ENV] = image
    executable = resolve(argv[0], environment.get("PATH", os.defpath))
    sink = output
    try:
        target: int | None = sink.fileno()
    except (AttributeError, OSError, ValueError):
        target = None  # a stream without a descriptor (a StringIO): copy through a pipe
    sink.flush()
    try:
        process = subprocess.Popen(
            argv, executable=executable, env=environment,
            stdout=target if target is not None else subprocess.PIPE,
            stderr=None if target is not None else subprocess.STDOUT,
            text=target is None,
        )
    except OSError as error:
        raise CannotRun(f"cannot run {sanitize(argv[0])!r}: {error.strerror or error}") \
            from None
    try:
        if target is None and process.stdout is not None:
            for line in process.stdout:
                sink.write(line)
        return process.wait()
    except BaseException:
        _end(process)
        raise


def resolve(program: str, path: str) -> str:
    """The file to execute for ``program``: its absolute path on ``path``, or itself if a path.

    ``argv[0]`` stays as the user wrote it (multi-call programs such as busybox read it); only
    the file that is executed is pinned down here.
    """
    if "/" in program or (os.sep != "/" and os.sep in program):
        return program
    found = find_program(program, path)
    if found is None:
        raise CannotRun(f"cannot run {sanitize(program)!r}: not found on PATH")
    return found


def _end(process: subprocess.Popen[str]) -> None:
    """Stop a command we started (after Ctrl-C or the docker CLI asking us to stop)."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            process.wait()

