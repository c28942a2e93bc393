"""A Chainguard-compatible registry front for tests, demos and benchmarks.

cgr.dev is out of reach in CI, and a plain registry lacks the two things the plugin depends on:
Chainguard's token flow with its access rules, and the tag-history endpoint
(``/v2/<repo>/_chainguard/history/<tag>``, at most 1000 records per response). The front
implements those itself and proxies everything else under ``/v2/`` (manifests, blobs, tag
lists) to a real registry, so the digests it lists can really be pulled by dockerd. It also
misbehaves on demand (faults, latency) so error paths and performance are tested against a real
socket instead of a mock. Stdlib only, so ``scripts/front.py`` runs on a bare python.

Front configuration, ``Front(upstream_url, config)`` (every key optional)::

    {
      "service": "cghistory-front",  # service= of challenges
      "expires_in": 300,              # token lifetime, seconds
      "page_cap": 1000,               # records per history response
      "token_prefix": "",             # tokens are prefix + random: marker strings for tests
      "repos": {"chainguard/python": REPO, ...},
    }

REPO (every key optional; ``Front.set_repo(name, REPO)``)::

    {
      "public": False,                           # anonymous principals may read
      "public_tags": ["latest", "latest-dev"],   # tags anonymous may read by tag / history
      "users": {"name": {"password": "pw", "basic_refused": False}},
      "bearer_secrets": ["secret"],              # Authorization: Bearer <secret> at /token
      "identity_tokens": {"refresh-token": "name"},  # POST /token grant_type=refresh_token
      "history": {"latest": [["2024-01-01T00:00:00Z", "sha256:..."], ...]},
      "legacy_keys": False,                      # answer UpdateTimestamp / Digest
      "order": "asc",                            # asc | desc | shuffled (the capped page)
      "history_api": True,                       # False: history 404s like a plain registry
      "referrers": "off",                        # on | off (404, as distribution 2.8) |
                                                 # ignore_filter (no OCI-Filters-Applied)
      "referrer_manifests": {"sha256:subject": [DESCRIPTOR, ...]},  # what referrers lists
      "blob_kinds": {"sha256:...": "layer"},     # layer | config | attestation, for
                                                 # Front.blob_downloads
    }

The OCI referrers API (``GET /v2/<repo>/referrers/<digest>[?artifactType=...]``) is the
front's own, because Debian's docker-registry (distribution 2.8) has none: it answers an OCI
image index of the descriptors registered for the subject (the referring manifests themselves,
with their ``subject`` field, live in the registry). ``Front.blob_downloads(repo)`` lists the
blob GETs of the log with the kind registered for each digest (``tests/support/images``
registers what it pushed), so a test can prove no image layer was downloaded.

Access rules (mimicking cgr.dev): the token endpoint hands out anonymous tokens for any scope.
A token covers exactly the repositories named in its ``scope`` parameters and is
*authenticated* for those whose credentials matched. With an anonymous token a repo that is
not ``public`` answers 401 (insufficient_scope); a public repo answers 403 DENIED for the
history of, or a manifest by, a tag outside ``public_tags``; digests, blobs and tag lists of a
public repo are open. Repos the front has no configuration for are proxied with any token
that names them, and their history answers 404 NAME_UNKNOWN.

Faults match ``re.search(path_regex, path)`` on the path without the query string and, by
default, are taken before authentication (so the very first matching request fails, whether
or not it carries a token); ``after_auth=True`` makes a fault hit only requests that would
otherwise have been answered normally. ``query_regex`` narrows a fault to requests whose raw
query string matches (``start=`` picks the windowed history reads; ``scope=...repo`` one
repository's token requests). Besides the answers above, ``expire`` invalidates the tokens
that cover the request's repository and lets the request carry on (before authentication it
meets a 401; with ``after_auth`` it is answered and the next one meets it, as when a token
expires in the middle of a paged read), ``endless`` streams ``body`` (or filler) for ever,
chunked or under a declared ``length``, and ``drip`` sends its body one byte every
``interval`` seconds. The request log never holds secrets.
"""

from __future__ import annotations

import base64
import contextlib
import copy
import hashlib
import http.client
import json
import random
import re
import secrets
import socket
import ssl
import struct
import sys
import threading
import time
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal, NamedTuple
from urllib.parse import parse_qs, urlsplit

DEFAULT_PUBLIC_TAGS = ("latest", "latest-dev")
REFERRERS_MODES = ("on", "off", "ignore_filter")
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
_DIGEST_RE = re.compile(r"^sha256:[0-9a-f]{64}$")
FAULT_KINDS = (
    "status",
    "reset",
    "hang",
    "truncate",
    "html",
    "nonjson",
    "redirect",
    "body",
    "expire",
    "endless",
    "drip",
)
_SECRET_FORM_FIELDS = frozenset({"refresh_token", "password", "access_token"})
_CHUNK = 64 * 1024

_TS_RE = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?"
    r"(?:([Zz])|([+-])(\d{2}):(\d{2}))$"
)
_ROUTE_RE = re.compile(
    r"^/v2/(?P<repo>.+?)/(?P<kind>_chainguard/history|manifests|blobs|referrers)/(?P<ref>.+)$"
)
_TAGS_RE = re.compile(r"^/v2/(?P<repo>.+)/tags/list$")
_ERROR_CODES = {
    400: "BAD_REQUEST",
    401: "UNAUTHORIZED",
    403: "DENIED",
    404: "NOT_FOUND",
    429: "TOOMANYREQUESTS",
}


