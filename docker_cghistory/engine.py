"""The Docker engine adapter: connect, pull, tag, inspect, remove, and the digests present.

Why it looks like this:
- docker-py is imported inside the functions that talk to the engine: the listing looks up
  local images in a background thread (``local.py``), so the ~17 ms import stays off its
  critical path, and metadata/completion never pay for it.
- Where the engine is (``DOCKER_HOST``, the CLI's contexts) is ``endpoint``'s business, and
  drawing the pull on a terminal is ``progress``'s: this module only talks to the engine.
- Credentials are passed explicitly (``auth_config``), resolved by our resolver, so the engine
  pulls with exactly what the history was read with; an anonymous pull sends an empty auth
  rather than letting docker-py consult the config a second time.
- Everything the engine or registry says is foreign text: sanitized, query strings of URLs
  (signed CDN links) dropped, and no credential ever reaches a message or the debug log.
  docker-py's failures become our one-line errors in one place, ``engine_failure``.
- The pure parts (failure classification, RepoDigests matching) are tested without an engine.
"""

from __future__ import annotations

import contextlib
import json
import re
import threading
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from . import log
from .endpoint import Endpoint, resolve_endpoint
from .errors import AuthError, CghistoryError, EngineError, RegistryError, sanitize
from .progress import Event
from .reference import Reference, familiar, parse_docker

TIMEOUT = 60.0
LOCAL_TIMEOUT = 1.0
# A version docker-py accepts without asking the engine; only unversioned paths are used then.
_UNPROBED_VERSION = "1.24"
_URL_QUERY = re.compile(r"(\bhttps?://[^\s\"'?]+)\?[^\s\"']*")
_AUTH_WORDS = ("unauthorized", "authentication required", "no basic auth credentials",
               "access denied", "pull access denied", "denied:", "forbidden", "insufficient_scope")
_POLICY_WORDS = ("cooldown", "policy")


# --- failures -----------------------------------------------------------------------------


def scrub(text: object, limit: int = 300) -> str:
    """Foreign text made printable: one line, no control characters, no URL query strings."""
    return sanitize(_URL_QUERY.sub(r"\1?...", str(text)), limit=limit)


def _reason(error: BaseException) -> str:
    """The most specific cause in an exception chain (``No such file or directory``)."""
    seen: set[int] = set()
    current: BaseException | None = error
    best = ""
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.strerror:
            return current.strerror
        name = type(current).__name__
        if "Timeout" in name:
            best = best or "timed out"
        for arg in getattr(current, "args", ()):
            if isinstance(arg, BaseException) and id(arg) not in seen:
                nested = _reason(arg)
                if nested and nested != type(arg).__name__:
                    return nested
        current = current.__cause__ or current.__context__
    return best or type(error).__name__


def unreachable(endpoint: Endpoint, error: BaseException) -> EngineError:
    """The engine did not answer at all: name where we looked and the deepest cause."""
    return EngineError(
        f"cannot reach the Docker engine at {endpoint.shown}: {scrub(_reason(error), 120)}"
    )


def classify_pull_failure(
    message: str, target: str, *, status: int | None = None,
    credential_source: str = "anonymous", hint: str = "",
) -> CghistoryError:
    """Turn the engine's account of a failed pull into one actionable line.

    The engine relays the registry's refusal as text (and sometimes a status); the words
    decide: a policy (Chainguard's cooldown) is passed through, a refusal names the credential
    that was used, a full disk says so, anything else is the engine's failure.
    """
    text = scrub(message)
    lower = message.lower()
    if "no space left on device" in lower:
        return EngineError(f"the Docker engine ran out of disk space pulling {target}: {text}")
    if any(word in lower for word in _POLICY_WORDS):
        return AuthError(f"the registry refused {target} by policy: {text}")
    if status in (401, 403) or any(word in lower for word in _AUTH_WORDS):
        suffix = f"; {hint}" if hint else ""
        return AuthError(
            f"the registry refused to let the Docker engine pull {target} with "
            f"{credential_source}: {text}{suffix}"
        )
    if "toomanyrequests" in lower or status == 429:
        return RegistryError(f"the registry is throttling pulls of {target}: {text}")
    if "manifest unknown" in lower or "not found" in lower or status == 404:
        return RegistryError(f"the registry does not have {target}: {text}")
    return EngineError(f"the Docker engine failed to pull {target}: {text}")


