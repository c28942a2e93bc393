"""``docker-cghistory completion bash|zsh|fish``: the completion script for the direct command.

The scripts are argcomplete's own shell code: the program answers argcomplete's protocol
(``complete.argcomplete_adapter``), so the scripts stay the ones argcomplete users know.
``docker cghistory`` needs none of this: docker's script (``docker completion bash``) asks the
plugin through ``__complete``.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from .. import spec
from ..errors import UsageError

if TYPE_CHECKING:
    from ..context import Context
    from ..streams import Streams

PROGRAM = "docker-cghistory"
SHELLS = tuple(name for name, _ in spec.SHELLS)
_ENABLE = {
    "bash": [
        f"{PROGRAM} completion bash > ~/.local/share/bash-completion/completions/{PROGRAM}",
        f"or, in ~/.bashrc: eval \"$({PROGRAM} completion bash)\"",
    ],
    "zsh": [
        f"{PROGRAM} completion zsh > ~/.zsh/completions/_{PROGRAM}",
        "with fpath=(~/.zsh/completions $fpath) before compinit in ~/.zshrc,",
        f"or, after compinit in ~/.zshrc: eval \"$({PROGRAM} completion zsh)\"",
    ],
    "fish": [f"{PROGRAM} completion fish > ~/.config/fish/completions/{PROGRAM}.fish"],
}


def _argcomplete_version() -> str:
    try:
        from importlib.metadata import version

        return version("argcomplete")
    except Exception:
        return "unknown"


def script(shell: str) -> str:
    """The script for ``shell``, with a header saying how to enable it."""
    if shell not in SHELLS:
        raise UsageError(f"unknown shell {shell!r}: choose {', '.join(SHELLS)}")
    import argcomplete

    # No fallback to file names: where files make sense the program lists them itself, and
    # an empty answer (say, the registry is down) should stay empty.
    code = argcomplete.shellcode([PROGRAM], use_defaults=False, shell=shell)
    header = [
        f"# {shell} completion for {PROGRAM}, generated with argcomplete "
        f"{_argcomplete_version()} by '{PROGRAM} completion {shell}'.",
        "# Enable it:",
        *(f"#   {line}" for line in _ENABLE[shell]),
        f"# ('docker cghistory' is completed by docker's own script: docker completion {shell})",
    ]
    first, _, rest = code.partition("\n")
    if first.startswith("#compdef"):  # zsh's autoload marker must stay the first line
        return f"{first}\n" + "\n".join(header) + f"\n{rest}"
    return "\n".join(header) + "\n" + code.lstrip("\n")


def run(args: argparse.Namespace, context: Context, streams: Streams) -> int:
    """Print the script; ``context`` is unused, so no setting (and no docker config) is read."""
    streams.stdout.write(script(args.shell))
    return 0