def parse_timestamp(value: str) -> datetime:
    """Parse RFC 3339 strictly (timezone required), the way the real API's Go parser does.

    Python 3.10's ``fromisoformat`` rejects ``Z`` and more than six fractional digits, so the
    front parses by hand to accept everything cgr.dev emits and nothing a client should send.
    """
    m = _TS_RE.match(value)
    if not m:
        raise ValueError(f"not an RFC 3339 timestamp: {value!r}")
    year, month, day, hour, minute, second = (int(g) for g in m.groups()[:6])
    frac = m.group(7) or ""
    micro = int((frac + "000000")[:6]) if frac else 0
    if m.group(8):
        tz = timezone.utc
    else:
        sign = -1 if m.group(9) == "-" else 1
        tz = timezone(sign * timedelta(hours=int(m.group(10)), minutes=int(m.group(11))))
    return datetime(year, month, day, hour, minute, second, micro, tzinfo=tz)


def format_timestamp(when: datetime, millis: bool = False) -> str:
    """RFC 3339 in UTC with ``Z``, optionally with milliseconds, as cgr.dev writes them."""
    when = when.astimezone(timezone.utc)
    if millis:
        return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def fake_digest(*parts: object) -> str:
    """A valid-looking, deterministic ``sha256:`` digest for synthetic histories."""
    return "sha256:" + hashlib.sha256(":".join(map(str, parts)).encode()).hexdigest()


def make_history(
    n: int,
    start: datetime,
    step: timedelta = timedelta(days=1),
    seed: int | str = 0,
    fractional: Literal["none", "all", "mixed"] = "none",
) -> list[list[str]]:
    """Deterministic synthetic history, oldest first, so tests can predict every entry.

    Entry ``i`` is at ``start + i*step``; with fractional seconds a deterministic 1-999 ms
    offset is added (keep ``step`` >= 1 s so the order is unchanged). ``mixed`` alternates
    entries with and without fractional seconds, as real histories do.
    """
    if start.tzinfo is None:
        start = start.replace(tzinfo=timezone.utc)
    rng = random.Random(f"{seed}")
    out: list[list[str]] = []
    for i in range(n):
        when = start + i * step
        frac = fractional == "all" or (fractional == "mixed" and i % 2 == 1)
        if frac:
            when = when.replace(microsecond=0) + timedelta(milliseconds=rng.randint(1, 999))
        out.append([format_timestamp(when, millis=frac), fake_digest(seed, i)])
    return out


def history_from_digests(
    digests: Iterable[str],
    end: datetime | None = None,
    step: timedelta = timedelta(days=1),
) -> list[list[str]]:
    """History entries for real pushed digests: oldest first, ``step`` apart, newest at ``end``.

    ``end`` defaults to a little before now so that "newest build" and age-based selectors
    see realistic values without racing the clock.
    """
    digests = list(digests)
    if end is None:
        end = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(minutes=5)
    n = len(digests)
    return [[format_timestamp(end - (n - 1 - i) * step), d] for i, d in enumerate(digests)]


class BlobDownload(NamedTuple):
    """A blob GET in the log: ``kind`` is what the fixture registered it as (layer, config,
    attestation), or ``unknown``."""

    repo: str
    digest: str
    kind: str


class LoggedRequest(NamedTuple):
    """One request as the front saw it; ``auth`` is none/basic/bearer/refresh/password."""

    method: str
    path: str
    query: dict[str, list[str]]
    auth: str


@dataclass
class Fault:
    """A scripted misbehaviour; ``hits`` counts how often it fired."""

    path_regex: str
    kind: str
    count: int = 1
    status: int | None = None
    retry_after: int | str | None = None
    body: str | bytes | None = None
    location: str | None = None
    method: str | None = None
    after_auth: bool = False
    content_type: str | None = None
    query_regex: str | None = None
    length: int | None = None
    interval: float = 0.5
    hits: int = 0
    pattern: re.Pattern[str] = field(init=False, repr=False)
    query_pattern: re.Pattern[str] | None = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; one of {FAULT_KINDS}")
        if self.kind == "redirect" and not self.location:
            raise ValueError("a redirect fault needs location=")
        self.pattern = re.compile(self.path_regex)
        self.query_pattern = re.compile(self.query_regex) if self.query_regex else None

    def as_dict(self) -> dict[str, Any]:
        body = self.body.decode("latin-1") if isinstance(self.body, bytes) else self.body
        return {
            "path_regex": self.path_regex,
            "kind": self.kind,
            "count": self.count,
            "status": self.status,
            "retry_after": self.retry_after,
            "body": body,
            "location": self.location,
            "method": self.method,
            "after_auth": self.after_auth,
            "content_type": self.content_type,
            "query_regex": self.query_regex,
            "length": self.length,
            "interval": self.interval,
            "hits": self.hits,
        }


@dataclass(frozen=True)
class _Token:
    repos: frozenset[str]
    authed: frozenset[str]
    principal: str
    expires_at: float


@dataclass
class _Repo:
    public: bool
    public_tags: frozenset[str]
    users: dict[str, dict[str, Any]]
    bearer_secrets: frozenset[str]
    identity_tokens: dict[str, str]
    history: dict[str, list[tuple[datetime, str, str]]]
    legacy_keys: bool
    order: str
    history_api: bool
    raw: dict[str, Any]
    referrers: str = "off"
    referrer_manifests: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    blob_kinds: dict[str, str] = field(default_factory=dict)


