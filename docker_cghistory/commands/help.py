"""``docker cghistory help [COMMAND]``: the top help, or a command's ``--help``.

Also what ``docker help cghistory [COMMAND]`` runs (``plugin.split_docker_invocation`` turns
docker's ``help cghistory`` into ``help``). ``list help`` still lists an image named help.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..context import Context
    from ..streams import Streams


def run(args: argparse.Namespace, context: Context, streams: Streams) -> int:
    from ..cli import help_text

    streams.stdout.write(help_text(args.topic, context.program))
    streams.stdout.flush()
    return 0
