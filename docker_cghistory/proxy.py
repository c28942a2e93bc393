"""Which proxy a registry request goes through, decided the way docker decides it.

Why not let ``requests`` read the environment: its ``NO_PROXY`` matching has gaps that send
traffic where docker would not. ``ample.com`` matches ``example.com`` (a suffix test without a
dot boundary); ``*.example.com``, ``IP:port`` and IPv6 entries are ignored; loopback addresses
go through the proxy; and lower-case variables win over upper-case ones, the reverse of Go.
This module follows Go's ``golang.org/x/net/http/httpproxy`` (what the docker CLI and dockerd
use): ``HTTPS_PROXY`` for https URLs, ``HTTP_PROXY`` for http URLs (upper case first, empty
values skipped), ``NO_PROXY`` entries that are ``*``, IP addresses, CIDR ranges, domains
(with their sub-domains), ``*.domain``, each optionally with ``:port``; ``localhost`` and
loopback addresses never use a proxy. Two additions, both from curl: ``ALL_PROXY`` is the
fallback when no per-scheme variable is set, and a leading dot (``.example.com``) matches the
domain itself as well as its sub-domains (Go matches sub-domains only).

Import-light: completion imports this module on every TAB.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

DEFAULT_PORTS = {"http": 80, "https": 443, "socks4": 1080, "socks4a": 1080, "socks5": 1080,
                 "socks5h": 1080}


@dataclass(frozen=True)
class Proxy:
    """The proxy chosen for one URL, and the variable that chose it."""

    url: str  # may hold user:password: for the transport only, never for a message
    source: str  # e.g. "HTTPS_PROXY"

    @property
    def shown(self) -> str:
        """``scheme://host:port``: safe to print (no user-info)."""
        return redact(self.url)

    @property
    def host_with_port(self) -> str:
        """``host:port`` of the proxy, the name of its certs.d folder."""
        parts = urlsplit(self.url)
        host = parts.hostname or ""
        if ":" in host:
            host = f"[{host}]"
        return f"{host}:{_port(parts)}"


def redact(proxy_url: str) -> str:
    """A proxy address without its user-info, with the port the transport will use."""
    try:
        parts = urlsplit(proxy_url)
        host = parts.hostname
    except ValueError:
        host = None
    if not host:
        return "(an invalid proxy address)"
    if ":" in host:
        host = f"[{host}]"
    from .errors import sanitize

    return sanitize(f"{parts.scheme}://{host}:{_port(parts)}")


def _port(parts) -> int | str:
    try:
        return parts.port or DEFAULT_PORTS.get(parts.scheme.lower(), 80)
    except ValueError:
        return "?"


def _setting(environ: Mapping[str, str], *names: str) -> tuple[str, str] | None:
    """The first non-empty variable of ``names`` (Go's ``getEnvAny``), with its name."""
    for name in names:
        value = environ.get(name, "").strip()
        if value:
            return value, name
    return None


def _with_scheme(value: str) -> str:
    """``proxy:3128`` means ``http://proxy:3128`` (Go's ``parseProxy``, curl, requests)."""
    return value if "://" in value else f"http://{value}"


def select(url: str, environ: Mapping[str, str] | None = None) -> Proxy | None:
    """The proxy for ``url`` according to the environment, ``None`` to connect directly."""
    environ = os.environ if environ is None else environ
    try:
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        host = parts.hostname
        port = parts.port or DEFAULT_PORTS.get(scheme, 0)
    except ValueError:
        return None
    if scheme not in ("http", "https") or not host:
        return None
    chosen = (_setting(environ, f"{scheme.upper()}_PROXY", f"{scheme}_proxy")
              or _setting(environ, "ALL_PROXY", "all_proxy"))
    if chosen is None:
        return None
    no_proxy = _setting(environ, "NO_PROXY", "no_proxy")
    if bypass(host, port, no_proxy[0] if no_proxy else ""):
        return None
    return Proxy(_with_scheme(chosen[0]), chosen[1])


def proxy_for(url: str, environ: Mapping[str, str] | None = None) -> str | None:
    """The proxy URL (possibly with user-info) for ``url``, or ``None`` for a direct connection."""
    chosen = select(url, environ)
    return chosen.url if chosen else None


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return None


def _ascii(name: str) -> str:
    """IDNA form of a host name, so ``示例.com`` and ``xn--fsq092h.com`` compare equal."""
    if name.isascii():
        return name
    labels = []
    for label in name.split("."):
        try:
            labels.append(label.encode("idna").decode("ascii") if label else label)
        except UnicodeError:
            return name
    return ".".join(labels)


def _split_entry(entry: str) -> tuple[str, str]:
    """``host:port``, ``[v6]:port``, ``v6``, ``host`` → (host, port or "")."""
    if entry.startswith("["):
        end = entry.find("]")
        if end < 0:
            return "", ""
        rest = entry[end + 1:]
        if rest and not rest.startswith(":"):
            return "", ""
        return entry[1:end], rest[1:]
    if entry.count(":") == 1:
        name, _, port = entry.partition(":")
        return name, port
    return entry, ""


def bypass(host: str, port: int, no_proxy: str) -> bool:
    """Whether ``host:port`` is reached directly under this ``NO_PROXY`` value."""
    host = _ascii(host.strip().strip("[]").lower())
    ip = _ip(host)
    if host == "localhost" or (ip is not None and ip.is_loopback):
        return True
    for raw in no_proxy.split(","):
        entry = raw.strip().lower()
        if not entry:
            continue
        if entry == "*":
            return True
        if "/" in entry:
            try:
                network = ipaddress.ip_network(entry, strict=False)
            except ValueError:
                continue
            if ip is not None and ip in network:
                return True
            continue
        name, entry_port = _split_entry(entry)
        if not name or (entry_port and entry_port != str(port)):
            continue
        entry_ip = _ip(name)
        if entry_ip is not None:
            if ip is not None and entry_ip == ip:
                return True
            continue
        # "*.example.com": sub-domains only (Go); ".example.com": the domain too (curl).
        subdomains_only = name.startswith("*.")
        domain = _ascii(name.lstrip("*").lstrip("."))
        if domain and (host.endswith("." + domain) or (host == domain and not subdomains_only)):
            return True
    return False
