"""The interactive build picker: arrow keys, type-to-filter, Enter to choose, Esc to cancel.

It draws on stderr, so ``ref=$(docker cghistory pull python)`` still gets only the reference
on stdout. questionary (prompt_toolkit) is imported only when a picker is shown: it is the
heaviest import in the project and most runs never need it.
"""

from __future__ import annotations

from collections.abc import Sequence
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
    import questionary
    from prompt_toolkit.input import create_input
    from prompt_toolkit.key_binding import KeyBindings, merge_key_bindings
    from prompt_toolkit.keys import Keys
    from prompt_toolkit.output import create_output

    if input is None or output is None:
        if streams is None:
            from .streams import Streams

            streams = Streams.from_process()
        output = output if output is not None else create_output(stdout=streams.stderr)
        input = input if input is not None else create_input(stdin=streams.stdin)

    choices = [questionary.Choice(title=text, value=index)
               for index, text in enumerate(rows(builds, local, now))]
    question = questionary.select(
        f"Build of {reference.tagged} to pull:",
        choices=choices,
        use_search_filter=True,
        use_jk_keys=False,
        use_shortcuts=False,
        instruction=INSTRUCTION,
        output=output,
        input=input,
    )
    cancel = KeyBindings()

    @cancel.add(Keys.Escape, eager=True)
    def _(event: Any) -> None:
        event.app.exit(exception=KeyboardInterrupt, style="class:aborting")

    application = question.application
    application.key_bindings = merge_key_bindings([application.key_bindings, cancel])
    try:
        index = question.unsafe_ask()
    except (KeyboardInterrupt, EOFError):
        raise Interrupted("cancelled: no build picked") from None
    if not isinstance(index, int):
        # Enter on an empty filtered list answers nothing.
        raise Interrupted("cancelled: no build picked")
    return Choice(builds[index], index)
