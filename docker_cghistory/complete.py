"""Tab completion: docker's cobra ``__complete`` protocol and argcomplete, both from ``spec``.

Why it is built this way:
- One engine (``complete``) reads the argument table in ``spec`` and answers for both
  protocols, so subcommands, flags and value completers cannot drift between
  ``docker cghistory <TAB>`` and ``docker-cghistory <TAB>``.
- argcomplete's own finder is not used: it needs an argparse parser, and the CLI has an
  implicit default command (no subcommand means ``list IMAGE``), which argparse subparsers
  cannot express (the first word is a subcommand *or* an image). Driving our engine from
  ``COMP_LINE``/``COMP_POINT`` and writing argcomplete's wire format keeps the answers right and
  skips importing argparse and argcomplete (~10 ms) on every TAB.
- Every TAB starts a Python process, so a cache hit imports nothing heavy: no requests, docker,
  argparse, json or hashlib. Candidates live in small line-format files under
  ``cache.cache_dir()/complete``; a miss asks the registry within a hard budget
  (``BUDGET`` seconds, one attempt) and gives an empty answer on any failure.
- Completion never talks to the user: stdin and stderr point at /dev/null, a credential helper
  gets a short timeout, and the engine is never waited on (local images come from a list a
  forked child refreshes at most every ``LOCAL_REFRESH`` seconds).
"""

from __future__ import annotations

import os
import sys
import time

from . import spec
from .ages import describe_age

TYPE_CHECKING = False
if TYPE_CHECKING:  # annotations only: typing and collections cost a TAB ~5 ms to import
    from collections.abc import Callable, Iterable
    from typing import Any

# Cobra's ShellCompDirective bits.
ERROR, NO_SPACE, NO_FILES, FILTER_EXT, FILTER_DIRS, KEEP_ORDER = 1, 2, 4, 8, 16, 32
DEFAULT = 0

PLUGIN_NAME = "cghistory"  # plugin.NAME; repeated so a TAB does not import plugin.py
TTL = 300.0  # seconds a cached tag list or build list is served without asking the registry
LOCAL_REFRESH = 300.0  # at most one background refresh of the local image list per this long
BUDGET = 1.0  # seconds a cache miss may spend on the registry, credentials included
CONNECT_TIMEOUT = 0.5
MAX_CANDIDATES = 500
RECENT_MAX = 50
_FORMAT_VERSION = "cghistory-completion 1"
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


# --- settings: flags, environment, docker config --------------------------------------------


def _docker_config_path() -> str:
    # dockerconfig.config_path(), without importing json for users who have no settings.
    folder = os.environ.get("DOCKER_CONFIG") or os.path.join(os.path.expanduser("~"), ".docker")
    return os.path.join(folder, "config.json")


def _plugin_settings() -> dict[str, Any]:
    """``plugins.cghistory`` of the docker config; ``{}`` when absent or unreadable.

    Most configs never mention the plugin: a byte search spares those users the json import.
    """
    try:
        with open(_docker_config_path(), "rb") as handle:
            raw = handle.read()
    except OSError:
        return {}
    if b'"' + PLUGIN_NAME.encode() + b'"' not in raw:
        return {}
    try:
        from . import dockerconfig

        return dict(dockerconfig.plugin_settings())
    except Exception:
        return {}


def split_list(value: object) -> list[str]:
    """A settings value that is a list: a JSON list, or a comma/space separated string.

    docker wants plugin settings to be strings, so ``"python, node"`` is the normal form; a
    real JSON list (or a string holding one) is accepted too.
    """
    if isinstance(value, list):
        return [str(item).strip() for item in value if str(item).strip()]
    if not isinstance(value, str):
        return []
    text = value.strip()
    if text.startswith("["):
        try:
            import json

            parsed = json.loads(text)
        except ValueError:
            parsed = None
        if isinstance(parsed, list):
            return split_list(parsed)
        text = text.strip("[]")
    return [item.strip("\"' ") for item in text.replace(",", " ").split() if item.strip("\"' ")]


