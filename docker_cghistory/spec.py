"""The one argument table: argparse, argcomplete and docker's ``__complete`` all read it.

Plain classes and tuples, no imports: completion reads this table on every TAB, and importing
argparse (or even dataclasses) there would cost more than the answer itself. Longer than our
other modules on purpose: it is the whole command-line surface (every command's options,
choices, exclusive groups and examples) in one place, which is what a reader of it wants.
"""

from __future__ import annotations

# Value completers, by name; ``complete.py`` knows how to produce each.
IMAGE, TAG_REF, DIGEST, INDEX, FORMAT, PLATFORM, PATHS, DIR, SHELL = (
    "image", "tagref", "digest", "index", "format", "platform", "paths", "dir", "shell",
)
COMMAND = "command"  # a command name (help's topic)


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
    ``globals`` are the global options the command takes: a flag that would mean nothing
    (``install --registry``) is refused and never offered by completion, rather than ignored.
    ``examples`` are ``(words after the program name, what they do)``, for ``--help``.
    """

    __slots__ = ("aliases", "args", "description", "examples", "exclusive", "globals", "help",
                 "name", "opts")

    def __init__(self, name: str, help: str, opts: tuple[Opt, ...] = (),
                 args: tuple[Arg, ...] = (), *, aliases: tuple[str, ...] = (),
                 description: str = "", exclusive: tuple[tuple[Opt, ...], ...] = (),
                 globals: tuple[Opt, ...] | None = None,
                 examples: tuple[tuple[str, str], ...] = ()) -> None:
        self.name = name
        self.help = help
        self.opts = opts
        self.args = args
        self.aliases = aliases
        self.description = description or help
        self.exclusive = exclusive
        self.globals = GLOBAL if globals is None else globals
        self.examples = examples

    @property
    def options(self) -> tuple[Opt, ...]:
        """Every option the command takes: its own, then the global ones it accepts."""
        return (*self.opts, *self.globals)

    @property
    def rest(self) -> Arg | None:
        """The argument that takes everything after ``--``, if the command has one."""
        return next((arg for arg in self.args if arg.rest), None)


FORMATS = (
    ("table", "aligned columns (default)"),
    ("json", "one JSON object per line"),
    ("{{.Digest}}", "a Go template of Index, Updated, Age, Digest, Reference, Tag, Local, "
     "LocalTag"),
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

# Global options: the registry ones mean something only to commands that talk to a registry;
# --debug means something to every command.
REGISTRY_OPTIONS = (
    Opt(("--registry",), "default registry for short names (cgr.dev)", "HOST",
        complete=None),
    Opt(("--org",), "default organisation for one-word names (chainguard)", "ORG"),
    Opt(("--insecure-registry",), "allow plain HTTP to this registry (repeatable)", "HOST",
        dest="insecure_registries", action="append"),
    Opt(("--timeout",), "seconds to wait for a registry answer before retrying (30)",
        "SECONDS", kind="float"),
)
DEBUG = Opt(("--debug",), "show requests, timings and tracebacks (never secrets)")
GLOBAL = (*REGISTRY_OPTIONS, DEBUG)

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
        Opt(("--platform",), "add each build's manifest digest for this platform, and SAME "
            "(= #N) when it is the next older build's", "OS/ARCH", complete=PLATFORM),
        Opt(("--distinct",), "with --platform: only the builds whose image for it changed "
            "(rows keep their # for pull --index)"),
        Opt(("--platforms",), "add the platforms each build has (PLATFORMS: amd64, arm64)"),
        Opt(("--changes",), "add what each build changed against the build before it "
            "(packages; for --platform, else the engine's platform)"),
        *_OUTPUT,
    ), (_IMAGE,), aliases=("ls",),
    description="List every build of a tag, newest first (#0 is the newest).",
    examples=(
        ("python", "the builds of cgr.dev/chainguard/python:latest (short for 'list python')"),
        ("list python:latest-dev --since 7d", "the builds of the last week"),
        ("list node --last 5 --format json", "the newest five, one JSON object per line"),
        ("list cgr.dev/acme.com/app:1.2 --no-trunc", "a private image, with whole digests"),
        ("list python --platform linux/amd64 --distinct", "only the builds that changed for "
         "amd64"),
        ("list python -n 10 --changes", "what each of the newest ten builds changed"),
    ),
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
        Opt(("--retag",), "point the local IMAGE:TAG at the pulled build (local rollback); "
            "prints the docker command that undoes it"),
        Opt(("--platform",), "pull this platform of a multi-platform build", "OS/ARCH",
            complete=PLATFORM),
        Opt(("-q", "--quiet"), "print only the pulled reference"),
        Opt(("--format",), "print the result as json (one object) or a Go template of "
            "Reference, Digest, Index, Updated, Tag, Retagged, PreviousTarget, Undo", "FORMAT"),
    ), (_IMAGE,),
    description="Pull a build from the tag's history; with no selector on a terminal, pick one.\n"
                "IMAGE@sha256:... pulls that digest as it is (no selector; --retag needs "
                "IMAGE:TAG@sha256:...).",
    exclusive=(_SELECTORS,),
    examples=(
        ("pull python --previous --retag",
         "the build before the newest, and point the local python:latest back at it"),
        ("pull python:latest-dev --at 2024-06-01", "the build the tag pointed at on June 1st"),
        ("pull python --digest c40ac3a1171c", "a build by a digest prefix, as 'list' shows it"),
        ("pull node --cooldown 7d --tag node:stable", "the newest build a week old, tagged"),
        ("pull python", "pick a build from a list (on a terminal)"),
    ),
)

# pin's --format: what each reference became, for people (text) or CI (json).
PIN_FORMATS = (
    ("text", "changed references and a summary (default)"),
    ("json", "one JSON object per reference: File, Line, Old, New, Status, Reason"),
    ("markdown", "the references moved, as a table (with --changes, each image's package "
     "changes): a pull request body"),
)
PIN = Command(
    "pin", "Pin Dockerfiles and compose files to a build", (
        Opt(("--image",), "only references to IMAGE (every tag) or IMAGE:TAG; repeatable, short "
            "names as elsewhere (python = cgr.dev/chainguard/python)", "IMAGE[:TAG]",
            action="append", complete=IMAGE),
        *_SELECTORS,
        Opt(("--update",), "move already pinned references to the selected build"),
        Opt(("--check",), "change nothing; exit 1 if a reference is not pinned as wanted"),
        Opt(("--dry-run",), "print a unified diff and write nothing"),
        Opt(("--digest-only",), "write HOST/REPO@sha256:... without the tag"),
        Opt(("--strict",), "fail if a reference cannot be pinned or checked (FROM $BASE "
            "without a default, image: ${VAR})"),
        Opt(("--platform",), "move a pinned reference only when its image for this platform "
            "changed (repeatable; default: plugins.cghistory.platforms)", "OS/ARCH",
            action="append", complete=PLATFORM),
        Opt(("--changes",), "with --update, --check or --dry-run: what moving each pin "
            "changes (packages, config, size; for the first --platform)"),
        Opt(("--format",), "output: text (default), json or markdown", "FORMAT",
            choices=PIN_FORMATS),
    ), (Arg("paths", "PATH", "files or directories (default: .)", complete=PATHS,
            optional=True, many=True),),
    description=(
        "Rewrite image references in Dockerfiles and compose files to digest pins.\n"
        "\n"
        "With no selector, unpinned references get their tag's newest build and pinned ones\n"
        "are left alone (--check passes them; --update moves them to the newest build). With a\n"
        "selector (--at, --cooldown; --digest, --index, --previous with one --image IMAGE:TAG)\n"
        "pinned references are compared with the selected build: --update moves those pinned\n"
        "to other builds, --check fails on them, and without either they are reported.\n"
        "\n"
        "--platform P: a pinned reference moves (or fails --check) only when its build's image\n"
        "for P differs from the selected build's, or either build lacks P; otherwise it stays\n"
        "(unchanged-for-platform). The index digest is still what is written.\n"
        "\n"
        "--format json: one object per reference, Status one of pinned, updated,\n"
        "already-pinned, other-build, unchanged-for-platform, skipped, failed."
    ),
    exclusive=(_SELECTORS,),
    examples=(
        ("pin", "pin every reference under . to its tag's newest build"),
        ("pin --cooldown 7d Dockerfile", "pin to the newest builds at least a week old"),
        ("pin --check", "in CI: fail if a reference is not pinned"),
        ("pin --image python:latest --previous", "roll python:latest back to its previous build"),
        ("pin --update --dry-run", "show, as a diff, pins moved to the newest builds"),
        ("pin --update --platform linux/amd64", "move pins only where the amd64 image changed"),
        ("pin --update --changes --format markdown", "a pull request body: what each move "
         "changes"),
    ),
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
        Opt(("--platform",), "test this platform's image; builds sharing it are one "
            "candidate", "OS/ARCH", complete=PLATFORM),
    ), (_IMAGE, Arg("command", "COMMAND [ARG...]",
                    "command to run for each build; {} is replaced by the build's reference",
                    rest=True)),
    description=(
        "Binary-search the tag's builds between --good and --bad with a test command, like\n"
        "git bisect run. Each build tested is pulled; {} in COMMAND's arguments and the\n"
        "variable CGHISTORY_IMAGE become its reference (HOST/REPO@sha256:...). Exit status 0\n"
        "is good, 125 cannot test (skipped), 1-127 bad; a signal or a status above 127 stops.\n"
        "\n"
        "A BUILD is read by its characters: up to 6 digits is an index (0 = newest, as\n"
        "'list' numbers them); sha256:... or 6+ hex characters is a digest or unique prefix,\n"
        "as 'list' prints them (write sha256:123456 for a 6-digit prefix); anything else is\n"
        "a WHEN (2024-06-01, 2024-06-01T09:30:00Z, 7d), meaning the build current then.\n"
        "\n"
        "With --platform OS/ARCH, consecutive builds whose image for that platform is the\n"
        "same manifest are one candidate (fewer runs); {} is then that image,\n"
        "HOST/REPO@sha256:<platform manifest>, pulled for the platform. Builds without it\n"
        "are not tested. The result names every build sharing the first bad image.\n"
        "\n"
        "The result goes to stdout (text, or --format json), then what changed between the\n"
        "last good and the first bad build, as 'diff' shows it; progress goes to stderr.\n"
        "bisect exits 0 when it names the first bad build, 1 when it cannot (skipped builds\n"
        "hide it, a pull fails, the command is killed), 2 on a usage error."
    ),
    examples=(
        ("bisect python --good 7 -- docker run --rm {} -c 'import ssl'",
         "the first build after #7 in which the command fails"),
        ("bisect busybox --good 2024-06-01 --bad 2024-06-20 --format json -- ./selftest.sh {}",
         "between two dates, the result as JSON"),
        ("bisect python --good 30 --platform linux/amd64 -- docker run --rm {} -V",
         "only the builds whose amd64 image changed"),
    ),
)

# diff's --format: the text report is the default, so it is not a choice to type.
DIFF_FORMATS = (
    ("json", "one JSON object: Image, Platform, Old, New, Source, Packages, Config, Size, "
     "Identical"),
    ("markdown", "a short report with a package table, for a pull request or an issue"),
)
DIFF = Command(
    "diff", "Show what changed between two builds: packages, config, size", (
        Opt(("--platform",), "compare this platform's images (default: the Docker engine's, "
            "else this machine's)", "OS/ARCH", complete=PLATFORM),
        Opt(("--format",), "output: json or markdown (default: a readable report)", "FORMAT",
            choices=DIFF_FORMATS),
        Opt(("-q", "--quiet"), "print only the names of the packages that changed, were "
            "added or were removed"),
        Opt(("--exit-code",), "exit 1 when the platform's image differs, like git diff"),
    ), (_IMAGE,
        Arg("old", "OLD", "the older build: index, digest or WHEN, read as bisect reads a "
            "BUILD (default: 1); or a second REF@sha256:...", complete=DIGEST, optional=True),
        Arg("new", "NEW", "the newer build, read the same way (default: 0, the newest)",
            complete=DIGEST, optional=True)),
    description=(
        "Compare two builds of a tag for one platform: packages (from the build's SBOM\n"
        "attestation, else the apk or dpkg database in its layers), config and size.\n"
        "\n"
        "OLD and NEW are read as bisect reads a BUILD: up to 6 digits is an index (0 =\n"
        "newest); sha256:... or 6+ hex characters is a digest or unique prefix; anything\n"
        "else is a WHEN (2024-06-01, 7d), the build current then. The defaults are 1 and 0.\n"
        "'diff REF@sha256:A REF@sha256:B' compares two builds named in full, on any registry.\n"
        "\n"
        "The report goes to stdout; progress and warnings go to stderr."
    ),
    examples=(
        ("diff python", "what the newest build of python:latest changed"),
        ("diff python:latest-dev 7d 0 --platform linux/arm64",
         "the arm64 image now against the one current a week ago"),
        ("diff python 3 1 --format markdown", "for a pull request body"),
        ("diff python -q --exit-code", "names only; exit 1 when the image changed"),
        ("diff docker.io/library/alpine@sha256:... docker.io/library/alpine@sha256:...",
         "two builds named in full, no history needed"),
    ),
)

INSTALL = Command(
    "install", "Install the plugin where the docker CLI finds it", (
        Opt(("--dir",), "plugin folder (default: $DOCKER_CONFIG/cli-plugins or "
            "~/.docker/cli-plugins)", "DIR", complete=DIR),
    ), globals=(DEBUG,),
    examples=(
        ("install", "make 'docker cghistory' work for this user"),
        ("install --dir /usr/local/lib/docker/cli-plugins", "for every user (as root)"),
    ),
)
UNINSTALL = Command(
    "uninstall", "Remove the plugin installed by 'install'", (
        Opt(("--dir",), "plugin folder", "DIR", complete=DIR),
    ), globals=(DEBUG,),
    examples=(
        ("uninstall", "remove what 'install' wrote"),
        ("uninstall --dir /usr/local/lib/docker/cli-plugins", "remove a system-wide install"),
    ),
)
COMPLETION = Command(
    "completion", "Print a shell completion script for docker-cghistory", (),
    (Arg("shell", "SHELL", "bash, zsh or fish", complete=SHELL),), globals=(DEBUG,),
    description="Print a shell completion script for docker-cghistory (the direct command;\n"
                "'docker cghistory' is completed by docker's own script).",
    examples=(
        ("completion bash > ~/.local/share/bash-completion/completions/docker-cghistory",
         "bash, for this user"),
        ("completion zsh > ~/.zsh/completions/_docker-cghistory", "zsh, in a folder on $fpath"),
    ),
)
HELP = Command(
    "help", "Show the help of a command", (),
    (Arg("topic", "COMMAND", "the command to explain (default: all of them)",
         complete=COMMAND, optional=True),), globals=(DEBUG,),
    examples=(
        ("help", "the commands, and the options every command takes"),
        ("help pull", "pull's options and examples (the same as 'pull --help')"),
    ),
)

COMMANDS = (LIST, PULL, PIN, BISECT, DIFF, INSTALL, UNINSTALL, COMPLETION, HELP)
DEFAULT_COMMAND = LIST


def command_named(name: str) -> Command | None:
    for command in COMMANDS:
        if name == command.name or name in command.aliases:
            return command
    return None


def find_command(words: list[str]) -> tuple[Command, int]:
    """The subcommand among ``words`` and its position (-1 for the default, list).

    The first word that is not an option or an option's value decides: a command name selects
    that command, anything else is an image for ``list`` (so ``list help`` reaches an image
    named ``help``).
    """
    position = first_word(words)
    command = command_named(words[position]) if position >= 0 else None
    return (command, position) if command else (DEFAULT_COMMAND, -1)


def first_word(words: list[str]) -> int:
    """The position of the first word that is neither an option nor a global option's value."""
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
        return position
    return -1
