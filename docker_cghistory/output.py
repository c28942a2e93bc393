"""Rendering rows the docker way: ``table``, ``json`` (one object per line), Go templates.

Docker's formatter rules: a ``table`` prefix adds a header row and aligns columns; ``\\t`` and
``\\n`` in a format are escapes; ``{{json .}}`` prints the row as JSON. The template language
here is the subset people use in ``--format``: ``{{.Field}}``, ``{{json .}}``,
``{{json .Field}}``, ``{{upper .Field}}``, ``{{lower .Field}}``, ``{{println}}``, and
``{{if X}}``/``{{else if X}}``/``{{else}}``/``{{end}}`` with ``not``, ``eq`` and ``ne``. Values
print as Go prints them (``true``/``false``); ``{{-`` and ``-}}`` trim spaces as in Go. Anything
else (``range``, ``with``, pipes, variables) is refused in one line that names what works.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TextIO

from .errors import UsageError, sanitize

_ACTION = re.compile(r"{{(.*?)}}", re.S)
_FIELD = re.compile(r"^\.([A-Za-z][A-Za-z0-9]*)$")
_WORD = re.compile(r'"(?:[^"\\]|\\.)*"|\S+')
_INT = re.compile(r"^-?\d+$")
_FUNCS = {"json": 1, "upper": 1, "lower": 1, "not": 1, "eq": 2, "ne": 2}
PADDING = 3  # docker's tabwriter padding between columns
SUPPORTED = ("{{.Field}}, {{json .}}, {{json .Field}}, {{upper .Field}}, {{lower .Field}}, "
             "{{println}}, {{if ...}}{{else if ...}}{{else}}{{end}} with not, eq, ne")


def _unescape(text: str) -> str:
    return text.replace("\\t", "\t").replace("\\n", "\n")


def go_text(value: object) -> str:
    """A value as Go's template prints it: ``true``/``false``, nothing for a missing value,
    ``map[k:v k2:v2]`` (keys sorted) for an object, ``[a b]`` for a list."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "map[" + " ".join(f"{key}:{go_text(value[key])}" for key in sorted(value)) + "]"
    if isinstance(value, (list, tuple)):
        return "[" + " ".join(go_text(item) for item in value) + "]"
    return "" if value is None else str(value)


def _truth(value: object) -> bool:
    """Go's truth: false, 0, nil and empty strings and collections are false."""
    return bool(value)


@dataclass
class _If:
    branches: list[tuple[list[str], list]] = field(default_factory=list)  # (condition, body)
    otherwise: list | None = None


