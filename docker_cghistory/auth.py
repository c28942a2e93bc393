"""Registry authentication: the 401 challenge, the token exchange, and where tokens are kept.

Why it looks like this:
- The 401 challenge decides where tokens come from (realm, service, scope); nothing is
  hard-coded. The realm learned from a challenge is remembered on disk per registry, signed
  (``cache.write_signed_json``: a planted entry would send credentials elsewhere), and tokens
  per (registry, repository, credential), sealed with the credential, so a second run goes
  straight to the data.
- Concurrent first requests (parallel history windows, pin's resolvers) need the realm before
  they can fetch tokens. ``RealmDiscovery`` lets exactly one of them probe (send its request
  without a token; the 401 names the realm) while the others wait for that probe to end.
- The exchange follows docker and Chainguard: Basic credentials on the token endpoint, the
  helper's secret as a bearer token when Basic is refused, an identity token as an OAuth2
  refresh-token POST; a registry that answers with a Basic challenge gets Basic directly.
- A realm that would send credentials in clear, or to a disguised host, is refused.
"""

from __future__ import annotations

import base64
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import urlsplit

from . import cache, log
from .credentials import Credential
from .errors import AuthError, RegistryError
from .reference import host_name, is_loopback
from .transport import KEEP, USER_AGENT, Answer, Body

TOKEN_MARGIN = 30.0
DEFAULT_TOKEN_LIFETIME = 60.0
REALM_MAX_AGE = 86400.0
_CHALLENGE_PARAM = re.compile(r'(\w+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]+))')


@dataclass(frozen=True)
class Challenge:
    """A ``WWW-Authenticate`` header, parsed."""

    scheme: str
    realm: str = ""
    service: str = ""


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


def bearer_challenge(answer: Answer) -> Challenge | None:
    """The token challenge of a 401 answer; ``None`` for any other answer or scheme."""
    if answer.status != 401:
        return None
    challenge = parse_challenge(answer.header("www-authenticate"))
    if challenge is None or challenge.scheme != "bearer" or not challenge.realm:
        return None
    return challenge


def hint_for(registry: str) -> str:
    """What to run to give us credentials for ``registry``."""
    if host_name(registry) == "cgr.dev" or registry.endswith(".cgr.dev"):
        return "run 'chainctl auth configure-docker' (or 'docker login cgr.dev' with a pull token)"
    return f"run 'docker login {registry}'"


class Send(Protocol):
    """``Transport.send``: one logical request, retried."""

    def __call__(self, method: str, url: str, *, headers: dict[str, str] | None = None,
                 params: dict[str, str] | None = None, data: dict[str, str] | None = None,
                 what: str, body: Body = KEEP) -> Answer: ...


class TokenStore:
    """Registry tokens per repository: in memory, and on disk sealed with the credential.

    A token stored on disk is only usable by the holder of the credential it was issued for
    (``Credential.key_material``), and is filed under the credential's fingerprint.
    """

    def __init__(self, registry: str, credential: Callable[[], Credential],
                 use_disk_cache: bool) -> None:
        self._registry = registry
        self._credential = credential
        self._use_disk_cache = use_disk_cache
        self._tokens: dict[str, str] = {}

    def _file(self, repository: str) -> str:
        return cache.key_name(self._registry, repository, self._credential().fingerprint)

    def get(self, repository: str) -> str | None:
        if repository in self._tokens:
            return self._tokens[repository]
        if not self._use_disk_cache:
            return None
        entry = cache.read_json("tokens", self._file(repository))
        if not isinstance(entry, dict) or not isinstance(entry.get("sealed"), str):
            return None
        expires = entry.get("expires")
        if not isinstance(expires, (int, float)) or expires - TOKEN_MARGIN < time.time():
            return None
        token = cache.unseal(entry["sealed"], self._credential().key_material)
        if token:
            self._tokens[repository] = token
            log.debug(f"token for {repository} from the cache")
        return token

    def put(self, repository: str, token: str, lifetime: float) -> None:
        self._tokens[repository] = token
        if self._use_disk_cache and lifetime > TOKEN_MARGIN:
            cache.write_json(
                "tokens", self._file(repository),
                {"expires": time.time() + lifetime,
                 "sealed": cache.seal(token, self._credential().key_material)},
            )

    def drop(self, repository: str) -> None:
        self._tokens.pop(repository, None)
        if self._use_disk_cache:
            cache.delete("tokens", self._file(repository))