class Defaults:
    """Default registry, org and insecure hosts, resolved like ``context.Context`` does.

    Order: flags on the line being completed, ``CGHISTORY_*`` variables, ``plugins.cghistory``
    in the docker config, built-in defaults. Settings are read only when needed.
    """

    def __init__(self, flags: dict[str, list[str]] | None = None,
                 settings: dict[str, Any] | None = None) -> None:
        self.flags = flags or {}
        self._settings = settings

    @property
    def settings(self) -> dict[str, Any]:
        if self._settings is None:
            self._settings = _plugin_settings()
        return self._settings

    def _pick(self, dest: str, env: str, key: str, fallback: str) -> str:
        given = self.flags.get(dest)
        if given and given[-1]:
            return given[-1]
        return os.environ.get(env) or str(self.settings.get(key) or "") or fallback

    @property
    def registry(self) -> str:
        return self._pick("registry", "CGHISTORY_REGISTRY", "registry", "cgr.dev")

    @property
    def org(self) -> str:
        return self._pick("org", "CGHISTORY_ORG", "org", "chainguard")

    @property
    def insecure(self) -> list[str]:
        return list(self.flags.get("insecure_registries") or [])

    @property
    def images(self) -> list[str]:
        return split_list(self.settings.get("images"))


# --- references, parsed just enough to key a cache ------------------------------------------


def _is_host(component: str) -> bool:
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
    if slash and _is_host(first):
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
    if last_slash < 0 and _is_host(name):
        return None
    return name, current[colon + 1 :]


# --- the on-disk cache (line format) --------------------------------------------------------


def cache_folder() -> str:
    """``cache.cache_dir()/complete``: completion's entries beside the tokens."""
    from .cache import cache_dir

    return os.path.join(cache_dir(), "complete")