class Template:
    """A compiled Go-style template over rows that are dicts of field -> value."""

    def __init__(self, text: str, fields: Sequence[str]) -> None:
        self.fields = fields
        self.text = text
        root: list = []
        stack: list[tuple[_If, list]] = []  # open ifs and the body being filled
        body = root
        pieces = self._split(text)
        for kind, value in pieces:
            if kind == "text":
                if value:
                    body.append(value)
                continue
            words = self._words(value)
            if words[0] == "if":
                node = _If()
                node.branches.append((self._check(words[1:], "if"), []))
                body.append(node)
                stack.append((node, body))
                body = node.branches[-1][1]
            elif words[0] == "else":
                if not stack or stack[-1][0].otherwise is not None:
                    self._fail("{{else}} without {{if}}")
                node = stack[-1][0]
                if words[1:2] == ["if"]:
                    node.branches.append((self._check(words[2:], "else if"), []))
                    body = node.branches[-1][1]
                elif len(words) > 1:
                    self._fail(f"cannot read {value!r}")
                else:
                    node.otherwise = []
                    body = node.otherwise
            elif words[0] == "end":
                if not stack or len(words) > 1:
                    self._fail("{{end}} without {{if}}")
                body = stack.pop()[1]
            else:
                body.append(self._check(words, None))
        if stack:
            self._fail("{{if}} without {{end}}")
        self.nodes = root

    # --- reading ---------------------------------------------------------------------------

    @staticmethod
    def _split(text: str) -> list[tuple[str, str]]:
        """Literal text and action contents, with Go's ``{{- ``/`` -}}`` trimming applied."""
        pieces: list[tuple[str, str]] = []
        position, trim_next = 0, False
        for match in _ACTION.finditer(text):
            literal = text[position : match.start()]
            inner = match.group(1)
            if trim_next:
                literal = literal.lstrip()
            if inner[:1] == "-" and inner[1:2].isspace():
                literal, inner = literal.rstrip(), inner[2:]
            trim_next = inner[-1:] == "-" and inner[-2:-1].isspace()
            if trim_next:
                inner = inner[:-2]
            pieces += [("text", _unescape(literal)), ("action", inner.strip())]
            position = match.end()
        rest = text[position:]
        pieces.append(("text", _unescape(rest.lstrip() if trim_next else rest)))
        return pieces

    def _fail(self, why: str) -> None:
        raise UsageError(f"invalid format {sanitize(self.text)!r}: {sanitize(why, limit=400)}")

    def _words(self, action: str) -> list[str]:
        if not action:
            self._fail("empty action")
        if any(mark in action for mark in ("|", "$", ":=", "(")):
            self._fail(f"{action!r} is not supported; templates here take {SUPPORTED}")
        words = _WORD.findall(action)
        if words[0] in ("range", "with", "define", "template", "block", "break", "continue",
                        "index", "len", "slice", "printf", "print", "and", "or", "call",
                        "html", "js", "urlquery", "split", "join", "title", "truncate",
                        "pad"):
            self._fail(f"{words[0]!r} is not supported; templates here take {SUPPORTED}")
        return words

    def _operand(self, word: str) -> None:
        if word == "." or word in ("true", "false") or word.startswith('"') or _INT.match(word):
            return
        match = _FIELD.match(word)
        if not match or match.group(1) not in self.fields:
            self._fail(f"unknown field {word!r}; fields are "
                       + ", ".join("." + f for f in self.fields))

    def _check(self, words: list[str], keyword: str | None) -> list[str]:
        """Validate one expression: an operand, or a function and its operands."""
        if not words:
            self._fail(f"{{{{{keyword}}}}} needs a condition")
        if words == ["println"] and keyword is None:
            return words
        head, arguments = words[0], words[1:]
        if head in _FUNCS:
            if len(arguments) != _FUNCS[head]:
                self._fail(f"cannot read {' '.join(words)!r}: {head} takes "
                           f"{_FUNCS[head]} argument{'s' if _FUNCS[head] > 1 else ''}")
            if head in ("upper", "lower") and arguments == ["."]:
                self._fail(f"cannot read {' '.join(words)!r}")
        elif arguments:
            self._fail(f"cannot read {' '.join(words)!r}")
        else:
            arguments = words
        for word in arguments:
            self._operand(word)
        return words

    # --- rendering -------------------------------------------------------------------------

    @staticmethod
    def _value(word: str, row: dict[str, object]) -> object:
        if word == ".":
            return row
        if word in ("true", "false"):
            return word == "true"
        if word.startswith('"'):
            return json.loads(word)
        if _INT.match(word):
            return int(word)
        return row.get(word[1:])

    def _eval(self, words: list[str], row: dict[str, object]) -> object:
        head = words[0]
        if head == "println":
            return "\n"
        if head not in _FUNCS:
            return self._value(head, row)
        values = [self._value(word, row) for word in words[1:]]
        if head == "json":
            return json.dumps(values[0], separators=(",", ":"))
        if head == "not":
            return not _truth(values[0])
        if head in ("eq", "ne"):
            same = go_text(values[0]) == go_text(values[1])
            return same if head == "eq" else not same
        text = go_text(values[0])
        return text.upper() if head == "upper" else text.lower()

    def _render(self, nodes: list, row: dict[str, object], out: list[str]) -> None:
        for node in nodes:
            if isinstance(node, str):
                out.append(node)
            elif isinstance(node, _If):
                for condition, body in node.branches:
                    if _truth(self._eval(condition, row)):
                        self._render(body, row, out)
                        break
                else:
                    self._render(node.otherwise or [], row, out)
            else:
                value = self._eval(node, row)
                out.append(value if node[0] in ("json", "println") else go_text(value))

    def render(self, row: dict[str, object]) -> str:
        out: list[str] = []
        self._render(self.nodes, row, out)
        return "".join(out)

    def render_header(self, titles: dict[str, object]) -> str:
        """The header row of a ``table`` template: each field's title in its place.

        An ``{{if}}`` block's column is headed by the title of the field its condition tests
        (``{{if .LocalTag}}current{{else}}-{{end}}`` → ``LOCAL TAG``), not by whichever
        literal the first branch holds.
        """
        out: list[str] = []
        for node in self.nodes:
            if isinstance(node, _If):
                named = [word[1:] for condition, _ in node.branches for word in condition
                         if word.startswith(".") and word[1:] in titles]
                out.append(go_text(titles[named[0]]) if named else "")
            else:
                self._render([node], titles, out)
        return "".join(out)


def align(rows: Iterable[Sequence[str]], out: TextIO, padding: int = PADDING) -> None:
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
        lines = [template.render_header(titles)] + [template.render(dict(row)) for row in rows]
        align([line.split("\t") for line in lines], out)
        return
    template = Template(fmt, fields)
    for row in rows:
        out.write(template.render(dict(row)) + "\n")


def render_one(row: dict[str, object], fmt: str, out: TextIO, *, fields: Sequence[str]) -> None:
    """One result (``pull``'s) as ``json`` (one object, one line) or a Go template."""
    fmt = fmt.strip()
    if fmt == "json":
        out.write(json.dumps({k: row.get(k) for k in fields}, separators=(",", ":")) + "\n")
        return
    out.write(Template(fmt, fields).render(dict(row)) + "\n")
