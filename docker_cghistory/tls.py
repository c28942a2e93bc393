"""TLS trust for registries and proxies, built the way docker builds it.

Why: ``requests`` trusts only certifi's bundle, so a registry (or proxy) with a private CA
fails here while ``docker pull`` works. Docker trusts, per host:

1. the host's certs.d folder, ``/etc/docker/certs.d/<host>[:<port>]/`` (the folder is named
   exactly as the registry is addressed: ``reg.example:5000`` when a port is given), and for a
   rootless user ``$XDG_CONFIG_HOME/docker/certs.d/<host>[:<port>]/`` (default
   ``~/.config/docker/certs.d``). ``*.crt`` files are CAs; a ``NAME.cert`` + ``NAME.key`` pair
   is a client certificate presented for mutual TLS (docker's ``ReadCertsDirectory``); a
   ``.cert`` without its ``.key`` (or the reverse) is an error, as in docker;
2. the system trust store;
3. plus, here, certifi's bundle (what ``requests`` users had before).

``REQUESTS_CA_BUNDLE``, ``CURL_CA_BUNDLE``, ``SSL_CERT_FILE`` and ``SSL_CERT_DIR``, when set,
replace 2 and 3: the user chose them. The certs.d folder applies in every case.

On Linux the system store is OpenSSL's default locations (with the fallback candidates
``truststore`` uses); elsewhere it is ``truststore``'s platform verifier. ``truststore`` is not
used on Linux because its context takes a lock around every handshake and reloads the
system bundle for every connection, which would serialise the parallel history reads.

Verification is never turned off: contexts require a valid chain and check the host name.
Import-light (``ssl`` and ``truststore`` load inside the functions): completion imports
modules near this one on every TAB.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import threading
from typing import TYPE_CHECKING

from . import log
from .errors import ConfigError, sanitize

if TYPE_CHECKING:
    import ssl

SYSTEM_CERTS_D = "/etc/docker/certs.d"
TRUST_VARIABLES = ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE", "SSL_CERT_DIR")
# Where distributions keep their CA bundle, for Pythons whose OpenSSL looks elsewhere.
_CA_FILE_CANDIDATES = (
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",
    "/etc/ssl/cert.pem",
    "/etc/ssl/ca-bundle.pem",
)
_SAFE_FOLDER = re.compile(r"[A-Za-z0-9._\-\[\]:%]+")

_lock = threading.Lock()
_contexts: dict[tuple[str, ...], ssl.SSLContext] = {}
# Host names whose server asked us for a client certificate during a handshake.
_asked_for_certificate: set[str] = set()
_HANDSHAKE, _CERTIFICATE_REQUEST = 22, 13  # TLS content type, handshake message type


def _running_as_root() -> bool:
    geteuid = getattr(os, "geteuid", None)
    return geteuid is not None and geteuid() == 0


def certs_d_roots() -> list[str]:
    """The certs.d folders docker reads: ``/etc/docker/certs.d``, and the rootless one."""
    roots = [SYSTEM_CERTS_D]
    if not _running_as_root():
        config = os.environ.get("XDG_CONFIG_HOME") or os.path.join(
            os.path.expanduser("~"), ".config")
        roots.append(os.path.join(config, "docker", "certs.d"))
    return roots


def certs_d_dirs(host_with_port: str) -> list[str]:
    """The certs.d folders for ``host[:port]``, in the order they are read.

    ``ROOT/<host>`` or ``ROOT/<host>:<port>``: named exactly as the registry is addressed, as
    docker does (no fallback from ``host:port`` to ``host``). A name that is not a plain host
    (``..``, a ``/``) has none: it would escape certs.d.
    """
    if not _SAFE_FOLDER.fullmatch(host_with_port) or not host_with_port.strip("."):
        return []
    return [os.path.join(root, host_with_port) for root in certs_d_roots()]


def certs_d_hint(host_with_port: str) -> str:
    """Where a user puts the CA for this host (the path docker uses as root)."""
    return f"{SYSTEM_CERTS_D}/{sanitize(host_with_port)}/ca.crt"


def ssl_context_for(host_with_port: str) -> ssl.SSLContext:
    """The verifying TLS context for ``host[:port]`` (a registry, token server or proxy).

    Cached: loading the system bundle costs tenths of a second on a slow machine, and
    requests asks on every request. Hosts without a certs.d folder share one context.
    """
    folders = tuple(folder for folder in certs_d_dirs(host_with_port) if os.path.isdir(folder))
    key = (*(os.environ.get(name, "") for name in TRUST_VARIABLES), *folders)
    with _lock:
        context = _contexts.get(key)
        if context is None:
            context = _build(folders)
            _contexts[key] = context
        return context


def clear_cache() -> None:
    """Forget the contexts (tests change certs.d and the environment between runs)."""
    with _lock:
        _contexts.clear()
        _asked_for_certificate.clear()


def _new_context() -> ssl.SSLContext:
    import ssl

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # CERT_REQUIRED, check_hostname
    _harden(context)
    with contextlib.suppress(AttributeError, TypeError, ValueError):
        context._msg_callback = _watch  # CPython's message hook (3.8+); optional
    return context


def _watch(conn: object, direction: str, version: object, content_type: object,
           message_type: object, data: bytes) -> None:
    """Note the servers that ask for a client certificate (a CertificateRequest).

    Why: a TLS 1.3 server checks the client certificate after the client considers the
    handshake done; when it has none, the client often sees the connection end (EOF) instead
    of the server's alert. Knowing that the server asked turns that EOF into "the server
    requires a client certificate" at once, instead of retries and "connection reset".
    """
    if direction == "read" and content_type == _HANDSHAKE and (
            message_type == _CERTIFICATE_REQUEST):
        host = getattr(conn, "server_hostname", None)
        if host:
            _asked_for_certificate.add(str(host))


def missing_client_certificate(host: str, host_with_port: str) -> bool:
    """Whether ``host``'s server asked for a client certificate and certs.d has none for it."""
    if host not in _asked_for_certificate:
        return False
    return not getattr(ssl_context_for(host_with_port), "cghistory_client_certificate", None)


