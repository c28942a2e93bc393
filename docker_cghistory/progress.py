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
    id (``Digest: ...``, ``Status: ...``) are new lines. Lines are cut to the terminal width,
    since a wrapped line would break the cursor arithmetic.
    """

    def __init__(self, out: TextIO, width: int | Callable[[], int] = 80) -> None:
        """``width`` is fixed, or asked before every line (a window resized mid-pull)."""
        self.out = out
        self.width = width
        self._rows: dict[str, int] = {}
        self._total = 0

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

    def __call__(self, event: Event) -> None:
        if event.get("error") or event.get("errorDetail"):
            return
        line = self.line_for(event)
        if not line:
            return
        line = line[: max(self._columns() - 1, 10)]
        ident = event.get("id")
        if ident and ident in self._rows:
            up = self._total - self._rows[ident]
            self.out.write(f"\x1b[{up}A\r\x1b[2K{line}\r\x1b[{up}B")
        else:
            if ident:
                self._rows[ident] = self._total
            self.out.write(line + "\n")
            self._total += 1
        self.out.flush()
