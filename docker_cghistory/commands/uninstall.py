"""``docker-cghistory uninstall``: remove the launcher that ``install`` wrote, nothing else."""

from __future__ import annotations

import argparse
import os
from typing import TYPE_CHECKING

from ..context import Context
from ..errors import CghistoryError
from ..plugin import NAME
from .install import _is_ours, plugin_dir

if TYPE_CHECKING:
    from ..streams import Streams


def run(args: argparse.Namespace, context: Context, streams: Streams) -> int:
    """Remove the launcher if ``install`` wrote it; anything else there is the user's."""
    path = os.path.join(plugin_dir(args.dir), f"docker-{NAME}")
    if not os.path.lexists(path):
        streams.stdout.write(f"not installed: {path}\n")
        return 0
    if not _is_ours(path):
        raise CghistoryError(f"{path} was not written by docker-cghistory; leaving it alone")
    try:
        os.unlink(path)
    except OSError as error:
        raise CghistoryError(f"cannot remove {path}: {error.strerror}") from None
    streams.stdout.write(f"removed: {path}\n")
    return 0
