"""What the engine holds of a repository: the builds present, and the build the tag points at.

The listing's LOCAL column and the picker read this. Two facts, kept apart because they
answer different questions:

- ``present``: digests of ``HOST/REPO`` the engine has (``docker pull`` by tag or digest
  records them in ``RepoDigests``): "can I run it without pulling?";
- ``tagged``: the digests carried by the image ``HOST/REPO:TAG`` points at: "what does
  ``docker run HOST/REPO:TAG`` run?", which ``pull --retag`` changes.

Both come from one ``/images/json`` call, looked up in a background thread so that the
listing does not wait for the engine (``LocalLookup``).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from . import log
from .endpoint import Endpoint, resolve_endpoint
from .engine import LOCAL_TIMEOUT, local_digests_of, repo_digests, scrub
from .errors import CghistoryError, sanitize
from .reference import parse_docker


@dataclass(frozen=True)
class LocalState:
    """Digests of one repository in the engine: ``present``, and ``tagged`` (a subset: what
    the local ``HOST/REPO:TAG`` is; several digests when one image was pulled under several)."""

    present: frozenset[str]
    tagged: frozenset[str]


def tagged_digests(images: list[Mapping[str, Any]], name: str, tag: str) -> set[str]:
    """The digests of ``name`` carried by the image that ``name:tag`` names locally."""
    found: set[str] = set()
    for image in images:
        for entry in image.get("RepoTags") or ():
            try:
                parsed = parse_docker(entry) if isinstance(entry, str) else None
            except CghistoryError:  # "<none>:<none>" and other non-references
                parsed = None
            if parsed is not None and parsed.name == name and parsed.tag == tag:
                found.update(repo_digests(image, name))
    return found


def local_state_of(images: list[Mapping[str, Any]], name: str, tag: str | None) -> LocalState:
    """``present`` and ``tagged`` for ``name`` (``tag``: the tag listed) from an image list."""
    present = local_digests_of(images, name)
    tagged = tagged_digests(images, name, tag) if tag is not None else set()
    return LocalState(frozenset(present), frozenset(tagged & present))


def _socket_missing(host: str) -> bool:
    """A ``unix://`` engine address whose socket file does not exist."""
    return host.startswith("unix://") and not os.path.exists(host[len("unix://"):])


class LocalLookup:
    """The engine's images of a repository, looked up in a background thread.

    The listing starts this before its network reads and takes the answer only if it is there
    (soon) after the history: no engine, a slow one, or any failure leaves the listing as it
    was, and nothing waits for the thread (it is a daemon). Engines reached over ssh are
    skipped: ssh might prompt on the terminal in the middle of a listing.
    """

    def __init__(self, name: str, timeout: float = LOCAL_TIMEOUT,
                 endpoint: Endpoint | None = None, tag: str | None = None) -> None:
        self.name = name
        self.tag = tag
        self.timeout = timeout
        self.endpoint = endpoint
        self._state: LocalState | None = None
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, name="engine-local", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        from .engine import Engine

        try:
            if _socket_missing(self.endpoint.host if self.endpoint else
                               os.environ.get("DOCKER_HOST", "")):
                return
            endpoint = self.endpoint or resolve_endpoint()
            if _socket_missing(endpoint.host):
                # No engine here: not worth importing docker-py to learn it.
                log.debug(f"no engine socket at {sanitize(endpoint.host)}: no LOCAL mark")
                return
            if endpoint.host.startswith("ssh://"):
                # ssh may ask for a password or a host key on the terminal: not for a mark.
                log.debug("engine over ssh: no LOCAL mark")
                return
            with Engine.connect(endpoint, timeout=self.timeout, probe=False) as engine:
                images = engine.local_images(self.name)
            self._state = local_state_of(images, self.name, self.tag)
        except Exception as error:  # any failure means "no LOCAL column", never an error
            log.debug(f"no local images from the engine: {scrub(error, 160)}")
        finally:
            self._done.set()

    def state(self, wait: float = 0.2) -> LocalState | None:
        """Both facts, or ``None`` if the engine has not answered within ``wait`` seconds."""
        self._done.wait(wait)
        return self._state if self._done.is_set() else None

    def result(self, wait: float = 0.2) -> set[str] | None:
        """The digests present (``state().present``), or ``None`` (see ``state``)."""
        state = self.state(wait)
        return set(state.present) if state is not None else None
