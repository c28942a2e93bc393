"""Streams a unit test hands a command (StringIO behind them, terminals only where it says),
and a small screen that shows what ANSI output leaves on a terminal of a given width."""

from __future__ import annotations

import io
import re
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


class Screen:
    """Just enough of a VT100 to read what ANSI output leaves on screen: printable text with
    auto-wrap at ``width``, ``\\n`` (as a tty's onlcr sends it, back to column 0), ``\\r``,
    cursor up/down (``ESC[nA``/``ESC[nB``), erase line (``ESC[2K``) and erase below (``ESC[J``).

    No height: rows never scroll away, so a test sees every row still reachable.
    """

    _CSI = re.compile(r"\x1b\[(\d*)([A-Za-z])")

    def __init__(self, width: int) -> None:
        self.width = width
        self.grid: list[list[str]] = [[]]
        self.row = self.col = 0

    def _line(self) -> list[str]:
        while len(self.grid) <= self.row:
            self.grid.append([])
        return self.grid[self.row]

    def feed(self, text: str) -> Screen:
        position = 0
        while position < len(text):
            match = self._CSI.match(text, position)
            if match:
                self._control(int(match.group(1) or 1), match.group(1), match.group(2))
                position = match.end()
                continue
            self._put(text[position])
            position += 1
        return self

    def _control(self, count: int, raw: str, final: str) -> None:
        if final == "A":
            self.row = max(self.row - count, 0)
            self.col = min(self.col, self.width - 1)
        elif final == "B":
            self.row = min(self.row + count, len(self.grid) - 1)
            self.col = min(self.col, self.width - 1)
        elif final == "K" and raw == "2":
            self._line().clear()
        elif final == "J" and raw in ("", "0"):
            del self._line()[self.col:]
            del self.grid[self.row + 1:]
        else:
            raise AssertionError(f"Screen does not know ESC[{raw}{final}")

    def _put(self, char: str) -> None:
        if char == "\n":
            self.row, self.col = self.row + 1, 0
            self._line()
        elif char == "\r":
            self.col = 0
        else:
            assert char.isprintable(), f"unexpected control {char!r}"
            if self.col >= self.width:
                self.row, self.col = self.row + 1, 0
            line = self._line()
            line.extend(" " * (self.col + 1 - len(line)))
            line[self.col] = char
            self.col += 1

    @property
    def lines(self) -> list[str]:
        """Each row as shown, trailing blanks and the empty last row dropped."""
        rows = ["".join(row).rstrip() for row in self.grid]
        while rows and not rows[-1]:
            rows.pop()
        return rows

    @property
    def joined(self) -> str:
        """All rows run together: a line the terminal wrapped reads back whole in it."""
        return "".join(self.lines)