def _normalise_repo(config: dict[str, Any]) -> _Repo:
    """Validate once at configuration time so a typo fails the test that made it, loudly."""
    known = {
        "public",
        "public_tags",
        "users",
        "bearer_secrets",
        "identity_tokens",
        "history",
        "legacy_keys",
        "order",
        "history_api",
        "referrers",
        "referrer_manifests",
        "blob_kinds",
    }
    unknown = set(config) - known
    if unknown:
        raise ValueError(f"unknown repo config keys: {sorted(unknown)}")
    order = config.get("order", "asc")
    if order not in ("asc", "desc", "shuffled"):
        raise ValueError(f"order must be asc, desc or shuffled, not {order!r}")
    referrers = config.get("referrers", "off")
    if referrers not in REFERRERS_MODES:
        raise ValueError(f"referrers must be one of {REFERRERS_MODES}, not {referrers!r}")
    history: dict[str, list[tuple[datetime, str, str]]] = {}
    for tag, entries in (config.get("history") or {}).items():
        parsed = [(parse_timestamp(ts), ts, digest) for ts, digest in entries]
        parsed.sort(key=lambda e: e[0])
        history[tag] = parsed
    users = {
        name: {"password": u.get("password", ""), "basic_refused": bool(u.get("basic_refused"))}
        for name, u in (config.get("users") or {}).items()
    }
    return _Repo(
        public=bool(config.get("public", False)),
        public_tags=frozenset(config.get("public_tags", DEFAULT_PUBLIC_TAGS)),
        users=users,
        bearer_secrets=frozenset(config.get("bearer_secrets") or ()),
        identity_tokens=dict(config.get("identity_tokens") or {}),
        history=history,
        legacy_keys=bool(config.get("legacy_keys", False)),
        order=order,
        history_api=bool(config.get("history_api", True)),
        raw=copy.deepcopy(config),
        referrers=referrers,
        referrer_manifests={
            k: [dict(d) for d in v] for k, v in (config.get("referrer_manifests") or {}).items()
        },
        blob_kinds=dict(config.get("blob_kinds") or {}),
    )


def _error_body(code: str, message: str) -> bytes:
    return json.dumps({"errors": [{"code": code, "message": message, "detail": None}]}).encode()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128
    front: Front

    def process_request(self, request: Any, client_address: Any) -> None:
        # Counted in the accepting thread, in accept order and before any TLS handshake: a
        # client that gives up on the certificate still made a connection, and once a later
        # connection has been answered, every earlier one is counted.
        with self.front._lock:
            self.front.connection_count += 1
        super().process_request(request, client_address)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients hanging up mid-answer is routine here (faults, timeouts); stay quiet.
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, TimeoutError, OSError)):
            return
        super().handle_error(request, client_address)


