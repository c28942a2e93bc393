"""The completion engine: what the words before the cursor say, and which candidates follow.

It reads the argument table in ``spec`` and nothing else about the command line, so both
protocol adapters (``cobra``, ``argcomplete_adapter``) give the same answers. Candidates that
need data (images, tags, builds) come from a ``sources.Sources``; this module never touches
the network, the engine or the cache itself.
"""

from __future__ import annotations

import os
import time

from .. import spec
from ..ages import describe_age

TYPE_CHECKING = False
if TYPE_CHECKING:  # annotations only: typing and collections cost a TAB ~5 ms to import
    from collections.abc import Iterable
    from typing import Any

    from .sources import Sources

# Cobra's ShellCompDirective bits.
ERROR, NO_SPACE, NO_FILES, FILTER_EXT, FILTER_DIRS, KEEP_ORDER = 1, 2, 4, 8, 16, 32
DEFAULT = 0

MAX_CANDIDATES = 500
_HELP_FLAGS = (("--help", "show this help and exit"), ("-h", "show this help and exit"))
_VERSION_FLAG = ("--version", "print the version and exit")

Candidates = list[tuple[str, str]]


class Answer:
    """Candidates (value, description) and cobra's directive.

    ``prefix`` is text that stays in front of every value (``--format=`` when completing
    ``--format=js``): cobra wants bare values, argcomplete whole words. ``files`` asks the
    shell (cobra) or the argcomplete adapter to complete ``"paths"`` or ``"dirs"``.
    """

    __slots__ = ("candidates", "directive", "files", "prefix")

    def __init__(self, candidates: Candidates | None = None, directive: int = NO_FILES, *,
                 files: str | None = None, prefix: str = "") -> None:
        self.candidates = candidates or []
        self.directive = directive
        self.files = files
        self.prefix = prefix

    def __repr__(self) -> str:
        return f"Answer({self.candidates!r}, {self.directive}, files={self.files!r})"


# --- references, parsed just enough to key a cache ------------------------------------------


def is_host(component: str) -> bool:
    """Whether the first path component names a registry (``cgr.dev``, ``localhost:5000``)."""
    return "." in component or ":" in component or component == "localhost" or (
        component.startswith("["))


def _valid_path(path: str) -> bool:
    if not path or len(path) > 255:
        return False
    for part in path.split("/"):
        if not part or not part[0].isalnum() or not part[-1].isalnum():
            return False
        if any(not (c.isascii() and (c.islower() or c.isdigit() or c in "._-")) for c in part):
            return False
    return True


def valid_tag(tag: str) -> bool:
    """The tag grammar (``[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}``), without importing re."""
    return 0 < len(tag) <= 128 and tag[0] not in ".-" and all(
        c.isascii() and (c.isalnum() or c in "_.-") for c in tag)


def split_reference(text: str, registry: str, org: str) -> tuple[str, str, str | None] | None:
    """``(host, repository, tag)`` the way ``reference.parse_cli`` reads ``text``, or ``None``.

    A light copy of the parser's defaulting (short names live in ``registry/org``) that keys
    the cache without importing ``reference`` (dataclasses and inspect cost 5 ms); the real
    parser still validates before any registry is asked.
    """
    text = text.strip()
    if not text or "@" in text:
        return None
    first, slash, rest = text.partition("/")
    host = None
    if slash and is_host(first):
        host, text = first, rest
    path, tag = text, None
    colon = path.rfind(":")
    if colon > path.rfind("/"):
        path, tag = path[:colon], path[colon + 1 :]
    if host is None:
        host = registry
        if "/" not in path and org:
            path = f"{org}/{path}"
    if not _valid_path(path):
        return None
    return host, path, tag


def _tag_split(current: str) -> tuple[str, str] | None:
    """``("python", "3.1")`` for ``python:3.1``; ``None`` when no tag is being typed.

    A colon in the last path component starts a tag, except in a lone ``host:port`` being
    typed (``127.0.0.1:5``), which is not an image yet.
    """
    last_slash = current.rfind("/")
    colon = current.rfind(":")
    if colon <= last_slash:
        return None
    name = current[:colon]
    if last_slash < 0 and is_host(name):
        return None
    return name, current[colon + 1 :]


