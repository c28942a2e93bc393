"""Credentials for a registry host, resolved the way the docker CLI resolves them.

Order: ``credHelpers[host]``, then ``credsStore``, then ``auths`` (``auth`` or
``identitytoken``), then anonymous. A helper answering the username ``<token>`` hands over an
identity (OAuth2 refresh) token. ``Credential`` never shows its secret in ``repr``, logs or
errors.
"""

from __future__ import annotations

import base64
import binascii
import json
import subprocess
from dataclasses import dataclass, field

from . import dockerconfig
from .errors import ConfigError, sanitize
from .programs import find_program, is_plain_name

DOCKER_HUB_SERVER = "https://index.docker.io/v1/"
_HUB_HOSTS = ("docker.io", "index.docker.io", "registry-1.docker.io")
IDENTITY_TOKEN_USER = "<token>"
HELPER_TIMEOUT = 30.0


@dataclass(frozen=True)
class Credential:
    """What we present to a token endpoint, and where it came from (for error messages)."""

    source: str
    username: str | None = None
    secret: str | None = field(default=None, repr=False)
    identity_token: str | None = field(default=None, repr=False)
    from_helper: bool = False

    @property
    def anonymous(self) -> bool:
        return not (self.secret or self.identity_token)

    @property
    def fingerprint(self) -> str:
        """A stable, non-reversible identity: token caches are keyed by it."""
        import hashlib

        material = "\0".join(
            [self.username or "", self.secret or "", self.identity_token or ""]
        ).encode()
        return hashlib.sha256(b"cghistory-credential\0" + material).hexdigest()[:32]

    @property
    def key_material(self) -> bytes:
        """Bytes only the holder of this credential has: cached tokens are sealed with them."""
        return "\0".join([self.secret or "", self.identity_token or ""]).encode()

    def engine_auth(self) -> dict[str, str] | None:
        """The ``auth_config`` docker-py passes to the engine for a pull (``None``: anonymous).

        Here rather than on the registry client: it says how this credential is presented
        to the engine, which never sees our registry tokens.
        """
        if self.identity_token:
            return {"identitytoken": self.identity_token}
        if self.secret is not None:
            return {"username": self.username or "", "password": self.secret}
        return None


ANONYMOUS = Credential(source="anonymous")


def _server_for_helper(host: str) -> str:
    return DOCKER_HUB_SERVER if host in _HUB_HOSTS else host


def call_helper(
    helper: str, server: str, timeout: float = HELPER_TIMEOUT
) -> tuple[str, str] | None:
    """Run ``docker-credential-<helper> get``; ``None`` when it has nothing for ``server``.

    The helper is looked up on PATH's absolute entries only (``programs.find_program``), so a
    ``docker-credential-*`` in the current folder never runs, as with the docker CLI; a name
    with a folder part (``../../evil/x``) would be a path, so it is refused outright.
    """
    if not is_plain_name(helper):
        raise ConfigError(
            f"credential helper name {sanitize(helper)!r} is not a plain program name "
            f"(configured in {dockerconfig.config_path()})"
        )
    program = f"docker-credential-{helper}"
    shown = sanitize(program)  # a name from the config file may hold control characters
    path = find_program(program)
    if path is None:
        raise ConfigError(
            f"credential helper {shown} is not on PATH (configured in "
            f"{dockerconfig.config_path()})"
        )
    try:
        result = subprocess.run(
            [path, "get"], input=server.encode(), capture_output=True, timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise ConfigError(f"credential helper {shown} did not answer in {timeout:g}s") from None
    except OSError as error:
        raise ConfigError(f"cannot run credential helper {shown}: {error.strerror}") from None
    if result.returncode != 0:
        # The protocol's "not found" answer; any other failure text may hold secrets or
        # terminal escapes, so it is not echoed.
        if b"credentials not found" in result.stdout + result.stderr:
            return None
        raise ConfigError(
            f"credential helper {shown} failed (exit {result.returncode}) for {server}"
        )
    try:
        answer = json.loads(result.stdout)
        username, secret = answer["Username"], answer["Secret"]
    except (ValueError, KeyError, TypeError):
        raise ConfigError(f"credential helper {shown} answered something that is not "
                          "the credential-helper JSON") from None
    if not isinstance(username, str) or not isinstance(secret, str):
        raise ConfigError(f"credential helper {shown} answered a non-string credential")
    if not secret:
        return None
    return username, secret


def _from_helper(helper: str, host: str, how: str, timeout: float) -> Credential | None:
    found = call_helper(helper, _server_for_helper(host), timeout)
    if found is None:
        return None
    username, secret = found
    source = f"{how} (docker-credential-{helper})"
    if username == IDENTITY_TOKEN_USER:
        return Credential(source, None, None, identity_token=secret, from_helper=True)
    return Credential(source, username, secret, from_helper=True)


def _auths_entry(host: str) -> tuple[str, dict] | None:
    wanted = {host} | (set(_HUB_HOSTS) if host in _HUB_HOSTS else set())
    auths = dockerconfig.section("auths")
    # docker's file store: the exact key first, then any key naming the same host.
    if isinstance(auths.get(host), dict):
        return host, auths[host]
    for server, entry in auths.items():
        if dockerconfig.hostname_of(server) in wanted and isinstance(entry, dict):
            return server, entry
    return None


def _from_auths(host: str) -> Credential | None:
    found = _auths_entry(host)
    if found is None:
        return None
    server, entry = found
    source = f"auths[{server!r}] in {dockerconfig.config_path()}"
    identity = entry.get("identitytoken")
    if isinstance(identity, str) and identity:
        return Credential(source, None, None, identity_token=identity)
    encoded = entry.get("auth")
    if not encoded:
        username, password = entry.get("username"), entry.get("password")
        if isinstance(username, str) and isinstance(password, str) and password:
            return Credential(source, username, password)
        return None
    if not isinstance(encoded, str):
        raise ConfigError(f"{source}: 'auth' must be a string")
    try:
        decoded = base64.b64decode(encoded, validate=True).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise ConfigError(f"{source}: 'auth' is not base64 of user:password") from None
    username, colon, password = decoded.partition(":")
    if not colon:
        raise ConfigError(f"{source}: 'auth' is not base64 of user:password")
    if username == IDENTITY_TOKEN_USER:
        return Credential(source, None, None, identity_token=password)
    return Credential(source, username, password)


def resolve(host: str, helper_timeout: float = HELPER_TIMEOUT) -> Credential:
    """The credential docker would use for ``host``; anonymous when there is none.

    ``helper_timeout`` bounds each credential helper run (completion cannot wait for one).
    """
    helpers = dockerconfig.section("credHelpers")
    for candidate in (host, *(_HUB_HOSTS if host in _HUB_HOSTS else ())):
        helper = helpers.get(candidate)
        if helper:
            found = _from_helper(str(helper), host, "credHelpers", helper_timeout)
            return found or _from_auths(host) or ANONYMOUS
    store = dockerconfig.load().get("credsStore")
    if store:
        found = _from_helper(str(store), host, "credsStore", helper_timeout)
        if found:
            return found
    return _from_auths(host) or ANONYMOUS
