"""Reading foreign JSON (SBOMs, manifests, image configs) without trusting it.

A registry or an attestation can hand us anything: megabytes of nesting that would blow
Python's recursion, bytes that are not UTF-8, NaN. Each of those must become one line naming
the document, never a traceback, so every foreign JSON document goes through ``load_json``.
"""

from __future__ import annotations

import json
from typing import Any

from .errors import CghistoryError, sanitize

MAX_DOCUMENT = 64 * 1024 * 1024
MAX_DEPTH = 100


class BadDocument(CghistoryError):
    """A foreign document that is too big, too deep, badly encoded or not the JSON it claims."""


def _no_constants(name: str) -> Any:
    # NaN and Infinity are not JSON; accepting them would let a document compare unequal to itself.
    raise ValueError(f"{name} is not JSON")


def depth_of(value: Any) -> int:
    """Nesting depth, iteratively: a recursive walk would fail on the documents it must judge."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            deepest = max(deepest, depth)
            stack.extend((child, depth + 1) for child in item.values())
        elif isinstance(item, list):
            deepest = max(deepest, depth)
            stack.extend((child, depth + 1) for child in item)
    return deepest


def load_json(
    data: bytes | bytearray | str,
    what: str,
    *,
    max_bytes: int = MAX_DOCUMENT,
    max_depth: int = MAX_DEPTH,
    error: type[CghistoryError] = BadDocument,
) -> Any:
    """Parse ``data`` or raise ``error`` with one line that starts with ``what``."""
    if len(data) > max_bytes:
        raise error(f"{what} is larger than {max_bytes // (1024 * 1024)} MB")
    if isinstance(data, (bytes, bytearray)):
        try:
            text = bytes(data).decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise error(f"{what} is not UTF-8 (byte {exc.start})") from None
    else:
        text = data
    try:
        value = json.loads(text, parse_constant=_no_constants)
    except RecursionError:
        raise error(f"{what} is nested more than {max_depth} levels deep") from None
    except ValueError as exc:
        raise error(f"{what} is not valid JSON: {sanitize(exc, 120)}") from None
    if depth_of(value) > max_depth:
        raise error(f"{what} is nested more than {max_depth} levels deep")
    return value
