"""The words of ``--help`` that argparse does not write: usage lines, commands, examples.

Pure (reads ``spec`` only), so the help a user reads and what tests check come from the one
table. ``cli`` hands these to argparse, which lays out the option groups.
"""

from __future__ import annotations

from . import spec

TOP_EXAMPLES = (spec.LIST, spec.PULL, spec.PIN, spec.BISECT)  # their first example each


def arguments(command: spec.Command) -> str:
    """The positionals as the usage line shows them: ``IMAGE[:TAG] -- COMMAND [ARG...]``."""
    shown = []
    for arg in command.args:
        if arg.rest:
            shown.append(f"-- {arg.value}")
        elif arg.many:
            shown.append(f"[{arg.value}...]" if arg.optional else f"{arg.value}...")
        else:
            shown.append(f"[{arg.value}]" if arg.optional else arg.value)
    return " ".join(shown)


def usage(command: spec.Command | None, prog: str) -> str:
    """docker's form, ``PROG COMMAND [OPTIONS] ARGS``; ``None`` for the top level."""
    if command is None:
        image = arguments(spec.DEFAULT_COMMAND)
        return (f"{prog} [OPTIONS] COMMAND [ARG...]\n"
                f"       {prog} [OPTIONS] {image}")
    return f"{prog} {command.name} [OPTIONS] {arguments(command)}".rstrip()


def commands_table() -> str:
    width = max(len(command.name) for command in spec.COMMANDS) + 4
    lines = ["Commands:"]
    lines += [f"  {command.name:<{width}}{command.help}" for command in spec.COMMANDS]
    return "\n".join(lines)


def top_description(prog: str, summary: str) -> str:
    default = spec.DEFAULT_COMMAND
    image = arguments(default)
    return (f"{summary}.\n'{prog} {image}' is short for '{prog} {default.name} {image}'."
            f"\n\n{commands_table()}")


def description(command: spec.Command, prog: str) -> str:
    text = command.description
    if command.aliases:
        names = ", ".join(f"{prog} {name}" for name in (command.name, *command.aliases))
        text += f"\n\nAliases:\n  {names}"
    return text


def examples(pairs: tuple[tuple[str, str], ...] | list[tuple[str, str]], prog: str) -> str:
    """``# what it does`` over the command, so a block pastes into a shell as it is."""
    lines = ["Examples:"]
    for index, (words, what) in enumerate(pairs):
        if index:
            lines.append("")
        lines.append(f"  # {what[:1].upper()}{what[1:]}")
        lines.append(f"  {prog} {words}")
    return "\n".join(lines)


def epilog(command: spec.Command | None, prog: str) -> str:
    """Examples, then where to read more."""
    if command is None:
        pairs = [c.examples[0] for c in TOP_EXAMPLES if c.examples]
        more = f"Run '{prog} help COMMAND' for a command's options and examples."
        return f"{examples(pairs, prog)}\n\n{more}"
    return examples(command.examples, prog) if command.examples else ""