class RealmDiscovery:
    """The registry's token challenge: remembered, or learned by exactly one probe at a time.

    All state (the challenge, whether a probe is in flight) changes under ``_changed``; the
    probe itself runs outside it, so the waiters are woken by ``notify_all`` in the one
    ``finally`` that ends a probe, whatever way it ends.
    """

    def __init__(self, registry: str, use_disk_cache: bool) -> None:
        self._registry = registry
        self._use_disk_cache = use_disk_cache
        self._challenge: Challenge | None = None
        self._probing = False
        self._changed = threading.Condition()

    def known(self) -> Challenge | None:
        """The challenge learned in this process, or a signed one from the disk cache."""
        with self._changed:
            if self._challenge is None and self._use_disk_cache:
                entry = cache.read_signed_json("realms", cache.key_name(self._registry),
                                               max_age=REALM_MAX_AGE)
                if isinstance(entry, dict) and entry.get("scheme") == "bearer":
                    self._challenge = Challenge("bearer", str(entry.get("realm", "")),
                                                str(entry.get("service", "")))
            return self._challenge

    def remember(self, challenge: Challenge) -> None:
        with self._changed:
            self._challenge = challenge
            if self._use_disk_cache:
                cache.write_signed_json("realms", cache.key_name(self._registry),
                                        challenge.__dict__)

    def challenge(self, probe: Callable[[], Answer]) -> tuple[Challenge | None, Answer | None]:
        """(the bearer challenge, the probe's answer if this caller probed).

        Known: returned at once. Unknown: the first caller runs ``probe`` (its own request,
        without a token) and remembers the challenge of its 401; callers arriving meanwhile
        wait for that probe to end and take what it learned, which may be nothing (the
        registry answered without a challenge, or the probe failed): they then go on without
        a token, as the probe did, rather than probe one after another.
        """
        with self._changed:
            waited = False
            while self._probing:
                waited = True
                self._changed.wait()
            known = self.known()
            if known is not None or waited:
                return known, None
            self._probing = True
        learned: Challenge | None = None
        try:
            answer = probe()
            learned = bearer_challenge(answer)
            return learned, answer
        finally:
            with self._changed:
                if learned is not None:
                    self.remember(learned)
                self._probing = False
                self._changed.notify_all()


class Authenticator:
    """Sends registry requests with the repository's token, fetching it as the 401 says."""

    def __init__(self, registry: str, *, plain_http: bool, credential: Callable[[], Credential],
                 send: Send, use_disk_cache: bool) -> None:
        self.registry = registry
        self.plain_http = plain_http
        self._credential = credential
        self._send = send
        self.tokens = TokenStore(registry, credential, use_disk_cache)
        self.realms = RealmDiscovery(registry, use_disk_cache)

    def request(
        self, method: str, url: str, repository: str, *, what: str,
        params: dict[str, str] | None = None, headers: dict[str, str] | None = None,
        body: Body = KEEP,
    ) -> Answer:
        """``url`` with the repository's token, following a 401's challenge once."""

        def send(token: str | None) -> Answer:
            sent = dict(headers or {})
            if token:
                sent["Authorization"] = f"Bearer {token}"
            return self._send(method, url, headers=sent, params=params, what=what, body=body)

        token = self.tokens.get(repository)
        probed: Answer | None = None
        if token is None:
            challenge, probed = self.realms.challenge(lambda: send(None))
            if challenge is not None and probed is None:
                token = self.fetch_token(challenge, repository)
        answer = probed if probed is not None else send(token)
        if answer.status != 401:
            return answer
        challenge = bearer_challenge(answer)
        if challenge is None:
            scheme = parse_challenge(answer.header("www-authenticate"))
            if scheme is not None and scheme.scheme == "basic":
                return self._basic(method, url, dict(headers or {}), params, what, body)
            return answer
        if token:
            log.debug(f"token for {repository} refused; fetching a new one")
            self.tokens.drop(repository)
        if probed is None:  # a probe's challenge is remembered by ``RealmDiscovery``
            self.realms.remember(challenge)
        return send(self.fetch_token(challenge, repository))

    def _basic(self, method: str, url: str, headers: dict[str, str],
               params: dict[str, str] | None, what: str, body: Body = KEEP) -> Answer:
        """Registries that skip tokens and take Basic credentials on every request."""
        credential = self._credential()
        if credential.secret is None:
            return Answer(401, {}, b"", url)
        basic = base64.b64encode(f"{credential.username}:{credential.secret}".encode()).decode()
        return self._send(method, url, headers=dict(headers, Authorization=f"Basic {basic}"),
                          params=params, what=what, body=body)

    def check_realm(self, realm: str) -> str:
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

    def fetch_token(self, challenge: Challenge, repository: str) -> str:
        """Trade the credential for a registry token scoped to ``repository:pull``."""
        realm = self.check_realm(challenge.realm)
        query = {"scope": f"repository:{repository}:pull"}
        if challenge.service:
            query["service"] = challenge.service
        credential = self._credential()
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
        self.tokens.put(repository, token, float(lifetime))
        return token
