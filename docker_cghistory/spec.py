"""The one argument table: argparse, argcomplete and docker's ``__complete`` all read it.

Plain classes and tuples, no imports: completion reads this table on every TAB, and importing
argparse (or even dataclasses) there would cost more than the answer itself.
"""

from __future__ import annotations

# Value completers, by name; ``complete.py`` knows how to produce each.
IMAGE, TAG_REF, DIGEST, INDEX, FORMAT, PLATFORM, PATHS, DIR, SHELL = (
    "image", "tagref", "digest", "index", "format", "platform", "paths", "dir", "shell",
)


class Opt:
    """A flag; ``value`` is its metavar (``None`` for a switch).

    ``choices`` are ``(value, description)`` pairs: the only values argparse accepts, and the
    ones completion offers with their descriptions. ``complete`` names a completer for values
    that are suggestions only (list's --format takes any Go template).
    """

    __slots__ = ("action", "choices", "complete", "dest", "flags", "help", "kind", "value")

    def __init__(self, flags: tuple[str, ...], help: str, value: str | None = None, *,
                 dest: str | None = None, kind: str = "str", complete: str | None = None,
                 action: str | None = None, choices: tuple[tuple[str, str], ...] = ()) -> None:
        self.flags = flags
        self.help = help
        self.value = value
        self.dest = dest or flags[-1].lstrip("-").replace("-", "_")
        self.kind = kind
        self.complete = complete
        self.action = action or ("store" if value else "store_true")
        self.choices = choices


class Arg:
    """A positional argument.

    ``rest`` marks "everything after ``--``": the words are taken as they are (a command and its
    own flags), so ``cli.parse`` splits them off before argparse sees the options, and
    completion stops offering our flags there. ``value`` is then shown as ``-- VALUE``.
    """

    __slots__ = ("complete", "dest", "help", "many", "optional", "rest", "value")

    def __init__(self, dest: str, value: str, help: str, *, complete: str | None = None,
                 optional: bool = False, many: bool = False, rest: bool = False) -> None:
        self.dest = dest
        self.value = value
        self.help = help
        self.complete = complete
        self.optional = optional
        self.many = many or rest
        self.rest = rest


class Command:
    """A subcommand: its options, its positionals, and which options exclude each other.

    ``exclusive`` holds groups of options of which at most one may be given (pull's build
    selectors): the parser refuses a second one, so commands never check it by hand.
    """

    __slots__ = ("aliases", "args", "description", "exclusive", "help", "name", "opts")

    def __init__(self, name: str, help: str, opts: tuple[Opt, ...] = (),
                 args: tuple[Arg, ...] = (), *, aliases: tuple[str, ...] = (),
                 description: str = "", exclusive: tuple[tuple[Opt, ...], ...] = ()) -> None:
        self.name = name
        self.help = help
        self.opts = opts
        self.args = args
        self.aliases = aliases
        self.description = description or help
        self.exclusive = exclusive

    @property
    def rest(self) -> Arg | None:
        """The argument that takes everything after ``--``, if the command has one."""
        return next((arg for arg in self.args if arg.rest), None)


FORMATS = (
    ("table", "aligned columns (default)"),
    ("json", "one JSON object per line"),
    ("{{.Digest}}", "a Go template of Index, Updated, Age, Digest, Reference, Tag"),
    ("table {{.Index}}\\t{{.Digest}}", "a template table with a header row"),
)
# bisect's --format (its result, not a listing): the only values it takes.
BISECT_FORMATS = (
    ("text", "one line per step and the result (default)"),
    ("json", "the result as one JSON object"),
)
PLATFORMS = (
    ("linux/amd64", "64-bit x86"),
    ("linux/arm64", "64-bit ARM"),
    ("linux/arm/v7", "32-bit ARM"),
)
SHELLS = (("bash", "Bash"), ("zsh", "Zsh"), ("fish", "fish"))

GLOBAL = (
    Opt(("--registry",), "default registry for short names (cgr.dev)", "HOST",
        complete=None),
    Opt(("--org",), "default organisation for one-word names (chainguard)", "ORG"),
    Opt(("--insecure-registry",), "allow plain HTTP to this registry (repeatable)", "HOST",
        dest="insecure_registries", action="append"),
    Opt(("--timeout",), "seconds to wait for a registry answer before retrying (30)",
        "SECONDS", kind="float"),
    Opt(("--debug",), "show requests, timings and tracebacks (never secrets)"),
)

_IMAGE = Arg("image", "IMAGE[:TAG]", "image reference (python, python:3.12, cgr.dev/ORG/NAME:TAG)",
             complete=IMAGE)
_WHEN_HELP = "a date, date-time or age (2024-06-01, 2024-06-01T09:30:00Z, 7d, 12h)"
_OUTPUT = (
    Opt(("--format",), "output format: table, json, or a Go template", "FORMAT",
        complete=FORMAT),
    Opt(("-q", "--quiet"), "print full digests only"),
    Opt(("--no-trunc",), "do not truncate digests"),
)

LIST = Command(
    "list", "List the builds of a tag, newest first", (
        Opt(("--since",), f"only builds updated at or after WHEN: {_WHEN_HELP}", "WHEN"),
        Opt(("--until",), f"only builds updated at or before WHEN: {_WHEN_HELP}", "WHEN"),
        Opt(("-n", "--last"), "only the newest N builds", "N", kind="int"),
        *_OUTPUT,
    ), (_IMAGE,), aliases=("ls",),
    description="List every build of a tag, newest first (#0 is the newest).",
)

