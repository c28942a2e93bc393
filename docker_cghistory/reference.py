"""Image references: parse, normalise, print.

Two readings exist. On the command line a short name means the Chainguard catalog
(``python`` is ``cgr.dev/chainguard/python:latest``), because that is what this tool is for.
In a Dockerfile or compose file the same text means what docker means by it
(``python`` is ``docker.io/library/python:latest``), because that is what the build pulls.
Pure: no I/O, no environment.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from .errors import InvalidReference, sanitize

DEFAULT_REGISTRY = "cgr.dev"
DEFAULT_ORG = "chainguard"
DEFAULT_TAG = "latest"
DOCKER_HUB = "docker.io"

# The grammar of github.com/distribution/reference (reference.go).
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_HOST = rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|\[[0-9a-fA-F:.]+\])(?::[0-9]+)?"
# ``\Z``, not ``$`` (which also matches before a final newline); ASCII ``\w`` as in Go.
_PATH_RE = re.compile(rf"^{_COMPONENT}(?:/{_COMPONENT})*\Z")
_HOST_RE = re.compile(rf"^{_HOST}\Z")
_TAG_RE = re.compile(r"^[\w][\w.-]{0,127}\Z", re.ASCII)
DIGEST_RE = re.compile(r"^sha256:[0-9a-f]{64}\Z")
_MAX_NAME = 255


@dataclass(frozen=True, order=True)
class Reference:
    """A parsed image reference; ``tag`` and ``digest`` may both be set (``name:tag@digest``).

    ``tag`` is what was written, ``None`` when no tag was (both parsers agree), so that a pin
    rewriter can tell ``FROM python@sha256:…`` from ``FROM python:latest@sha256:…``. What the
    registry and the engine are asked for is ``tag_or_latest``.
    """

    registry: str
    repository: str
    tag: str | None = None
    digest: str | None = None

    @property
    def name(self) -> str:
        """``HOST/REPO``: what a digest is appended to."""
        return f"{self.registry}/{self.repository}"

    def __str__(self) -> str:
        text = self.name
        if self.tag:
            text += f":{self.tag}"
        if self.digest:
            text += f"@{self.digest}"
        return text

    def with_digest(self, digest: str, keep_tag: bool = False) -> Reference:
        return Reference(self.registry, self.repository, self.tag if keep_tag else None, digest)

    def with_tag(self, tag: str) -> Reference:
        return Reference(self.registry, self.repository, tag, None)

    @property
    def tag_or_latest(self) -> str:
        """The tag a registry or the engine resolves: the one written, else ``latest``."""
        return self.tag if self.tag is not None else DEFAULT_TAG

    @property
    def tagged(self) -> str:
        """``HOST/REPO:TAG`` with ``tag_or_latest``: how messages name the tag read."""
        return f"{self.name}:{self.tag_or_latest}"

    @property
    def is_docker_hub(self) -> bool:
        return self.registry == DOCKER_HUB


def _split(text: str) -> tuple[str | None, str, str | None, str | None]:
    """Split ``[HOST/]PATH[:TAG][@DIGEST]`` the way docker does, without validating."""
    remainder, _, digest = text.partition("@")
    if "@" in text and not digest:
        raise InvalidReference(f"invalid reference {sanitize(text)!r}: empty digest after '@'")
    host: str | None = None
    first, slash, rest = remainder.partition("/")
    if slash and ("." in first or ":" in first or first == "localhost" or first.startswith("[")):
        host, remainder = first, rest
    path, tag = remainder, None
    last_slash = path.rfind("/")
    colon = path.rfind(":")
    if colon > last_slash:
        path, tag = path[:colon], path[colon + 1 :]
        if not tag:
            raise InvalidReference(f"invalid reference {sanitize(text)!r}: empty tag after ':'")
    return host, path, tag, digest or None


def _validate(text: str, host: str, path: str, tag: str | None, digest: str | None) -> None:
    shown = sanitize(text)
    if not _HOST_RE.match(host):
        raise InvalidReference(f"invalid reference {shown!r}: bad registry host {sanitize(host)!r}")
    if not path or not _PATH_RE.match(path):
        if path and path.lower() != path and _PATH_RE.match(path.lower()):
            raise InvalidReference(
                f"invalid reference {shown!r}: repository names must be lowercase"
            )
        raise InvalidReference(f"invalid reference {shown!r}: bad repository name")
    if len(host) + 1 + len(path) > _MAX_NAME:
        raise InvalidReference(f"invalid reference {shown!r}: name longer than {_MAX_NAME}")
    if tag is not None and not _TAG_RE.match(tag):
        raise InvalidReference(f"invalid reference {shown!r}: bad tag {sanitize(tag)!r}")
    if digest is not None and not DIGEST_RE.match(digest):
        raise InvalidReference(
            f"invalid reference {shown!r}: digest must be sha256: and 64 lowercase hex characters"
        )


def parse_cli(
    text: str,
    registry: str = DEFAULT_REGISTRY,
    org: str = DEFAULT_ORG,
    allow_digest: bool = False,
) -> Reference:
    """Read a reference typed by the user: short names live in ``registry/org``.

    ``python`` and ``python:3.12`` gain ``registry/org/``; ``chainguard/python`` gains
    ``registry/``; a first component that looks like a host is the registry. The tag defaults
    is left ``None`` when none was written; ``Reference.tag_or_latest`` says ``latest``.
    """
    text = text.strip()
    if not text:
        raise InvalidReference("invalid reference: empty image name")
    host, path, tag, digest = _split(text)
    if host is None:
        host = registry
        if "/" not in path and org:
            path = f"{org}/{path}"
    _validate(text, host, path, tag, digest)
    if digest and not allow_digest:
        raise InvalidReference(
            f"{sanitize(text)!r} names a digest; history is kept per tag, "
            f"so give a tag instead (for example {Reference(host, path, tag).tagged})"
        )
    return Reference(host, path, tag, digest)


def parse_docker(text: str) -> Reference:
    """Read a reference as docker does (Dockerfiles, compose files): Docker Hub by default."""
    text = text.strip()
    if not text:
        raise InvalidReference("invalid reference: empty image name")
    host, path, tag, digest = _split(text)
    if host is None or host in (DOCKER_HUB, "index.docker.io", "registry-1.docker.io"):
        # docker.io/python is docker.io/library/python, as with no host at all.
        host = DOCKER_HUB
        if "/" not in path:
            path = f"library/{path}"
    _validate(text, host, path, tag, digest)
    return Reference(host, path, tag, digest)


def familiar(reference: Reference) -> str:
    """The short form docker prints (``python:3.12`` for ``docker.io/library/python:3.12``).

    Unlike docker's ``FamiliarName``, ``docker.io`` is kept when the repository's first
    component would read as a registry host (``docker.io/0.0/x``, not ``0.0/x``): a printed
    name, pasted back, must name the same image.
    """
    text = str(reference)
    first = reference.repository.split("/", 1)[0]
    looks_like_host = "." in first or ":" in first or first == "localhost"
    if reference.registry == DOCKER_HUB and not looks_like_host:
        text = text[len(DOCKER_HUB) + 1 :]
        if text.startswith("library/") and "/" not in reference.repository[len("library/") :]:
            text = text[len("library/") :]
    return text


def host_name(host: str) -> str:
    """The name part of ``HOST[:PORT]`` or ``[IPV6]:PORT``."""
    if host.startswith("["):
        return host[1 : host.index("]")]
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def is_loopback(host: str) -> bool:
    """Whether ``HOST[:PORT]`` is on this machine; dockerd talks plain HTTP to those."""
    name = host_name(host).lower()
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:  # a DNS name such as 127.example.com is not loopback
        return False
