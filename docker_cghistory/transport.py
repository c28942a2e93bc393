"""HTTP to one registry: one session, bounded retries, a size cap and a deadline per answer.

Why it looks like this:
- One ``requests.Session`` keeps connections alive: paged reads skip TCP and TLS handshakes.
- TLS trust and proxies follow docker, not ``requests``: ``tls.ssl_context_for`` (certs.d, the
  system store, the user's CA variables) and ``proxy.select`` (HTTPS_PROXY, NO_PROXY as Go
  reads them) are applied by our own adapter (``httpadapter``), for every hop of a redirect.
- The retry policy is data (``RetryPolicy``): which statuses, how many attempts and timeouts,
  the backoff. ``failures.classify`` says what a failed attempt is worth; a failure no retry
  can fix (an untrusted certificate, a refused handshake, a proxy that refuses us) fails at
  once, and is given again to later requests to the same host without a connection.
- Answers are untrusted: the body is size-capped, and must arrive within a few read timeouts;
  a large body (a layer) is streamed to a ``Body.sink`` under its own cap instead of kept.
- ``requests`` strips the ``Authorization`` header when a redirect leaves the host.
``requests`` is imported when the first request is made, not when this module is imported.
"""

from __future__ import annotations

import contextlib
import json
import random
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from . import failures, log, proxy
from .errors import RegistryError, sanitize

if TYPE_CHECKING:
    import requests

USER_AGENT = "docker-cghistory"
CONNECT_TIMEOUT = 10.0
READ_TIMEOUT = 30.0
MAX_ATTEMPTS = 5
# A registry that lets a request time out twice is taken as down: more attempts would only
# multiply the wait (5 x 30 s) before the same error.
MAX_TIMEOUTS = 2
# How long the body of one answer may take, in read timeouts. Each read has its own timeout,
# so a server sending a byte every few seconds would otherwise hold a request for ever.
ANSWER_TIMEOUTS = 4
MAX_RETRY_AFTER = 30.0
MAX_BODY = 8 * 1024 * 1024
# A streamed body (an image layer) may take this long per MiB beyond the usual answer time,
# so a server that trickles bytes cannot hold a read for ever.
STREAM_SECONDS_PER_MIB = 10.0
RETRY_STATUSES = frozenset({429, 502, 503, 504})
# Attempts for failures that are seldom transient: DNS, a proxy that times out or resets.
FEW_ATTEMPTS = 2
# Parallel requests the session keeps connections for (history windows, pin's resolvers).
MAX_PARALLEL = 8


@dataclass(frozen=True)
class RetryPolicy:
    """When a request is tried again, and after how long.

    Data rather than branches in the loop, so a caller (completion's short budget) changes
    it with ``dataclasses.replace`` and a reader sees the whole policy in one place.
    """

    attempts: int = MAX_ATTEMPTS
    statuses: frozenset[int] = RETRY_STATUSES
    max_timeouts: int = MAX_TIMEOUTS
    few_attempts: int = FEW_ATTEMPTS  # DNS failures, proxies that time out or reset
    first_delay: float = 0.5
    max_delay: float = 8.0
    jitter: float = 0.1  # up to 10 % more, so parallel requests do not retry in step
    max_retry_after: float = MAX_RETRY_AFTER  # a longer Retry-After fails at once


@dataclass
class Answer:
    """What we keep of an HTTP response: status, headers, a size-capped body.

    ``value`` is what a ``Body.sink`` made of a streamed body (the body itself is not kept).
    """

    status: int
    headers: dict[str, str]
    body: bytes
    url: str
    value: Any = None

    def header(self, name: str) -> str:
        return self.headers.get(name.lower(), "")

    def json(self, what: str, registry: str) -> Any:
        """The body as JSON; anything else is named, never echoed."""
        try:
            return json.loads(self.body)
        except (ValueError, UnicodeDecodeError, RecursionError):
            kind = "an HTML page" if b"<html" in self.body[:512].lower() else "something"
            raise RegistryError(
                f"registry {registry} sent {kind} instead of JSON for the {what} "
                f"(HTTP {self.status})"
            ) from None


@dataclass(frozen=True)
class Body:
    """How to read a successful answer: kept whole (the default) or streamed to ``sink``.

    A layer can be hundreds of megabytes: ``sink`` reads its chunks as they arrive and
    returns what it made of them (``Answer.value``). A retry calls ``sink`` again from the
    first chunk, so it must start from scratch each time. ``limit`` caps the bytes read
    (``None``: ``MAX_BODY``).
    """

    limit: int | None = None
    sink: Callable[[Iterator[bytes]], Any] | None = None


KEEP = Body()


