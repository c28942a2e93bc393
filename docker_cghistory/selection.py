"""Turning ``--digest``/``--index``/``--previous``/``--at``/``--cooldown`` into one build.

The one build selection of ``pull``, ``pin`` and ``bisect`` (``--good``/``--bad``), so that "the
build before the newest" or "the build current on June 1st" means the same build, read the same
way and refused with the same words, everywhere. ``parse``, ``parse_build`` and ``choose`` are
pure; ``fetch`` reads only as much history as the selector needs, because a tag rebuilt nightly
since 2022 has thousands of builds and ``--previous`` should not wait for all of them.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal, Protocol

from . import history
from .errors import SelectionError, TimeSpecError, UsageError, sanitize
from .history import Build, Window
from .timespec import Moment, parse_age, parse_when

if TYPE_CHECKING:
    from .reference import Reference

Kind = Literal["digest", "index", "at", "cooldown"]
FLAGS = ("--digest", "--index", "--previous", "--at", "--cooldown")
BUILD_HELP = (
    "a build: an index (up to 6 digits, 0 = newest, as 'list' numbers them), a digest "
    "(sha256:... or 6+ hex characters, as 'list' prints them; write sha256:123456 for a "
    "6-digit prefix), or a time (2024-06-01, 2024-06-01T09:30:00Z, 7d: the build current "
    "then)"
)
# The most digits an index has: a million builds is 2700 years of nightly builds. Longer runs
# of digits are digest prefixes, as 'list' prints some (12 hex characters that happen to be
# digits only, about 1 build in 280).
INDEX_DIGITS = 6
_HEX_RE = re.compile(r"^[0-9a-fA-F]{6,64}$")
# Builds fetched below a time bound: more than one, so that builds the server includes because
# it rounds ``end`` up to the millisecond cannot crowd out the one we want.
_BOUNDED_READ = 4


@dataclass(frozen=True)
class Selector:
    """What the user asked for, validated; ``value`` is typed by ``kind``.

    ``digest``: the prefix as typed; ``index``: an int; ``at``: a ``timespec.Moment`` (a
    time typed without a fraction covers its whole second); ``cooldown``: a timedelta.
    ``flag`` is how the user spelled it, for messages.
    """

    kind: Kind
    value: Any
    flag: str

    def describe(self) -> str:
        return f"{self.flag} {self.value}" if self.flag != "--previous" else self.flag


# What ``pin`` resolves to without ``--at``/``--cooldown``: the build the tag points at now.
NEWEST = Selector("index", 0, "--index")


@dataclass(frozen=True)
class Choice:
    """The chosen build; ``index`` is its number in the full listing when that is known.

    A bounded read (``--at``, ``--cooldown``) does not see the builds after the bound, so it
    cannot number the build without reading them; ``None`` says so instead of guessing.
    """

    build: Build
    index: int | None


class HistorySource(Protocol):
    """The part of ``RegistryClient`` selection needs (fakes implement it in tests)."""

    def history(self, reference: Reference, *, since: datetime | None = None,
                until: datetime | None = None, last: int | None = None) -> list[Build]: ...

    def history_page(self, reference: Reference, window: Window) -> list[Build]: ...


def parse(args: Any, now: datetime) -> Selector | None:
    """The selector in ``args`` (argparse attributes of the same names), or ``None``.

    The parser lets at most one through (``spec.PULL.exclusive``), so the first found is it.
    """
    given: list[Selector] = []
    digest = getattr(args, "digest", None)
    if digest is not None:
        given.append(_digest(digest, "--digest"))
    index = getattr(args, "index", None)
    if index is not None:
        if index < 0:
            raise UsageError(f"--index takes 0 (the newest build) or more, not {index}")
        given.append(Selector("index", index, "--index"))
    if getattr(args, "previous", False):
        given.append(Selector("index", 1, "--previous"))
    at = getattr(args, "at", None)
    if at is not None:
        given.append(Selector("at", parse_when(at, now), "--at"))
    age = getattr(args, "cooldown", None)
    if age is not None:
        given.append(Selector("cooldown", parse_age(age), "--cooldown"))
    return given[0] if given else None


def _digest(text: str, flag: str) -> Selector:
    """A digest selector; a malformed prefix fails here, before any request."""
    history.normalise_digest_prefix(text)
    return Selector("digest", text, flag)


def parse_build(text: str, flag: str, now: datetime) -> Selector:
    """Read one BUILD value (``bisect --good``/``--bad``) into the selector ``pull`` would use.

    The rule is decided by the characters alone, never by the history, because a rule that
    depended on the history would make the same command mean different builds on different
    days. Up to ``INDEX_DIGITS`` digits is an index, even ``123456`` (which could also be a
    hex prefix); ``sha256:`` or any other hex string of 6+ characters is a digest prefix, so
    every short digest ``list`` prints (12 characters, digits alone in about 1 build in 280)
    reads back as that build; anything else is a time. No WHEN is all hex of 6+ characters
    except absurd ages (``100000d``). Errors are usage errors: the value could not be read at
    all, whatever the history holds.
    """
    value = text.strip()
    if not value:
        raise UsageError(f"{flag} is empty: give {BUILD_HELP}")
    if value.isascii() and value.isdigit() and len(value) <= INDEX_DIGITS:
        return Selector("index", int(value), flag)
    if value.lower().startswith("sha256:") or _HEX_RE.match(value):
        try:
            return _digest(value, flag)
        except SelectionError as error:
            raise UsageError(f"{flag}: {error}") from None
    try:
        moment = parse_when(value, now)
    except TimeSpecError:
        raise UsageError(f"invalid {flag} {sanitize(text)!r}: give {BUILD_HELP}") from None
    return Selector("at", moment, flag)


def choose(builds: Sequence[Build], selector: Selector, now: datetime) -> Choice:
    """The build ``selector`` names among ``builds`` (newest first, the whole history).

    An empty history is refused here, in one wording, whatever the selector.
    """
    if not builds:
        raise SelectionError(history.NO_BUILDS)
    if selector.kind == "index":
        return Choice(history.by_index(builds, selector.value), selector.value)
    if selector.kind == "digest":
        index, build = history.by_digest(builds, selector.value)
        return Choice(build, index)
    if selector.kind == "at":
        moment: Moment = selector.value
        index, build = history.at(builds, moment.end, shown=str(moment))
        return Choice(build, index)
    if selector.kind == "cooldown":
        index, build = history.cooldown(builds, selector.value, now)
        return Choice(build, index)
    raise AssertionError(f"unknown selector kind {selector.kind!r}")


def moment_of(selector: Selector, now: datetime) -> datetime | None:
    """The instant a time-based selector looks back from (``None`` for the others).

    For ``--at`` that is the end of what was typed: ``09:07:00`` looks back from
    ``09:07:00.999999``, so a build at ``09:07:00.971`` is current at ``09:07:00``.
    """
    if selector.kind == "at":
        return selector.value.end
    if selector.kind == "cooldown":
        return now - selector.value
    return None


def fetch(source: HistorySource, reference: Reference, selector: Selector,
          now: datetime) -> Choice:
    """Read what ``selector`` needs from the registry and choose the build.

    ``--index N`` reads the newest N+1 builds; ``--at``/``--cooldown`` read the few newest
    builds up to the moment (the choice is then made with the same rule as on the full
    history, so the answer is identical); ``--digest`` reads everything, since a prefix can
    name any build.
    """
    if selector.kind == "index":
        builds = source.history(reference, last=selector.value + 1)
        return choose(builds, selector, now)
    moment = moment_of(selector, now)
    if moment is None:
        return choose(source.history(reference), selector, now)
    if moment >= now:
        # Nothing newer can exist: the newest build is the answer, and its index is 0.
        return choose(source.history(reference, last=1), selector, now)
    bounded = source.history(reference, until=moment, last=_BOUNDED_READ)
    try:
        return Choice(choose(bounded, selector, now).build, None)
    except SelectionError:
        if len(bounded) >= _BOUNDED_READ:
            # Every build read lies just past the moment (within the server's rounding):
            # too dense to bound; read it all.
            return choose(source.history(reference), selector, now)
    # Nothing at or before the moment. The oldest page starts with the tag's first build, which
    # is what the error message names; choosing again raises it (or, should the registry have
    # missed a build in the bounded read, finds it).
    oldest = source.history_page(reference, Window(None, None))
    return Choice(choose(history.merge([bounded, oldest]), selector, now).build, None)


def listing(source: HistorySource, reference: Reference, *, since: Moment | None = None,
            until: Moment | None = None, last: int | None = None) -> list[tuple[int, Build]]:
    """The builds ``list`` shows for ``--since``/``--until``/``--last``, newest first, each with
    its index in the full listing: the number ``--index`` and ``bisect`` read.

    Without ``--until`` every build newer than a listed one is read too (the newest ``last``,
    or all since ``since``), so counting from 0 is that index. With ``--until`` the builds
    after it are read first and counted (only the count is kept): their number is the index
    of the first listed build. Reading them costs what reading since ``since`` would, and a
    ``--until 7d -n 5`` does not read the years before.
    """
    start = since.start if since is not None else None
    if until is None:
        return list(enumerate(source.history(reference, since=start, last=last)))
    cut = until.end
    # The window is inclusive: builds at the cut itself are listed, not counted as newer.
    newer = sum(1 for build in source.history(reference, since=cut) if build.updated > cut)
    builds = source.history(reference, since=start, until=cut, last=last)
    return [(newer + position, build) for position, build in enumerate(builds)]
