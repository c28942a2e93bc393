"""What to say when a reference is not found: which part is missing, and what to try next.

Pure: the registry adapter reads the tags list and the error code, this module words them.
Edit distance is ``suggest.distance`` (the "did you mean" of commands and flags); tags get up
to three suggestions, because a mistyped tag often has several plausible neighbours
(``3.12`` → ``3.11``, ``3.13``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from .errors import NotFoundError, RepositoryNotFound, TagNotFound, sanitize
from .reference import Reference
from .suggest import distance

# A tag that is a short or full digest pasted after ':': hex only, with a digit and a letter
# (neither a date tag like 20240601 nor a word like "facade" reads as one), at least 7
# characters (git's and docker's short forms are 7 and 12).
_HEX_TAG = re.compile(r"\A(?=[0-9a-f]*[a-f])(?=[0-9a-f]*[0-9])[0-9a-f]{7,64}\Z")


def nearest_tags(tag: str, tags: Iterable[str], count: int = 3) -> list[str]:
    """Up to ``count`` tags close to ``tag``, nearest first (ties: shorter, then by name).

    Close is within a third of the tag's length, at least 2 edits (``latst`` finds
    ``latest``, ``3.13`` finds ``3.12``), or a longer tag that starts with it (``3.13`` finds
    ``3.13-dev``, ranked by its distance all the same).
    """
    limit = max(2, len(tag) // 3)
    scored = []
    for name in set(tags):
        extends = len(tag) >= 2 and name.startswith(tag)
        if name == tag or (abs(len(name) - len(tag)) > limit and not extends):
            continue
        edits = distance(tag, name)
        if edits <= limit or extends:
            scored.append((edits, len(name), name))
    return [name for _, _, name in sorted(scored)[:count]]


def one_of(names: list[str]) -> str:
    """``a``, ``a or b``, ``a, b or c``."""
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1]


def not_found(reference: Reference, code: str, tags: list[str] | None) -> NotFoundError:
    """A 404 for ``reference`` as one line: the repository or the tag is missing.

    ``tags``: the repository's tags when the list was read (so the repository exists),
    ``None`` when it could not be; ``code``: the registry's error code (``NAME_UNKNOWN``: no
    repository, ``MANIFEST_UNKNOWN``: no tag, ``""``: it did not say). Tags are suggested only
    from a list that was read, never guessed.
    """
    repository, tag = reference.repository, sanitize(reference.tag_or_latest)
    if tags is None and code == "NAME_UNKNOWN":
        return RepositoryNotFound(
            f"not found: {reference.tagged} (the registry has no repository {repository})")
    if tags is None and code != "MANIFEST_UNKNOWN":
        return TagNotFound(f"tag not found: {reference.tagged}")
    message = f"not found: {reference.tagged} ({repository} has no tag {tag}"
    if tags is not None:
        near = nearest_tags(reference.tag_or_latest, tags)
        message += f"; did you mean {one_of(near)}?" if near else "; no tag of it is close"
    return TagNotFound(message + ")")


def looks_like_digest(tag: str | None) -> bool:
    """Whether a tag is likelier a digest pasted after ``:`` (``python:c171a551fee2``)."""
    return tag is not None and _HEX_TAG.match(tag) is not None


def digest_hint(typed: str, tag: str, program: str) -> str:
    """The ``--digest`` command for an image typed with a digest-looking tag."""
    suffix = f":{tag}"
    image = typed.strip()
    image = image[: -len(suffix)] if image.endswith(suffix) else image
    return (f"{tag} looks like a digest, not a tag; to pull that build: "
            f"{program} pull {sanitize(image)} --digest {tag}")


def with_digest_hint(error: TagNotFound, reference: Reference, typed: str,
                     program: str) -> TagNotFound:
    """``error``, plus the ``--digest`` command when the missing tag looks like a digest."""
    if not looks_like_digest(reference.tag):
        return error
    return TagNotFound(f"{error}; {digest_hint(typed, reference.tag or '', program)}")


def with_command_hint(error: RepositoryNotFound, typed: str,
                      program: str) -> RepositoryNotFound:
    """``error``, plus the command the user probably meant: ``docker cghistory pul`` lists an
    image called ``pul`` (a valid name), which does not exist; ``pull`` does."""
    from . import spec, suggest

    if any(mark in typed for mark in "/:@."):
        return error
    names = [name for command in spec.COMMANDS for name in (command.name, *command.aliases)]
    near = suggest.nearest(typed, names)
    if near is None:
        return error
    return RepositoryNotFound(f"{error}; did you mean the command '{program} {near}'?")
