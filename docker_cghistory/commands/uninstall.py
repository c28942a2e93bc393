"""``docker-cghistory uninstall``: remove the launcher that ``install`` wrote, nothing else."""

from __future__ import annotations

import argparse
import os

from ..context import Context
from ..errors import CghistoryError
from ..plugin import NAME
from .install import _is_ours, plugin_dir


def run(args: argparse.Namespace, context: Context) -> int:
    path = os.path.join(plugin_dir(args.dir), f"docker-{NAME}")
    if not os.path.lexists(path):
        print(f"not installed: {path}")
        return 0
    if not _is_ours(path):
        raise CghistoryError(f"{path} was not written by docker-cghistory; leaving it alone")
    try:
        os.unlink(path)
    except OSError as error:
        raise CghistoryError(f"cannot remove {path}: {error.strerror}") from None
    print(f"removed: {path}")
    return 0
