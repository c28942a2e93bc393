"""The failures a user sees.

Every expected failure is a ``CghistoryError``; the entry point renders it once, as one line on
stderr, and exits with its status. Anything else is a bug, shown in full only with ``--debug``.
"""

from __future__ import annotations

import re

# C0 and C1 control characters (ESC, BEL, CSI, ...), which a hostile server could use to rewrite
# the user's terminal; tabs and newlines are folded too, because an error is one line.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def sanitize(text: object, limit: int = 200) -> str:
    """Make foreign text (server answers, file content) safe to print in a one-line message."""
    cleaned = " ".join(str(text).split())
    cleaned = _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", cleaned)
    if len(cleaned) > limit:
        cleaned = cleaned[: limit - 3] + "..."
    return cleaned


def escape_controls(text: str, keep: str = "") -> str:
    """Show control characters as ``\\xNN`` but keep the layout: for multi-line foreign text
    (a diff of a file) where ``sanitize`` would fold the lines. ``keep``: characters left as
    they are, typically ``"\\t\\n"``."""
    return _CONTROL.sub(
        lambda m: m.group() if m.group() in keep else f"\\x{ord(m.group()):02x}", text
    )


class CghistoryError(Exception):
    """A failure the user can act on; ``str()`` is the whole message."""

    exit_code = 1


class UsageError(CghistoryError):
    """The command line itself is wrong (docker uses 125 for these in `docker run`; we use 2).

    That is: an unknown command or flag, a missing or stray argument, options that exclude
    each other, or a value that cannot be read whatever the registry holds (a reference, a
    time, a digest, a number, a format). Anything learnt by running (not found, refused,
    unreachable, not pinned) is exit 1.
    """

    exit_code = 2


class InvalidReference(UsageError):
    """An image reference that cannot be parsed or is not allowed here.

    A usage error: the references that reach the entry point were typed (IMAGE, ``--tag``,
    ``--registry``); ``pin`` catches the ones it reads from files and reports them per line.
    """


class TimeSpecError(UsageError):
    """A date, time or age value that cannot be read."""


class ConfigError(CghistoryError):
    """The docker config file or a credential helper is broken."""


class RegistryError(CghistoryError):
    """The registry failed, refused, or answered something that cannot be trusted."""


class AuthError(RegistryError):
    """The registry refused the credentials (or their absence)."""


class NotFoundError(RegistryError):
    """The repository or tag does not exist."""


class RepositoryNotFound(NotFoundError):
    """The registry knows no repository of that name (not just no such tag)."""


class TagNotFound(NotFoundError):
    """The repository exists (or may) but has no such tag; commands add hints to it."""


class NoHistoryAPI(RegistryError):
    """The registry serves the tag but has no tag history API (not a Chainguard registry).

    A type, not words: ``pin`` falls back to a manifest HEAD on it, and rewording the message
    must not silently break that fallback.
    """


class EngineError(CghistoryError):
    """The Docker engine is unreachable or failed."""


class SelectionError(CghistoryError):
    """No build, or more than one, matches what the user asked for."""


class InvalidDigest(SelectionError, UsageError):
    """A digest or digest prefix that cannot be one (``--digest xyz``): the value is wrong
    whatever the history holds, so a usage error (exit 2), yet still a ``SelectionError``
    for the callers that catch those."""


class Interrupted(CghistoryError):
    """The user (or the docker CLI closing the plugin socket) asked us to stop."""

    exit_code = 130
