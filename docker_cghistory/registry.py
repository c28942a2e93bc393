"""The registry adapter: one HTTP session, the token dance, and the calls the commands need.

Why it looks like this:
- The 401 challenge decides where tokens come from (realm, service, scope); nothing is
  hard-coded. The realm learned from a challenge is remembered on disk per registry, and tokens
  per (registry, repository, credential), so a second run goes straight to the data.
- One ``requests.Session`` keeps connections alive: paged reads skip TCP and TLS handshakes.
- Retries are bounded (429/502/503/504, resets, timeouts) and honour ``Retry-After``.
- Registry answers are untrusted: size-capped, validated, never echoed raw.
- Tokens go only to the registry host they were issued for; ``requests`` strips the
  ``Authorization`` header when a redirect leaves the host, and a ``Link`` to the next page of
  tags is followed only on the registry's own scheme, host and port.
- TLS trust and proxies follow docker, not ``requests``: ``tls.ssl_context_for`` (certs.d, the
  system store, the user's CA variables) and ``proxy.select`` (HTTPS_PROXY, NO_PROXY as Go
  reads them) are applied by our own transport adapter, for every hop of a redirect too.
- Failures that a retry cannot fix fail at once: an untrusted certificate, a TLS handshake
  refused, a proxy that refuses us; DNS failures get one retry.
``requests`` is imported when the first request is made, not when this module is imported.
"""

from __future__ import annotations

import base64
import contextlib
import json
import random
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urljoin, urlsplit

from . import cache, history, log, proxy, tls
from .credentials import ANONYMOUS, Credential
from .errors import AuthError, NotFoundError, RegistryError, sanitize
from .history import Build, Window
from .reference import DIGEST_RE, Reference, host_name, is_loopback
from .timespec import format_query_time, parse_timestamp, utcnow

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
RETRY_STATUSES = frozenset({429, 502, 503, 504})
TOKEN_MARGIN = 30.0
DEFAULT_TOKEN_LIFETIME = 60.0
MAX_PARALLEL = 8
# A registry whose Link headers never end (or loop) is cut off after this many tag pages.
MAX_TAG_PAGES = 100
# Attempts for failures that are seldom transient: DNS, a proxy that times out or resets.
FEW_ATTEMPTS = 2
# Connections opened ahead when the size of a history is unknown (2000-3000 builds need 3).
PREWARM_UNKNOWN = 2
PUBLIC_CATALOG_TAGS = ("latest", "latest-dev")
MANIFEST_TYPES = ", ".join(
    [
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    ]
)
_DEFAULT_PORTS = {"http": 80, "https": 443}
_CHALLENGE_PARAM = re.compile(r'(\w+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]+))')


@dataclass(frozen=True)
class Challenge:
    """A ``WWW-Authenticate`` header, parsed."""

    scheme: str
    realm: str = ""
    service: str = ""


@dataclass
class Answer:
    """What we keep of an HTTP response: status, headers, a size-capped body."""

    status: int
    headers: dict[str, str]
    body: bytes
    url: str

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


def parse_challenge(header: str) -> Challenge | None:
    """``Bearer realm="…",service="…"`` → ``Challenge``; ``None`` when there is no header."""
    header = header.strip()
    if not header:
        return None
    scheme, _, rest = header.partition(" ")
    params = {
        match.group(1).lower(): (match.group(2) if match.group(2) is not None else match.group(3))
        for match in _CHALLENGE_PARAM.finditer(rest)
    }
    return Challenge(scheme.lower(), params.get("realm", ""), params.get("service", ""))


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


def _causes(error: BaseException) -> list[BaseException]:
    """``error`` and all it wraps, breadth first: requests → urllib3 → ssl/socket errors.

    Why: the words of the exceptions hold URLs, not the cause; the types further down say
    whether a retry can help (a refused certificate cannot, a reset may).
    """
    found: list[BaseException] = []
    queue = [error]
    while queue and len(found) < 32:
        current = queue.pop(0)
        if any(current is seen for seen in found):
            continue
        found.append(current)
        wrapped = (current.__cause__, current.__context__, getattr(current, "reason", None),
                   *current.args)
        queue.extend(item for item in wrapped if isinstance(item, BaseException))
    return found


