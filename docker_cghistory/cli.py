"""The command line: argparse built from ``spec``, dispatch, and the one place errors render.

``docker cghistory ARGS`` arrives as ``docker-cghistory cghistory ARGS``; both spellings run
the same code. Every expected failure ends as one line on stderr; ``--debug`` adds tracebacks.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import NoReturn

from . import __version__, helptext, log, spec, suggest
from .errors import CghistoryError, UsageError, sanitize
from .plugin import (
    SHORT_DESCRIPTION,
    apply_docker_settings,
    program_name,
    split_docker_invocation,
    watch_socket,
)
from .streams import Streams


class Parser(argparse.ArgumentParser):
    """argparse that reports a usage error as one line instead of printing usage and exiting."""

    def error(self, message: str) -> NoReturn:
        # argparse quotes what the user typed (an invalid choice, a stray word): keep it one
        # line and free of terminal escapes, like every other message.
        raise UsageError(f"{sanitize(message, limit=1000)}. See '{self.prog} --help'")


class _Formatter(argparse.RawDescriptionHelpFormatter):
    """Descriptions and examples as written; option help aligned a little further right."""

    def __init__(self, prog: str) -> None:
        super().__init__(prog, max_help_position=30)


def _add_option(parser: argparse._ActionsContainer, opt: spec.Opt) -> argparse.Action:
    kwargs: dict = {"help": opt.help, "dest": opt.dest, "action": opt.action}
    if opt.action in ("store", "append"):
        kwargs["metavar"] = opt.value
        if opt.kind in ("int", "float"):
            kwargs["type"] = int if opt.kind == "int" else float
        if opt.choices:
            kwargs["choices"] = [value for value, _ in opt.choices]
    return parser.add_argument(*opt.flags, **kwargs)


def _add_argument(parser: argparse.ArgumentParser, arg: spec.Arg, *,
                  optional: bool = False) -> argparse.Action:
    if arg.rest:
        # Shown in usage and --help only: ``parse`` hands argparse the words before "--", so
        # anything argparse puts here was typed without the separator (see ``_take_rest``).
        return parser.add_argument(arg.dest, metavar=f"-- {arg.value}", help=arg.help,
                                   nargs="*")
    optional = optional or arg.optional
    nargs = "*" if arg.many and optional else "+" if arg.many else ("?" if optional else None)
    return parser.add_argument(arg.dest, metavar=arg.value, help=arg.help, nargs=nargs)


def build_parser(command: spec.Command, prog: str, *, top: bool = False) -> Parser:
    """The parser for one command: its options, then the global ones it takes, as two groups.

    ``top`` is the program without a command word: the default command's parser, with the
    top-level help (commands, examples) and ``--version``. Its IMAGE is optional to argparse
    so that a bare ``docker cghistory`` gets a message naming COMMAND too (``parse``).
    """
    parser = Parser(
        prog=prog if top else f"{prog} {command.name}",
        usage=helptext.usage(None if top else command, prog),
        description=(helptext.top_description(prog, SHORT_DESCRIPTION) if top
                     else helptext.description(command, prog)),
        epilog=helptext.epilog(None if top else command, prog) or None,
        formatter_class=_Formatter,
        add_help=False,
        allow_abbrev=False,
    )
    parser._positionals.title = "Arguments"
    parser._optionals.title = f"{command.name.capitalize()} Options" if top else "Options"
    for opt in command.opts:
        _add_option(parser, opt)
    shared = parser.add_argument_group("Global Options")
    for opt in command.globals:
        _add_option(shared, opt)
    shared.add_argument("-h", "--help", action="help", help="show this help and exit")
    if top:
        shared.add_argument("--version", action="version", version=f"{prog} {__version__}",
                            help="print the version and exit")
    for arg in command.args:
        _add_argument(parser, arg, optional=top)
    return parser


def help_text(topic: str | None, prog: str) -> str:
    """What ``help [COMMAND]`` prints: the top help, or the command's ``--help``."""
    if topic is None:
        return build_parser(spec.DEFAULT_COMMAND, prog, top=True).format_help()
    command = spec.command_named(topic)
    if command is None:
        raise UsageError(_unknown_command(topic, f"{prog} help") + f". See '{prog} --help'")
    return build_parser(command, prog).format_help()


def _unknown_command(word: str, where: str) -> str:
    message = f'unknown command "{sanitize(word, limit=60)}" for "{where}"'
    near = suggest.nearest(word, _command_words())
    return f'{message} (did you mean "{near}"?)' if near else message


