"""The terminal a command talks to: its three streams and what is known about them.

Built once, in ``cli``, from the process, and handed to every command's ``run`` (crane hands
its commands ``cmd.OutOrStdout()``, httpie an ``Environment``). A command writes nowhere else
and asks nothing else whether it is on a terminal, so a test runs it against ``StringIO``
objects, says whether they count as terminals, and reads what was written, without capturing
the interpreter's globals.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from typing import TextIO


def _isatty(stream: TextIO | None) -> bool:
    """Closed, detached or missing streams (``pythonw``, a closed stdin) are no terminal."""
    try:
        return stream is not None and stream.isatty()
    except (AttributeError, OSError, ValueError):
        return False


class Streams:
    """stdout, stderr and stdin, whether each is a terminal, its width, and ``NO_COLOR``.

    The terminal checks are made once, when the object is built, unless given: a test says
    ``stderr_is_tty=True`` to see the progress a terminal would. stdout carries results only
    (``$(docker cghistory pull ... -q)``); progress, pickers and notes go to stderr.
    """

    def __init__(
        self,
        stdout: TextIO,
        stderr: TextIO,
        stdin: TextIO | None = None,
        *,
        stdout_is_tty: bool | None = None,
        stderr_is_tty: bool | None = None,
        stdin_is_tty: bool | None = None,
        width: int | None = None,
        no_color: bool = False,
    ) -> None:
        self.stdout = stdout
        self.stderr = stderr
        self.stdin = stdin
        self.stdout_is_tty = _isatty(stdout) if stdout_is_tty is None else stdout_is_tty
        self.stderr_is_tty = _isatty(stderr) if stderr_is_tty is None else stderr_is_tty
        self.stdin_is_tty = _isatty(stdin) if stdin_is_tty is None else stdin_is_tty
        self.no_color = no_color
        self._width = width

    @classmethod
    def from_process(cls, environ: Mapping[str, str] | None = None) -> Streams:
        """The process's own streams; ``NO_COLOR`` counts when set and not empty (no-color.org).

        Read at call time, not import time: the plugin protocol and tests swap ``sys.stdout``.
        """
        environ = os.environ if environ is None else environ
        return cls(sys.stdout, sys.stderr, sys.stdin, no_color=bool(environ.get("NO_COLOR")))

    @property
    def width(self) -> int:
        """Columns of the terminal stderr draws on (progress lines are cut to it), else 80.

        Asked each time unless fixed: a window resized during a pull gets lines that fit.
        """
        if self._width is not None:
            return self._width
        try:
            return os.get_terminal_size(self.stderr.fileno()).columns
        except (OSError, ValueError, AttributeError):
            return 80