class _Line:
    """What the words before the cursor say: command, positionals, options and their values."""

    def __init__(self, words: list[str]) -> None:
        self.command, position = spec.find_command(words)
        self.explicit = position >= 0
        # Only the global options this command takes (install has no --registry).
        self.options = {flag: opt for opt in self.command.options for flag in opt.flags}
        self.positionals: list[str] = []
        self.values: dict[str, list[str]] = {}
        self.used: set[str] = set()
        self.pending: spec.Opt | None = None
        self.after_dashes = False
        index = 0
        while index < len(words):
            word = words[index]
            index += 1
            if index - 1 == position:
                continue
            if self.after_dashes:
                self.positionals.append(word)
            elif word == "--":
                self.after_dashes = True
            elif word.startswith("-") and word != "-":
                name, equals, value = word.partition("=")
                opt = self.options.get(name)
                if opt is None:
                    continue
                self.used.add(opt.dest)
                if not opt.value:
                    continue
                if equals:
                    self.values.setdefault(opt.dest, []).append(value)
                elif index < len(words):
                    self.values.setdefault(opt.dest, []).append(words[index])
                    index += 1
                else:
                    self.pending = opt
            else:
                self.positionals.append(word)

    def argument(self, index: int) -> spec.Arg | None:
        args = self.command.args
        if index < len(args):
            return args[index]
        if args and args[-1].many:
            return args[-1]
        return None

    def image(self) -> str | None:
        for index, arg in enumerate(self.command.args):
            if arg.complete == spec.IMAGE and index < len(self.positionals):
                return self.positionals[index]
        return None


def _starting(items: Iterable[tuple[str, str]], current: str) -> Candidates:
    return [(value, help) for value, help in items if value.startswith(current)]


def _stamp(epoch: int, micro: int | None) -> str:
    """The time as ``list`` prints it (``timespec.format_timestamp``, without importing
    datetime): exact, with a fraction. A whole second is all an older cache line knows; bare,
    typed back, it covers that second."""
    second = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(epoch))
    if micro is None:
        return second + "Z"
    return second + (f".{micro:06d}" if micro % 1000 else f".{micro // 1000:03d}") + "Z"


def _flags(line: _Line, current: str) -> Candidates:
    long_only = current.startswith("--")
    out: Candidates = []
    for opt in line.command.options:
        if opt.dest in line.used and opt.action != "append":
            continue
        for flag in opt.flags:
            if long_only and not flag.startswith("--"):
                continue
            out.append((flag, opt.help))
    extra = [*_HELP_FLAGS, *([_VERSION_FLAG] if not line.explicit else [])]
    out += [(flag, help) for flag, help in extra if not (long_only and flag == "-h")]
    return _starting(out, current)


def option_values(opt: spec.Opt, current: str, line: _Line, sources: Sources) -> Answer:
    """Candidates for ``opt``'s value: its ``choices`` when it has them, else its completer."""
    if opt.choices:
        return Answer(_starting(opt.choices, current), NO_FILES | KEEP_ORDER)
    return values_for(opt.complete, current, line, sources)


def values_for(kind: str | None, current: str, line: _Line | None, sources: Sources) -> Answer:
    """Candidates for one value of completer ``kind`` (see ``spec``), ``current`` typed so far."""
    if kind in (spec.IMAGE, spec.TAG_REF):
        return _images(current, sources)
    if kind in (spec.DIGEST, spec.INDEX):
        return _builds(kind, current, line.image() if line is not None else None, sources)
    if kind == spec.FORMAT:
        return Answer(_starting(spec.FORMATS, current), NO_FILES | KEEP_ORDER)
    if kind == spec.PLATFORM:
        return _platforms(current, line.image() if line is not None else None, sources)
    if kind == spec.SHELL:
        return Answer(_starting(spec.SHELLS, current), NO_FILES)
    if kind == spec.COMMAND:
        return Answer(_starting(((c.name, c.help) for c in spec.COMMANDS), current), NO_FILES)
    if kind == spec.PATHS:
        return Answer([], DEFAULT, files="paths")
    if kind == spec.DIR:
        return Answer([], FILTER_DIRS, files="dirs")
    return Answer([], NO_FILES)


def _images(current: str, sources: Sources) -> Answer:
    tagged = _tag_split(current)
    if tagged is None:
        return Answer(_starting(sources.images(), current), NO_FILES)
    name, typed = tagged
    settings = sources.settings
    parts = split_reference(name, settings.registry, settings.org)
    if parts is None:
        return Answer([], NO_FILES)
    host, repository, _ = parts
    tags = [tag for tag in sources.tags(host, repository) if tag.startswith(typed)]
    return Answer([(f"{name}:{tag}", "") for tag in sorted(tags)], NO_FILES)