def _command_words() -> list[str]:
    return [*(c.name for c in spec.COMMANDS), *(a for c in spec.COMMANDS for a in c.aliases)]


def _flags_of(command: spec.Command, top: bool) -> list[str]:
    extra = ["--help", "-h", *(["--version"] if top else [])]
    return [*(flag for opt in command.options for flag in opt.flags), *extra]


def _unknown_flag(flag: str, command: spec.Command, top: bool) -> str:
    """One line for a flag the command does not take, with the nearest one it does take."""
    shown = sanitize(flag, limit=60)
    near = suggest.nearest(flag, _flags_of(command, top))
    if near:
        return f"unknown flag: {shown} (did you mean {near}?)"
    owners = [c.name for c in spec.COMMANDS if flag in _flags_of(c, False)]
    if owners:
        return f"unknown flag: {shown} (an option of {_names(owners)}, not of {command.name})"
    # A typo of another command's flag: `python --previos` meant `pull python --previous`.
    elsewhere = suggest.nearest(flag, [f for c in spec.COMMANDS for f in _flags_of(c, False)])
    if elsewhere:
        owners = [c.name for c in spec.COMMANDS if elsewhere in _flags_of(c, False)]
        return (f"unknown flag: {shown} (did you mean {elsewhere}? it is an option of "
                f"{_names(owners)}, not of {command.name})")
    return f"unknown flag: {shown}"


def _names(words: list[str]) -> str:
    return " and ".join((", ".join(words[:-1]), words[-1])) if len(words) > 1 else words[0]


def parse(words: list[str], prog: str) -> tuple[spec.Command, argparse.Namespace]:
    """The command and its arguments, checked against everything ``spec`` says about them."""
    command, position = spec.find_command(words)
    top = position < 0
    typed = words
    if not top:
        words = words[:position] + words[position + 1 :]
    parser = build_parser(command, prog, top=top)
    rest = command.rest
    tail: list[str] = []
    if rest is not None and "--" in words:
        # Everything after "--" belongs to the rest argument, its own flags included; argparse
        # would read those as ours.
        split = words.index("--")
        words, tail = words[:split], words[split + 1 :]
    try:
        namespace, extras = parser.parse_known_args(words)
        if extras:
            _refuse(parser, command, extras, top)
        if top and namespace.image is None:
            parser.error(f"give a COMMAND or an {helptext.arguments(command)}")
    except UsageError as error:
        # argparse reports a missing IMAGE before an unknown flag; the typo explains more.
        better = _typed_command(typed, prog) if top else None
        unknown = _first_unknown_flag(words, command, top) if better is None else None
        if unknown is not None:
            better = f"{_unknown_flag(unknown, command, top)}. See '{parser.prog} --help'"
        if better is None or better == str(error):
            raise
        raise UsageError(better) from None
    if rest is not None:
        _take_rest(parser, rest, namespace, tail)
    _check_exclusive(parser, command, namespace)
    return command, namespace


def _refuse(parser: Parser, command: spec.Command, extras: list[str], top: bool) -> NoReturn:
    """Words argparse could not place: an unknown flag (with a suggestion), or stray words."""
    flags = [word for word in extras if word.startswith("-") and word != "-"]
    if flags:
        parser.error(_unknown_flag(flags[0].partition("=")[0], command, top))
    parser.error(f"unrecognized arguments: {' '.join(extras)}")


def _first_unknown_flag(words: list[str], command: spec.Command, top: bool) -> str | None:
    """The first word that looks like a flag the command does not take (``-qn3`` reads as
    ``-q``, as argparse reads it), skipping the values of the flags it does take."""
    takes_value = {flag for opt in command.options if opt.value for flag in opt.flags}
    known = set(_flags_of(command, top))
    skip = False
    for word in words:
        if skip:
            skip = False
            continue
        if word == "--":
            return None
        if not word.startswith("-") or word == "-" or word[1:2].isdigit():
            continue
        name, equals, _ = word.partition("=")
        if not name.startswith("--"):
            name = name[:2]
        if name not in known:
            return name
        skip = name in takes_value and not equals and len(word) == len(name)
    return None


