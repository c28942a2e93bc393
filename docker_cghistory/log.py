"""``--debug`` output: what was asked of whom, how long it took, never a secret.

Callers pass only URLs, statuses and sources; headers and bodies never reach this module.
"""

from __future__ import annotations

import sys
import time

_enabled = False
_started = time.monotonic()


def enable(flag: bool = True) -> None:
    global _enabled
    _enabled = flag


def enabled() -> bool:
    return _enabled


def debug(message: str) -> None:
    if _enabled:
        from .errors import sanitize

        elapsed = time.monotonic() - _started
        sys.stderr.write(f"debug {elapsed:7.3f}s {sanitize(message, limit=400)}\n")