def _has(causes: list[BaseException], *names: str) -> bool:
    """Whether a cause is of a class named ``names`` (urllib3 1.x lacks some of them)."""
    return any(klass.__name__ in names for cause in causes for klass in type(cause).__mro__)


def _connection_failure(causes: list[BaseException]) -> str:
    """What went wrong with a connection, in words (the exception text holds URLs, not this)."""
    text = " ".join(repr(cause) for cause in causes)
    if _has(causes, "gaierror", "NameResolutionError") or "Name or service not known" in text:
        return "cannot resolve the host name (DNS)"
    if _has(causes, "ConnectionRefusedError") or "Connection refused" in text:
        return "connection refused"
    return "connection failed or was reset"


# OpenSSL's X509_V_ERR_* codes a user can act on, in words.
_VERIFY_REASONS = {
    2: "unknown authority", 18: "unknown authority", 19: "unknown authority",
    20: "unknown authority", 21: "unknown authority", 9: "not yet valid", 10: "expired",
    23: "revoked",
}
_WRONG_NAME = (62, 64)  # hostname, IP address mismatch


def _verify_reason(causes: list[BaseException], host: str) -> str | None:
    """Why a certificate was refused, or ``None`` when no certificate check failed."""
    import ssl

    for cause in causes:
        if isinstance(cause, ssl.SSLCertVerificationError):
            code = getattr(cause, "verify_code", None)
            if code in _WRONG_NAME:
                return f"wrong name: the certificate is not valid for {sanitize(host)}"
            if code in _VERIFY_REASONS:
                return _VERIFY_REASONS[code]
            message = getattr(cause, "verify_message", None) or getattr(cause, "reason", None)
            return sanitize(message or "verification failed", limit=80)
        if type(cause).__name__ == "CertificateError":  # urllib3's own host name check
            return f"wrong name: the certificate is not valid for {sanitize(host)}"
    return None


def _tls_reason(causes: list[BaseException], target: str) -> str | None:
    """A TLS failure other than a refused certificate, in words; ``None`` for none or an EOF.

    An EOF or a zero-return in the middle of a handshake is a cut connection: retried.
    """
    import ssl

    for cause in causes:
        if not isinstance(cause, ssl.SSLError):
            continue
        if isinstance(cause, (ssl.SSLEOFError, ssl.SSLZeroReturnError)):
            return None
        reason = str(getattr(cause, "reason", None) or "")
        if "EOF" in reason or "EOF occurred" in str(cause):
            return None
        if "CERTIFICATE_REQUIRED" in reason or "PEER_DID_NOT_RETURN" in reason:
            return _needs_client_certificate(target)
        if reason in ("WRONG_VERSION_NUMBER", "HTTP_REQUEST", "PACKET_LENGTH_TOO_LONG",
                      "RECORD_LAYER_FAILURE"):
            return "the server does not speak TLS on this port"
        if "PROTOCOL_VERSION" in reason or reason == "UNSUPPORTED_PROTOCOL":
            return "no TLS version in common"
        return sanitize(reason.lower().replace("_", " ") or "unknown error", limit=80)
    return None


def _needs_client_certificate(target: str) -> str:
    return (f"the server requires a client certificate; put it in "
            f"{tls.SYSTEM_CERTS_D}/{sanitize(target)}/client.cert and client.key")


def _host_with_port(host: str, port: int | None) -> str:
    """``host[:port]`` as a URL writes it (IPv6 in brackets): the certs.d folder name."""
    host = f"[{host}]" if ":" in host else host
    return host if port is None else f"{host}:{port}"


def _target(url: str) -> tuple[str, str]:
    """(``host[:port]``, host) of ``url``, without user-info."""
    try:
        parts = urlsplit(url)
        host, port = parts.hostname or "", parts.port
    except ValueError:
        return "(invalid address)", ""
    return _host_with_port(host, port), host


