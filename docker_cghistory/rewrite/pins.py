"""What a pin site is, and the pure text operations on it.

A site is found by the Dockerfile or compose reader and carries character offsets into the
decoded text; rewriting is nothing more than replacing those spans, so every other character
of the file (comments, layout, line endings, a BOM) survives by construction.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from ..errors import CghistoryError, InvalidReference, sanitize
from ..reference import DIGEST_RE, Reference, parse_docker

KIND_FROM = "from"
KIND_ARG = "arg"
KIND_COMPOSE = "compose"
KIND_COPY_FROM = "copy-from"
KIND_MOUNT_FROM = "mount-from"


@dataclass(frozen=True)
class Site:
    """One place in a file where an image reference is written and may be replaced.

    ``start``/``end`` delimit the reference itself, never its quotes, so the replacement keeps
    whatever quoting the author chose. For ``kind == "arg"`` the span is the default value of
    the global ``ARG`` that a ``FROM ${NAME}`` uses; ``used_by`` lists those ``FROM`` lines.
    """

    path: str
    line: int
    start: int
    end: int
    text: str
    reference: Reference
    kind: str
    used_by: tuple[int, ...] = ()

    @property
    def pinned(self) -> bool:
        """Already carries a digest; the caller decides whether to leave or refresh it."""
        return self.reference.digest is not None


@dataclass(frozen=True)
class Skip:
    """A reference that was seen but is deliberately left alone, with the reason to show."""

    path: str
    line: int
    text: str
    reason: str


class ParseFailure(CghistoryError):
    """A file that cannot be read as what its name says; nothing in it is rewritten."""

    def __init__(self, path: str, line: int | None, reason: str) -> None:
        self.path = path
        self.line = line
        self.reason = sanitize(reason)
        where = f"{sanitize(path)}:{line}" if line else sanitize(path)
        super().__init__(f"{where}: {self.reason}")


class ReadFailure(CghistoryError):
    """A file that could not be read (or is no longer the file that was found)."""


class WriteFailure(CghistoryError):
    """A rewritten file could not be stored; the original is untouched."""


def line_of(text: str, offset: int) -> int:
    """1-based line of ``offset``, counting ``\\n`` only, as BuildKit and editors do."""
    return text.count("\n", 0, offset) + 1


def apply(text: str, replacements: Mapping[tuple[int, int], str]) -> str:
    """Replace spans of ``text``; spans must lie inside it and must not overlap.

    Overlap would mean two sites claim the same characters, which is a bug in a reader, so it
    fails loudly instead of producing a file nobody asked for.
    """
    spans = sorted(replacements)
    previous_end = 0
    pieces: list[str] = []
    for start, end in spans:
        if not 0 <= start <= end <= len(text):
            raise ValueError(f"span {start}:{end} outside a text of {len(text)} characters")
        if start < previous_end:
            raise ValueError(f"span {start}:{end} overlaps the previous span")
        pieces.append(text[previous_end:start])
        pieces.append(replacements[(start, end)])
        previous_end = end
    pieces.append(text[previous_end:])
    return "".join(pieces)


def pinned_text(written: str, digest: str, digest_only: bool = False) -> str:
    """The pinned spelling of a reference, keeping the author's own spelling of the name.

    ``python:3.12`` stays short (``python:3.12@sha256:…``) and ``docker.io/library/python`` stays
    long: the diff then shows only the digest. An existing digest is replaced. A reference
    written without a tag or digest gains ``:latest``, the tag docker resolved, so that readers
    and update bots still see which tag the digest came from. With ``digest_only`` the tag goes
    (``name@sha256:…``), as Chainguard's documentation writes it.
    """
    if not DIGEST_RE.match(digest):
        raise InvalidReference(
            f"invalid digest {sanitize(digest)!r}: must be sha256: and 64 lowercase hex characters"
        )
    reference = parse_docker(written)
    name = written.strip().partition("@")[0]
    colon = name.rfind(":")
    has_tag = colon > name.rfind("/")
    if digest_only:
        if has_tag:
            name = name[:colon]
    elif not has_tag and reference.digest is None:
        # A first pin names the tag it came from; an existing digest-only pin keeps its style.
        name += ":latest"
    return f"{name}@{digest}"