def _explanation(error: Any) -> str:
    """What docker-py's ``APIError`` carries from the engine: its message, not the URL."""
    explanation = getattr(error, "explanation", None)
    if isinstance(explanation, bytes):
        explanation = explanation.decode("utf-8", "replace")
    return str(explanation) if explanation else type(error).__name__


def engine_failure(error: Exception, endpoint: Endpoint, failed: str) -> CghistoryError | None:
    """docker-py's or requests' failure as our one line, ``None`` for anything else.

    The one place docker-py's exceptions are read: an engine that answered with an error says
    so in its ``explanation``; a refused or silent connection is ``unreachable``; any other
    client failure gives its deepest cause. ``failed`` is the predicate of the sentence
    ("failed to tag x:y"), so the line names what we were doing.
    """
    import requests
    from docker.errors import APIError, DockerException

    if isinstance(error, APIError):
        return EngineError(f"the Docker engine {failed}: {scrub(_explanation(error))}")
    if isinstance(error, (requests.exceptions.ConnectionError, requests.exceptions.Timeout)):
        return unreachable(endpoint, error)
    if isinstance(error, (DockerException, requests.exceptions.RequestException)):
        return EngineError(f"the Docker engine {failed}: {scrub(_reason(error))}")
    return None


# --- pure helpers on engine answers ---------------------------------------------------------


def _normal(text: str) -> Reference | None:
    try:
        return parse_docker(text)
    except CghistoryError:
        return None


def repo_digests(image: Mapping[str, Any], name: str) -> list[str]:
    """The digests ``image`` is known by in repository ``name`` (``HOST/REPO``)."""
    found = []
    for entry in image.get("RepoDigests") or ():
        parsed = _normal(entry) if isinstance(entry, str) else None
        if parsed is not None and parsed.digest and parsed.name == name:
            found.append(parsed.digest)
    return found


def has_repo_digest(image: Mapping[str, Any], name: str, digest: str) -> bool:
    """Whether the engine's image record carries ``name@digest``: proof of what was pulled."""
    return digest in repo_digests(image, name)


def local_digests_of(images: list[Mapping[str, Any]], name: str) -> set[str]:
    """Digests of ``name`` present in an ``/images/json`` answer."""
    return {digest for image in images for digest in repo_digests(image, name)}


# --- the engine ---------------------------------------------------------------------------