def _platforms(current: str, image: str | None, sources: Sources) -> Answer:
    """The platforms the image's newest build has (cached), else the common ones."""
    settings = sources.settings
    parts = split_reference(image, settings.registry, settings.org) if image else None
    found = sources.platforms(parts[0], parts[1], parts[2] or "latest") if parts else []
    offered = [(name, "in the newest build") for name in found] or list(spec.PLATFORMS)
    return Answer(_starting(offered, current), NO_FILES | KEEP_ORDER)


def _builds(kind: str, current: str, image: str | None, sources: Sources) -> Answer:
    if not image:
        return Answer([], NO_FILES)
    settings = sources.settings
    parts = split_reference(image, settings.registry, settings.org)
    if parts is None:
        return Answer([], NO_FILES)
    host, repository, tag = parts
    builds = sources.builds(host, repository, tag or "latest")
    now = time.time()
    out: Candidates = []
    bare = bool(current) and not "sha256:".startswith(current[:7]) and all(
        c in "0123456789abcdef" for c in current)
    # The position is the --index: Sources.builds keeps list's order and the newest builds.
    for index, (stamp, micro, digest) in enumerate(builds):
        when = f"{_stamp(stamp, micro)}, {describe_age(now - stamp)}"
        if kind == spec.INDEX:
            value, description = str(index), f"{when}, {digest[7:19]}"
        else:
            value, description = (digest[7:] if bare else digest), f"#{index}, {when}"
        if value.startswith(current):
            out.append((value, description))
            if len(out) >= MAX_CANDIDATES:
                break
    return Answer(out, NO_FILES | KEEP_ORDER)


def complete(words: list[str], current: str, sources: Sources, *,
             options_on_empty: bool = False) -> Answer:
    """The answer for the word ``current`` after ``words`` (both without the program name).

    ``options_on_empty`` offers long flags before anything is typed, as argcomplete users
    expect; cobra shells offer flags only after a ``-``.
    """
    line = _Line(words)
    if not sources.settings.flags:
        sources.settings.flags = line.values  # --registry, --org... on the line being completed
    if line.pending is not None:
        return option_values(line.pending, current, line, sources)
    if line.after_dashes:
        return Answer([], DEFAULT, files="paths")
    if current.startswith("-"):
        name, equals, value = current.partition("=")
        if equals and name.startswith("--"):
            opt = line.options.get(name)
            if opt is None or not opt.value:
                return Answer([], NO_FILES)
            answer = option_values(opt, value, line, sources)
            answer.prefix = f"{name}="
            return answer
        return Answer(_flags(line, current), NO_FILES)
    arg = line.argument(len(line.positionals))
    out: Candidates = []
    directive = NO_FILES
    files = None
    if not line.explicit and not line.positionals:
        out += _starting(((c.name, c.help) for c in spec.COMMANDS), current)
    if arg is not None:
        if arg.complete is not None:
            answer = values_for(arg.complete, current, line, sources)
            out += answer.candidates
            directive, files = answer.directive, answer.files
        elif arg.rest and "--".startswith(current):
            out.append(("--", arg.help))
    if options_on_empty and not current and files is None:
        out += [(flag, help) for flag, help in _flags(line, "--") if flag.startswith("--")]
        directive &= ~KEEP_ORDER
    return Answer(out, directive, files=files)


# --- shared by the protocol adapters -------------------------------------------------------


def clean(text: str) -> str:
    """One line, no control characters: safe on the protocol and in the terminal."""
    return "".join(c if c.isprintable() else " " for c in " ".join(text.split()))


def silence() -> None:
    """Point stdin and stderr at /dev/null: nothing may prompt or print during a TAB."""
    try:
        null = os.open(os.devnull, os.O_RDWR)
        os.dup2(null, 0)
        os.dup2(null, 2)
        os.close(null)
    except OSError:
        pass


def finish(sources: Sources, stream: Any, text: str) -> None:
    """Write, flush, and leave: a worker stuck on the network must not hold up the exit."""
    try:
        stream.write(text)
        stream.flush()
    except (OSError, ValueError):
        return
    finally:
        if sources.abandoned:
            os._exit(0)
