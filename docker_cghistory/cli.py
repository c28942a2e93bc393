"""The command line: argparse built from ``spec``, dispatch, and the one place errors render.

``docker cghistory ARGS`` arrives as ``docker-cghistory cghistory ARGS``; both spellings run
the same code. Every expected failure ends as one line on stderr; ``--debug`` adds tracebacks.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import NoReturn

from . import __version__, log, spec
from .errors import CghistoryError, UsageError, sanitize
from .plugin import (
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


def _add_option(parser: argparse.ArgumentParser, opt: spec.Opt) -> argparse.Action:
    kwargs: dict = {"help": opt.help, "dest": opt.dest, "action": opt.action}
    if opt.action in ("store", "append"):
        kwargs["metavar"] = opt.value
        if opt.kind in ("int", "float"):
            kwargs["type"] = int if opt.kind == "int" else float
        if opt.choices:
            kwargs["choices"] = [value for value, _ in opt.choices]
    return parser.add_argument(*opt.flags, **kwargs)


def _add_argument(parser: argparse.ArgumentParser, arg: spec.Arg) -> argparse.Action:
    if arg.rest:
        # Shown in usage and --help only: ``parse`` hands argparse the words before "--", so
        # anything argparse puts here was typed without the separator (see ``_take_rest``).
        return parser.add_argument(arg.dest, metavar=f"-- {arg.value}", help=arg.help,
                                   nargs="*")
    nargs = "*" if arg.many and arg.optional else "+" if arg.many else (
        "?" if arg.optional else None)
    return parser.add_argument(arg.dest, metavar=arg.value, help=arg.help, nargs=nargs)


def build_parser(command: spec.Command, prog: str) -> Parser:
    """The parser for one command, with the global options."""
    is_default = command is spec.DEFAULT_COMMAND
    parser = Parser(
        prog=prog if is_default else f"{prog} {command.name}",
        description=command.description,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=_epilog(prog) if is_default else None,
        allow_abbrev=False,
    )
    parser.add_argument("--version", action="version", version=f"{prog} {__version__}")
    for opt in (*spec.GLOBAL, *command.opts):
        _add_option(parser, opt)
    for arg in command.args:
        _add_argument(parser, arg)
    return parser


def _epilog(prog: str) -> str:
    lines = ["commands:"]
    for command in spec.COMMANDS:
        lines.append(f"  {command.name:<12}{command.help}")
    lines += ["", f"With no command, {prog} IMAGE[:TAG] lists the tag's builds.",
              f"Run '{prog} COMMAND --help' for a command's options."]
    return "\n".join(lines)


def parse(words: list[str], prog: str) -> tuple[spec.Command, argparse.Namespace]:
    """The command and its arguments, checked against everything ``spec`` says about them."""
    command, position = spec.find_command(words)
    if position >= 0:
        words = words[:position] + words[position + 1 :]
    parser = build_parser(command, prog)
    rest = command.rest
    tail: list[str] = []
    if rest is not None and "--" in words:
        # Everything after "--" belongs to the rest argument, its own flags included; argparse
        # would read those as ours.
        split = words.index("--")
        words, tail = words[:split], words[split + 1 :]
    namespace = parser.parse_args(words)
    if rest is not None:
        _take_rest(parser, rest, namespace, tail)
    _check_exclusive(parser, command, namespace)
    return command, namespace


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
