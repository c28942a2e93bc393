"""Find the image references of a Dockerfile, as character spans of its source text.

The BuildKit parser (the ``dockerfile`` package wraps its Go code) decides what the
instructions are, so heredoc bodies, comments and continuation lines are never mistaken for
instructions. It reports lines, not columns, so each instruction of interest is re-read here
from its first line with BuildKit's own line-joining rules while remembering where every
character came from; a token is used only if what is re-read matches what the parser saw and
its characters are contiguous in the file. Anything less certain is reported, not rewritten.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import dockerfile as buildkit

from ..errors import InvalidReference
from ..reference import parse_docker
from .pins import (
    KIND_ARG,
    KIND_COPY_FROM,
    KIND_FROM,
    KIND_MOUNT_FROM,
    ParseFailure,
    Site,
    Skip,
    line_of,
)

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
_VARIABLE = re.compile(r"\$(?:\{([A-Za-z_][A-Za-z0-9_]*)\}|([A-Za-z_][A-Za-z0-9_]*))")
_INSTRUCTIONS = frozenset(
    {
        "add",
        "arg",
        "cmd",
        "copy",
        "entrypoint",
        "env",
        "expose",
        "from",
        "healthcheck",
        "label",
        "maintainer",
        "onbuild",
        "run",
        "shell",
        "stopsignal",
        "user",
        "volume",
        "workdir",
    }
)
_NO_INSTRUCTIONS = "file with no instructions"
# BuildKit's parse errors that name no text of the file; the others quote it (``can't find =
# in "…"``, ``invalid escape token '…'``) and are replaced by a fixed description, because the
# file may be a secret reached by mistake and errors end up in CI logs.
_SAFE_GO_ERRORS = re.compile(
    r"unterminated heredoc"
    r"|[A-Z]+ must have two arguments"
    r"|[A-Z]+ names can not be blank"
    r"|only one [a-z]+ parser directive can be used"
    r"|dockerfile line greater than max allowed size of [0-9]+"
    r"|unexpected end of statement while looking for matching (?:double|single)-quote"
    r"|when using JSON array syntax, arrays must be comprised of strings only"
)
_GO_ERRORS = (
    ("can't find =", "expected NAME=VALUE"),
    ("invalid escape token", "invalid escape token (must be ` or \\)"),
)
_SCRATCH = "scratch"

_COMPLEX = "quoting or escapes too complex to rewrite safely"
_SPLIT = "reference is split by a line continuation"
_LOST = "could not locate the reference in the source text"


@dataclass(frozen=True)
class _Word:
    """A token of a logical line: its cooked text and its span in the logical line."""

    text: str
    start: int
    end: int


@dataclass
class _Logical:
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


@dataclass
class _ArgDefault:
    """A global ``ARG`` as declared before the first ``FROM``."""

    name: str
    line: int
    value: str | None = None
    span: tuple[int, int] | None = None
    problem: str | None = None
    used_by: list[int] = field(default_factory=list)


class _Source:
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
            content = _lstrip(content)
            if not content.startswith("#"):
                break
            match = _DIRECTIVE.match(_lstrip(content[1:]))
            if not match or match.group(1).lower() not in _DIRECTIVES:
                break
            if match.group(1).lower() == "escape":
                escape = match.group(2)
        return escape

    def logical(self, first_line: int, escape: str) -> _Logical:
        """Join an instruction's lines as BuildKit does, remembering each character's offset."""
        chars: list[str] = []
        offsets: list[int] = []
        index = first_line - 1
        begin, content = self.line(index)
        skip = len(content) - len(_lstrip(content))
        piece, more = _trim_continuation(content[skip:], escape)
        chars.extend(piece)
        offsets.extend(range(begin + skip, begin + skip + len(piece)))
        while more and index + 1 < len(self.starts):
            index += 1
            begin, content = self.line(index)
            stripped = _lstrip(content)
            if not stripped or stripped.startswith("#"):
                continue
            piece, more = _trim_continuation(content, escape)
            chars.extend(piece)
            offsets.extend(range(begin, begin + len(piece)))
        return _Logical("".join(chars), offsets)


def _lstrip(text: str) -> str:
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


def _trim_span(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start] in _GO_SPACE:
        start += 1
    while end > start and text[end - 1] in _GO_SPACE:
        end -= 1
    return start, end


def _split_command(logical: str) -> tuple[str, int, int]:
    """The command word, and where its arguments start and end (``splitCommand``)."""
    start, end = _trim_span(logical, 0, len(logical))
    match = _WS.search(logical, start, end)
    if not match:
        return logical[start:end], end, end
    return logical[start : match.start()], match.end(), end


def _builder_flags(text: str, start: int, end: int, escape: str) -> tuple[list[_Word], int]:
    """The leading ``--flag`` words and where the rest starts (``extractBuilderFlags``)."""
    words: list[_Word] = []
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
            if char != "-" or pos + 1 == end or text[pos + 1] != "-":
                return words, pos
            phase = in_word
            word_start = pos
        if pos == end:
            word = "".join(buffer)
            if word != "--" and (blank_ok or word):
                words.append(_Word(word, word_start, pos))
            break
        if phase == in_word:
            if char in _GO_SPACE:
                word = "".join(buffer)
                phase = in_spaces
                if word == "--":
                    return words, pos
                if blank_ok or word:
                    words.append(_Word(word, word_start, pos))
                buffer = []
                blank_ok = False
                pos += 1
                continue
            if char in "'\"":
                quote = char
                blank_ok = True
                phase = in_quote
                pos += 1
                continue
            if char == escape:
                if pos + 1 == end:
                    pos += 1
                    continue
                pos += 1
                char = text[pos]
            buffer.append(char)
            pos += 1
            continue
        if char == quote:
            phase = in_word
            pos += 1
            continue
        if char == escape:
            if pos + 1 == end:
                phase = in_word
                pos += 1
                continue
            pos += 1
            char = text[pos]
        buffer.append(char)
        pos += 1
    return words, end


def _words(text: str, start: int, end: int, escape: str) -> list[_Word]:
    """Quote-aware words with their quotes kept, as ``ARG`` reads them (``parseWords``)."""
    words: list[_Word] = []
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
            phase = in_word
            word_start = pos
        if pos == end:
            if blank_ok or buffer:
                words.append(_Word("".join(buffer), word_start, pos))
            break
        if phase == in_word:
            if char in _GO_SPACE:
                phase = in_spaces
                if blank_ok or buffer:
                    words.append(_Word("".join(buffer), word_start, pos))
                buffer = []
                blank_ok = False
                pos += 1
                continue
            if char in "'\"":
                quote = char
                blank_ok = True
                phase = in_quote
            if char == escape:
                if pos + 1 == end:
                    pos += 1
                    continue
                buffer.append(char)
                pos += 1
                char = text[pos]
            buffer.append(char)
            pos += 1
            continue
        if char == quote:
            phase = in_word
        if char == escape and quote != "'":
            if pos + 1 == end:
                phase = in_word
                pos += 1
                continue
            buffer.append(char)
            pos += 1
            char = text[pos]
        buffer.append(char)
        pos += 1
    return words


def _whitespace_words(text: str, start: int, end: int) -> list[_Word]:
    """FROM's arguments: split on whitespace, nothing else (``parseStringsWhitespaceDelimited``)."""
    if start >= end:
        return []
    words: list[_Word] = []
    pos = start
    for match in _WS.finditer(text, start, end):
        words.append(_Word(text[pos : match.start()], pos, match.start()))
        pos = match.end()
    words.append(_Word(text[pos:end], pos, end))
    return words