class Front:
    """The registry front; see the module docstring for configuration and rules."""

    def __init__(
        self,
        upstream_url: str | None,
        config: dict[str, Any] | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        """``ssl_context`` (server side) serves HTTPS: each accepted connection is wrapped in
        its handler thread, so a client that never finishes the handshake blocks nobody, and a
        context with ``verify_mode = CERT_REQUIRED`` demands a client certificate. Bind to a
        host *name* (``host=``) that the certificate names: ``url`` and the token realm use it.
        """
        config = dict(config or {})
        self.ssl_context = ssl_context
        self.upstream_url = upstream_url.rstrip("/") if upstream_url else None
        self._bind = (host, port)
        self._lock = threading.RLock()
        self.service: str = config.pop("service", "cghistory-front")
        self.expires_in: int = int(config.pop("expires_in", 300))
        self.page_cap: int = int(config.pop("page_cap", 1000))
        self.token_prefix: str = config.pop("token_prefix", "")
        repos = config.pop("repos", {}) or {}
        if config:
            raise ValueError(f"unknown front config keys: {sorted(config)}")
        self._repos: dict[str, _Repo] = {n: _normalise_repo(c) for n, c in repos.items()}
        self._tokens: dict[str, _Token] = {}
        self._faults: list[Fault] = []
        self._log: list[LoggedRequest] = []
        self._per_request = 0.0
        self._per_connection = 0.0
        self._release = threading.Event()
        self._connections: set[socket.socket] = set()
        self.connection_count = 0
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._baseline: dict[str, Any] = {}
        self.save_baseline()

    # ----------------------------------------------------------------- lifecycle
    def start(self) -> Front:
        server = _Server(self._bind, _Handler)
        server.front = self
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.1},
            daemon=True,
            name=f"front-{server.server_address[1]}",
        )
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        """Foreground variant for scripts/front.py; returns after stop() or Ctrl-C."""
        if self._server is None:
            server = _Server(self._bind, _Handler)
            server.front = self
            self._server = server
        try:
            self._server.serve_forever(poll_interval=0.1)
        finally:
            self._close_everything()

    def stop(self) -> None:
        server = self._server
        if server is None:
            return
        server.shutdown()
        self._close_everything()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = None

    def _close_everything(self) -> None:
        self._release.set()
        with self._lock:
            conns = list(self._connections)
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        if self._server is not None:
            self._server.server_close()

    def __enter__(self) -> Front:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("front not started")
        return int(self._server.server_address[1])

    @property
    def host(self) -> str:
        return f"{self._server_host()}:{self.port}"

    @property
    def url(self) -> str:
        return f"{'https' if self.ssl_context is not None else 'http'}://{self.host}"

    def _server_host(self) -> str:
        host = self._bind[0]
        return "127.0.0.1" if host in ("", "0.0.0.0") else host

    # ----------------------------------------------------------------- state
    def configure(
        self,
        expires_in: int | None = None,
        page_cap: int | None = None,
        token_prefix: str | None = None,
        service: str | None = None,
    ) -> None:
        with self._lock:
            if expires_in is not None:
                self.expires_in = int(expires_in)
            if page_cap is not None:
                self.page_cap = int(page_cap)
            if token_prefix is not None:
                self.token_prefix = token_prefix
            if service is not None:
                self.service = service

    def set_repo(self, name: str, config: dict[str, Any] | None = None, **overrides: Any) -> None:
        """Replace a repo's whole configuration (keyword arguments override ``config``)."""
        merged = {**(config or {}), **overrides}
        repo = _normalise_repo(merged)
        with self._lock:
            self._repos[name] = repo

    def update_repo(self, name: str, **changes: Any) -> None:
        """Change some keys of an existing repo, keeping the rest."""
        with self._lock:
            current = self._repos[name].raw
        self.set_repo(name, {**current, **changes})

    def set_history(self, repo: str, tag: str, entries: list[list[str]]) -> None:
        with self._lock:
            current = copy.deepcopy(self._repos[repo].raw) if repo in self._repos else {}
        history = dict(current.get("history") or {})
        history[tag] = [list(e) for e in entries]
        current["history"] = history
        self.set_repo(repo, current)

    def remove_repo(self, name: str) -> None:
        with self._lock:
            self._repos.pop(name, None)

    def repo(self, name: str) -> dict[str, Any]:
        with self._lock:
            return copy.deepcopy(self._repos[name].raw)

    def repo_names(self) -> list[str]:
        with self._lock:
            return sorted(self._repos)

    def add_fault(
        self,
        path_regex: str,
        kind: str,
        count: int = 1,
        status: int | None = None,
        retry_after: int | str | None = None,
        body: str | bytes | None = None,
        location: str | None = None,
        method: str | None = None,
        after_auth: bool = False,
        content_type: str | None = None,
        query_regex: str | None = None,
        length: int | None = None,
        interval: float = 0.5,
    ) -> Fault:
        """Script a misbehaviour for the next ``count`` matching requests (-1: forever)."""
        fault = Fault(
            path_regex,
            kind,
            count=count,
            status=status,
            retry_after=retry_after,
            body=body,
            location=location,
            method=method.upper() if method else None,
            after_auth=after_auth,
            content_type=content_type,
            query_regex=query_regex,
            length=length,
            interval=interval,
        )
        with self._lock:
            self._faults.append(fault)
        return fault

    def token_fault(self, kind: str, **kwargs: Any) -> Fault:
        """A fault on the token endpoint (GET and POST /token)."""
        return self.add_fault(r"^/token", kind, **kwargs)

    def faults(self) -> list[Fault]:
        with self._lock:
            return list(self._faults)

    def clear_faults(self) -> None:
        """Drop all faults and let go of requests held by ``hang`` faults."""
        with self._lock:
            self._faults.clear()
            old, self._release = self._release, threading.Event()
        old.set()

    def set_latency(self, per_request_s: float = 0.0, per_connection_s: float = 0.0) -> None:
        with self._lock:
            self._per_request = float(per_request_s)
            self._per_connection = float(per_connection_s)

    def expire_tokens(self, repo: str | None = None) -> None:
        """Invalidate every token issued so far (``repo``: those covering it), as a server-side
        expiry would."""
        with self._lock:
            if repo is None:
                self._tokens.clear()
                return
            for token in [t for t, tok in self._tokens.items() if repo in tok.repos]:
                del self._tokens[token]

    @property
    def requests(self) -> list[LoggedRequest]:
        with self._lock:
            return list(self._log)

    def reset_log(self) -> None:
        with self._lock:
            self._log.clear()

    def blob_downloads(self, repo: str | None = None) -> list[BlobDownload]:
        """The blob GETs logged so far (of ``repo``, or all), in order, each with its kind."""
        out = []
        for request in self.requests:
            m = _ROUTE_RE.match(request.path)
            if request.method != "GET" or not m or m.group("kind") != "blobs":
                continue
            if repo is not None and m.group("repo") != repo:
                continue
            cfg = self._repo_cfg(m.group("repo"))
            kind = cfg.blob_kinds.get(m.group("ref"), "unknown") if cfg else "unknown"
            out.append(BlobDownload(m.group("repo"), m.group("ref"), kind))
        return out

    def save_baseline(self) -> None:
        """Remember repos and settings that ``reset()`` returns to (session fixtures call it)."""
        with self._lock:
            self._baseline = {
                "repos": dict(self._repos),
                "settings": (self.service, self.expires_in, self.page_cap, self.token_prefix),
            }

    def reset(self) -> None:
        """Undo what one test did: faults, latency, log, settings and repo changes."""
        self.clear_faults()
        with self._lock:
            self._per_request = self._per_connection = 0.0
            self._log.clear()
            self._repos = dict(self._baseline["repos"])
            (self.service, self.expires_in, self.page_cap, self.token_prefix) = self._baseline[
                "settings"
            ]

    # ----------------------------------------------------------------- internals
    def _take_fault(
        self, method: str, path: str, after_auth: bool, query: str = ""
    ) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.after_auth != after_auth or fault.count == 0:
                    continue
                if fault.method and fault.method != method:
                    continue
                if not fault.pattern.search(path):
                    continue
                if fault.query_pattern is not None and not fault.query_pattern.search(query):
                    continue
                if fault.count > 0:
                    fault.count -= 1
                fault.hits += 1
                return fault
        return None

    def _issue(self, repos: frozenset[str], authed: frozenset[str], principal: str) -> dict:
        token = self.token_prefix + secrets.token_urlsafe(24)
        now = time.time()
        with self._lock:
            self._tokens[token] = _Token(repos, authed, principal, now + self.expires_in)
            expires_in = self.expires_in
        issued = format_timestamp(datetime.fromtimestamp(now, timezone.utc))
        return {
            "token": token,
            "access_token": token,
            "expires_in": expires_in,
            "issued_at": issued,
        }

    def _lookup_token(self, token: str) -> _Token | None:
        with self._lock:
            tok = self._tokens.get(token)
            if tok is not None and tok.expires_at <= time.time():
                del self._tokens[token]
                return None
            return tok

    def _repo_cfg(self, name: str) -> _Repo | None:
        with self._lock:
            return self._repos.get(name)

    def _known(self, names: Iterable[str]) -> list[tuple[str, _Repo]]:
        with self._lock:
            return [(n, self._repos[n]) for n in names if n in self._repos]

    def _all_repos(self) -> list[tuple[str, _Repo]]:
        with self._lock:
            return list(self._repos.items())


