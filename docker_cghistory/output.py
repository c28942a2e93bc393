"""Rendering rows the docker way: ``table``, ``json`` (one object per line), Go templates.

Docker's formatter rules: a ``table`` prefix adds a header row and aligns columns; ``\\t`` and
``\\n`` in a format are escapes; ``{{json .}}`` prints the row as JSON. The template language
here is the subset people use in ``--format``: ``{{.Field}}``, ``{{json .}}``,
``{{json .Field}}``, ``{{upper .Field}}``, ``{{lower .Field}}``, ``{{println}}``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from typing import TextIO

from .errors import UsageError, sanitize

_ACTION = re.compile(r"{{-?\s*(.*?)\s*-?}}")
_FIELD = re.compile(r"^\.([A-Za-z][A-Za-z0-9]*)$")


def _unescape(text: str) -> str:
    return text.replace("\\t", "\t").replace("\\n", "\n")


class Template:
    """A compiled Go-style template over rows that are dicts of field → value."""

    def __init__(self, text: str, fields: Sequence[str]) -> None:
        self.fields = fields
        self.parts: list[tuple[str, str | None, str | None]] = []  # (literal, func, field)
        position = 0
        for match in _ACTION.finditer(text):
            literal = _unescape(text[position : match.start()])
            self.parts.append((literal, None, None))
            self.parts.append(("", *self._compile(match.group(1), text)))
            position = match.end()
        self.parts.append((_unescape(text[position:]), None, None))

    def _compile(self, action: str, whole: str) -> tuple[str, str | None]:
        words = action.split()
        if not words:
            raise UsageError(f"invalid format {sanitize(whole)!r}: empty action")
        func = "value"
        if words[0] in ("json", "upper", "lower", "println"):
            func, words = words[0], words[1:]
            if func == "println" and not words:
                return "newline", None
        if len(words) != 1:
            raise UsageError(f"invalid format {sanitize(whole)!r}: cannot read {action!r}")
        if words[0] == "." and func == "json":
            return "json", None
        match = _FIELD.match(words[0])
        if not match or match.group(1) not in self.fields:
            raise UsageError(
                f"invalid format {sanitize(whole)!r}: unknown field {sanitize(words[0])!r}; "
                f"fields are {', '.join('.' + f for f in self.fields)}"
            )
        return func, match.group(1)

    def render(self, row: dict[str, object]) -> str:
        out = []
        for literal, func, field in self.parts:
            out.append(literal)
            if func is None:
                continue
            value = row if field is None else row.get(field)
            if func == "json":
                out.append(json.dumps(value, separators=(",", ":")))
            elif func == "newline":
                out.append("\n")
            else:
                text = "" if value is None else str(value)
                out.append(text.upper() if func == "upper" else
                           text.lower() if func == "lower" else text)
        return "".join(out)


def align(rows: Iterable[Sequence[str]], out: TextIO, padding: int = 3) -> None:
    """Write cells as aligned columns (docker's tabwriter settings: padding 3)."""
    table = [list(row) for row in rows]
    if not table:
        return
    widths: dict[int, int] = {}
    for row in table:
        for index, cell in enumerate(row[:-1]):
            widths[index] = max(widths.get(index, 0), len(cell))
    for row in table:
        cells = [cell.ljust(widths[i] + padding) for i, cell in enumerate(row[:-1])]
        out.write(("".join(cells) + (row[-1] if row else "")).rstrip() + "\n")


def render(
    rows: Sequence[dict[str, object]],
    fmt: str | None,
    out: TextIO,
    *,
    fields: Sequence[str],
    headers: dict[str, str],
    table: tuple[Sequence[str], Iterable[Sequence[str]]],
) -> None:
    """Print ``rows`` as ``fmt`` says.

    ``table`` is the default view (header, cells): friendlier than the raw values (short
    digests, ages), which ``json`` and templates print as they are.
    """
    fmt = (fmt or "").strip() or "table"
    if fmt == "json":
        for row in rows:
            out.write(json.dumps({k: row[k] for k in fields if k in row},
                                 separators=(",", ":")) + "\n")
        return
    if fmt == "table":
        header, cells = table
        align([header, *cells], out)
        return
    if fmt.startswith(("table ", "table\t")):
        template = Template(fmt[len("table") :].strip(" "), fields)
        titles = {name: headers.get(name, name.upper()) for name in fields}
        lines = [template.render(titles)] + [template.render(dict(row)) for row in rows]
        align([line.split("\t") for line in lines], out)
        return
    template = Template(fmt, fields)
    for row in rows:
        out.write(template.render(dict(row)) + "\n")