def _literal(raw: str, escape: str) -> tuple[int, int] | None:
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


@dataclass
class _Scan:
    """The state of one pass over a Dockerfile's instructions."""

    path: str
    source: _Source
    escape: str
    sites: dict[tuple[int, int], Site] = field(default_factory=dict)
    skips: list[Skip] = field(default_factory=list)

    def skip(self, line: int, text: str, reason: str) -> None:
        item = Skip(self.path, line, text, reason)
        if item not in self.skips:
            self.skips.append(item)

    def site(self, span: tuple[int, int], kind: str, used_by: tuple[int, ...] = ()) -> None:
        text = self.source.text[span[0] : span[1]]
        self.sites[span] = Site(
            path=self.path,
            line=line_of(self.source.text, span[0]),
            start=span[0],
            end=span[1],
            text=text,
            reference=parse_docker(text),
            kind=kind,
            used_by=used_by,
        )


def _parse(path: str, text: str) -> list[buildkit.Command]:
    nul = text.find("\x00")
    if nul >= 0:
        # The Go parser receives a C string and would silently stop at the NUL.
        raise ParseFailure(path, line_of(text, nul), "contains a NUL character; not a Dockerfile")
    try:
        return list(buildkit.parse_string(text))
    except buildkit.GoParseError as error:
        message = str(error)
        if message == _NO_INSTRUCTIONS:
            return []
        raise ParseFailure(path, None, f"cannot parse Dockerfile: {_go_problem(message)}") from None