class Engine:
    """One connection to the Docker engine, over docker-py's low-level ``APIClient``."""

    def __init__(self, api: Any, endpoint: Endpoint) -> None:
        self.api = api
        self.endpoint = endpoint

    @classmethod
    def connect(cls, endpoint: Endpoint | None = None, timeout: float = TIMEOUT,
                probe: bool = True) -> Engine:
        """A client for the engine; ``probe`` asks ``/version`` first.

        The probe is the reachability test and settles the API version for the calls that
        need one (pull's ``platform``). Without it nothing is sent until the first call,
        which then has to use unversioned paths (``local_digests`` does).
        """
        endpoint = endpoint or resolve_endpoint()
        import docker
        from docker.errors import DockerException

        try:
            api = docker.APIClient(
                base_url=endpoint.host, version="auto" if probe else _UNPROBED_VERSION,
                timeout=timeout, tls=endpoint.tls,
                use_ssh_client=endpoint.host.startswith("ssh://"),
            )
        except DockerException as error:
            raise unreachable(endpoint, error) from None
        if probe:
            log.debug(f"engine at {endpoint.shown}, API {api.api_version}")
        return cls(api, endpoint)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.api.close()

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextlib.contextmanager
    def _errors(self, failed: str) -> Iterator[None]:
        """Engine calls inside fail as ``engine_failure`` says; our own errors pass through."""
        try:
            yield
        except Exception as error:
            mapped = engine_failure(error, self.endpoint, failed)
            if mapped is None:
                raise
            raise mapped from None

    def pull(
        self, name: str, digest: str, *, auth: Mapping[str, str] | None = None,
        platform: str | None = None, credential_source: str = "anonymous", hint: str = "",
        on_event: Callable[[Event], None] | None = None,
    ) -> dict[str, Any]:
        """Pull ``name@digest`` and return the engine's image record, checked to carry it.

        Errors come two ways: an HTTP error before the stream starts, or an ``error`` event in
        the middle of it; both go through ``classify_pull_failure``.
        """
        from docker.errors import APIError

        target = f"{name}@{digest}"
        registry = name.split("/", 1)[0]
        auth_config = dict(auth or {})
        if auth_config:
            auth_config.setdefault("serveraddress", registry)
        log.debug(f"engine pull {target} ({credential_source}"
                  f"{', platform ' + sanitize(platform) if platform else ''})")
        with self._errors(f"failed to pull {target}"):
            try:
                stream = self.api.pull(name, tag=digest, stream=True, decode=True,
                                       auth_config=auth_config, platform=platform)
                for event in stream:
                    if not isinstance(event, Mapping):
                        continue
                    if event.get("error") or event.get("errorDetail"):
                        detail = event.get("errorDetail") or {}
                        message = (detail.get("message") if isinstance(detail, Mapping)
                                   else None) or event.get("error") or "unknown error"
                        raise classify_pull_failure(
                            str(message), target, credential_source=credential_source,
                            hint=hint)
                    if on_event is not None:
                        on_event(event)
            except APIError as error:
                raise classify_pull_failure(
                    _explanation(error), target, status=error.status_code,
                    credential_source=credential_source, hint=hint) from None
        image = self.inspect(target)
        if image is None or not has_repo_digest(image, name, digest):
            known = ", ".join(scrub(d, 100) for d in (image or {}).get("RepoDigests") or ())
            raise EngineError(
                f"the Docker engine finished the pull but has no image {target} "
                f"(it knows {known or 'no digests for it'})"
            )
        return image

    def inspect(self, ref: str) -> dict[str, Any] | None:
        """The engine's image record for ``ref``, ``None`` when it has none."""
        from docker.errors import NotFound

        with self._errors(f"failed to inspect {ref}"):
            try:
                return self.api.inspect_image(ref)
            except NotFound:
                return None

    def tag(self, image_id: str, target: Reference) -> None:
        """Point ``target`` (a tag reference) at ``image_id``, replacing what it pointed at."""
        repository = familiar(Reference(target.registry, target.repository))
        with self._errors(f"failed to tag {familiar(target)}"):
            if not self.api.tag(image_id, repository, target.tag_or_latest, force=True):
                raise EngineError(f"the Docker engine did not tag {familiar(target)}")

    def remove(self, image: str) -> bool:
        """Untag ``image`` (``HOST/REPO@DIGEST``); the engine deletes it if nothing else uses it.

        ``False`` when the image is already gone. The messages name no image: the caller's
        own line does (``could not remove IMAGE: ...``).
        """
        from docker.errors import NotFound

        with self._errors("did not remove it"):
            try:
                self.api.remove_image(image)
            except NotFound:
                return False
        return True

    def local_digests(self, name: str) -> set[str]:
        """Digests of ``name`` present in the engine (``local_images``)."""
        return local_digests_of(self.local_images(name), name)

    def local_images(self, name: str) -> list[Mapping[str, Any]]:
        """The engine's records of ``name``'s images: one ``/images/json`` call.

        The path is unversioned (the engine answers in its own API version), so a client made
        without the ``/version`` probe needs no second round trip. ``RepoDigests`` has been in
        that answer since API 1.18.
        """
        filters = json.dumps({"reference": [name]}, separators=(",", ":"))
        with self._errors(f"failed to list the images of {name}"):
            response = self.api.get(f"{self.api.base_url}/images/json",
                                    params={"filters": filters}, timeout=self.api.timeout)
            try:
                if response.status_code != 200:
                    raise EngineError(f"the Docker engine answered HTTP "
                                      f"{response.status_code} to the image list")
                images = response.json()
            finally:
                response.close()
        if not isinstance(images, list):
            raise EngineError("the Docker engine sent an image list that is not a list")
        return [image for image in images if isinstance(image, Mapping)]


# --- keeping local state whole --------------------------------------------------------------


@contextlib.contextmanager
def interrupts_deferred() -> Iterator[None]:
    """Hold Ctrl-C (and the plugin socket's close) until a short sequence of engine calls ends.

    Tagging after a pull is two or three quick calls; stopping between them would leave a
    half-done rollback. The interrupt is delivered as soon as the block ends.
    """
    import signal

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: received.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if received:
        raise KeyboardInterrupt