def _file_name(key: str) -> str:
    """A readable, bounded file name; the full key is checked inside the file."""
    digest = 0xCBF29CE484222325  # FNV-1a, 64 bits: no hashlib import for a file name
    for byte in key.encode():
        digest = ((digest ^ byte) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    safe = "".join(c if c.isascii() and (c.isalnum() or c in ".-") else "_" for c in key)
    return f"{safe[:80]}-{digest:016x}"


def _entry_path(kind: str, key: str) -> str:
    return os.path.join(cache_folder(), kind, _file_name(key))


def read_entry(kind: str, key: str) -> tuple[list[str], float] | None:
    """The lines stored for ``key`` and their age in seconds; ``None`` when absent or foreign."""
    path = _entry_path(kind, key)
    try:
        with open(path, "rb") as handle:
            data = handle.read()
            age = time.time() - os.fstat(handle.fileno()).st_mtime
    except OSError:
        return None
    try:
        text = data.decode()
    except UnicodeDecodeError:
        return None
    header, _, body = text.partition("\n")
    if header != f"{_FORMAT_VERSION}\t{key}" or not text.endswith("\n"):
        return None
    return body.splitlines(), max(age, 0.0)


def _write_file(path: str, data: bytes) -> None:
    from . import cache

    folder = os.path.dirname(path)
    if not os.path.isdir(folder):
        # Each level 0700, like the cache folder itself (makedirs gives parents the umask).
        for level in (os.path.dirname(cache_folder()), cache_folder(), folder):
            os.makedirs(level, mode=0o700, exist_ok=True)
    cache.write_atomic(path, data)


def write_entry(kind: str, key: str, lines: Iterable[str]) -> None:
    """Store lines for ``key`` atomically; a cache that cannot be written is not an error."""
    import contextlib

    body = "".join(f"{line}\n" for line in lines)
    with contextlib.suppress(OSError, UnicodeEncodeError):
        _write_file(_entry_path(kind, key), f"{_FORMAT_VERSION}\t{key}\n{body}".encode())


def _clean(text: str) -> str:
    """One line, no control characters: safe on the protocol and in the terminal."""
    return "".join(c if c.isprintable() else " " for c in " ".join(text.split()))


# --- recent references and local images ---------------------------------------------------


def remember_reference(text: str) -> None:
    """Offer ``text`` first next time an image is completed (list, pull and pin call this).

    Never raises and never prints: a command that succeeded must not fail because the cache
    folder is read-only. Concurrent shells may drop each other's entry; never tear the file.
    """
    try:
        text = text.strip()
        if not text or "@" in text or " " in text or len(text) > 300 or not text.isprintable():
            return
        found = read_entry("lists", "recent")
        kept = [line for line in (found[0] if found else []) if line != text]
        write_entry("lists", "recent", [text, *kept][:RECENT_MAX])
    except Exception:
        pass


def remember_builds(registry: str, repository: str, tag: str,
                    builds: Iterable[Any]) -> None:
    """Seed the ``--digest``/``--index`` completion with builds a command has just listed.

    ``builds`` are ``history.Build`` objects (``updated``, ``digest``), newest first, and
    must be the tag's newest builds without gaps (not a ``--since``/``--until`` window):
    completion numbers them for ``--index``.
    """
    try:
        lines = [f"{int(build.updated.timestamp())} {build.digest}" for build in builds]
        write_entry("builds", f"{registry}/{repository}:{tag}", lines)
    except Exception:
        pass


def _docker_images(timeout: float = 10.0) -> list[str] | None:
    """``REPOSITORY:TAG`` of the engine's images, from the docker CLI (contexts, TLS, hosts).

    ``docker`` is looked up on PATH's absolute entries only: a TAB in a checkout holding its own
    ``docker`` must not run it through an empty or relative PATH entry.
    """
    import subprocess

    from .programs import find_program

    docker = find_program("docker")
    if docker is None:
        return None
    try:
        result = subprocess.run(
            [docker, "image", "ls", "--format", "{{.Repository}}:{{.Tag}}"],
            stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout, check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if result.returncode != 0:
        return None
    images = []
    for line in result.stdout.decode(errors="replace").splitlines():
        line = line.strip()
        if line and "<none>" not in line and line.isprintable() and " " not in line:
            images.append(line)
    return images


def refresh_local_images(lister: Callable[[], list[str] | None] = _docker_images) -> None:
    """Rewrite the local image list (an engine that does not answer gives an empty one)."""
    write_entry("lists", "local", lister() or [])


def _maybe_refresh_local(now: float) -> None:
    """Fork a detached child to refresh the local image list when it is older than allowed.

    The child leaves the session and lets go of every descriptor first, so neither the shell
    nor the docker CLI waits for it; it ends when ``docker image ls`` does (10 s at most). It
    also leaves the folder the TAB was pressed in: nothing it runs has any business there, and
    it must not keep that folder (or its mount) busy.
    """
    stamp = os.path.join(cache_folder(), "lists", "local.attempt")
    try:
        if now - os.stat(stamp).st_mtime < LOCAL_REFRESH:
            return
    except OSError:
        pass
    if not hasattr(os, "fork") or os.environ.get("CGHISTORY_NO_BACKGROUND"):
        return
    try:
        _write_file(stamp, b"")
    except OSError:
        return
    try:
        pid = os.fork()
    except OSError:
        return
    if pid:
        return
    try:
        os.setsid()
        if os.path.isabs(stamp):  # a relative cache folder must keep meaning the same place
            os.chdir("/")
        null = os.open(os.devnull, os.O_RDWR)
        for descriptor in (0, 1, 2):
            os.dup2(null, descriptor)
        os.closerange(3, 1024)
        refresh_local_images()
    finally:
        os._exit(0)


# --- candidate sources: cache first, registry within a budget -------------------------------


class Fetcher:
    """The registry side of a cache miss (one attempt, short timeouts, no prompts)."""

    def __init__(self, defaults: Defaults) -> None:
        self.defaults = defaults

    def _client(self, host: str, timeout: float) -> Any:
        from .context import Context

        # A helper gets half the budget: one that overruns is killed by subprocess.run, not
        # orphaned by our exit, and the token and the request still fit in the other half.
        context = Context(
            program=f"docker-{PLUGIN_NAME}", registry=self.defaults.registry,
            org=self.defaults.org, insecure_registries=self.defaults.insecure,
            connect_timeout=min(CONNECT_TIMEOUT, timeout), read_timeout=timeout, attempts=1,
            helper_timeout=max(0.1, timeout / 2),
        )
        return context.client(host)

    def tags(self, host: str, repository: str, timeout: float) -> list[str]:
        client = self._client(host, timeout)
        return [tag for tag in client.tags(repository) if valid_tag(tag)]

    def builds(self, host: str, repository: str, tag: str,
               timeout: float) -> list[tuple[int, str]]:
        from .reference import Reference

        if not valid_tag(tag):
            return []
        client = self._client(host, timeout)
        # The newest builds only: a tag rebuilt for years has thousands, more than one TAB
        # can fetch or a shell can show.
        builds = client.history(Reference(host, repository, tag), last=MAX_CANDIDATES)
        return [(int(build.updated.timestamp()), build.digest) for build in builds]


class Sources:
    """Where candidates come from: configured, recent, local, and the registry via the cache."""

    def __init__(self, defaults: Defaults | None = None, *, fetcher: Any = None,
                 budget: float = BUDGET, background: bool = True,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.defaults = defaults or Defaults()
        self.fetcher = fetcher
        self.clock = clock
        self.deadline = clock() + budget
        self.background = background
        self.abandoned = False  # a worker thread is still blocked on the network

    def _within_budget(self, work: Callable[[float], Any]) -> Any:
        """``work(timeout)`` in a daemon thread; ``None`` if it fails or outlives the budget."""
        remaining = self.deadline - self.clock()
        if remaining <= 0.05:
            return None
        import contextlib
        import threading

        result: list[Any] = []

        def run() -> None:
            with contextlib.suppress(BaseException):
                result.append(work(remaining))

        worker = threading.Thread(target=run, name="complete-fetch", daemon=True)
        worker.start()
        worker.join(remaining)
        if worker.is_alive():
            self.abandoned = True
            return None
        return result[0] if result else None

    def _cached(self, kind: str, key: str, work: Callable[[float], list[str] | None]
                ) -> list[str]:
        found = read_entry(kind, key)
        if found is not None and found[1] < TTL:
            return found[0]
        fresh = self._within_budget(work)
        if fresh is not None:
            write_entry(kind, key, fresh)
            return fresh
        # Builds never change once seen and tags rarely do: stale beats nothing.
        return found[0] if found is not None else []

    def _fetcher(self) -> Any:
        if self.fetcher is None:
            self.fetcher = Fetcher(self.defaults)
        return self.fetcher

    def tags(self, host: str, repository: str) -> list[str]:
        def work(timeout: float) -> list[str]:
            return list(self._fetcher().tags(host, repository, timeout))

        return self._cached("tags", f"{host}/{repository}", work)

    def builds(self, host: str, repository: str, tag: str) -> list[tuple[int, str]]:
        def work(timeout: float) -> list[str]:
            found = self._fetcher().builds(host, repository, tag, timeout)
            return [f"{int(stamp)} {digest}" for stamp, digest in found]

        builds = []
        for line in self._cached("builds", f"{host}/{repository}:{tag}", work):
            stamp, _, digest = line.partition(" ")
            if stamp.isdigit() and digest.startswith("sha256:"):
                builds.append((int(stamp), digest))
        builds.sort(reverse=True)
        return builds

    def images(self) -> Candidates:
        """Configured images, then recent references, then local images worth a history."""
        defaults = self.defaults
        configured = defaults.images
        found = read_entry("lists", "recent")
        recent = found[0] if found else []
        local_entry = read_entry("lists", "local")
        if self.background:
            _maybe_refresh_local(time.time())
        capable = {"cgr.dev", defaults.registry}
        for text in (*configured, *recent):
            first, slash, _ = text.partition("/")
            if slash and _is_host(first):
                capable.add(first)
        short = f"{defaults.registry}/{defaults.org}/"
        local = []
        for image in local_entry[0] if local_entry else []:
            first, slash, _ = image.partition("/")
            if not (slash and _is_host(first)):
                continue
            if first in capable or first.endswith(".cgr.dev"):
                local.append(image[len(short):] if image.startswith(short) else image)
        out: Candidates = []
        seen: set[str] = set()
        for items, description in ((configured, "configured image"), (recent, "recently used"),
                                   (local, "local image")):
            for item in items:
                if item not in seen:
                    seen.add(item)
                    out.append((item, description))
        return out


# --- the engine ----------------------------------------------------------------------------


class _Line:
    """What the words before the cursor say: command, positionals, options and their values."""

    def __init__(self, words: list[str]) -> None:
        self.command, position = spec.find_command(words)
        self.explicit = position >= 0
        self.options = {flag: opt for opt in (*spec.GLOBAL, *self.command.opts)
                        for flag in opt.flags}
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


def _stamp(epoch: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def _flags(line: _Line, current: str) -> Candidates:
    long_only = current.startswith("--")
    out: Candidates = []
    for opt in (*line.command.opts, *spec.GLOBAL):
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
        return Answer(_starting(spec.PLATFORMS, current), NO_FILES | KEEP_ORDER)
    if kind == spec.SHELL:
        return Answer(_starting(spec.SHELLS, current), NO_FILES)
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
    defaults = sources.defaults
    parts = split_reference(name, defaults.registry, defaults.org)
    if parts is None:
        return Answer([], NO_FILES)
    host, repository, _ = parts
    tags = [tag for tag in sources.tags(host, repository) if tag.startswith(typed)]
    return Answer([(f"{name}:{tag}", "") for tag in sorted(tags)], NO_FILES)


def _builds(kind: str, current: str, image: str | None, sources: Sources) -> Answer:
    if not image:
        return Answer([], NO_FILES)
    defaults = sources.defaults
    parts = split_reference(image, defaults.registry, defaults.org)
    if parts is None:
        return Answer([], NO_FILES)
    host, repository, tag = parts
    builds = sources.builds(host, repository, tag or "latest")
    now = time.time()
    out: Candidates = []
    bare = bool(current) and not "sha256:".startswith(current[:7]) and all(
        c in "0123456789abcdef" for c in current)
    for index, (stamp, digest) in enumerate(builds):
        when = f"{_stamp(stamp)}, {describe_age(now - stamp)}"
        if kind == spec.INDEX:
            value, description = str(index), f"{when}, {digest[7:19]}"
        else:
            value, description = (digest[7:] if bare else digest), f"#{index}, {when}"
        if value.startswith(current):
            out.append((value, description))
            if len(out) >= MAX_CANDIDATES:
                break
    return Answer(out, NO_FILES | KEEP_ORDER)


def complete(words: list[str], current: str, sources: Sources | None = None, *,
             options_on_empty: bool = False) -> Answer:
    """The answer for the word ``current`` after ``words`` (both without the program name).

    ``options_on_empty`` offers long flags before anything is typed, as argcomplete users
    expect; cobra shells offer flags only after a ``-``.
    """
    line = _Line(words)
    sources = sources or Sources()
    if not sources.defaults.flags:
        sources.defaults.flags = line.values
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


# --- protocol adapters ---------------------------------------------------------------------


def _silence() -> None:
    """Point stdin and stderr at /dev/null: nothing may prompt or print during a TAB."""
    try:
        null = os.open(os.devnull, os.O_RDWR)
        os.dup2(null, 0)
        os.dup2(null, 2)
        os.close(null)
    except OSError:
        pass


def _finish(sources: Sources | None, stream: Any, text: str) -> None:
    """Write, flush, and leave: a worker stuck on the network must not hold up the exit."""
    try:
        stream.write(text)
        stream.flush()
    except (OSError, ValueError):
        return
    finally:
        if sources is not None and sources.abandoned:
            os._exit(0)


def cobra_lines(answer: Answer, descriptions: bool) -> list[str]:
    """Cobra's answer: ``value[\\tdescription]`` lines, then ``:directive``."""
    lines = []
    for value, description in answer.candidates:
        value = value.replace("\t", "\\t")
        if "\n" in value or "\r" in value or not value:
            continue
        description = _clean(description) if descriptions else ""
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
        _silence()
    stream = stream or sys.stdout
    sources = sources or Sources()
    words = list(args[1:])
    if len(words) >= 2 and words[0] == PLUGIN_NAME:
        words = words[1:]
    current = words.pop() if words else ""
    try:
        answer = complete(words, current, sources)
    except Exception:
        answer = Answer([], ERROR)
    _finish(sources, stream, "\n".join(cobra_lines(answer, args[0] == "__complete")) + "\n")
    return 0


# --- argcomplete ---------------------------------------------------------------------------


def split_line(line: str, wordbreaks: str = "") -> tuple[list[str], str, str, int | None]:
    """``(words, current, prequote, last_wordbreak)`` of a shell line cut at the cursor.

    The shell's quoting rules as argcomplete applies them: quotes and backslashes are removed
    from words; ``prequote`` is the quote still open at the cursor; ``last_wordbreak`` is the
    position in ``current`` of its last unquoted ``COMP_WORDBREAKS`` character (bash completes
    only what follows it, so ``python:3`` is completed as ``3``).
    """
    words: list[str] = []
    token: list[str] = []
    in_word = False
    quote = ""
    wordbreak: int | None = None
    index = 0
    while index < len(line):
        char = line[index]
        index += 1
        if quote == "'":
            if char == "'":
                quote = ""
            else:
                token.append(char)
        elif quote == '"':
            if char == '"':
                quote = ""
            elif char == "\\" and index < len(line) and line[index] in '"\\$`\n':
                token.append(line[index])
                index += 1
            else:
                token.append(char)
        elif char in " \t\n":
            if in_word:
                words.append("".join(token))
                token, in_word, wordbreak = [], False, None
        else:
            in_word = True
            if char in "'\"":
                quote = char
            elif char == "\\":
                if index < len(line):
                    token.append(line[index])
                    index += 1
            else:
                token.append(char)
                if char in wordbreaks:
                    wordbreak = len(token) - 1
    if not in_word:
        return words, "", "", None
    return words, "".join(token), quote, wordbreak


def _list_paths(current: str, dirs_only: bool) -> Candidates:
    """Files (or folders) for argcomplete shells: fish and zsh do not fall back to files."""
    head, slash, start = current.rpartition("/")
    shown = head + slash
    out: Candidates = []
    try:
        entries = sorted(os.scandir(os.path.expanduser(shown) if shown else "."),
                         key=lambda entry: entry.name)
    except OSError:
        return []
    for entry in entries:
        if not entry.name.startswith(start):
            continue
        if entry.name.startswith(".") and not start.startswith("."):
            continue
        try:
            is_dir = entry.is_dir()
        except OSError:
            continue
        if dirs_only and not is_dir:
            continue
        out.append((f"{shown}{entry.name}{'/' if is_dir else ''}", ""))
        if len(out) >= MAX_CANDIDATES:
            break
    return out


_SPECIAL = "\\();<>|&!`$*?[]{} \t\n\"'"


def argcomplete_words(answer: Answer, current: str, prequote: str, wordbreak: int | None,
                      env: dict[str, str] | Any) -> list[str]:
    """Candidates in argcomplete's wire form for the shell named in ``_ARGCOMPLETE_SHELL``."""
    shell = env.get("_ARGCOMPLETE_SHELL", "bash")
    candidates = list(answer.candidates)
    if answer.files:
        candidates += _list_paths(current[len(answer.prefix):], answer.files == "dirs")
    seen: set[str] = set()
    words: list[tuple[str, str]] = []
    for value, description in candidates:
        full = answer.prefix + value.replace("\t", "\\t")
        if full.startswith(current) and full not in seen and "\n" not in full:
            seen.add(full)
            words.append((full, _clean(description)))
    if wordbreak is not None and not prequote:
        words = [(full[wordbreak + 1 :], description) for full, description in words]
    special = ""
    if shell not in ("fish", "tcsh"):
        special = {"": _SPECIAL, '"': '\\"`$!', "'": ""}.get(prequote, "")
        if shell == "zsh":
            special += ":"
    out = []
    for full, description in words:
        if prequote == "'" and shell not in ("fish", "tcsh"):
            full = full.replace("'", "'\\''")
        for char in special:
            full = full.replace(char, "\\" + char)
        out.append((full, description))
    if (len(out) == 1 and env.get("_ARGCOMPLETE_SUPPRESS_SPACE") != "1" and not prequote
            and out[0][0][-1:] not in ("=", "/", ":")):
        out[0] = (out[0][0] + " ", out[0][1])
    dfs = env.get("_ARGCOMPLETE_DFS")
    if shell == "zsh":
        return [f"{full}:{description}" for full, description in out]
    if dfs:
        return [f"{full}{dfs}{description}" for full, description in out]
    return [full for full, _ in out]


def argcomplete_complete(env: dict[str, str] | None = None, stream: Any = None, *,
                         silence: bool = True, sources: Sources | None = None) -> int:
    """Answer argcomplete's shell scripts: read ``COMP_LINE``/``COMP_POINT``, write to fd 8."""
    env = os.environ if env is None else env
    if silence:
        _silence()
    sources = sources or Sources()
    ifs = env.get("_ARGCOMPLETE_IFS", "\013")
    try:
        if stream is None:
            target = env.get("_ARGCOMPLETE_STDOUT_FILENAME")
            stream = open(target, "w") if target else os.fdopen(8, "w")  # noqa: SIM115
    except OSError:
        return 1
    try:
        line = env.get("COMP_LINE", "")
        point = int(env.get("COMP_POINT", len(line)))
        words, current, prequote, wordbreak = split_line(
            line[:point], env.get("_ARGCOMPLETE_COMP_WORDBREAKS", ""))
        start = max(int(env.get("_ARGCOMPLETE", "1")), 1)
        answer = complete(words[start:], current, sources, options_on_empty=True)
        out = argcomplete_words(answer, current, prequote, wordbreak, env)
    except Exception:
        out = []
    _finish(sources, stream, ifs.join(out))
    return 0


if __name__ == "__main__":  # the background refresher, for manual use: python -m ...complete
    refresh_local_images()