_TRANSPORT: type | None = None


def _transport(**options: Any) -> Any:
    """Our ``HTTPAdapter``: docker's TLS trust and proxy rules on every request and redirect.

    Defined on first use because ``requests`` is imported lazily.
    """
    global _TRANSPORT
    if _TRANSPORT is None:
        from requests.adapters import HTTPAdapter

        class DockerTransport(HTTPAdapter):
            def send(self, request: Any, stream: bool = False, timeout: Any = None,
                     verify: Any = True, cert: Any = None, proxies: Any = None) -> Any:
                # Chosen here, per hop, so a redirect to another host gets its own decision.
                route = proxy.select(request.url or "")
                scheme = urlsplit(request.url or "").scheme.lower()
                return super().send(request, stream=stream, timeout=timeout, verify=True,
                                    cert=None, proxies={scheme: route.url} if route else {})

            def build_connection_pool_key_attributes(
                self, request: Any, verify: Any, cert: Any = None,
            ) -> tuple[dict[str, Any], dict[str, Any]]:
                host_params, pool_kwargs = super().build_connection_pool_key_attributes(
                    request, True, None)
                if host_params.get("scheme") == "https":
                    # One pool per host and context; no ca_certs, which urllib3 would load
                    # into the shared context on every connection.
                    name = _host_with_port(host_params["host"], host_params.get("port"))
                    pool_kwargs = {"cert_reqs": "CERT_REQUIRED",
                                   "ssl_context": tls.ssl_context_for(name)}
                return host_params, pool_kwargs

            def cert_verify(self, conn: Any, url: str, verify: Any, cert: Any) -> None:
                # requests points every pool at certifi (verify=True), which would put
                # certifi back into a context built to leave it out (REQUESTS_CA_BUNDLE...).
                if url.lower().startswith("https"):
                    conn.cert_reqs = "CERT_REQUIRED"
                    conn.ca_certs = None
                    conn.ca_cert_dir = None

            def proxy_manager_for(self, proxy_url: str, **proxy_kwargs: Any) -> Any:
                if proxy_url not in self.proxy_manager and proxy_url.lower().startswith(
                        "https://"):
                    name = proxy.Proxy(proxy_url, "").host_with_port
                    proxy_kwargs["proxy_ssl_context"] = tls.ssl_context_for(name)
                return super().proxy_manager_for(proxy_url, **proxy_kwargs)

        _TRANSPORT = DockerTransport
    return _TRANSPORT(**options)


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


