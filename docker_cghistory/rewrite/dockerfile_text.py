"""Dockerfile text read the way BuildKit reads it, with every character's place in the file.

Why its own module: BuildKit's parser reports lines, not columns, so pinning re-reads each
instruction it cares about here, with BuildKit's own rules (the escape directive, line
continuations, ``splitCommand``, ``extractBuilderFlags``, ``parseWords``), while remembering
where each character came from. This is a port of Go code, kept next to nothing else so it
can be compared with its source function by function; ``dockerfile`` decides which of the
words it finds are image references.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# unicode.IsSpace in Go: what BuildKit trims around lines and words.
_GO_SPACE = frozenset(
    "\t\n\v\f\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009"
    "\u200a\u2028\u2029\u202f\u205f\u3000"
)
# reWhitespace in BuildKit's parser: what separates the command and FROM's arguments.
_WS = re.compile(r"[\t\v\f\r ]+")
# The directive parser of the BuildKit version the ``dockerfile`` package wraps; it knows
# ``syntax`` and ``escape`` only (a ``# check=`` line ends the directives there).
_DIRECTIVE = re.compile(r"([a-zA-Z][a-zA-Z0-9]*)[\t\n\f\r ]*=[\t\n\f\r ]*(.+?)[\t\n\f\r ]*\Z")
_DIRECTIVES = frozenset({"escape", "syntax"})


@dataclass(frozen=True)
class Word:
    """A token of a logical line: its cooked text and its span in the logical line."""

    text: str
    start: int
    end: int


@dataclass
class Logical:
    """An instruction's logical line and, per character, its offset in the file's text."""

    text: str
    offsets: list[int]

    def contiguous(self, start: int, end: int) -> bool:
        """Whether ``text[start:end]`` is also one unbroken run of characters in the file."""
        if start >= end:
            return False
        return self.offsets[end - 1] - self.offsets[start] == end - 1 - start

    def source_span(self, start: int, end: int) -> tuple[int, int]:
        return self.offsets[start], self.offsets[end - 1] + 1


class Source:
    """The file split into physical lines the way BuildKit's scanner splits them (``\\n``)."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.starts = [0]
        newline = text.find("\n")
        while newline >= 0:
            self.starts.append(newline + 1)
            newline = text.find("\n", newline + 1)

    def line(self, index: int) -> tuple[int, str]:
        """Offset and content of 0-based line ``index``, without ``\\n`` and trailing ``\\r``s."""
        start = self.starts[index]
        end = self.starts[index + 1] - 1 if index + 1 < len(self.starts) else len(self.text)
        content = self.text[start:end].rstrip("\r")
        if index == 0 and content.startswith("\ufeff"):
            return start + 1, content[1:]
        return start, content

    def escape_token(self) -> str:
        escape = "\\"
        for index in range(len(self.starts)):
            _, content = self.line(index)
            content = go_lstrip(content)
            if not content.startswith("#"):
                break
            match = _DIRECTIVE.match(go_lstrip(content[1:]))
            if not match or match.group(1).lower() not in _DIRECTIVES:
                break
            if match.group(1).lower() == "escape":
                escape = match.group(2)
        return escape

    def logical(self, first_line: int, escape: str) -> Logical:
        """Join an instruction's lines as BuildKit does, remembering each character's offset."""
        chars: list[str] = []
        offsets: list[int] = []
        index = first_line - 1
        begin, content = self.line(index)
        skip = len(content) - len(go_lstrip(content))
        piece, more = _trim_continuation(content[skip:], escape)
        chars.extend(piece)
        offsets.extend(range(begin + skip, begin + skip + len(piece)))
        while more and index + 1 < len(self.starts):
            index += 1
            begin, content = self.line(index)
            stripped = go_lstrip(content)
            if not stripped or stripped.startswith("#"):
                continue
            piece, more = _trim_continuation(content, escape)
            chars.extend(piece)
            offsets.extend(range(begin, begin + len(piece)))
        return Logical("".join(chars), offsets)


def go_lstrip(text: str) -> str:
    index = 0
    while index < len(text) and text[index] in _GO_SPACE:
        index += 1
    return text[index:]


