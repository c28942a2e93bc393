"""``docker cghistory pull IMAGE[:TAG] SELECTOR``: pull a historical build through the engine.

A recipe: read the selector, read as much history as it needs (or let the user pick), pull
``HOST/REPO@DIGEST`` with the credentials the history was read with, check the engine has
exactly that digest, tag as asked. stdout gets one line, the pulled reference, so the command
composes (``docker run $(docker cghistory pull python --previous -q)``); everything else goes
to stderr, and progress only to a terminal.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .. import engine as engine_module
from .. import log, output, selection
from ..complete import remember_reference
from ..context import Context
from ..engine import Engine, interrupts_deferred
from ..errors import CghistoryError, InvalidReference, TagNotFound, UsageError, sanitize
from ..notfound import digest_hint, looks_like_digest, with_digest_hint
from ..platforms import Platform, names, parse_platform
from ..progress import PullProgress
from ..reference import Reference, familiar, parse_cli, parse_docker
from ..registry import hint_for
from ..selection import Choice
from ..timespec import format_age, utcnow

if TYPE_CHECKING:
    from ..registry import RegistryClient
    from ..streams import Streams

# How long the picker waits for the engine's list of local digests once the history is in.
_LOCAL_WAIT = 2.0
# ``--format json`` keys (PascalCase, as docker's): what was pulled, and what changed locally.
FIELDS = ("Reference", "Digest", "Index", "Updated", "Tag", "Retagged", "PreviousTarget",
          "Undo")


@dataclass(frozen=True)
class Retag:
    """What ``--retag`` did: the tag moved, what it named before (``None``: it did not exist),
    the line to print, and the docker command that puts the tag back (``None``: no change)."""

    target: str
    previous: str | None
    note: str
    undo: str | None


def new_tag(text: str) -> Reference:
    """``--tag NEWREF`` read as docker reads it, refused before anything is pulled."""
    reference = parse_docker(text)
    if reference.digest:
        raise InvalidReference(
            f"--tag {sanitize(text)!r} names a digest; give NAME[:TAG] to tag the pulled image"
        )
    return Reference(reference.registry, reference.repository, reference.tag_or_latest)


def _interactive(streams: Streams) -> bool:
    """The picker reads keys from stdin and draws on stderr: both must be a terminal."""
    return streams.stdin_is_tty and streams.stderr_is_tty


def _describe(reference: Reference, choice: Choice) -> str:
    build = choice.build
    number = f"#{choice.index} " if choice.index is not None else ""
    return (
        f"{reference.tagged} {number}(updated {build.timestamp}, "
        f"{format_age(utcnow() - build.updated)})"
    )


def retag(engine: Engine, target: Reference, image: dict, digest: str) -> Retag:
    """Point ``HOST/REPO:TAG`` at the pulled image, and say how to put it back.

    The tag's previous image is named by its digest in this repository when it has one (what
    ``list`` shows), else by its image ID: either, given to ``docker tag``, restores it.
    """
    shown = familiar(target)
    pulled = familiar(target.with_digest(digest))
    before = engine.inspect(target.tagged)
    engine.tag(image["Id"], target)
    if before is None:
        return Retag(shown, None, f"{shown} now points at {pulled} (it did not exist before)",
                     f"docker rmi {shown}")
    old = engine_module.repo_digests(before, target.name)
    previous = (familiar(target.with_digest(old[0])) if old
                else sanitize(before.get("Id", "?"), limit=80))
    if before.get("Id") == image["Id"]:
        return Retag(shown, previous, f"{shown} already pointed at {pulled}", None)
    return Retag(shown, previous, f"{shown} now points at {pulled} (before: {previous})",
                 f"docker tag {previous} {shown}")


def _image(args: argparse.Namespace, context: Context) -> Reference:
    """IMAGE[:TAG], or IMAGE[:TAG]@sha256:...: a pull by digest needs no history."""
    return parse_cli(args.image, context.default_registry, context.default_org,
                     allow_digest=True)


def _check_digest_reference(reference: Reference, selector: selection.Selector | None,
                            args: argparse.Namespace) -> None:
    """``IMAGE@sha256:…`` names its build: a selector is a contradiction, and ``--retag``
    needs the tag to move written out."""
    if selector is not None:
        raise UsageError(f"{sanitize(args.image)} names its build already; drop "
                         f"{selector.flag}")
    if args.retag and reference.tag is None:
        raise UsageError(
            f"--retag needs the tag to point at this build: write IMAGE:TAG@DIGEST "
            f"(for example {familiar(reference.with_tag('latest'))}@{reference.digest})")


def _check_platform(client: RegistryClient, reference: Reference, digest: str,
                    platform: Platform) -> None:
    """A build without that platform is named with the platforms it has, before the engine
    answers with its own, vaguer words. A registry we cannot ask leaves it to the engine."""
    from ..buildfacts import PlatformMissing, platforms_of_build
    from ..content import Content

    try:
        available = platforms_of_build(Content(client, reference.repository), digest)
    except PlatformMissing:
        raise
    except CghistoryError as error:
        log.debug(f"platforms of {digest[:19]}… unknown ({error}); the engine decides")
        return
    if platform not in available:
        raise PlatformMissing(
            f"{reference.name}@{digest[:19]}… has no {platform} image; it has "
            f"{names(sorted(available))}", sorted(available))


def run(args: argparse.Namespace, context: Context, streams: Streams) -> int:
    now = utcnow()
    selector = selection.parse(args, now)
    reference = _image(args, context)
    tag_as = new_tag(args.tag) if args.tag else None
    fmt = (getattr(args, "format", None) or "").strip() or None
    if fmt is not None and fmt != "json":
        output.Template(fmt, FIELDS)  # a bad template fails before anything is pulled
    if reference.digest:
        _check_digest_reference(reference, selector, args)
    platform = parse_platform(args.platform) if args.platform else None
    interactive = selector is None and reference.digest is None
    if interactive and not _interactive(streams):
        if looks_like_digest(reference.tag):
            raise UsageError(digest_hint(args.image, reference.tag or "", context.program))
        raise UsageError(
            "no build selected: give one of " + ", ".join(selection.FLAGS)
            + " (the interactive picker needs a terminal)"
        )
    client = context.client(reference.registry)
    show = streams.stderr_is_tty and not args.quiet
    with Engine.connect() as engine:
        choice: Choice | None = None
        try:
            if selector is not None:
                choice = selection.fetch(client, reference, selector, now)
            elif interactive:
                from .. import picker
                from ..local import LocalLookup

                lookup = LocalLookup(reference.name, timeout=engine_module.TIMEOUT,
                                     endpoint=engine.endpoint)
                builds = client.history(reference)
                choice = picker.pick(reference, builds, lookup.result(_LOCAL_WAIT), utcnow(),
                                     streams=streams)
        except TagNotFound as error:
            raise with_digest_hint(error, reference, args.image, context.program) from None
        digest = choice.build.digest if choice is not None else str(reference.digest)
        pulled = f"{reference.name}@{digest}"
        if platform is not None:
            _check_platform(client, reference, digest, platform)
        if show:
            shown = _describe(reference, choice) if choice is not None else pulled
            streams.stderr.write(f"Pulling {shown}\n")
        image = engine.pull(
            reference.name, digest, auth=client.credential.engine_auth(),
            platform=str(platform) if platform is not None else None,
            credential_source=client.credential.source, hint=hint_for(reference.registry),
            on_event=PullProgress.on(streams) if show else None,
        )
        notes = []
        moved: Retag | None = None
        with interrupts_deferred():
            if tag_as is not None:
                engine.tag(image["Id"], tag_as)
                if not args.quiet:
                    notes.append(f"Tagged {pulled} as {familiar(tag_as)}")
            if args.retag:
                moved = retag(engine, reference.with_tag(reference.tag_or_latest), image, digest)
                # Said even with -q: it is the only record of what to go back to.
                notes.append(moved.note)
                if moved.undo:
                    notes.append(f"To undo: {moved.undo}")
    for note in notes:
        streams.stderr.write(note + "\n")
    if fmt is None:
        streams.stdout.write(pulled + "\n")
    else:
        row = {
            "Reference": pulled, "Digest": digest,
            "Index": choice.index if choice is not None else None,
            "Updated": choice.build.timestamp if choice is not None else None,
            "Tag": familiar(tag_as) if tag_as is not None else None,
            "Retagged": moved.target if moved else None,
            "PreviousTarget": moved.previous if moved else None,
            "Undo": moved.undo if moved else None,
        }
        output.render_one(row, fmt, streams.stdout, fields=FIELDS)
    remember_reference(args.image)
    return 0