def _typed_command(words: list[str], prog: str) -> str | None:
    """``pul python``: the first word was meant as a command, not as list's image.

    Asked only once reading the line as ``list IMAGE`` has failed, and only for a plain word
    near a command name: ``pulp`` alone may well be an image.
    """
    position = spec.first_word(words)
    if position < 0:
        return None
    word = words[position]
    if not word.isascii() or not all(c.isalnum() or c == "-" for c in word):
        return None
    if suggest.nearest(word, _command_words()) is None:
        return None
    return _unknown_command(word, prog) + f". See '{prog} --help'"


def _take_rest(parser: Parser, rest: spec.Arg, namespace: argparse.Namespace,
               tail: list[str]) -> None:
    """Store the words after "--"; words that argparse placed there came without it."""
    stray = getattr(namespace, rest.dest, None) or []
    if stray:
        parser.error(f"unrecognized arguments: {' '.join(stray)}")
    if not tail and not rest.optional:
        parser.error(f"give {rest.value} after '--'")
    setattr(namespace, rest.dest, tail)


def _check_exclusive(parser: Parser, command: spec.Command,
                     namespace: argparse.Namespace) -> None:
    """At most one option of each ``exclusive`` group: "--index 3 --at 7d" has no reading.

    An option counts as given when its value differs from the default, so ``--index 0`` does.
    """
    for group in command.exclusive:
        given = [opt.flags[-1] for opt in group
                 if getattr(namespace, opt.dest) != parser.get_default(opt.dest)]
        if len(given) > 1:
            flags = ", ".join(opt.flags[-1] for opt in group)
            parser.error(f"give at most one of {flags} (got {' and '.join(given)})")


def _on_interrupt(signum: int, frame: object) -> None:
    """The first Ctrl-C (or the docker CLI closing the plugin socket) stops; later ones wait.

    Without this, a second SIGINT could land inside the handling of the first and end in a
    traceback instead of one line.
    """
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    raise KeyboardInterrupt


def _stuck_threads() -> bool:
    """Worker threads still waiting on the network (after Ctrl-C or a failed window)."""
    import threading

    main = threading.main_thread()
    return any(t is not main and not t.daemon and t.is_alive() for t in threading.enumerate())


def _exit_now(code: int) -> NoReturn:
    """Exit without joining stuck workers, which would hold the exit for their timeout."""
    import contextlib
    import os

    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    os._exit(code)


def run(words: list[str], streams: Streams | None = None) -> int:
    """Run one command line; ``streams`` (default: the process's) is all the command writes to."""
    import signal

    previous = signal.getsignal(signal.SIGINT)
    if previous is signal.default_int_handler:
        signal.signal(signal.SIGINT, _on_interrupt)
    try:
        code = _run(words, streams if streams is not None else Streams.from_process())
    finally:
        if previous is signal.default_int_handler:
            signal.signal(signal.SIGINT, previous)
    if _stuck_threads():
        _exit_now(code)
    return code


def _run(words: list[str], streams: Streams) -> int:
    plugin_call = split_docker_invocation(words)
    invoked_by_docker = plugin_call is not None
    docker_debug = False
    if plugin_call is not None:
        words, settings, docker_debug = plugin_call
        apply_docker_settings(settings)
        watch_socket()
    prog = program_name(invoked_by_docker)
    debug = "--debug" in words or docker_debug
    log.enable(debug)
    context = None
    try:
        command, args = parse(words, prog)
        from .context import Context
        from .settings import Settings

        # Cheap and lazy: settings (and so the docker config) are read only by commands that
        # use them, so install, uninstall and completion work whatever config.json holds.
        context = Context(program=prog, settings=Settings(vars(args)), debug=debug)
        module = importlib.import_module(f".commands.{command.name}", __package__)
        return int(module.run(args, context, streams) or 0)
    except CghistoryError as error:
        if debug:
            import traceback

            traceback.print_exc(file=streams.stderr)
        streams.stderr.write(f"{prog}: {error}\n")
        return error.exit_code
    except KeyboardInterrupt:
        streams.stderr.write(f"{prog}: interrupted\n")
        return 130
    except BrokenPipeError:
        # The reader went away (| head): not an error worth a message. The process's own
        # descriptor, whatever stream the command was given: the interpreter flushes it at exit.
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except Exception as error:  # a bug: one line unless --debug
        if debug:
            import traceback

            traceback.print_exc(file=streams.stderr)
        streams.stderr.write(
            f"{prog}: unexpected error: {type(error).__name__}: {sanitize(error)} "
            "(run with --debug for details)\n"
        )
        return 1
    finally:
        if context is not None:
            context.close()