def _trim_continuation(line: str, escape: str) -> tuple[str, bool]:
    """BuildKit's continuation rule: a final escape token, not itself escaped, ends the line."""
    body = line.rstrip(" \t")
    if body.endswith(escape) and (len(body) == 1 or body[-2] != escape):
        return body[:-1], True
    return line, False


def trim_span(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start] in _GO_SPACE:
        start += 1
    while end > start and text[end - 1] in _GO_SPACE:
        end -= 1
    return start, end


def split_command(logical: str) -> tuple[str, int, int]:
    """The command word, and where its arguments start and end (``splitCommand``)."""
    start, end = trim_span(logical, 0, len(logical))
    match = _WS.search(logical, start, end)
    if not match:
        return logical[start:end], end, end
    return logical[start : match.start()], match.end(), end


def builder_flags(text: str, start: int, end: int, escape: str) -> tuple[list[Word], int]:
    """The leading ``--flag`` words and where the rest starts (``extractBuilderFlags``)."""
    return _scan_words(text, start, end, escape, flags=True)


def parse_words(text: str, start: int, end: int, escape: str) -> list[Word]:
    """Quote-aware words with their quotes kept, as ``ARG`` reads them (``parseWords``)."""
    return _scan_words(text, start, end, escape, flags=False)[0]


def _scan_words(text: str, start: int, end: int, escape: str, *,
                flags: bool) -> tuple[list[Word], int]:
    """BuildKit's two word scanners, which share one state machine and differ in three ways.

    ``extractBuilderFlags`` (``flags``) stops at the first word that is not ``--x`` or at a
    bare ``--``, and drops quotes and escapes; ``parseWords`` keeps them (ARG's values are
    lexed again later) and honours no escape inside single quotes.
    """
    keep = not flags
    words: list[Word] = []
    in_spaces, in_word, in_quote = 0, 1, 2
    phase = in_spaces
    buffer: list[str] = []
    word_start = start
    quote = ""
    blank_ok = False
    pos = start
    while pos <= end:
        char = text[pos] if pos < end else ""
        if phase == in_spaces:
            if pos == end:
                break
            if char in _GO_SPACE:
                pos += 1
                continue
            if flags and (char != "-" or pos + 1 == end or text[pos + 1] != "-"):
                return words, pos
            phase = in_word
            word_start = pos
        if pos == end:
            word = "".join(buffer)
            if (blank_ok or word) and not (flags and word == "--"):
                words.append(Word(word, word_start, pos))
            break
        if phase == in_word and char in _GO_SPACE:
            word = "".join(buffer)
            phase = in_spaces
            if flags and word == "--":
                return words, pos
            if blank_ok or word:
                words.append(Word(word, word_start, pos))
            buffer = []
            blank_ok = False
            pos += 1
            continue
        if phase == in_word and char in "'\"":
            quote = char
            blank_ok = True
            phase = in_quote
            if not keep:
                pos += 1
                continue
        elif phase == in_quote and char == quote:
            phase = in_word
            if not keep:
                pos += 1
                continue
        elif char == escape and (flags or phase == in_word or quote != "'"):
            if pos + 1 == end:  # a trailing escape escapes nothing
                phase = in_word
                pos += 1
                continue
            if keep:
                buffer.append(char)
            pos += 1
            char = text[pos]
        buffer.append(char)
        pos += 1
    return words, end


def whitespace_words(text: str, start: int, end: int) -> list[Word]:
    """FROM's arguments: split on whitespace, nothing else (``parseStringsWhitespaceDelimited``)."""
    if start >= end:
        return []
    words: list[Word] = []
    pos = start
    for match in _WS.finditer(text, start, end):
        words.append(Word(text[pos : match.start()], pos, match.start()))
        pos = match.end()
    words.append(Word(text[pos:end], pos, end))
    return words


def plain_literal(raw: str, escape: str) -> tuple[int, int] | None:
    """The span inside ``raw`` of a plain or simply quoted literal; None if it needs lexing.

    BuildKit runs these values through its shell lexer, so one pair of matching quotes is
    removed; anything with escapes or inner quotes is left to a human.
    """
    start, end = 0, len(raw)
    if len(raw) >= 2 and raw[0] == raw[-1] and raw[0] in "'\"":
        start, end = 1, len(raw) - 1
    inner = raw[start:end]
    if not inner or "'" in inner or '"' in inner or escape in inner:
        return None
    return start, end
