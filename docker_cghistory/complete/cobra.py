"""docker's cobra completion protocol: ``__complete`` and ``__completeNoDesc``.

The docker CLI forwards ``docker __complete cghistory ARGS... CURRENT`` to the plugin (and
docker's hand-written bash script calls ``__completeNoDesc`` directly). The answer is one
candidate per line, ``value<TAB>description`` when descriptions are wanted, then
``:<directive>`` (REFERENCE.md section 2).
"""

from __future__ import annotations

import sys

from ..settings import PLUGIN_NAME
from . import core
from .sources import Sources

TYPE_CHECKING = False
if TYPE_CHECKING:  # annotations only: typing costs a TAB ~5 ms to import
    from typing import Any


def cobra_lines(answer: core.Answer, descriptions: bool) -> list[str]:
    """Cobra's answer: ``value[\\tdescription]`` lines, then ``:directive``."""
    lines = []
    for value, description in answer.candidates:
        value = value.replace("\t", "\\t")
        if "\n" in value or "\r" in value or not value:
            continue
        description = core.clean(description) if descriptions else ""
        lines.append(f"{value}\t{description}" if description else value)
    lines.append(f":{answer.directive}")
    return lines


def cobra_complete(args: list[str], *, stream: Any = None, silence: bool = True,
                   sources: Sources | None = None) -> int:
    """``__complete``/``__completeNoDesc ARGS... CURRENT`` as docker forwards it.

    The docker CLI (and docker's current bash script) put the plugin's name first
    (``__complete cghistory pull --digest ''``); docker 20.10's bash script leaves it out.
    """
    if silence:
        core.silence()
    stream = stream or sys.stdout
    sources = sources or Sources()
    words = list(args[1:])
    if len(words) >= 2 and words[0] == PLUGIN_NAME:
        words = words[1:]
    current = words.pop() if words else ""
    try:
        answer = core.complete(words, current, sources)
    except Exception:
        answer = core.Answer([], core.ERROR)
    core.finish(sources, stream, "\n".join(cobra_lines(answer, args[0] == "__complete")) + "\n")
    return 0
