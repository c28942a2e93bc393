"""The registry API the commands call: tag history, manifest digests, tags.

Why it looks like this:
- ``RegistryClient`` is the one client list, pull, pin, completion and bisect share; it is
  built on ``transport`` (HTTP, retries, TLS trust, proxies, size cap, deadline) and ``auth``
  (the 401 challenge, tokens, the realm probe). What stays here is what a registry *means*:
  the history API and its 1000-record pages, manifest HEADs, ``tags/list`` paging, and the
  Chainguard-specific words of a refusal.
- A history with more than one page is read in parallel windows. The window boundaries of the
  last full read are saved (a plan, never data), and connections are opened ahead for the
  windows while the token dance is under way, once the registry has answered a first request.
- A ``Link`` to the next page of tags is followed only on the registry's own scheme, host and
  port: the token goes with every page.
- Registry answers are untrusted: validated (``history.parse_page``), never echoed raw.
``requests`` is imported when the first request is made, not when this module is imported.
"""

from __future__ import annotations

import dataclasses
import re
import threading
import time
from collections.abc import Callable
from datetime import datetime
from urllib.parse import quote, urljoin, urlsplit

from . import cache, failures, history, log, notfound, workers
from .auth import Authenticator, Challenge, hint_for, parse_challenge
from .credentials import ANONYMOUS, Credential
from .errors import (
    AuthError,
    NoHistoryAPI,
    NotFoundError,
    RegistryError,
    RepositoryNotFound,
    sanitize,
)
from .history import Build, Window
from .reference import DIGEST_RE, Reference, host_name, is_loopback
from .timespec import format_query_time, parse_timestamp, utcnow
from .transport import (
    ANSWER_TIMEOUTS,
    CONNECT_TIMEOUT,
    KEEP,
    MAX_ATTEMPTS,
    MAX_BODY,
    MAX_PARALLEL,
    MAX_TIMEOUTS,
    READ_TIMEOUT,
    Answer,
    Body,
    RetryPolicy,
    Transport,
    parse_retry_after,
)

# Names callers and tests have imported from here since before the split.
__all__ = [
    "ANSWER_TIMEOUTS", "MAX_ATTEMPTS", "MAX_BODY", "MAX_TIMEOUTS", "Answer", "Challenge",
    "RegistryClient", "hint_for", "parse_challenge", "parse_retry_after",
]

# A registry whose Link headers never end (or loop) is cut off after this many tag pages.
MAX_TAG_PAGES = 100
# Connections opened ahead when the size of a history is unknown (2000-3000 builds need 3).
PREWARM_UNKNOWN = 2
# The longest a burst of parallel reads waits for warm-ups under way (``await_prewarm``).
PREWARM_WAIT = 0.5
PUBLIC_CATALOG_TAGS = ("latest", "latest-dev")
# Tags read for a "did you mean" hint: three pages; a hint is not worth more requests.
TAGS_FOR_HINTS = 3000
MANIFEST_TYPES = ", ".join(
    [
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    ]
)
_DEFAULT_PORTS = {"http": 80, "https": 443}