def hint_for(registry: str) -> str:
    if host_name(registry) == "cgr.dev" or registry.endswith(".cgr.dev"):
        return "run 'chainctl auth configure-docker' (or 'docker login cgr.dev' with a pull token)"
    return f"run 'docker login {registry}'"


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
        self._sleep = sleep
        self._session: requests.Session | None = None
        self._lock = threading.Lock()
        self._probe = threading.Lock()
        self._tokens: dict[str, str] = {}
        self._challenge: Challenge | None = None
        # Connections to open once the registry has answered (its certificate is trusted).
        self._warm = threading.Lock()
        self._answered = False
        self._prewarm_pending = 0
        # host[:port] → the one-line failure no retry can fix, given again without a request
        # to threads that were waiting for the first answer.
        self._fatal: dict[str, str] = {}

    # --- plumbing ------------------------------------------------------------------------

    @property
    def credential(self) -> Credential:
        """Resolved on first use: a credential helper is a subprocess, not worth running early."""
        if self._credential is None:
            source = self._credential_source
            self._credential = source() if callable(source) else (source or ANONYMOUS)
        return self._credential

    def _http(self) -> requests.Session:
        with self._lock:
            if self._session is None:
                import requests

                session = requests.Session()
                adapter = _transport(pool_connections=4, pool_maxsize=MAX_PARALLEL * 2)
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

    def close(self) -> None:
        if self._session is not None:
            self._session.close()

    def _send(
        self,
        method: str,
        url: str,
        *,
        headers: dict[str, str] | None = None,
        params: dict[str, str] | None = None,
        data: dict[str, str] | None = None,
        what: str,
    ) -> Answer:
        """One logical request with bounded retries; transport failures become one line.

        Failures a retry cannot fix (an untrusted certificate, a refused handshake, a proxy
        that refuses us) fail at once; DNS failures get one retry; the rest the full count.
        """
        import requests

        session = self._http()
        shown = urlsplit(url).path
        route = proxy.select(url)
        origin = _target(url)[0]
        if origin in self._fatal:
            raise RegistryError(self._fatal[origin])
        delay = 0.5
        timeouts = 0
        for attempt in range(1, self.attempts + 1):
            started = time.monotonic()
            final: str | None = None
            limit = self.attempts
            try:
                response = session.request(
                    method, url, headers=headers, params=params, data=data,
                    timeout=self.timeout, stream=True, allow_redirects=True,
                )
                try:
                    answer = self._read(response)
                finally:
                    response.close()
            except _TooSlow:
                failure = (f"timed out: the answer took more than "
                           f"{self.timeout[1] * ANSWER_TIMEOUTS:g}s")
                timeouts += 1
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
                failure, limit, final = self._transport_problem(error, url, route, what)
                if isinstance(error, requests.exceptions.Timeout) and final is None:
                    timeouts += 1
            else:
                log.debug(
                    f"{method} {shown} {params or ''} -> {answer.status} "
                    f"({len(answer.body)} bytes, {time.monotonic() - started:.3f}s)"
                )
                if not self._answered and url.startswith(self.base):
                    self._registry_answered()
                if answer.status not in RETRY_STATUSES or attempt == self.attempts:
                    return answer
                wait = parse_retry_after(answer.header("retry-after"))
                if wait is not None and wait > MAX_RETRY_AFTER:
                    raise RegistryError(
                        f"registry {self.registry} is throttling ({answer.status}) and asks to "
                        f"retry after {wait:.0f}s; try again later"
                    )
                failure = f"HTTP {answer.status}"
                delay = wait if wait is not None else delay
                log.debug(f"{method} {shown}: {failure}, retry {attempt} in {delay:.2f}s")
                self._sleep(delay * (1 + random.random() * 0.1))
                delay = min(delay * 2, 8.0)
                continue
            log.debug(f"{method} {shown}: {failure} "
                      f"(attempt {attempt}/{min(limit, self.attempts)})")
            if final is not None and (attempt >= limit or attempt == self.attempts):
                self._fatal[origin] = final
                raise RegistryError(final)
            if attempt == self.attempts or timeouts >= MAX_TIMEOUTS or attempt >= limit:
                break
            self._sleep(delay * (1 + random.random() * 0.1))
            delay = min(delay * 2, 8.0)
        raise RegistryError(
            f"registry {self.registry} unreachable for the {what}: {failure} "
            f"({attempt} attempt{'s' if attempt != 1 else ''})"
        )

    def _transport_problem(
        self, error: BaseException, url: str, route: proxy.Proxy | None, what: str,
    ) -> tuple[str, int, str | None]:
        """(the failure in words, the attempts worth making, a final one-line message or None).

        With a final message the request fails with it once the attempts are spent; without,
        the generic "unreachable" line follows the normal retries.
        """
        import requests

        request = getattr(error, "request", None)
        target, host = _target(getattr(request, "url", None) or url)
        causes = _causes(error)
        connecting = _has(causes, "NewConnectionError", "ConnectTimeoutError",
                          "ConnectionRefusedError") or isinstance(
            error, requests.exceptions.ConnectTimeout)
        tunnel = any("Tunnel connection failed" in str(cause) for cause in causes)
        if route is not None and (
                isinstance(error, (requests.exceptions.ProxyError,
                                   requests.exceptions.InvalidSchema))
                or connecting or tunnel):
            # With a proxy we only ever connect to the proxy: a connect failure is its own,
            # and so is a refused CONNECT.
            return self._proxy_problem(error, causes, route, target)
        why = _verify_reason(causes, host)
        if why is not None:
            who = (f"registry {self.registry}" if target == self.registry
                   else f"registry {self.registry}: the host {target}")
            return "certificate not trusted", 1, (
                f"{who}: certificate not trusted ({why}); to trust a private CA, put it in "
                f"{tls.certs_d_hint(target)}"
            )
        tls_reason = _tls_reason(causes, target)
        if (tls_reason is not None or _has(causes, "SSLEOFError", "SSLZeroReturnError",
                                           "ConnectionResetError", "RemoteDisconnected")) and (
                tls.missing_client_certificate(host, target)):
            # The server asked for a client certificate and certs.d has none: whatever the
            # words (a TLS 1.2 "handshake failure", a TLS 1.3 connection cut), that is why.
            tls_reason = _needs_client_certificate(target)
        if tls_reason is not None:
            return "TLS handshake failed", 1, f"TLS handshake with {target} failed ({tls_reason})"
        via = f" (via proxy {route.shown})" if route is not None else ""
        if isinstance(error, requests.exceptions.Timeout):
            return f"timed out after {self.timeout[1]:g}s{via}", self.attempts, None
        failure = _connection_failure(causes)
        if failure.startswith("cannot resolve"):
            if host == host_name(self.registry).strip("[]"):
                final = f"cannot resolve registry host {sanitize(host)} (DNS)"
            else:
                final = (f"cannot resolve host {sanitize(host)} (DNS) for the {what} of "
                         f"registry {self.registry}")
            return failure, FEW_ATTEMPTS, final
        if isinstance(error, (requests.exceptions.ConnectionError,
                              requests.exceptions.ChunkedEncodingError)) or failure != (
                "connection failed or was reset"):
            return failure + via, self.attempts, None
        return f"request failed ({type(error).__name__}){via}", self.attempts, None

    def _proxy_problem(
        self, error: BaseException, causes: list[BaseException], route: proxy.Proxy,
        target: str,
    ) -> tuple[str, int, str | None]:
        """A failure at the proxy: named by the proxy (never its user-info), not the registry."""
        import requests

        shown, source = route.shown, route.source
        proxy_host = urlsplit(route.url).hostname or ""
        why = _verify_reason(causes, proxy_host)
        if why is not None:
            return "proxy certificate not trusted", 1, (
                f"proxy {shown}: certificate not trusted ({why}); to trust a private CA, put "
                f"it in {tls.certs_d_hint(route.host_with_port)} (from {source})"
            )
        if isinstance(error, requests.exceptions.InvalidSchema):
            return "unsupported proxy", 1, (
                f"proxy {shown}: unsupported proxy scheme (from {source})")
        if _has(causes, "gaierror", "NameResolutionError"):
            return "proxy DNS", FEW_ATTEMPTS, (
                f"cannot resolve proxy host {sanitize(proxy_host)} (DNS) (from {source})")
        status = re.search(r"Tunnel connection failed: (\d{3})",
                           " ".join(str(cause) for cause in causes))
        if status:
            code = int(status.group(1))
            if code == 407:
                return "proxy wants credentials", 1, (
                    f"proxy {shown} asks for credentials (HTTP 407) to reach {target} "
                    f"(from {source})")
            return f"proxy answered HTTP {code}", FEW_ATTEMPTS if code >= 500 else 1, (
                f"proxy {shown} refused to reach {target} (HTTP {code}) (from {source})")
        if _has(causes, "ConnectionRefusedError") or "Connection refused" in repr(causes):
            return "proxy refused", 1, (
                f"proxy {shown} refused the connection to {target} (from {source})")
        if _has(causes, "TimeoutError", "timeout", "ConnectTimeoutError") or isinstance(
                error, requests.exceptions.Timeout):
            return "proxy timed out", FEW_ATTEMPTS, (
                f"proxy {shown} did not answer within {self.timeout[0]:g}s for {target} "
                f"(from {source})")
        tls_reason = _tls_reason(causes, route.host_with_port)
        if tls_reason is not None:
            return "proxy TLS handshake failed", 1, (
                f"TLS handshake with proxy {shown} failed ({tls_reason}) (from {source})")
        return "proxy connection failed", FEW_ATTEMPTS, (
            f"proxy {shown} failed for {target}: connection failed or was reset "
            f"(from {source})")

    def _read(self, response: requests.Response) -> Answer:
        declared = response.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > MAX_BODY:
            raise RegistryError(
                f"registry {self.registry} sent a body of {int(declared)} bytes; "
                f"refusing more than {MAX_BODY}"
            )
        chunks, size = [], 0
        deadline = _Deadline(response, self.timeout[1] * ANSWER_TIMEOUTS)
        try:
            for chunk in response.iter_content(65536):
                size += len(chunk)
                if size > MAX_BODY:
                    raise RegistryError(
                        f"registry {self.registry} sent more than {MAX_BODY} bytes; refusing it"
                    )
                chunks.append(chunk)
        except Exception:
            if deadline.fired:
                raise _TooSlow from None
            raise
        finally:
            deadline.cancel()
        headers = {key.lower(): value for key, value in response.headers.items()}
        return Answer(response.status_code, headers, b"".join(chunks), response.url)

    # --- tokens --------------------------------------------------------------------------

    def _token_file(self, repository: str) -> str:
        return cache.key_name(self.registry, repository, self.credential.fingerprint)

    def _cached_token(self, repository: str) -> str | None:
        if repository in self._tokens:
            return self._tokens[repository]
        if not self.use_disk_cache:
            return None
        entry = cache.read_json("tokens", self._token_file(repository))
        if not isinstance(entry, dict) or not isinstance(entry.get("sealed"), str):
            return None
        expires = entry.get("expires")
        if not isinstance(expires, (int, float)) or expires - TOKEN_MARGIN < time.time():
            return None
        token = cache.unseal(entry["sealed"], self.credential.key_material)
        if token:
            self._tokens[repository] = token
            log.debug(f"token for {repository} from the cache")
        return token

    def _store_token(self, repository: str, token: str, lifetime: float) -> None:
        self._tokens[repository] = token
        if self.use_disk_cache and lifetime > TOKEN_MARGIN:
            cache.write_json(
                "tokens",
                self._token_file(repository),
                {"expires": time.time() + lifetime,
                 "sealed": cache.seal(token, self.credential.key_material)},
            )

    def _drop_token(self, repository: str) -> None:
        self._tokens.pop(repository, None)
        if self.use_disk_cache:
            cache.delete("tokens", self._token_file(repository))

    def _known_challenge(self) -> Challenge | None:
        if self._challenge is None and self.use_disk_cache:
            entry = cache.read_signed_json("realms", cache.key_name(self.registry), max_age=86400)
            if isinstance(entry, dict) and entry.get("scheme") == "bearer":
                self._challenge = Challenge("bearer", str(entry.get("realm", "")),
                                            str(entry.get("service", "")))
        return self._challenge

    def _remember_challenge(self, challenge: Challenge) -> None:
        self._challenge = challenge
        if self.use_disk_cache:
            cache.write_signed_json("realms", cache.key_name(self.registry), challenge.__dict__)

    def _check_realm(self, realm: str) -> str:
        """Refuse a realm that would send credentials in clear, or to a disguised host.

        The decision is made on the parsed host name: ``http://localhost:1@evil.example/``
        has the host ``evil.example``; any realm with user-info (``@``) is refused outright.
        """
        try:
            parts = urlsplit(realm)
            parts.port  # noqa: B018 - raises ValueError on a malformed port
        except ValueError:
            parts = None
        if (parts is None or parts.scheme not in ("http", "https") or not parts.netloc
                or not parts.hostname):
            raise AuthError(f"registry {self.registry} advertised an invalid token realm")
        if "@" in parts.netloc:
            raise AuthError(
                f"registry {self.registry} advertised a token realm with user-info "
                "(user@host); refusing to send credentials there"
            )
        if parts.scheme == "http" and not (self.plain_http or is_loopback(parts.hostname)):
            raise AuthError(
                f"registry {self.registry} advertised a token realm over plain HTTP; "
                "refusing to send credentials there"
            )
        return realm

    def _fetch_token(self, challenge: Challenge, repository: str) -> str:
        """Trade the credential for a registry token scoped to ``repository:pull``."""
        realm = self._check_realm(challenge.realm)
        scope = f"repository:{repository}:pull"
        query = {"scope": scope}
        if challenge.service:
            query["service"] = challenge.service
        credential = self.credential
        if credential.identity_token:
            form = dict(query, grant_type="refresh_token", client_id=USER_AGENT,
                        refresh_token=credential.identity_token)
            answer = self._send("POST", realm, data=form, what="token")
        elif credential.secret is not None:
            basic = base64.b64encode(f"{credential.username}:{credential.secret}".encode())
            answer = self._send("GET", realm, params=query, what="token",
                                headers={"Authorization": f"Basic {basic.decode()}"})
            if answer.status in (401, 403) and credential.from_helper:
                # Chainguard's documented exchange: the helper's secret as a bearer token.
                log.debug("token endpoint refused Basic; trying the bearer exchange")
                answer = self._send("GET", realm, params=query, what="token",
                                    headers={"Authorization": f"Bearer {credential.secret}"})
        else:
            answer = self._send("GET", realm, params=query, what="token")
        if answer.status in (401, 403):
            raise AuthError(
                f"{self.registry}: the token endpoint refused {credential.source} "
                f"for {repository}; {hint_for(self.registry)}"
            )
        if answer.status != 200:
            raise RegistryError(
                f"registry {self.registry}: the token endpoint answered HTTP {answer.status}"
            )
        body = answer.json("token", self.registry)
        token = body.get("token") or body.get("access_token") if isinstance(body, dict) else None
        if not isinstance(token, str) or not token or any(c in token for c in "\r\n "):
            raise RegistryError(f"registry {self.registry}: the token endpoint sent no token")
        lifetime = body.get("expires_in")
        if not isinstance(lifetime, (int, float)) or lifetime <= 0:
            lifetime = DEFAULT_TOKEN_LIFETIME
        log.debug(f"token for {repository} from {urlsplit(realm).netloc} ({credential.source})")
        self._store_token(repository, token, float(lifetime))
        return token

    def _authorized(
        self, method: str, path: str, repository: str, *, what: str,
        params: dict[str, str] | None = None, headers: dict[str, str] | None = None,
    ) -> Answer:
        """A registry request with the repository's token, following the 401 challenge once."""
        url = self.base + path
        token = self._cached_token(repository)
        probing = False
        if token is None and self._known_challenge() is None:
            # Concurrent first requests (parallel windows, pin's resolvers): one learns the
            # realm from its 401, the others wait for it instead of each paying a round trip.
            probing = self._probe.acquire(blocking=False)
            if not probing:
                with self._probe:
                    pass
        if token is None and (challenge := self._known_challenge()) is not None:
            token = self._fetch_token(challenge, repository)
        refreshed = False
        try:
            while True:
                sent = dict(headers or {})
                if token:
                    sent["Authorization"] = f"Bearer {token}"
                answer = self._send(method, url, headers=sent, params=params, what=what)
                if answer.status != 401 or refreshed:
                    return answer
                challenge = parse_challenge(answer.header("www-authenticate"))
                if challenge is None or challenge.scheme != "bearer" or not challenge.realm:
                    if challenge is not None and challenge.scheme == "basic":
                        return self._basic(method, url, sent, params, what)
                    return answer
                if token:
                    log.debug(f"token for {repository} refused; fetching a new one")
                    self._drop_token(repository)
                self._remember_challenge(challenge)
                if probing:
                    probing = False
                    self._probe.release()
                token = self._fetch_token(challenge, repository)
                refreshed = True
        finally:
            if probing:
                self._probe.release()

    def _basic(self, method: str, url: str, headers: dict[str, str],
               params: dict[str, str] | None, what: str) -> Answer:
        """Registries that skip tokens and take Basic credentials on every request."""
        credential = self.credential
        if credential.secret is None:
            return Answer(401, {}, b"", url)
        basic = base64.b64encode(f"{credential.username}:{credential.secret}".encode()).decode()
        return self._send(method, url, headers=dict(headers, Authorization=f"Basic {basic}"),
                          params=params, what=what)

    def denied(self, reference: Reference, answer: Answer) -> AuthError:
        """The one-line refusal: what was tried, and what to do about it."""
        message = (
            f"access to {reference.tagged} denied (HTTP {answer.status}) with "
            f"{self.credential.source}; {hint_for(self.registry)}"
        )
        repository, tag = reference.repository, reference.tag or "latest"
        if (host_name(self.registry) == "cgr.dev" and repository.startswith("chainguard/")
                and tag not in PUBLIC_CATALOG_TAGS):
            message += (
                f". Only the tags {' and '.join(PUBLIC_CATALOG_TAGS)} of the public catalog "
                "are free; other tags need an entitlement to a Chainguard catalog"
            )
        return AuthError(message)

    # --- API calls -----------------------------------------------------------------------

    def _history_path(self, reference: Reference) -> str:
        return (f"/v2/{reference.repository}/_chainguard/history/"
                f"{quote(reference.tag or 'latest', safe='')}")

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
            raise self._missing(reference)
        raise RegistryError(
            f"registry {self.registry} answered HTTP {answer.status} for the history of "
            f"{reference.tagged}"
        )

    def _missing(self, reference: Reference) -> RegistryError:
        """A 404 from the history API: an unknown tag, or a registry without the API."""
        try:
            exists = self._manifest_head(reference).status == 200
        except RegistryError:
            exists = False
        if exists:
            return RegistryError(
                f"registry {self.registry} has no tag history API (it serves {reference.tagged} "
                "but not its history); the history API is a Chainguard registry feature"
            )
        return NotFoundError(f"tag not found: {reference.tagged}")

    def _parallel(self, function: Callable[[Window], list[Build]],
                  windows: list[Window]) -> list[list[Build]]:
        if len(windows) <= 1:
            return [function(window) for window in windows]
        from concurrent.futures import ThreadPoolExecutor

        pool = ThreadPoolExecutor(max_workers=min(MAX_PARALLEL, len(windows)))
        try:
            return list(pool.map(function, windows))
        except BaseException:
            # Ctrl-C or a failed window: do not wait for requests still in flight.
            pool.shutdown(wait=False, cancel_futures=True)
            raise
        finally:
            pool.shutdown(wait=False)

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
        session = self._http()

        def ping() -> None:
            with contextlib.suppress(Exception):  # a failed ping only means no head start
                session.get(self.base + "/v2/", timeout=self.timeout).close()

        for _ in range(connections):
            threading.Thread(target=ping, name="prewarm", daemon=True).start()

    def _plan_key(self, reference: Reference) -> str:
        return cache.key_name(self.registry, reference.repository, reference.tag or "latest")

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
        if self._cached_token(reference.repository) is None:
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
        target = reference.digest or reference.tag or "latest"
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
            where = (_target(target.geturl())[0] if target is not None and target.hostname
                     else "an invalid address")
            raise RegistryError(
                f"registry {self.registry} sent a link to the next page of tags on another "
                f"host ({sanitize(where)}); refusing to follow it"
            )
        return target.path + (f"?{target.query}" if target.query else "")

    def engine_auth(self) -> dict[str, str] | None:
        """The ``auth_config`` docker-py passes to the engine for a pull (``None``: anonymous)."""
        credential = self.credential
        if credential.identity_token:
            return {"identitytoken": credential.identity_token}
        if credential.secret is not None:
            return {"username": credential.username or "", "password": credential.secret}
        return None
