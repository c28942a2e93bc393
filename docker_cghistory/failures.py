"""Why a request failed, in words: a refused certificate, a TLS handshake, DNS, a proxy.

Why a module of its own: the words of a ``requests`` exception hold URLs, not the cause; the
types wrapped further down (urllib3, ssl, socket) say what happened and whether a retry can
help. ``transport`` asks ``classify`` after each failed attempt and follows its verdict: how
many attempts the failure is worth, and the one line to end with. The verdict is data, so
the retry loop holds no knowledge of certificates or proxies.

``requests`` and ``ssl`` are imported by the functions that need them, never at import time.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from . import proxy, tls
from .errors import sanitize
from .reference import host_name

if TYPE_CHECKING:
    from .transport import RetryPolicy


@dataclass(frozen=True)
class Failure:
    """One failed attempt, judged.

    ``words``: what went wrong, for the "unreachable" line after the retries; ``attempts``:
    how many attempts this kind of failure is worth; ``final``: the one-line message to fail
    with once those are spent (``None``: the generic "unreachable" line); ``timed_out``:
    counts against the policy's ``max_timeouts``.
    """

    words: str
    attempts: int
    final: str | None = None
    timed_out: bool = False


def host_with_port(host: str, port: int | None) -> str:
    """``host[:port]`` as a URL writes it (IPv6 in brackets): the certs.d folder name."""
    host = f"[{host}]" if ":" in host else host
    return host if port is None else f"{host}:{port}"


def target(url: str) -> tuple[str, str]:
    """(``host[:port]``, host) of ``url``, without user-info."""
    try:
        parts = urlsplit(url)
        host, port = parts.hostname or "", parts.port
    except ValueError:
        return "(invalid address)", ""
    return host_with_port(host, port), host


def _causes(error: BaseException) -> list[BaseException]:
    """``error`` and all it wraps, breadth first: requests → urllib3 → ssl/socket errors."""
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


def _tls_reason(causes: list[BaseException], where: str) -> str | None:
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
            return _needs_client_certificate(where)
        if reason in ("WRONG_VERSION_NUMBER", "HTTP_REQUEST", "PACKET_LENGTH_TOO_LONG",
                      "RECORD_LAYER_FAILURE"):
            return "the server does not speak TLS on this port"
        if "PROTOCOL_VERSION" in reason or reason == "UNSUPPORTED_PROTOCOL":
            return "no TLS version in common"
        return sanitize(reason.lower().replace("_", " ") or "unknown error", limit=80)
    return None


def _needs_client_certificate(where: str) -> str:
    return (f"the server requires a client certificate; put it in "
            f"{tls.SYSTEM_CERTS_D}/{sanitize(where)}/client.cert and client.key")


def classify(
    error: BaseException, url: str, route: proxy.Proxy | None, what: str, *,
    registry: str, timeout: tuple[float, float], policy: RetryPolicy,
) -> Failure:
    """Judge a ``requests`` exception raised for ``url`` (through ``route``, if proxied).

    Failures a retry cannot fix (an untrusted certificate, a refused handshake, a proxy that
    refuses us) are worth one attempt; DNS failures ``policy.few_attempts``; the rest all.
    """
    import requests

    request = getattr(error, "request", None)
    where, host = target(getattr(request, "url", None) or url)
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
        return _proxy_failure(error, causes, route, where, timeout, policy)
    why = _verify_reason(causes, host)
    if why is not None:
        who = (f"registry {registry}" if where == registry
               else f"registry {registry}: the host {where}")
        return Failure("certificate not trusted", 1, (
            f"{who}: certificate not trusted ({why}); to trust a private CA, put it in "
            f"{tls.certs_d_hint(where)}"
        ))
    tls_reason = _tls_reason(causes, where)
    if (tls_reason is not None or _has(causes, "SSLEOFError", "SSLZeroReturnError",
                                       "ConnectionResetError", "RemoteDisconnected")) and (
            tls.missing_client_certificate(host, where)):
        # The server asked for a client certificate and certs.d has none: whatever the
        # words (a TLS 1.2 "handshake failure", a TLS 1.3 connection cut), that is why.
        tls_reason = _needs_client_certificate(where)
    if tls_reason is not None:
        return Failure("TLS handshake failed", 1,
                       f"TLS handshake with {where} failed ({tls_reason})")
    via = f" (via proxy {route.shown})" if route is not None else ""
    if isinstance(error, requests.exceptions.Timeout):
        return Failure(f"timed out after {timeout[1]:g}s{via}", policy.attempts, None,
                       timed_out=True)
    failure = _connection_failure(causes)
    if failure.startswith("cannot resolve"):
        if host == host_name(registry).strip("[]"):
            final = f"cannot resolve registry host {sanitize(host)} (DNS)"
        else:
            final = (f"cannot resolve host {sanitize(host)} (DNS) for the {what} of "
                     f"registry {registry}")
        return Failure(failure, policy.few_attempts, final)
    if isinstance(error, (requests.exceptions.ConnectionError,
                          requests.exceptions.ChunkedEncodingError)) or failure != (
            "connection failed or was reset"):
        return Failure(failure + via, policy.attempts)
    return Failure(f"request failed ({type(error).__name__}){via}", policy.attempts)


def _proxy_failure(
    error: BaseException, causes: list[BaseException], route: proxy.Proxy, where: str,
    timeout: tuple[float, float], policy: RetryPolicy,
) -> Failure:
    """A failure at the proxy: named by the proxy (never its user-info), not the registry."""
    import requests

    shown, source = route.shown, route.source
    proxy_host = urlsplit(route.url).hostname or ""
    few = policy.few_attempts
    why = _verify_reason(causes, proxy_host)
    if why is not None:
        return Failure("proxy certificate not trusted", 1, (
            f"proxy {shown}: certificate not trusted ({why}); to trust a private CA, put "
            f"it in {tls.certs_d_hint(route.host_with_port)} (from {source})"
        ))
    if isinstance(error, requests.exceptions.InvalidSchema):
        return Failure("unsupported proxy", 1,
                       f"proxy {shown}: unsupported proxy scheme (from {source})")
    if _has(causes, "gaierror", "NameResolutionError"):
        return Failure("proxy DNS", few,
                       f"cannot resolve proxy host {sanitize(proxy_host)} (DNS) (from {source})")
    status = re.search(r"Tunnel connection failed: (\d{3})",
                       " ".join(str(cause) for cause in causes))
    if status:
        code = int(status.group(1))
        if code == 407:
            return Failure("proxy wants credentials", 1, (
                f"proxy {shown} asks for credentials (HTTP 407) to reach {where} "
                f"(from {source})"))
        return Failure(f"proxy answered HTTP {code}", few if code >= 500 else 1, (
            f"proxy {shown} refused to reach {where} (HTTP {code}) (from {source})"))
    if _has(causes, "ConnectionRefusedError") or "Connection refused" in repr(causes):
        return Failure("proxy refused", 1,
                       f"proxy {shown} refused the connection to {where} (from {source})")
    if _has(causes, "TimeoutError", "timeout", "ConnectTimeoutError") or isinstance(
            error, requests.exceptions.Timeout):
        return Failure("proxy timed out", few, (
            f"proxy {shown} did not answer within {timeout[0]:g}s for {where} "
            f"(from {source})"))
    tls_reason = _tls_reason(causes, route.host_with_port)
    if tls_reason is not None:
        return Failure("proxy TLS handshake failed", 1, (
            f"TLS handshake with proxy {shown} failed ({tls_reason}) (from {source})"))
    return Failure("proxy connection failed", few, (
        f"proxy {shown} failed for {where}: connection failed or was reset "
        f"(from {source})"))
