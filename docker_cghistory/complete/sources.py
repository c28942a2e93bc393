"""Where candidates come from: configured images, recent references, local images, and the
registry through the cache.

A cache hit reads one small file (``store``). A miss asks the registry in a daemon thread
within a hard budget (``BUDGET`` seconds, one attempt, short timeouts), through the same
``Context`` and registry client the commands use; a worker still blocked when the budget runs out
is abandoned, and the adapter exits without waiting for it. Local images are never waited on:
they come from a list that a forked, detached child refreshes at most every ``LOCAL_REFRESH``
seconds.
"""

from __future__ import annotations

import os
import time

from .. import cache
from ..settings import PLUGIN_NAME, Settings
from .core import MAX_CANDIDATES, Candidates, is_host, valid_tag
from .store import cache_folder, exact_stamp, read_entry, read_stamp, write_entry

TYPE_CHECKING = False
if TYPE_CHECKING:  # annotations only: typing and collections cost a TAB ~5 ms to import
    from collections.abc import Callable
    from typing import Any

TTL = 300.0  # seconds a cached tag list or build list is served without asking the registry
LOCAL_REFRESH = 300.0  # at most one background refresh of the local image list per this long
BUDGET = 1.0  # seconds a cache miss may spend on the registry, credentials included
BUDGET_VARIABLE = "CGHISTORY_COMPLETION_TIMEOUT"


def default_budget() -> float:
    """``CGHISTORY_COMPLETION_TIMEOUT`` seconds, else ``BUDGET``.

    A TAB that waits longer than a second feels broken on a fast network, but on a slow VPN (or
    a loaded CI machine) a second is not enough to reach the registry at all; the user decides.
    """
    try:
        seconds = float(os.environ.get(BUDGET_VARIABLE, ""))
    except ValueError:
        return BUDGET
    return seconds if 0 < seconds < 3600 else BUDGET
CONNECT_TIMEOUT = 0.5


def _plain_platform(text: str) -> bool:
    """``os/arch[/variant]`` in lower-case letters, digits, ``.``, ``_`` and ``-`` only: what
    a cache line may offer the shell (no ``re`` import for a TAB)."""
    parts = text.split("/")
    return 2 <= len(parts) <= 3 and all(
        part and len(part) <= 64 and all(c in _PLATFORM_CHARACTERS for c in part)
        for part in parts)


_PLATFORM_CHARACTERS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789._-")


# --- local images ----------------------------------------------------------------------------


