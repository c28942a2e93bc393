"""``docker cghistory pull IMAGE[:TAG] SELECTOR``: pull a historical build through the engine.

A recipe: read the selector, read as much history as it needs (or let the user pick), pull
``HOST/REPO@DIGEST`` with the credentials the history was read with, check the engine has
exactly that digest, tag as asked. stdout gets one line, the pulled reference, so the command
composes (``docker run $(docker cghistory pull python --previous -q)``); everything else goes
to stderr, and progress only to a terminal.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from .. import engine as engine_module
from .. import selection
from ..complete import remember_reference
from ..context import Context
from ..engine import Engine, interrupts_deferred
from ..errors import InvalidReference, UsageError, sanitize
from ..progress import PullProgress
from ..reference import Reference, familiar, parse_docker
from ..registry import hint_for
from ..selection import Choice
from ..timespec import format_age, utcnow

if TYPE_CHECKING:
    from ..streams import Streams

# How long the picker waits for the engine's list of local digests once the history is in.
_LOCAL_WAIT = 2.0


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


def _retag(engine: Engine, reference: Reference, image: dict, digest: str) -> str:
    """Point ``HOST/REPO:TAG`` at the pulled image; say what it pointed at before."""
    target = reference.with_tag(reference.tag_or_latest)
    before = engine.inspect(target.tagged)
    engine.tag(image["Id"], target)
    if before is None:
        return f"{target.tagged} now points at {target.name}@{digest} (it was absent)"
    if before.get("Id") == image["Id"]:
        return f"{target.tagged} already pointed at {target.name}@{digest}"
    old = engine_module.repo_digests(before, target.name)
    shown = f"{target.name}@{old[0]}" if old else "no digest of this repository"
    return (
        f"{target.tagged} now points at {target.name}@{digest}; before: image "
        f"{sanitize(before.get('Id', '?'))[:19]} ({shown})"
    )


def run(args: argparse.Namespace, context: Context, streams: Streams) -> int:
    now = utcnow()
    selector = selection.parse(args, now)
    reference = context.parse(args.image)
    tag_as = new_tag(args.tag) if args.tag else None
    interactive = selector is None
    if interactive and not _interactive(streams):
        raise UsageError(
            "no build selected: give one of " + ", ".join(selection.FLAGS)
            + " (the interactive picker needs a terminal)"
        )
    client = context.client(reference.registry)
    show = streams.stderr_is_tty and not args.quiet
    with Engine.connect() as engine:
        if selector is not None:
            choice = selection.fetch(client, reference, selector, now)
        else:
            lookup = engine_module.LocalLookup(reference.name, timeout=engine_module.TIMEOUT,
                                               endpoint=engine.endpoint)
            builds = client.history(reference)
            from .. import picker

            choice = picker.pick(reference, builds, lookup.result(_LOCAL_WAIT), utcnow(),
                                 streams=streams)
        digest = choice.build.digest
        pulled = f"{reference.name}@{digest}"
        if show:
            streams.stderr.write(f"Pulling {_describe(reference, choice)}\n")
        image = engine.pull(
            reference.name, digest, auth=client.credential.engine_auth(), platform=args.platform,
            credential_source=client.credential.source, hint=hint_for(reference.registry),
            on_event=PullProgress.on(streams) if show else None,
        )
        notes = []
        with interrupts_deferred():
            if tag_as is not None:
                engine.tag(image["Id"], tag_as)
                if not args.quiet:
                    notes.append(f"Tagged {pulled} as {familiar(tag_as)}")
            if args.retag:
                # Said even with -q: it is the only record of what to go back to.
                notes.append(_retag(engine, reference, image, digest))
    for note in notes:
        streams.stderr.write(note + "\n")
    streams.stdout.write(pulled + "\n")
    remember_reference(args.image)
    return 0
