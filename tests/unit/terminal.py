"""Streams a unit test hands a command: StringIO behind them, terminals only where it says."""

from __future__ import annotations

import io
from typing import cast

from docker_cghistory.streams import Streams


class Captured(Streams):
    """``Streams`` over ``StringIO``; ``out`` and ``err`` are what the command wrote.

    ``stdin`` holds ``keys``; each stream is a terminal only if the test says so, and the
    terminal is 80 columns wide unless ``width`` says otherwise.
    """

    def __init__(self, keys: str = "", *, tty: bool = False, width: int = 80,
                 **known: bool) -> None:
        flags = {"stdout_is_tty": tty, "stderr_is_tty": tty, "stdin_is_tty": tty, **known}
        super().__init__(io.StringIO(), io.StringIO(), io.StringIO(keys), width=width,
                         **flags)

    @property
    def out(self) -> str:
        return cast(io.StringIO, self.stdout).getvalue()

    @property
    def err(self) -> str:
        return cast(io.StringIO, self.stderr).getvalue()