def _go_problem(message: str) -> str:
    """BuildKit's description of a parse error, without any text of the file it may quote."""
    if _SAFE_GO_ERRORS.fullmatch(message):
        return message
    for needle, problem in _GO_ERRORS:
        if needle in message:
            return problem
    return "invalid syntax"


def _invalid(text: str) -> str | None:
    try:
        parse_docker(text)
    except InvalidReference as error:
        return str(error)
    return None


def find_dockerfile_sites(path: str, text: str) -> tuple[list[Site], list[Skip]]:
    """The image references a build of this Dockerfile pulls, and those it can't pin.

    ``FROM`` bases are sites, except ``scratch`` and earlier stage names. ``FROM ${NAME}``
    points at the default of the global ``ARG NAME``, which is what gets pinned. External
    images named by ``COPY --from`` and ``RUN --mount=…,from=`` are sites when written plainly
    and silently ignored otherwise. Sites are sorted by position; spans never overlap.
    """
    commands = _parse(path, text)
    source = _Source(text)
    scan = _Scan(path, source, source.escape_token())
    stage_names: set[str] = set()
    all_stage_names = _all_stage_names(commands)
    global_args: dict[str, _ArgDefault] = {}
    seen_from = False
    for command in commands:
        if command.cmd is None:
            continue
        cmd = command.cmd.lower()
        if cmd not in _INSTRUCTIONS:
            # Not the word itself: a file that is not a Dockerfile (a credentials file behind a
            # symlink) would have its first line printed.
            raise ParseFailure(path, command.start_line, "unknown instruction")
        if cmd == "arg" and not seen_from:
            _read_global_arg(scan, command, global_args)
        elif cmd == "from":
            seen_from = True
            _read_from(scan, command, stage_names, global_args)
        elif cmd in ("copy", "run"):
            _read_flags(scan, command, all_stage_names)
    for arg in global_args.values():
        if arg.span is not None and arg.used_by:
            scan.site(arg.span, KIND_ARG, tuple(arg.used_by))
    sites = sorted(scan.sites.values(), key=lambda site: site.start)
    skips = sorted(scan.skips, key=lambda skip: skip.line)
    return sites, skips


def _all_stage_names(commands: list[buildkit.Command]) -> set[str]:
    names: set[str] = set()
    for command in commands:
        values = command.value
        if (command.cmd or "").lower() == "from" and len(values) == 3:
            names.add(values[2].lower())
    return names


def _read_global_arg(scan: _Scan, command: buildkit.Command, args: dict[str, _ArgDefault]) -> None:
    logical = scan.source.logical(command.start_line, scan.escape)
    _, args_start, args_end = _split_command(logical.text)
    _, rest = _builder_flags(logical.text, args_start, args_end, scan.escape)
    rest, _ = _trim_span(logical.text, rest, args_end)
    words = _words(logical.text, rest, args_end, scan.escape)
    located = [word.text for word in words] == list(command.value)
    for index, value in enumerate(command.value):
        name, equals, default = value.partition("=")
        arg = _ArgDefault(name, command.start_line)
        args[name] = arg
        if not equals:
            continue
        arg.value = default
        word = words[index] if located else None
        if word is None or logical.text[word.start : word.end] != value:
            arg.problem = _LOST if word is None else _COMPLEX
            continue
        inner = _literal(default, scan.escape)
        if inner is None:
            arg.problem = _COMPLEX
            continue
        literal = default[inner[0] : inner[1]]
        if "$" in literal:
            arg.problem = f"default value of build argument {name} uses other build arguments"
            continue
        start = word.start + len(name) + 1 + inner[0]
        end = start + len(literal)
        if not logical.contiguous(start, end):
            arg.problem = _SPLIT
            continue
        arg.value = literal
        arg.span = logical.source_span(start, end)
        arg.line = line_of(scan.source.text, arg.span[0])


def _read_from(
    scan: _Scan,
    command: buildkit.Command,
    stage_names: set[str],
    args: dict[str, _ArgDefault],
) -> None:
    values = list(command.value)
    line = command.start_line
    if not (len(values) == 1 or (len(values) == 3 and values[1].lower() == "as")):
        raise ParseFailure(scan.path, line, "FROM requires either one or three arguments")
    _read_base(scan, command, values[0], stage_names, args)
    if len(values) == 3:
        stage_names.add(values[2].lower())