class RegistryClient:
    """Talks to one registry host for list, pull, pin, completion and bisect."""

    def __init__(
        self,
        registry: str,
        *,
        insecure: bool = False,
        credential: Credential | Callable[[], Credential] | None = None,
        connect_timeout: float = CONNECT_TIMEOUT,
        read_timeout: float = READ_TIMEOUT,
        attempts: int = MAX_ATTEMPTS,
        use_disk_cache: bool = True,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.registry = registry
        self.plain_http = insecure or is_loopback(registry)
        self.base = f"{'http' if self.plain_http else 'https'}://{registry}"
        self._credential_source = credential
        self._credential: Credential | None = (
            credential if isinstance(credential, Credential) else None
        )
        self.timeout = (connect_timeout, read_timeout)
        self.attempts = max(1, attempts)
        self.use_disk_cache = use_disk_cache
        # Connections to open once the registry has answered (its certificate is trusted).
        self._warm = threading.Condition()
        self._answered = False
        self._prewarm_pending = 0
        self._pings_in_flight = 0
        self.transport = Transport(
            registry, self.base, timeout=self.timeout, sleep=sleep,
            policy=dataclasses.replace(RetryPolicy(), attempts=self.attempts),
            on_answer=self._registry_answered,
        )
        self.auth = Authenticator(
            registry, plain_http=self.plain_http, credential=lambda: self.credential,
            send=self.transport.send, use_disk_cache=use_disk_cache,
        )

    @property
    def credential(self) -> Credential:
        """Resolved on first use: a credential helper is a subprocess, not worth running early."""
        if self._credential is None:
            source = self._credential_source
            self._credential = source() if callable(source) else (source or ANONYMOUS)
        return self._credential

    def close(self) -> None:
        self.transport.close()

    def _authorized(
        self, method: str, path: str, repository: str, *, what: str,
        params: dict[str, str] | None = None, headers: dict[str, str] | None = None,
        body: Body = KEEP,
    ) -> Answer:
        """A request to this registry with the repository's token (see ``auth``)."""
        return self.auth.request(method, self.base + path, repository, what=what,
                                 params=params, headers=headers, body=body)

    def denied(self, reference: Reference, answer: Answer) -> AuthError:
        """The one-line refusal: what was tried, and what to do about it."""
        message = (
            f"access to {reference.tagged} denied (HTTP {answer.status}) with "
            f"{self.credential.source}; {hint_for(self.registry)}"
        )
        repository, tag = reference.repository, reference.tag_or_latest
        if (host_name(self.registry) == "cgr.dev" and repository.startswith("chainguard/")
                and tag not in PUBLIC_CATALOG_TAGS):
            message += (
                f". Only the tags {' and '.join(PUBLIC_CATALOG_TAGS)} of the public catalog "
                "are free; other tags need an entitlement to a Chainguard catalog"
            )
            near = notfound.nearest_tags(tag, PUBLIC_CATALOG_TAGS)
            if near:
                message += f" (did you mean {notfound.one_of(near)}?)"
        return AuthError(message)

    # --- API calls -----------------------------------------------------------------------

    def _history_path(self, reference: Reference) -> str:
        return (f"/v2/{reference.repository}/_chainguard/history/"
                f"{quote(reference.tag_or_latest, safe='')}")

    def history_page(self, reference: Reference, window: Window) -> list[Build]:
        """One request to the history API for ``window``."""
        params = {}
        if window.start is not None:
            params["start"] = format_query_time(window.start)
        if window.end is not None:
            params["end"] = format_query_time(window.end, round_up=True)
        answer = self._authorized("GET", self._history_path(reference), reference.repository,
                                  params=params or None, what="tag history")
        if answer.status == 200:
            return history.parse_page(answer.json("tag history", self.registry),
                                      self.registry, utcnow())
        if answer.status in (401, 403):
            raise self.denied(reference, answer)
        if answer.status == 404:
            raise self._missing(reference, answer)
        raise RegistryError(
            f"registry {self.registry} answered HTTP {answer.status} for the history of "
            f"{reference.tagged}"
        )

    def _missing(self, reference: Reference, answer: Answer) -> NotFoundError | NoHistoryAPI:
        """A 404 from the history API: a registry without the API, an unknown repository, or
        an unknown tag (with the nearest tags when the tags list can be read)."""
        try:
            exists = self._manifest_head(reference).status == 200
        except RegistryError:
            exists = False
        if exists:
            return NoHistoryAPI(
                f"registry {self.registry} has no tag history API (it serves {reference.tagged} "
                "but not its history); the history API is a Chainguard registry feature"
            )
        # The tags list decides (404: no such repository); unreadable, the error code does.
        tags: list[str] | None = None
        code = error_code(answer)
        try:
            tags = self.tags(reference.repository, limit=TAGS_FOR_HINTS)
        except RepositoryNotFound:
            code = "NAME_UNKNOWN"
        except RegistryError as error:
            log.debug(f"no tags list for a hint: {error}")
        return notfound.not_found(reference, code, tags)

    def _parallel(self, function: Callable[[Window], list[Build]],
                  windows: list[Window]) -> list[list[Build]]:
        if len(windows) > 1:  # one window takes the idle connection; more take the warm-ups
            self.await_prewarm()
        return workers.parallel(function, windows, MAX_PARALLEL, "history")

    def _prewarm(self, connections: int) -> None:
        """Open connections for the parallel windows while the token dance is under way.

        Each costs a ``GET /v2/`` (the ping every client, docker included, sends first); on a
        distant registry it saves a TCP and TLS handshake per window later. They start once
        the registry has answered a first request: a certificate that is not trusted, a
        proxy that refuses, a host that does not resolve then cost one connection, not three.
        """
        if connections <= 0:
            return
        with self._warm:
            if not self._answered:
                self._prewarm_pending = max(self._prewarm_pending, connections)
                return
        self._start_pings(connections)

    def _registry_answered(self) -> None:
        with self._warm:
            self._answered = True
            pending, self._prewarm_pending = self._prewarm_pending, 0
        self._start_pings(pending)

    def _start_pings(self, connections: int) -> None:
        if connections <= 0:
            return
        with self._warm:
            self._pings_in_flight += connections

        def ping() -> None:
            try:
                self.transport.open_spare_connection(self.base + "/v2/")
                log.debug("prewarm: one more connection open")
            except Exception as error:  # a failed ping only means no head start
                log.debug(f"prewarm: {type(error).__name__}: {sanitize(error, 120)}")
            finally:
                with self._warm:
                    self._pings_in_flight -= 1
                    self._warm.notify_all()

        for _ in range(connections):
            threading.Thread(target=ping, name="prewarm", daemon=True).start()

    def await_prewarm(self, at_most: float = PREWARM_WAIT) -> None:
        """Before a burst of parallel reads, let the warm-ups still under way finish.

        A read that finds no idle connection opens a new one: a second handshake for a
        connection whose ping is about to return, and more connections than the pool keeps
        (the extra ones are closed). A ping in flight is one request from done, a new
        connection a handshake and a request, so waiting is the faster road; ``at_most``
        bounds it for a registry whose ``/v2/`` is slow.
        """
        with self._warm:
            if self._prewarm_pending:  # asked for, but the registry has not answered yet
                return
            self._warm.wait_for(lambda: self._pings_in_flight == 0, timeout=at_most)

    def _plan_key(self, reference: Reference) -> str:
        return cache.key_name(self.registry, reference.repository, reference.tag_or_latest)

    def history(
        self, reference: Reference, *, since: datetime | None = None,
        until: datetime | None = None, last: int | None = None,
    ) -> list[Build]:
        """The tag's builds, newest first: all of them, a time window, or the newest ``last``."""
        window = Window(since, until)

        def page(part: Window) -> list[Build]:
            return self.history_page(reference, part)

        fetch = history.bounded(page)  # a registry that never stops sending is cut off

        now = utcnow()
        if last is not None:
            return history.read_newest(fetch, self._parallel, last, window, now)
        cuts = self._remembered_cuts(reference)
        if self.auth.tokens.get(reference.repository) is None:
            self._prewarm(min(len(cuts), MAX_PARALLEL - 1) if cuts else PREWARM_UNKNOWN)
        builds = history.read_all(fetch, self._parallel, window, now, cuts)
        if since is None and until is None and self.use_disk_cache:
            cache.write_json("plans", self._plan_key(reference),
                             [format_query_time(cut) for cut in history.boundaries(builds)])
        return builds

    def _remembered_cuts(self, reference: Reference) -> list[datetime]:
        """Window boundaries from the last full read of this tag (a plan, never data)."""
        if not self.use_disk_cache:
            return []
        stored = cache.read_json("plans", self._plan_key(reference))
        cuts = []
        for text in stored if isinstance(stored, list) else []:
            try:
                cuts.append(parse_timestamp(str(text)))
            except ValueError:
                return []
        return cuts[: MAX_PARALLEL * 8]

    def _manifest_head(self, reference: Reference) -> Answer:
        target = reference.digest or reference.tag_or_latest
        return self._authorized(
            "HEAD", f"/v2/{reference.repository}/manifests/{target}", reference.repository,
            headers={"Accept": MANIFEST_TYPES}, what="manifest",
        )

    def manifest_digest(self, reference: Reference) -> str | None:
        """The digest a tag points at now (a manifest HEAD), ``None`` when the tag is unknown."""
        answer = self._manifest_head(reference)
        if answer.status == 404:
            return None
        if answer.status in (401, 403):
            raise self.denied(reference, answer)
        if answer.status != 200:
            raise RegistryError(
                f"registry {self.registry} answered HTTP {answer.status} for the manifest of "
                f"{reference}"
            )
        digest = answer.header("docker-content-digest")
        if not DIGEST_RE.match(digest):
            raise RegistryError(
                f"registry {self.registry} sent no valid digest for {reference}"
            )
        return digest

    def tags(self, repository: str, limit: int = 1000) -> list[str]:
        """The repository's tags (``tags/list``), following ``Link`` pages up to ``limit``.

        A ``Link`` is resolved against the request URL (RFC 3986) and followed only on the
        registry's own scheme, host and port: the token goes with every page.
        """
        path = f"/v2/{repository}/tags/list"
        params: dict[str, str] | None = {"n": "1000"}
        found: list[str] = []
        seen: set[str] = set()
        while path and len(found) < limit and len(seen) < MAX_TAG_PAGES:
            seen.add(path)
            answer = self._authorized("GET", path, repository, params=params, what="tag list")
            if answer.status == 404:
                raise RepositoryNotFound(f"not found: the registry {self.registry} has no "
                                         f"repository {repository}")
            if answer.status != 200:
                raise RegistryError(
                    f"registry {self.registry} answered HTTP {answer.status} for the tags of "
                    f"{repository}"
                )
            body = answer.json("tag list", self.registry)
            tags = body.get("tags") if isinstance(body, dict) else None
            found.extend(t for t in (tags or []) if isinstance(t, str))
            link = re.match(r"\s*<([^>]*)>", answer.header("link"))
            path, params = (self._next_page(path, link.group(1)) if link else ""), None
            if path in seen:
                break
        return found[:limit]

    def _next_page(self, path: str, link: str) -> str:
        """The path (and query) of a ``Link`` target on this registry; anything else stops."""
        home = urlsplit(self.base)
        try:
            target = urlsplit(urljoin(self.base + path, link.strip()))
            same = (target.scheme == home.scheme and "@" not in target.netloc
                    and target.hostname == home.hostname
                    and (target.port or _DEFAULT_PORTS[target.scheme])
                    == (home.port or _DEFAULT_PORTS[home.scheme]))
        except (ValueError, KeyError):
            same, target = False, None
        if not same or target is None or not target.path.startswith("/"):
            where = (failures.target(target.geturl())[0] if target is not None and target.hostname
                     else "an invalid address")
            raise RegistryError(
                f"registry {self.registry} sent a link to the next page of tags on another "
                f"host ({sanitize(where)}); refusing to follow it"
            )
        return target.path + (f"?{target.query}" if target.query else "")


def error_code(answer: Answer) -> str:
    """The first ``errors[].code`` of a registry's error body (``NAME_UNKNOWN``), or ``""``."""
    try:
        body = answer.json("error", "")
        code = body["errors"][0]["code"]
    except (RegistryError, LookupError, TypeError):
        return ""
    return code if isinstance(code, str) else ""