class _Handler(BaseHTTPRequestHandler):
    # Headers and body go out in separate writes; with Nagle on, the body waits for the
    # client's delayed ACK (40 ms), which no real registry charges.
    disable_nagle_algorithm = True
    protocol_version = "HTTP/1.1"
    server: _Server
    server_version = "cghistory-front/1"
    sys_version = ""

    # ---------------------------------------------------------- connection bookkeeping
    def setup(self) -> None:
        self.front = self.server.front
        if self.front.ssl_context is not None:  # a failed handshake ends here, quietly
            self.request = self.front.ssl_context.wrap_socket(self.request, server_side=True)
        super().setup()
        self._fresh_connection = True
        with self.front._lock:
            self.front._connections.add(self.connection)

    def finish(self) -> None:
        with self.front._lock:
            self.front._connections.discard(self.connection)
        with contextlib.suppress(OSError):
            super().finish()
        if self.front.ssl_context is not None:  # the server closes the plain socket it had
            with contextlib.suppress(OSError):
                self.connection.close()

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._dispatch()

    do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_GET

    # ---------------------------------------------------------- plumbing
    def _dispatch(self) -> None:
        self._truncate = False
        try:
            self._route()
        except (ConnectionError, TimeoutError):
            self.close_connection = True

    def _read_body(self) -> bytes:
        length = self.headers.get("Content-Length")
        if length:
            return self.rfile.read(int(length))
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        return b""

    def _send(
        self,
        status: int,
        body: bytes = b"",
        content_type: str | None = "application/json",
        headers: dict[str, str] | None = None,
    ) -> None:
        self.send_response(status)
        if content_type:
            self.send_header("Content-Type", content_type)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            if self._truncate:
                self.wfile.write(body[: len(body) // 2])
                self._hard_close()
                return
            self.wfile.write(body)

    def _json(self, status: int, obj: Any, headers: dict[str, str] | None = None) -> None:
        self._send(status, json.dumps(obj).encode(), "application/json", headers)

    def _error(
        self, status: int, code: str, message: str, headers: dict[str, str] | None = None
    ) -> None:
        self._send(status, _error_body(code, message), "application/json", headers)

    def _hard_close(self, reset: bool = False) -> None:
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.wfile.flush()
        if reset:
            with contextlib.suppress(OSError):
                self.connection.setsockopt(
                    socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                )
        if not reset:
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
        with contextlib.suppress(OSError):
            self.connection.close()

    def _challenge(self, repo: str | None, error: str | None = None) -> dict[str, str]:
        value = f'Bearer realm="{self.front.url}/token",service="{self.front.service}"'
        if repo is not None:
            value += f',scope="repository:{repo}:pull"'
        if error:
            value += f',error="{error}"'
        return {"WWW-Authenticate": value, "Docker-Distribution-Api-Version": "registry/2.0"}

    # ---------------------------------------------------------- routing
    def _route(self) -> None:
        split = urlsplit(self.path)
        path = split.path
        query = parse_qs(split.query, keep_blank_values=True)
        if path.startswith("/_front/"):
            self._control(path[len("/_front/") :], query)
            return
        body = self._read_body() if self.command in ("POST", "PUT", "PATCH") else b""
        auth_kind, logged_query = self._classify(path, query, body)
        front = self.front
        with front._lock:
            front._log.append(LoggedRequest(self.command, path, logged_query, auth_kind))
            per_request, per_connection = front._per_request, front._per_connection
        delay = per_request + (per_connection if self._fresh_connection else 0.0)
        self._fresh_connection = False
        if delay > 0:
            time.sleep(delay)

        fault = front._take_fault(self.command, path, after_auth=False, query=split.query)
        if fault is not None and self._apply_fault(fault):
            return

        if path == "/token":
            self._token(query, body)
            return
        if path in ("/v2", "/v2/"):
            self._base(path)
            return
        if path.startswith("/v2/"):
            self._registry(path, split.query)
            return
        self._send(404, b"404 page not found\n", "text/plain; charset=utf-8")

    def _classify(
        self, path: str, query: dict[str, list[str]], body: bytes
    ) -> tuple[str, dict[str, list[str]]]:
        header = self.headers.get("Authorization", "")
        scheme = header.split(" ", 1)[0].lower()
        kind = {"basic": "basic", "bearer": "bearer"}.get(scheme, "none" if not header else scheme)
        logged = {k: list(v) for k, v in query.items() if k not in _SECRET_FORM_FIELDS}
        if path == "/token" and self.command == "POST":
            form = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
            grant = (form.get("grant_type") or [""])[0]
            if grant == "refresh_token":
                kind = "refresh"
            elif grant == "password":
                kind = "password"
            for k, v in form.items():
                if k not in _SECRET_FORM_FIELDS:
                    logged.setdefault(k, []).extend(v)
        return kind, logged

    # ---------------------------------------------------------- faults
    def _apply_fault(self, fault: Fault) -> bool:
        """Answer according to ``fault``; False means "carry on and truncate the real answer"."""
        kind = fault.kind
        body = fault.body.encode() if isinstance(fault.body, str) else fault.body
        if kind == "reset":
            self._hard_close(reset=True)
        elif kind == "hang":
            with self.front._lock:
                release = self.front._release
            release.wait()
            self._hard_close()
        elif kind == "status":
            status = fault.status or 500
            headers = {}
            if fault.retry_after is not None:
                headers["Retry-After"] = str(fault.retry_after)
            if body is None:
                body = _error_body(_ERROR_CODES.get(status, "UNAVAILABLE"), f"injected {status}")
            self._send(status, body, fault.content_type or "application/json", headers)
        elif kind == "truncate":
            if body is None:
                self._truncate = True
                return False
            self.send_response(fault.status or 200)
            self.send_header("Content-Type", fault.content_type or "application/json")
            self.send_header("Content-Length", str(len(body) + 1000))
            self.end_headers()
            self.wfile.write(body)
            self._hard_close()
        elif kind == "html":
            if body is None:
                body = (
                    b"<!DOCTYPE html><html><head><title>502 Bad Gateway</title></head>"
                    b"<body><h1>Bad Gateway</h1></body></html>\n"
                )
            self._send(fault.status or 200, body, fault.content_type or "text/html")
        elif kind == "nonjson":
            self._send(
                fault.status or 200,
                body if body is not None else b"this is not json",
                fault.content_type or "application/json",
            )
        elif kind == "redirect":
            self._send(fault.status or 302, b"", None, {"Location": fault.location or ""})
        elif kind == "body":
            self._send(fault.status or 200, body or b"", fault.content_type or "application/json")
        elif kind == "expire":
            # Only the tokens of the repository asked for: concurrent tests share the front.
            route = _ROUTE_RE.match(urlsplit(self.path).path)
            self.front.expire_tokens(route.group("repo") if route else None)
            return False
        elif kind == "endless":
            self._endless(fault, body or b'{"history": [' + b" " * 65536)
        elif kind == "drip":
            self._drip(fault, body if body is not None else b'{"history": []}')
        return True

    def _endless(self, fault: Fault, filler: bytes) -> None:
        """A body that never ends (until the client hangs up, or 4 GiB as a safety net)."""
        self.send_response(fault.status or 200)
        self.send_header("Content-Type", fault.content_type or "application/json")
        if fault.length is not None:
            self.send_header("Content-Length", str(fault.length))
        else:
            self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        sent = 0
        with contextlib.suppress(OSError):
            while sent < 4 << 30:
                if fault.length is None:
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(filler), filler))
                else:
                    self.wfile.write(filler)
                sent += len(filler)
        self._hard_close()

    def _drip(self, fault: Fault, body: bytes) -> None:
        """The whole body, declared up front, one byte every ``interval`` seconds."""
        self.send_response(fault.status or 200)
        self.send_header("Content-Type", fault.content_type or "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        with self.front._lock:
            release = self.front._release
        with contextlib.suppress(OSError):
            for index in range(len(body)):
                self.wfile.write(body[index : index + 1])
                self.wfile.flush()
                if release.wait(fault.interval):
                    break
        self._hard_close()

    def _after_auth_fault(self, path: str) -> bool:
        query = urlsplit(self.path).query
        fault = self.front._take_fault(self.command, path, after_auth=True, query=query)
        return fault is not None and self._apply_fault(fault)

    # ---------------------------------------------------------- token endpoint
    def _token(self, query: dict[str, list[str]], body: bytes) -> None:
        if self.command == "POST":
            form = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
            scopes = form.get("scope", [])
            scopes = [s for item in scopes for s in item.split(" ") if s]
            grant = (form.get("grant_type") or [""])[0]
            repos = self._scope_repos(scopes + query.get("scope", []))
            if grant == "refresh_token":
                refresh = (form.get("refresh_token") or [""])[0]
                authed = {n for n, r in self._candidates(repos) if refresh in r.identity_tokens}
                principal = "identity"
            elif grant == "password":
                user = (form.get("username") or [""])[0]
                password = (form.get("password") or [""])[0]
                authed = self._password_ok(repos, user, password, basic=False)
                principal = f"user:{user}"
            else:
                self._json(400, {"error": "unsupported_grant_type"})
                return
            if not authed:
                self._json(
                    401,
                    {
                        "error": "invalid_grant",
                        "errors": [{"code": "UNAUTHORIZED", "message": "invalid credentials"}],
                    },
                )
                return
            answer = self.front._issue(frozenset(repos), frozenset(authed) & repos, principal)
            answer["scope"] = " ".join(f"repository:{r}:pull" for r in sorted(repos))
            if self._after_auth_fault("/token"):
                return
            self._json(200, answer)
            return
        if self.command not in ("GET", "HEAD"):
            self._error(405, "UNSUPPORTED", "method not allowed")
            return
        repos = self._scope_repos(query.get("scope", []))
        header = self.headers.get("Authorization", "")
        scheme, _, cred = header.partition(" ")
        scheme = scheme.lower()
        if not header:
            authed: set[str] = set()
            principal = "anonymous"
        elif scheme == "basic":
            try:
                user, _, password = base64.b64decode(cred.strip()).decode().partition(":")
            except (ValueError, UnicodeDecodeError):
                self._error(400, "BAD_REQUEST", "malformed basic credentials")
                return
            if any(r.users.get(user, {}).get("basic_refused") for _, r in self._candidates(repos)):
                self._error(401, "UNAUTHORIZED", "basic authentication is not accepted")
                return
            authed = self._password_ok(repos, user, password, basic=True)
            principal = f"user:{user}"
        elif scheme == "bearer":
            secret = cred.strip()
            authed = {n for n, r in self._candidates(repos) if secret in r.bearer_secrets}
            principal = "bearer"
        else:
            self._error(401, "UNAUTHORIZED", f"unsupported authorization scheme {scheme!r}")
            return
        if header and not authed:
            self._error(401, "UNAUTHORIZED", "authentication required: invalid credentials")
            return
        if self._after_auth_fault("/token"):
            return
        self._json(200, self.front._issue(frozenset(repos), frozenset(authed) & repos, principal))

    @staticmethod
    def _scope_repos(scopes: list[str]) -> frozenset[str]:
        repos = set()
        for scope in scopes:
            for item in scope.split(" "):
                if item.startswith("repository:"):
                    name = item[len("repository:") :].rsplit(":", 1)[0]
                    if name:
                        repos.add(name)
        return frozenset(repos)

    def _candidates(self, repos: frozenset[str]) -> list[tuple[str, _Repo]]:
        """Repos whose credentials decide: the requested ones, or all when none is known.

        Checking all repos when the scope is empty or unknown lets a client verify
        credentials (``docker login`` style) without naming a repository.
        """
        known = self.front._known(repos)
        return known if known else self.front._all_repos()

    def _password_ok(
        self, repos: frozenset[str], user: str, password: str, basic: bool
    ) -> set[str]:
        ok = set()
        for name, repo in self._candidates(repos):
            entry = repo.users.get(user)
            if entry is None or entry["password"] != password:
                continue
            if basic and entry["basic_refused"]:
                continue
            ok.add(name)
        return ok

    # ---------------------------------------------------------- /v2/
    def _bearer(self) -> tuple[_Token | None, bool]:
        header = self.headers.get("Authorization", "")
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            return None, False
        return self.front._lookup_token(value.strip()), True

    def _base(self, path: str) -> None:
        token, presented = self._bearer()
        if token is None:
            self._error(
                401,
                "UNAUTHORIZED",
                "authentication required",
                self._challenge(None, "invalid_token" if presented else None),
            )
            return
        if self._after_auth_fault(path):
            return
        self._json(200, {}, {"Docker-Distribution-Api-Version": "registry/2.0"})

    def _registry(self, path: str, raw_query: str) -> None:
        m = _ROUTE_RE.match(path)
        if m:
            repo, kind, ref = m.group("repo"), m.group("kind"), m.group("ref")
        else:
            t = _TAGS_RE.match(path)
            if not t:
                self._error(404, "NOT_FOUND", "no such route")
                return
            repo, kind, ref = t.group("repo"), "tags", ""
        token, presented = self._bearer()
        if token is None:
            self._error(
                401,
                "UNAUTHORIZED",
                "authentication required",
                self._challenge(repo, "invalid_token" if presented else None),
            )
            return
        if repo not in token.repos:
            self._error(
                401,
                "UNAUTHORIZED",
                "authentication required",
                self._challenge(repo, "insufficient_scope"),
            )
            return
        cfg = self.front._repo_cfg(repo)
        if kind == "_chainguard/history":
            if cfg is None:
                self._error(404, "NAME_UNKNOWN", "repository name not known to registry")
                return
            if not cfg.history_api:
                self._send(404, b"404 page not found\n", "text/plain; charset=utf-8")
                return
        if cfg is not None and repo not in token.authed:
            if not cfg.public:
                self._error(
                    401,
                    "UNAUTHORIZED",
                    "authentication required",
                    self._challenge(repo, "insufficient_scope"),
                )
                return
            by_tag = kind == "_chainguard/history" or (kind == "manifests" and ":" not in ref)
            if by_tag and ref not in cfg.public_tags:
                self._error(
                    403,
                    "DENIED",
                    f"anonymous access to tag {ref!r} is denied; "
                    "authenticate to read tags outside the public catalog",
                )
                return
        if self._after_auth_fault(path):
            return
        if kind == "_chainguard/history":
            assert cfg is not None
            self._history(cfg, ref)
            return
        if kind == "referrers":
            self._referrers(cfg, ref)
            return
        if self.command not in ("GET", "HEAD"):
            self._error(405, "UNSUPPORTED", "the front is read-only; push to the upstream")
            return
        self._proxy(path, raw_query)

    def _history(self, cfg: _Repo, tag: str) -> None:
        entries = cfg.history.get(tag)
        if entries is None:
            self._error(404, "MANIFEST_UNKNOWN", "manifest unknown")
            return
        query = parse_qs(urlsplit(self.path).query, keep_blank_values=True)
        bounds: list[datetime | None] = []
        for key in ("start", "end"):
            value = (query.get(key) or [""])[-1]
            if not value:
                bounds.append(None)
                continue
            try:
                bounds.append(parse_timestamp(value))
            except ValueError:
                self._error(400, "BAD_REQUEST", f"invalid {key} time {value!r}: want RFC 3339")
                return
        start, end = bounds
        window = [
            e for e in entries if (start is None or e[0] >= start) and (end is None or e[0] <= end)
        ]
        page = window[: self.front.page_cap]
        if cfg.order == "desc":
            page = page[::-1]
        elif cfg.order == "shuffled" and len(page) > 1:
            shuffled = page[:]
            random.shuffle(shuffled)
            if shuffled == page:  # never hand back the sorted order by accident
                shuffled = shuffled[1:] + shuffled[:1]
            page = shuffled
        ts_key, digest_key = (
            ("UpdateTimestamp", "Digest") if cfg.legacy_keys else ("updateTimestamp", "digest")
        )
        self._json(200, {"history": [{ts_key: ts, digest_key: d} for _, ts, d in page]})

    def _referrers(self, cfg: _Repo | None, digest: str) -> None:
        """The OCI 1.1 referrers API from the descriptors registered for the repo."""
        if cfg is None or cfg.referrers == "off":
            self._send(404, b"404 page not found\n", "text/plain; charset=utf-8")
            return
        if not _DIGEST_RE.match(digest):
            self._error(400, "DIGEST_INVALID", "provided digest did not match uploaded content")
            return
        descriptors = [dict(d) for d in cfg.referrer_manifests.get(digest, [])]
        query = parse_qs(urlsplit(self.path).query, keep_blank_values=True)
        wanted = (query.get("artifactType") or [""])[-1]
        headers: dict[str, str] = {}
        if wanted and cfg.referrers == "on":
            descriptors = [d for d in descriptors if d.get("artifactType") == wanted]
            headers["OCI-Filters-Applied"] = "artifactType"
        body = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": descriptors}
        self._send(200, json.dumps(body).encode(), OCI_INDEX, headers)

    # ---------------------------------------------------------- proxy
    def _proxy(self, path: str, raw_query: str) -> None:
        upstream = self.front.upstream_url
        if upstream is None:
            self._error(404, "NAME_UNKNOWN", "no upstream registry behind this front")
            return
        up = urlsplit(upstream)
        # docker sends one Accept header per media type; the upstream must see them all.
        headers = {
            k: ", ".join(self.headers.get_all(k) or [])
            for k in ("Accept", "Range", "If-None-Match", "User-Agent")
            if self.headers.get(k)
        }
        target = path + (f"?{raw_query}" if raw_query else "")
        conn = http.client.HTTPConnection(up.hostname or "127.0.0.1", up.port or 80, timeout=60)
        try:
            try:
                conn.request(self.command, target, headers=headers)
                resp = conn.getresponse()
            except OSError as exc:
                self._error(502, "UNAVAILABLE", f"upstream registry unreachable: {exc}")
                return
            out_headers: dict[str, str] = {}
            for name in (
                "Docker-Content-Digest",
                "Docker-Distribution-Api-Version",
                "ETag",
                "Accept-Ranges",
                "Content-Range",
                "Location",
            ):
                value = resp.getheader(name)
                if value is not None:
                    if name == "Location" and value.startswith(upstream):
                        value = self.front.url + value[len(upstream) :]
                    out_headers[name] = value
            content_type = resp.getheader("Content-Type")
            length = resp.getheader("Content-Length")
            if self.command == "HEAD" or resp.status in (204, 304):
                self.send_response(resp.status)
                if content_type:
                    self.send_header("Content-Type", content_type)
                for k, v in out_headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", length or "0")
                self.end_headers()
                resp.read()
                return
            if length is None:
                self._send(resp.status, resp.read(), content_type, out_headers)
                return
            total = int(length)
            self.send_response(resp.status)
            if content_type:
                self.send_header("Content-Type", content_type)
            for k, v in out_headers.items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(total))
            self.end_headers()
            limit = total // 2 if self._truncate else total
            sent = 0
            while sent < limit:
                chunk = resp.read(min(_CHUNK, limit - sent))
                if not chunk:
                    break
                self.wfile.write(chunk)
                sent += len(chunk)
            if sent < total:
                self._hard_close()
        finally:
            conn.close()

    # ---------------------------------------------------------- control API
    def _control(self, name: str, query: dict[str, list[str]]) -> None:
        front = self.front
        body = self._read_body()
        try:
            args: dict[str, Any] = json.loads(body) if body.strip() else {}
        except ValueError:
            self._json(400, {"error": "body must be JSON"})
            return
        try:
            result: Any = None
            if name == "state":
                result = {
                    "url": front.url,
                    "repos": front.repo_names(),
                    "connections": front.connection_count,
                    "faults": [f.as_dict() for f in front.faults()],
                    "expires_in": front.expires_in,
                    "page_cap": front.page_cap,
                }
            elif name == "requests":
                result = [r._asdict() for r in front.requests]
            elif name == "blob_downloads":
                result = [b._asdict() for b in front.blob_downloads(args.get("repo"))]
            elif name == "repo":
                front.set_repo(args["name"], args.get("config") or {})
            elif name == "update_repo":
                front.update_repo(args.pop("name"), **args)
            elif name == "remove_repo":
                front.remove_repo(args["name"])
            elif name == "history":
                front.set_history(args["repo"], args["tag"], args["entries"])
            elif name == "fault":
                result = front.add_fault(**args).as_dict()
            elif name == "clear_faults":
                front.clear_faults()
            elif name == "latency":
                front.set_latency(args.get("per_request", 0.0), args.get("per_connection", 0.0))
            elif name == "expire_tokens":
                front.expire_tokens()
            elif name == "reset_log":
                front.reset_log()
            elif name == "configure":
                front.configure(**args)
            elif name == "reset":
                front.reset()
            else:
                self._json(404, {"error": f"no control endpoint {name!r}"})
                return
        except (KeyError, TypeError, ValueError) as exc:
            self._json(400, {"error": f"{type(exc).__name__}: {exc}"})
            return
        self._json(200, {"ok": True, "result": result})


