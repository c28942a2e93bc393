"""The engine's pull stream drawn on a terminal, the way ``docker pull`` draws it.

Why it is its own module: this is terminal rendering, not engine access. It takes plain event
dicts, imports nothing heavy, and is shared by ``pull`` and ``bisect``, which decide whether a
terminal is there; the engine adapter only hands it events.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TextIO

from .errors import escape_controls

if TYPE_CHECKING:
    from .streams import Streams

# One decoded JSON message of the engine's pull stream.
Event = Mapping[str, Any]


class PullProgress:
    """Renders docker's pull stream the way ``docker pull`` does, on a terminal.

    One line per layer id, rewritten in place with ANSI cursor movement; messages without an
    id (``Digest: ...``, ``Status: ...``) are new lines. Layer lines are cut to the terminal
    width, one row each. The lines that name the image (``ID: Pulling from REPO``) and the
    messages without an id (the final ``Status: ...``) are never cut, whatever the width: they
    are what the user needs to read, so they are written whole, the terminal wraps them, and
    the cursor arithmetic counts the rows they take.
    """

    def __init__(self, out: TextIO, width: int | Callable[[], int] = 80) -> None:
        """``width`` is fixed, or asked before every line (a window resized mid-pull)."""
        self.out = out
        self.width = width
        self._rows: dict[str, int] = {}  # layer id -> its row, counted from the first
        self._total = 0  # terminal rows written so far

    @classmethod
    def on(cls, streams: Streams) -> PullProgress:
        """Progress on the command's stderr, cut to the width of the terminal it is on."""
        return cls(streams.stderr, lambda: streams.width)

    def _columns(self) -> int:
        return self.width() if callable(self.width) else self.width

    @staticmethod
    def _text(value: object) -> str:
        """Foreign text kept as laid out (progress bars pad with spaces), controls shown: tabs
        and newlines too, because a progress line must stay one terminal row."""
        return escape_controls(str(value or ""))

    @classmethod
    def line_for(cls, event: Event) -> str:
        """``ID: STATUS PROGRESS`` as docker prints it, before any cutting."""
        status = cls._text(event.get("status"))
        progress = cls._text(event.get("progress"))
        ident = cls._text(event.get("id"))
        text = f"{ident}: {status}" if ident else status
        return f"{text} {progress}" if progress else text

    @staticmethod
    def is_layer(event: Event) -> bool:
        """A layer's line, which may be cut; the ``Pulling from REPO`` line has an id too (the
        tag or digest) but names the image."""
        return bool(event.get("id")) and not str(event.get("status") or "").startswith(
            "Pulling from")

    @staticmethod
    def rows_of(line: str, columns: int) -> int:
        """Terminal rows a line takes once wrapped (a full-width line still takes one)."""
        return max(1, -(-len(line) // max(columns, 1)))

    def __call__(self, event: Event) -> None:
        if event.get("error") or event.get("errorDetail"):
            return
        line = self.line_for(event)
        if not line:
            return
        columns = self._columns()
        ident = event.get("id")
        if not self.is_layer(event):
            self.out.write(line + "\n")
            self._total += self.rows_of(line, columns)
        else:
            line = line[: max(columns - 1, 1)]
            if ident in self._rows:
                up = self._total - self._rows[ident]
                self.out.write(f"\x1b[{up}A\r\x1b[2K{line}\r\x1b[{up}B")
            else:
                self._rows[ident] = self._total
                self.out.write(line + "\n")
                self._total += 1
        self.out.flush()

    def collapse(self, summary: str) -> None:
        """Erase what was drawn and leave one line: a finished pull that bisect no longer needs
        on screen. Rows already scrolled out of the window stay in the scrollback."""
        if self._total:
            self.out.write(f"\x1b[{self._total}A\r\x1b[J")
        self.out.write(summary + "\n")
        self.out.flush()
        self._rows.clear()
        self._total = 0