def _harden(context: ssl.SSLContext) -> None:
    import ssl

    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.options |= ssl.OP_NO_COMPRESSION
    # Go accepts a certs.d CA that is an intermediate; OpenSSL needs this flag for that.
    context.verify_flags |= getattr(ssl, "VERIFY_X509_PARTIAL_CHAIN", 0)
    with contextlib.suppress(AttributeError, ValueError):
        context.post_handshake_auth = True  # TLS 1.3 servers may ask for the client cert later


def _user_trust(context: ssl.SSLContext) -> bool:
    """Load the bundles named by the environment; ``False`` when none is set."""
    import ssl

    chosen = False
    loaded: set[str] = set()  # this machine names one bundle in three variables
    for name in TRUST_VARIABLES:
        value = os.environ.get(name, "")
        if not value:
            continue
        chosen = True
        paths = value.split(os.pathsep) if name == "SSL_CERT_DIR" else [value]
        for path in paths:
            if not path or (name == "SSL_CERT_DIR" and not os.path.isdir(path)):
                continue  # OpenSSL skips missing entries of its search path too
            if os.path.realpath(path) in loaded:
                continue
            loaded.add(os.path.realpath(path))
            try:
                if os.path.isdir(path):
                    context.load_verify_locations(capath=path)
                else:
                    context.load_verify_locations(cafile=path)
            except (OSError, ssl.SSLError, ValueError):
                raise ConfigError(
                    f"{name} names {sanitize(path)}, which holds no readable PEM certificates; "
                    f"fix or unset {name}"
                ) from None
    return chosen


def _system_context() -> ssl.SSLContext:
    """A context trusting the platform's store (see the module docstring for Linux)."""
    import ssl

    if not sys.platform.startswith("linux"):
        try:
            import truststore
        except ImportError:
            pass
        else:
            context = truststore.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            _harden(context)
            return context
    context = _new_context()
    defaults = ssl.get_default_verify_paths()
    if defaults.cafile or (defaults.capath and _holds_hashed_certs(defaults.capath)):
        context.set_default_verify_paths()
    else:
        for candidate in _CA_FILE_CANDIDATES:
            if os.path.isfile(candidate):
                context.load_verify_locations(cafile=candidate)
                break
    return context


def _holds_hashed_certs(folder: str) -> bool:
    try:
        return any(re.fullmatch(r"[0-9a-fA-F]{8}\.\d+", name) for name in os.listdir(folder))
    except OSError:
        return False


def _build(folders: tuple[str, ...]) -> ssl.SSLContext:
    context = _new_context()
    if not _user_trust(context):
        context = _system_context()
        try:
            import certifi
        except ImportError:
            pass
        else:
            try:
                context.load_verify_locations(cafile=certifi.where())
            except OSError:
                log.debug("certifi's bundle is missing; using the system store only")
    for folder in folders:
        _load_certs_d(context, folder)
    return context


def _no_password() -> bytes:
    """Refuse encrypted keys instead of letting OpenSSL prompt on the terminal."""
    raise ValueError("encrypted key")


def _load_certs_d(context: ssl.SSLContext, folder: str) -> None:
    """docker's ``ReadCertsDirectory``: CAs from ``*.crt``, a client pair from ``*.cert/.key``."""
    import ssl

    try:
        names = sorted(os.listdir(folder))
    except (FileNotFoundError, NotADirectoryError):
        return
    except OSError as error:  # e.g. a root-only folder read by a rootless user
        log.debug(f"cannot read {folder}: {error.strerror}")
        return
    pair: tuple[str, str] | None = None
    for name in names:
        path = os.path.join(folder, name)
        if name.endswith(".crt"):
            try:
                context.load_verify_locations(cafile=path)
                log.debug(f"trusting the CA certificates in {path}")
            except (OSError, ssl.SSLError, ValueError):
                # docker skips what is not PEM (AppendCertsFromPEM) instead of failing
                log.debug(f"{path} holds no readable PEM certificate; skipped")
        elif name.endswith(".cert"):
            key = name[: -len(".cert")] + ".key"
            if key not in names:
                raise ConfigError(
                    f"missing key {os.path.join(folder, key)} for the client certificate "
                    f"{path} (CA certificates must end in .crt)"
                )
            pair = pair or (path, os.path.join(folder, key))
        elif name.endswith(".key") and name[: -len(".key")] + ".cert" not in names:
            raise ConfigError(f"missing client certificate {path[: -len('.key')]}.cert "
                              f"for the key {path}")
    if pair is not None:
        certificate, key = pair
        try:
            context.load_cert_chain(certificate, key, password=_no_password)
        except (OSError, ssl.SSLError, ValueError) as error:
            why = getattr(error, "strerror", None) or getattr(error, "reason", None) or (
                "not a matching PEM certificate and unencrypted key")
            raise ConfigError(
                f"cannot load the client certificate {certificate} with {key}: "
                f"{sanitize(str(why).lower().replace('_', ' '))}"
            ) from None
        context.cghistory_client_certificate = certificate  # type: ignore[attr-defined]
        log.debug(f"presenting the client certificate {certificate}")