_SELECTORS = (
    Opt(("--digest",), "a build by digest or unique prefix (6+ hex characters)", "DIGEST",
        complete=DIGEST),
    Opt(("--index",), "a build by its number in the listing (0 = newest)", "N", kind="int",
        complete=INDEX),
    Opt(("--previous",), "the build before the newest (same as --index 1)"),
    Opt(("--at",), f"the build the tag pointed at, at WHEN: {_WHEN_HELP}", "WHEN"),
    Opt(("--cooldown",), "the newest build at least AGE old (7d, 12h, 90m, 2w)", "AGE"),
)

PULL = Command(
    "pull", "Pull a historical build through the Docker engine", (
        *_SELECTORS,
        Opt(("--tag",), "also tag the pulled image locally as NEWREF", "NEWREF"),
        Opt(("--retag",), "point the local IMAGE:TAG at the pulled build (local rollback)"),
        Opt(("--platform",), "pull this platform of a multi-platform build", "OS/ARCH",
            complete=PLATFORM),
        Opt(("-q", "--quiet"), "print only the pulled reference"),
    ), (_IMAGE,),
    description="Pull a build from the tag's history; with no selector on a terminal, pick one.",
    exclusive=(_SELECTORS,),
)

_PIN_AT = Opt(("--at",), f"pin to the build current at WHEN: {_WHEN_HELP}", "WHEN")
_PIN_COOLDOWN = Opt(("--cooldown",), "pin to the newest build at least AGE old", "AGE")
PIN = Command(
    "pin", "Pin Dockerfiles and compose files to a build", (
        _PIN_AT,
        _PIN_COOLDOWN,
        Opt(("--update",), "move already pinned references to the selected build"),
        Opt(("--check",), "change nothing; exit 1 if a reference is not pinned as wanted"),
        Opt(("--dry-run",), "print a unified diff and write nothing"),
        Opt(("--digest-only",), "write HOST/REPO@sha256:... without the tag"),
    ), (Arg("paths", "PATH", "files or directories (default: .)", complete=PATHS,
            optional=True, many=True),),
    description="Rewrite image references in Dockerfiles and compose files to digest pins.",
    exclusive=((_PIN_AT, _PIN_COOLDOWN),),
)

# The test command follows "--" (a ``rest`` argument): ``args.command``, its own flags included.
BISECT = Command(
    "bisect", "Find the build that broke a command, like git bisect run", (
        Opt(("--good",), "a build known good (required): index, digest or WHEN, see below",
            "BUILD", complete=DIGEST),
        Opt(("--bad",), "a build known bad, read as --good is (default: the newest)", "BUILD",
            complete=DIGEST),
        Opt(("--keep",), "keep the images pulled while bisecting (default: remove the ones "
            "that were not already present)"),
        Opt(("--format",), "result format: text (default) or json", "FORMAT",
            choices=BISECT_FORMATS),
        Opt(("--platform",), "pull this platform", "OS/ARCH", complete=PLATFORM),
    ), (_IMAGE, Arg("command", "COMMAND [ARG...]",
                    "command to run for each build; {} is replaced by the build's reference",
                    rest=True)),
    description=(
        "Binary-search the tag's builds between --good and --bad with a test command, like\n"
        "git bisect run. Each build tested is pulled; {} in COMMAND's arguments and the\n"
        "variable CGHISTORY_IMAGE become its reference (HOST/REPO@sha256:...). Exit status 0\n"
        "is good, 125 cannot test (skipped), 1-127 bad; a signal or a status above 127 stops.\n"
        "\n"
        "A BUILD is read by its characters: all digits is an index (0 = newest, as 'list'\n"
        "numbers them); sha256:... or 6+ hex characters with a letter is a digest or unique\n"
        "prefix (write sha256:123456 for a prefix of digits only); anything else is a WHEN\n"
        "(2024-06-01, 2024-06-01T09:30:00Z, 7d), meaning the build current then.\n"
        "\n"
        "The result goes to stdout (text, or --format json); progress goes to stderr."
    ),
)

INSTALL = Command(
    "install", "Install the plugin where the docker CLI finds it", (
        Opt(("--dir",), "plugin folder (default: $DOCKER_CONFIG/cli-plugins or "
            "~/.docker/cli-plugins)", "DIR", complete=DIR),
    ),
)
UNINSTALL = Command(
    "uninstall", "Remove the plugin installed by 'install'", (
        Opt(("--dir",), "plugin folder", "DIR", complete=DIR),
    ),
)
COMPLETION = Command(
    "completion", "Print a shell completion script for docker-cghistory", (),
    (Arg("shell", "SHELL", "bash, zsh or fish", complete=SHELL),),
)

COMMANDS = (LIST, PULL, PIN, BISECT, INSTALL, UNINSTALL, COMPLETION)
DEFAULT_COMMAND = LIST


def command_named(name: str) -> Command | None:
    for command in COMMANDS:
        if name == command.name or name in command.aliases:
            return command
    return None


def find_command(words: list[str]) -> tuple[Command, int]:
    """The subcommand among ``words`` and its position (-1 for the default, list).

    The first word that is not an option or an option's value decides: a command name selects
    that command, anything else is an image for ``list``.
    """
    takes_value = {flag for opt in GLOBAL if opt.value for flag in opt.flags}
    skip = False
    for position, word in enumerate(words):
        if skip:
            skip = False
            continue
        if word == "--":
            break
        if word.startswith("-"):
            skip = word in takes_value
            continue
        command = command_named(word)
        return (command, position) if command else (DEFAULT_COMMAND, -1)
    return DEFAULT_COMMAND, -1