def parse_retry_after(value: str, now: float | None = None) -> float | None:
    """``Retry-After`` as seconds (it may be a number or an HTTP date)."""
    value = value.strip()
    if not value:
        return None
    if value.isdigit():
        return float(value)
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return max(0.0, moment.timestamp() - (now if now is not None else time.time()))


class _TooSlow(Exception):
    """The body of an answer did not arrive within ``ANSWER_TIMEOUTS`` read timeouts."""


class _Deadline:
    """Shuts a response's connection down when its time is up, ending a read in progress."""

    def __init__(self, response: requests.Response, seconds: float) -> None:
        self.fired = False
        raw = getattr(response, "raw", None)
        connection = getattr(raw, "connection", None) or getattr(raw, "_connection", None)
        self._socket = getattr(connection, "sock", None)
        self._timer: threading.Timer | None = None
        if self._socket is not None:
            self._timer = threading.Timer(seconds, self._fire)
            self._timer.daemon = True
            self._timer.start()

    def _fire(self) -> None:
        import socket

        self.fired = True
        with contextlib.suppress(OSError):
            self._socket.shutdown(socket.SHUT_RDWR)

    def cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()


def _no_auth(request: requests.PreparedRequest) -> requests.PreparedRequest:
    """A session-wide auth that adds nothing: it keeps requests from reading ~/.netrc."""
    return request


