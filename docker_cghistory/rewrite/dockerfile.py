"""Find the image references of a Dockerfile, as character spans of its source text.

The BuildKit parser (the ``dockerfile`` package wraps its Go code) decides what the
instructions are, so heredoc bodies, comments and continuation lines are never mistaken for
instructions. It reports lines, not columns, so each instruction of interest is re-read from
its first line with BuildKit's own line-joining rules while remembering where every character
came from (``dockerfile_text``); a token is used only if what is re-read matches what the
parser saw and its characters are contiguous in the file. Anything less certain is reported,
not rewritten.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import dockerfile as buildkit

from ..errors import InvalidReference
from ..reference import parse_docker
from .dockerfile_text import (
    Logical,
    Source,
    builder_flags,
    parse_words,
    plain_literal,
    split_command,
    trim_span,
    whitespace_words,
)
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


@dataclass
class _ArgDefault:
    """A global ``ARG`` as declared before the first ``FROM``."""

    name: str
    line: int
    value: str | None = None
    span: tuple[int, int] | None = None
    problem: str | None = None
    used_by: list[int] = field(default_factory=list)


@dataclass
class _Scan:
    """The state of one pass over a Dockerfile's instructions."""

    path: str
    source: Source
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
    source = Source(text)
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
    _, args_start, args_end = split_command(logical.text)
    _, rest = builder_flags(logical.text, args_start, args_end, scan.escape)
    rest, _ = trim_span(logical.text, rest, args_end)
    words = parse_words(logical.text, rest, args_end, scan.escape)
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
        inner = plain_literal(default, scan.escape)
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
    _, args_start, args_end = split_command(logical.text)
    flags, rest = builder_flags(logical.text, args_start, args_end, scan.escape)
    rest, _ = trim_span(logical.text, rest, args_end)
    words = whitespace_words(logical.text, rest, args_end)
    if [flag.text for flag in flags] != list(command.flags) or not words or words[0].text != base:
        scan.skip(line, base, _LOST)
        return
    word = words[0]
    inner = plain_literal(base, scan.escape)
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
    _, args_start, args_end = split_command(logical.text)
    flags, _ = builder_flags(logical.text, args_start, args_end, scan.escape)
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
    scan: _Scan, logical: Logical, start: int, end: int, kind: str, stage_names: set[str]
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