def _docker_images(timeout: float = 10.0) -> list[str] | None:
    """``REPOSITORY:TAG`` of the engine's images, from the docker CLI (contexts, TLS, hosts).

    ``docker`` is looked up on PATH's absolute entries only: a TAB in a checkout holding its own
    ``docker`` must not run it through an empty or relative PATH entry.
    """
    import subprocess

    from ..programs import find_program

    docker = find_program("docker")
    if docker is None:
        return None
    try:
        result = subprocess.run(
            [docker, "image", "ls", "--format", "{{.Repository}}:{{.Tag}}"],
            stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout, check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if result.returncode != 0:
        return None
    images = []
    for line in result.stdout.decode(errors="replace").splitlines():
        line = line.strip()
        if line and "<none>" not in line and line.isprintable() and " " not in line:
            images.append(line)
    return images


def refresh_local_images(lister: Callable[[], list[str] | None] = _docker_images) -> None:
    """Rewrite the local image list (an engine that does not answer gives an empty one)."""
    write_entry("lists", "local", lister() or [])


def _maybe_refresh_local(now: float) -> None:
    """Fork a detached child to refresh the local image list when it is older than allowed.

    The child leaves the session and lets go of every descriptor first, so neither the shell
    nor the docker CLI waits for it; it ends when ``docker image ls`` does (10 s at most). It
    also leaves the folder the TAB was pressed in: nothing it runs has any business there, and
    it must not keep that folder (or its mount) busy.
    """
    stamp = os.path.join(cache_folder(), "lists", "local.attempt")
    try:
        if now - os.stat(stamp).st_mtime < LOCAL_REFRESH:
            return
    except OSError:
        pass
    if not hasattr(os, "fork") or os.environ.get("CGHISTORY_NO_BACKGROUND"):
        return
    try:
        cache.write_atomic(stamp, b"")
    except OSError:
        return
    try:
        pid = os.fork()
    except OSError:
        return
    if pid:
        return
    try:
        os.setsid()
        if os.path.isabs(stamp):  # a relative cache folder must keep meaning the same place
            os.chdir("/")
        null = os.open(os.devnull, os.O_RDWR)
        for descriptor in (0, 1, 2):
            os.dup2(null, descriptor)
        os.closerange(3, 1024)
        refresh_local_images()
    finally:
        os._exit(0)


# --- candidate sources: cache first, registry within a budget -------------------------------


class Fetcher:
    """The registry side of a cache miss (one attempt, short timeouts, no prompts)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def _client(self, host: str, timeout: float) -> Any:
        from ..context import Context

        # A helper gets half the budget: one that overruns is killed by subprocess.run, not
        # orphaned by our exit, and the token and the request still fit in the other half.
        context = Context(
            program=f"docker-{PLUGIN_NAME}", settings=self.settings,
            connect_timeout=min(CONNECT_TIMEOUT, timeout), read_timeout=timeout, attempts=1,
            helper_timeout=max(0.1, timeout / 2),
        )
        return context.client(host)

    def tags(self, host: str, repository: str, timeout: float) -> list[str]:
        client = self._client(host, timeout)
        return [tag for tag in client.tags(repository) if valid_tag(tag)]

    def builds(self, host: str, repository: str, tag: str,
               timeout: float) -> list[tuple[int, str]]:
        from ..reference import Reference

        if not valid_tag(tag):
            return []
        client = self._client(host, timeout)
        # The newest builds only: a tag rebuilt for years has thousands, more than one TAB
        # can fetch or a shell can show.
        builds = client.history(Reference(host, repository, tag), last=MAX_CANDIDATES)
        return [(exact_stamp(build.updated), build.digest) for build in builds]

    def platforms(self, host: str, repository: str, tag: str, timeout: float) -> list[str]:
        """The platforms of the tag's newest build, as ``--platform`` names them."""
        from ..buildfacts import platforms_of_build
        from ..content import Content
        from ..reference import Reference

        if not valid_tag(tag):
            return []
        client = self._client(host, timeout)
        newest = client.history(Reference(host, repository, tag), last=1)
        if not newest:
            return []
        found = platforms_of_build(Content(client, repository), newest[0].digest)
        return sorted(str(platform) for platform in found)


class Sources:
    """Where candidates come from: configured, recent, local, and the registry via the cache."""

    def __init__(self, settings: Settings | None = None, *, fetcher: Any = None,
                 budget: float | None = None, background: bool = True) -> None:
        # Not strict: a broken docker config is no settings, never a failed TAB.
        self.settings = settings if settings is not None else Settings(strict=False)
        self.fetcher = fetcher
        self.deadline = time.monotonic() + (budget if budget is not None else default_budget())
        self.background = background
        self.abandoned = False  # a worker thread is still blocked on the network

    def _within_budget(self, work: Callable[[float], Any]) -> Any:
        """``work(timeout)`` in a daemon thread; ``None`` if it fails or outlives the budget."""
        remaining = self.deadline - time.monotonic()
        if remaining <= 0.05:
            return None
        import contextlib
        import threading

        result: list[Any] = []

        def run() -> None:
            with contextlib.suppress(BaseException):
                result.append(work(remaining))

        worker = threading.Thread(target=run, name="complete-fetch", daemon=True)
        worker.start()
        worker.join(remaining)
        if worker.is_alive():
            self.abandoned = True
            return None
        return result[0] if result else None

    def _cached(self, kind: str, key: str, work: Callable[[float], list[str] | None]
                ) -> list[str]:
        found = read_entry(kind, key)
        if found is not None and found[1] < TTL:
            return found[0]
        fresh = self._within_budget(work)
        if fresh is not None:
            write_entry(kind, key, fresh)
            return fresh
        # Builds never change once seen and tags rarely do: stale beats nothing.
        return found[0] if found is not None else []

    def _fetcher(self) -> Any:
        if self.fetcher is None:
            self.fetcher = Fetcher(self.settings)
        return self.fetcher

    def tags(self, host: str, repository: str) -> list[str]:
        def work(timeout: float) -> list[str]:
            return list(self._fetcher().tags(host, repository, timeout))

        return self._cached("tags", f"{host}/{repository}", work)

    def builds(self, host: str, repository: str,
               tag: str) -> list[tuple[int, int | None, str]]:
        """``(seconds, microseconds, digest)`` newest first, in ``list``'s order (exact time,
        then digest) so that the position is the ``--index``; microseconds ``None`` when
        an older version stored whole seconds."""
        def work(timeout: float) -> list[str]:
            found = self._fetcher().builds(host, repository, tag, timeout)
            return [f"{stamp} {digest}" for stamp, digest in found]

        builds = []
        for line in self._cached("builds", f"{host}/{repository}:{tag}", work):
            stamp, _, digest = line.partition(" ")
            when = read_stamp(stamp)
            if when is not None and digest.startswith("sha256:"):
                builds.append((*when, digest))
        builds.sort(key=lambda build: (build[0], build[1] or 0, build[2]), reverse=True)
        return builds

    def platforms(self, host: str, repository: str, tag: str) -> list[str]:
        """The platforms the tag's newest build has (``linux/amd64``), cached like builds;
        lines that are not a plain ``os/arch[/variant]`` are not offered."""
        def work(timeout: float) -> list[str]:
            return list(self._fetcher().platforms(host, repository, tag, timeout))

        return [line for line in self._cached("platforms", f"{host}/{repository}:{tag}", work)
                if _plain_platform(line)]

    def images(self) -> Candidates:
        """Configured images, then recent references, then local images worth a history."""
        settings = self.settings
        configured = settings.images
        found = read_entry("lists", "recent")
        recent = found[0] if found else []
        local_entry = read_entry("lists", "local")
        if self.background:
            _maybe_refresh_local(time.time())
        capable = {"cgr.dev", settings.registry}
        for text in (*configured, *recent):
            first, slash, _ = text.partition("/")
            if slash and is_host(first):
                capable.add(first)
        short = f"{settings.registry}/{settings.org}/"
        local = []
        for image in local_entry[0] if local_entry else []:
            first, slash, _ = image.partition("/")
            if not (slash and is_host(first)):
                continue
            if first in capable or first.endswith(".cgr.dev"):
                local.append(image[len(short):] if image.startswith(short) else image)
        out: Candidates = []
        seen: set[str] = set()
        for items, description in ((configured, "configured image"), (recent, "recently used"),
                                   (local, "local image")):
            for item in items:
                if item not in seen:
                    seen.add(item)
                    out.append((item, description))
        return out


if __name__ == "__main__":  # the background refresher, for manual use
    refresh_local_images()