def _read_base(
    scan: _Scan,
    command: buildkit.Command,
    base: str,
    stage_names: set[str],
    args: dict[str, _ArgDefault],
) -> None:
    line = command.start_line
    if base.lower() == _SCRATCH or base.lower() in stage_names:
        return
    logical = scan.source.logical(line, scan.escape)
    _, args_start, args_end = _split_command(logical.text)
    flags, rest = _builder_flags(logical.text, args_start, args_end, scan.escape)
    rest, _ = _trim_span(logical.text, rest, args_end)
    words = _whitespace_words(logical.text, rest, args_end)
    if [flag.text for flag in flags] != list(command.flags) or not words or words[0].text != base:
        scan.skip(line, base, _LOST)
        return
    word = words[0]
    inner = _literal(base, scan.escape)
    if inner is None:
        if "$" in base:
            scan.skip(line, base, "reference is assembled from build arguments")
        else:
            scan.skip(line, base, _COMPLEX)
        return
    literal = base[inner[0] : inner[1]]
    if "$" in literal:
        _read_variable_base(scan, line, base, literal, stage_names, args)
        return
    problem = _invalid(literal)
    if problem:
        scan.skip(line, base, problem)
        return
    start, end = word.start + inner[0], word.start + inner[1]
    if not logical.contiguous(start, end):
        scan.skip(line, base, _SPLIT)
        return
    scan.site(logical.source_span(start, end), KIND_FROM)


def _read_variable_base(
    scan: _Scan,
    line: int,
    base: str,
    literal: str,
    stage_names: set[str],
    args: dict[str, _ArgDefault],
) -> None:
    match = _VARIABLE.fullmatch(literal)
    if not match or base.startswith("'"):
        scan.skip(line, base, "reference is assembled from build arguments")
        return
    name = match.group(1) or match.group(2)
    arg = args.get(name)
    if arg is None:
        scan.skip(line, base, f"build argument {name} is not declared before the first FROM")
        return
    if arg.value is None:
        scan.skip(line, base, f"build argument {name} has no default value")
        return
    if arg.problem or arg.span is None:
        scan.skip(line, base, arg.problem or _COMPLEX)
        return
    if arg.value.lower() == _SCRATCH or arg.value.lower() in stage_names:
        return
    problem = _invalid(arg.value)
    if problem:
        scan.skip(arg.line, arg.value, problem)
        return
    arg.used_by.append(line)


def _read_flags(scan: _Scan, command: buildkit.Command, stage_names: set[str]) -> None:
    """Pin ``COPY --from=IMAGE`` and ``RUN --mount=…,from=IMAGE`` when plainly written."""
    wanted = [flag for flag in command.flags if flag.startswith(("--from=", "--mount="))]
    if not wanted:
        return
    logical = scan.source.logical(command.start_line, scan.escape)
    _, args_start, args_end = _split_command(logical.text)
    flags, _ = _builder_flags(logical.text, args_start, args_end, scan.escape)
    if [flag.text for flag in flags] != list(command.flags):
        return
    for flag in flags:
        if logical.text[flag.start : flag.end] != flag.text:
            continue
        if command.cmd.lower() == "copy" and flag.text.startswith("--from="):
            offset = len("--from=")
            _external(scan, logical, flag.start + offset, flag.end, KIND_COPY_FROM, stage_names)
        elif command.cmd.lower() == "run" and flag.text.startswith("--mount="):
            offset = flag.start + len("--mount=")
            for part in logical.text[offset : flag.end].split(","):
                key, equals, _ = part.partition("=")
                if equals and key.lower() == "from":
                    start = offset + len(key) + 1
                    _external(
                        scan, logical, start, offset + len(part), KIND_MOUNT_FROM, stage_names
                    )
                offset += len(part) + 1


def _external(
    scan: _Scan, logical: _Logical, start: int, end: int, kind: str, stage_names: set[str]
) -> None:
    value = logical.text[start:end]
    if (
        not value
        or value.isdigit()
        or value.lower() in stage_names
        or value.lower() == _SCRATCH
        or "$" in value
        or _invalid(value)
        or not logical.contiguous(start, end)
    ):
        return
    scan.site(logical.source_span(start, end), kind)