class RemoteFront:
    """Drive a front running in another process (scripts/front.py) through ``/_front/``."""

    def __init__(self, url: str, timeout: float = 10.0) -> None:
        self.url = url.rstrip("/")
        self.host = urlsplit(self.url).netloc
        self.timeout = timeout

    def _call(self, name: str, payload: dict[str, Any] | None = None) -> Any:
        data = json.dumps(payload or {}).encode()
        req = urllib.request.Request(
            f"{self.url}/_front/{name}",
            data=data,
            method="POST",
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=self.timeout) as resp:
            return json.loads(resp.read())["result"]

    def state(self) -> dict[str, Any]:
        return self._call("state")

    def set_repo(self, name: str, config: dict[str, Any] | None = None, **overrides: Any) -> None:
        self._call("repo", {"name": name, "config": {**(config or {}), **overrides}})

    def update_repo(self, name: str, **changes: Any) -> None:
        self._call("update_repo", {"name": name, **changes})

    def set_history(self, repo: str, tag: str, entries: list[list[str]]) -> None:
        self._call("history", {"repo": repo, "tag": tag, "entries": entries})

    def add_fault(self, path_regex: str, kind: str, **kwargs: Any) -> dict[str, Any]:
        return self._call("fault", {"path_regex": path_regex, "kind": kind, **kwargs})

    def clear_faults(self) -> None:
        self._call("clear_faults")

    def set_latency(self, per_request_s: float = 0.0, per_connection_s: float = 0.0) -> None:
        self._call("latency", {"per_request": per_request_s, "per_connection": per_connection_s})

    def expire_tokens(self) -> None:
        self._call("expire_tokens")

    def configure(self, **settings: Any) -> None:
        self._call("configure", settings)

    @property
    def requests(self) -> list[LoggedRequest]:
        return [LoggedRequest(**r) for r in self._call("requests")]

    def reset_log(self) -> None:
        self._call("reset_log")

    def blob_downloads(self, repo: str | None = None) -> list[BlobDownload]:
        return [BlobDownload(**b) for b in self._call("blob_downloads", {"repo": repo})]

    def reset(self) -> None:
        self._call("reset")