class Transport:
    """Sends requests for one registry (and the token and redirect hosts it names).

    ``registry`` names the registry in messages; ``on_answer`` is called when the registry
    itself (a URL under ``base``) has answered, so connections opened ahead (prewarming) never
    meet a certificate or proxy failure the first request would have met. It may be called
    more than once by racing threads and must not mind.
    """

    def __init__(
        self, registry: str, base: str, *, timeout: tuple[float, float],
        policy: RetryPolicy, sleep: Callable[[float], None] = time.sleep,
        on_answer: Callable[[], None] | None = None,
    ) -> None:
        self.registry = registry
        self.base = base
        self.timeout = timeout
        self.policy = policy
        self._sleep = sleep
        self._on_answer = on_answer
        self._session: requests.Session | None = None
        self._lock = threading.Lock()
        # host[:port] → the one-line failure no retry can fix, given again without a request
        # to threads that were waiting for the first answer.
        self._fatal: dict[str, str] = {}

    def session(self) -> requests.Session:
        """The one session, created on first use (this is where ``requests`` is imported)."""
        with self._lock:
            if self._session is None:
                import requests

                session = requests.Session()
                from .httpadapter import DockerAdapter

                adapter = DockerAdapter(pool_connections=4, pool_maxsize=MAX_PARALLEL * 2)
                session.mount("http://", adapter)
                session.mount("https://", adapter)
                session.headers["User-Agent"] = USER_AGENT
                # requests must not read the environment: REQUESTS_CA_BUNDLE would replace the
                # certs.d trust, its NO_PROXY matching has gaps (the adapter applies docker's
                # rules), and ~/.netrc would put Basic credentials in place of every token.
                session.trust_env = False
                session.auth = _no_auth
                self._session = session
            return self._session

    def open_spare_connection(self, url: str) -> None:
        """Open one more connection to ``url``'s host ahead of need, with a ``GET url`` on it.

        For parallel reads about to start: each then finds a connection that has done its TCP
        and TLS handshakes. A failure means only that there is no head start.
        """
        import requests

        session = self.session()
        adapter = session.get_adapter(url)
        if not hasattr(adapter, "open_spare"):  # another adapter (a test's): a plain request
            session.get(url, timeout=self.timeout).close()
            return
        adapter.open_spare(session.prepare_request(requests.Request("GET", url)))

    def close(self) -> None:
        if self._session is not None:
            self._session.close()

    def send(
        self, method: str, url: str, *, headers: dict[str, str] | None = None,
        params: dict[str, str] | None = None, data: dict[str, str] | None = None, what: str,
        body: Body = KEEP,
    ) -> Answer:
        """One logical request, retried as ``policy`` says; transport failures become one line.

        Every retry, for a status or a failure, waits through the one backoff at the end of
        the loop: the delay doubles up to ``max_delay``, or is the registry's Retry-After.
        """
        policy = self.policy
        shown = urlsplit(url).path
        route = proxy.select(url)
        origin = failures.target(url)[0]
        if origin in self._fatal:
            raise RegistryError(self._fatal[origin])
        delay, timeouts, failure = policy.first_delay, 0, ""
        for attempt in range(1, policy.attempts + 1):
            started = time.monotonic()
            outcome = self._attempt(method, url, headers, params, data, route, what, body)
            if isinstance(outcome, Answer):
                log.debug(f"{method} {shown} {params or ''} -> {outcome.status} "
                          f"({len(outcome.body)} bytes, {time.monotonic() - started:.3f}s)")
                if self._on_answer is not None and url.startswith(self.base):
                    notify, self._on_answer = self._on_answer, None
                    if notify is not None:  # None: a racing thread took it first
                        notify()
                if outcome.status not in policy.statuses or attempt == policy.attempts:
                    return outcome
                wait = parse_retry_after(outcome.header("retry-after"))
                if wait is not None and wait > policy.max_retry_after:
                    raise RegistryError(
                        f"registry {self.registry} is throttling ({outcome.status}) and asks "
                        f"to retry after {wait:.0f}s; try again later"
                    )
                failure = f"HTTP {outcome.status}"
                delay = wait if wait is not None else delay
                log.debug(f"{method} {shown}: {failure}, retry {attempt} in {delay:.2f}s")
            else:
                failure = outcome.words
                timeouts += outcome.timed_out
                worth = min(outcome.attempts, policy.attempts)
                log.debug(f"{method} {shown}: {failure} (attempt {attempt}/{worth})")
                if outcome.final is not None and attempt >= worth:
                    self._fatal[origin] = outcome.final
                    raise RegistryError(outcome.final)
                if attempt >= worth or timeouts >= policy.max_timeouts:
                    break
            self._sleep(delay * (1 + random.random() * policy.jitter))
            delay = min(delay * 2, policy.max_delay)
        raise RegistryError(
            f"registry {self.registry} unreachable for the {what}: {failure} "
            f"({attempt} attempt{'s' if attempt != 1 else ''})"
        )

    def _attempt(
        self, method: str, url: str, headers: dict[str, str] | None,
        params: dict[str, str] | None, data: dict[str, str] | None,
        route: proxy.Proxy | None, what: str, body: Body = KEEP,
    ) -> Answer | failures.Failure:
        """One attempt: the answer, a judged failure to retry, or a ``RegistryError`` now."""
        import requests

        try:
            response = self.session().request(
                method, url, headers=headers, params=params, data=data,
                timeout=self.timeout, stream=True, allow_redirects=True,
            )
            try:
                return self._read(response, body)
            finally:
                response.close()
        except _TooSlow:
            return failures.Failure(
                f"timed out: the answer took more than {self.timeout[1] * ANSWER_TIMEOUTS:g}s",
                self.policy.attempts, None, timed_out=True)
        except UnicodeError:  # requests decoding a hostile header (a redirect's Location)
            raise RegistryError(
                f"registry {self.registry} sent a malformed answer for the {what}"
            ) from None
        except requests.exceptions.TooManyRedirects:
            raise RegistryError(
                f"registry {self.registry} redirects the {what} in a loop"
            ) from None
        except requests.exceptions.InvalidProxyURL:
            raise RegistryError(
                f"invalid proxy address {route.shown if route else ''}"
                f"{f' (from {route.source})' if route else ''}"
            ) from None
        except requests.exceptions.InvalidURL:
            raise RegistryError(f"invalid registry address {sanitize(self.registry)}") from None
        except requests.exceptions.RequestException as error:
            return failures.classify(error, url, route, what, registry=self.registry,
                                     timeout=self.timeout, policy=self.policy)

    def _read(self, response: requests.Response, body: Body = KEEP) -> Answer:
        """The body, refused past its limit and cut off when it takes too long.

        A kept body has ``ANSWER_TIMEOUTS`` read timeouts; a streamed one also
        ``STREAM_SECONDS_PER_MIB`` per MiB of its limit. Only a 200 is streamed: an error
        page is kept (small) so the caller can name the problem.
        """
        limit = body.limit if body.limit is not None else MAX_BODY
        declared = response.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > limit:
            raise RegistryError(
                f"registry {self.registry} sent a body of {int(declared)} bytes; "
                f"refusing more than {limit}"
            )
        streamed = body.sink is not None and response.status_code == 200
        seconds = self.timeout[1] * ANSWER_TIMEOUTS
        if streamed:
            seconds += STREAM_SECONDS_PER_MIB * limit / (1024 * 1024)
        chunks: list[bytes] = []
        value: Any = None
        deadline = _Deadline(response, seconds)

        def capped() -> Iterator[bytes]:
            size = 0
            for chunk in response.iter_content(65536):
                size += len(chunk)
                if size > limit:
                    raise RegistryError(
                        f"registry {self.registry} sent more than {limit} bytes; refusing it"
                    )
                yield chunk

        try:
            if streamed:
                value = body.sink(capped())  # type: ignore[misc]
            else:
                chunks.extend(capped())
        except Exception:
            if deadline.fired:
                raise _TooSlow from None
            raise
        finally:
            deadline.cancel()
        headers = {name.lower(): text for name, text in response.headers.items()}
        return Answer(response.status_code, headers, b"".join(chunks), response.url, value)
