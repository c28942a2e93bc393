"""The interactive build picker: arrow keys, type-to-filter, Enter to choose, Esc to cancel.

It draws on stderr, so ``ref=$(docker cghistory pull python)`` still gets only the reference
on stdout. prompt_toolkit is imported only when a picker is shown: it is the heaviest import
in the project and most runs never need it.

Why not questionary's ``select``: when its filter matches nothing it shows every choice again
and Enter takes the highlighted one, so a typo pulled the newest build. The filtering and the
choice live in ``Picker`` below, a pure state with one rule: Enter answers only a build that
is on screen, and a filter that matches nothing shows no build.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from .errors import Interrupted, SelectionError
from .history import Build
from .reference import Reference
from .selection import Choice
from .timespec import format_age

if TYPE_CHECKING:
    from .streams import Streams

INSTRUCTION = "(arrows move, type to filter, Enter pulls, Esc cancels)"
CANCELLED = "cancelled: no build picked"
# Rows shown at once; the list scrolls to keep the cursor on screen.
MAX_VISIBLE = 15


def row_text(index: int, build: Build, local: set[str] | None, now: datetime,
             index_width: int = 1) -> str:
    """One line of the picker; plain text, because the filter matches on it.

    ``index`` is the full-listing index (the picker is given the whole history) and the time
    is exact, as ``list`` prints them: either, pasted into ``--index``/``--at``, is this build.
    """
    mark = "  local" if local is not None and build.digest in local else ""
    return (
        f"#{index:<{index_width}}  {build.timestamp}  "
        f"{format_age(now - build.updated):<16}  sha256:{build.short}{mark}"
    )


def rows(builds: Sequence[Build], local: set[str] | None, now: datetime) -> list[str]:
    width = len(str(max(len(builds) - 1, 0)))
    return [row_text(i, b, local, now, width) for i, b in enumerate(builds)]


@dataclass
class Picker:
    """What the picker shows and what Enter would answer, without a terminal.

    ``cursor`` is a position in ``matches``, never in ``rows``: the highlighted build is always
    one the filter kept, and with no match there is none to answer.
    """

    rows: Sequence[str]
    query: str = ""
    cursor: int = 0
    top: int = 0  # first match on screen
    message: str = ""
    _matches: list[int] = field(default_factory=list, init=False, repr=False)

    def __post_init__(self) -> None:
        self._refilter()

    def _refilter(self) -> None:
        needle = self.query.casefold()
        self._matches = [i for i, row in enumerate(self.rows) if needle in row.casefold()]
        self.cursor = 0
        self.top = 0

    @property
    def matches(self) -> list[int]:
        """Indices into ``rows`` of the rows the filter keeps, in listing order."""
        return list(self._matches)

    def type(self, text: str) -> None:
        self.query += text
        self.message = ""
        self._refilter()

    def backspace(self) -> None:
        self.query = self.query[:-1]
        self.message = ""
        self._refilter()

    def clear(self) -> None:
        self.query = ""
        self.message = ""
        self._refilter()

    def move(self, delta: int) -> None:
        """Up/down wrap around, as in most pickers; with no match there is nothing to move."""
        if self._matches:
            self.cursor = (self.cursor + delta) % len(self._matches)

    def jump(self, delta: int) -> None:
        """Page up/down: move by ``delta`` matches, stopping at either end."""
        if self._matches:
            self.cursor = min(max(self.cursor + delta, 0), len(self._matches) - 1)

    def chosen(self) -> int | None:
        """The row index Enter answers, or None (and a message saying why): no build matches,
        so Enter must pull nothing."""
        if not self._matches:
            self.message = "Enter pulls nothing: Backspace edits the filter, Esc cancels"
            return None
        return self._matches[self.cursor]

    def window(self, height: int) -> list[int]:
        """The matches on screen, scrolled so that the cursor is among them."""
        height = max(height, 1)
        if self.cursor < self.top:
            self.top = self.cursor
        elif self.cursor >= self.top + height:
            self.top = self.cursor - height + 1
        return self._matches[self.top:self.top + height]

    def lines(self, title: str, height: int = MAX_VISIBLE) -> list[tuple[str, str]]:
        """The screen as (style, text) lines: title, filter, rows or the no-match line."""
        out = [("class:title", f"? {title}"), ("class:instruction", f"  {INSTRUCTION}")]
        if self.query:
            out.append(("class:filter", f"  filter: {self.query}"))
        if not self._matches:
            out.append(("class:nomatch", f"  no build matches {self.query!r}"))
        else:
            window = self.window(height)
            if self.top:
                out.append(("class:more", f"  ({self.top} more above)"))
            for position, index in enumerate(window, start=self.top):
                if position == self.cursor:
                    out.append(("class:pointer", f"> {self.rows[index]}"))
                else:
                    out.append(("", f"  {self.rows[index]}"))
            below = len(self._matches) - self.top - len(window)
            if below > 0:
                out.append(("class:more", f"  ({below} more below)"))
        if self.message:
            out.append(("class:message", f"  {self.message}"))
        return out


def pick(reference: Reference, builds: Sequence[Build], local: set[str] | None,
         now: datetime, *, streams: Streams | None = None, input: Any = None,
         output: Any = None) -> Choice:
    """Ask which build to pull; Ctrl-C or Esc is ``Interrupted`` (exit 130).

    ``input``/``output`` are prompt_toolkit objects (tests pass a pipe and a dummy); by
    default the keyboard is the command's stdin and the drawing goes to its stderr
    (``streams``, else the process's).
    """
    if not builds:
        raise SelectionError(f"{reference.tagged} has no builds to pick from")
    from prompt_toolkit.application import Application
    from prompt_toolkit.input import create_input
    from prompt_toolkit.key_binding import KeyBindings
    from prompt_toolkit.keys import Keys
    from prompt_toolkit.layout import Layout, Window
    from prompt_toolkit.layout.controls import FormattedTextControl
    from prompt_toolkit.output import create_output
    from prompt_toolkit.styles import Style

    if input is None or output is None:
        if streams is None:
            from .streams import Streams

            streams = Streams.from_process()
        output = output if output is not None else create_output(stdout=streams.stderr)
        input = input if input is not None else create_input(stdin=streams.stdin)

    state = Picker(rows(builds, local, now))
    title = f"Build of {reference.tagged} to pull:"

    def height() -> int:
        try:
            screen = output.get_size().rows
        except OSError:  # a terminal gone away: the default will do
            return MAX_VISIBLE
        return max(min(MAX_VISIBLE, screen - 6), 3)

    def text() -> list[tuple[str, str]]:
        fragments: list[tuple[str, str]] = []
        for style, line in state.lines(title, height()):
            fragments += [(style, line), ("", "\n")]
        return fragments[:-1]

    keys = KeyBindings()

    @keys.add(Keys.Up)
    @keys.add(Keys.ControlP)
    def _(event: Any) -> None:
        state.move(-1)

    @keys.add(Keys.Down)
    @keys.add(Keys.ControlN)
    def _(event: Any) -> None:
        state.move(1)

    @keys.add(Keys.PageUp)
    def _(event: Any) -> None:
        state.jump(-height())

    @keys.add(Keys.PageDown)
    def _(event: Any) -> None:
        state.jump(height())

    @keys.add(Keys.Backspace)
    def _(event: Any) -> None:
        state.backspace()

    @keys.add(Keys.ControlU)
    def _(event: Any) -> None:
        state.clear()

    @keys.add(Keys.Enter)
    def _(event: Any) -> None:
        index = state.chosen()
        if index is not None:
            event.app.exit(result=index)

    @keys.add(Keys.Escape, eager=True)
    @keys.add(Keys.ControlC)
    @keys.add(Keys.ControlD)
    def _(event: Any) -> None:
        event.app.exit(exception=KeyboardInterrupt)

    @keys.add(Keys.Any)
    def _(event: Any) -> None:
        # Printable keys filter; unknown sequences and other controls are ignored.
        if event.data and event.data.isprintable():
            state.type(event.data)

    application: Application[int] = Application(
        # Wrapped, not cut: on a narrow terminal a row still shows its digest.
        layout=Layout(Window(FormattedTextControl(text, show_cursor=False),
                             dont_extend_height=True, wrap_lines=True)),
        key_bindings=keys,
        style=Style.from_dict({
            "title": "bold", "instruction": "italic", "pointer": "reverse",
            "nomatch": "bold", "more": "italic", "message": "italic",
        }),
        input=input,
        output=output,
        erase_when_done=True,
        mouse_support=False,
    )
    try:
        index = application.run()
    except (KeyboardInterrupt, EOFError):
        raise Interrupted(CANCELLED) from None
    if not isinstance(index, int):
        raise Interrupted(CANCELLED)
    return Choice(builds[index], index)
