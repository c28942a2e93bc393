"""Unit-test isolation and fakes.

Every test gets its own HOME, cache folder and docker config (the parsed ``config.json`` is
``lru_cache``d, so that cache is cleared around every test); nothing touches the network or the
machine's real docker configuration. ``credential_helper`` makes a real
``docker-credential-NAME`` executable; ``cgr`` is a requests-mock fake of the Chainguard
registry (401 challenge, token endpoint, tokens per repository, public catalog, history API
with its 1000-record cap, manifest HEADs) that records every request.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import stat
import sys
import textwrap
import threading
import types
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from docker_cghistory import dockerconfig, log, registry
from docker_cghistory.timespec import format_timestamp, parse_timestamp, utcnow

PASSWORD = "pull-PASSWORD-9f8e7d"
HELPER_SECRET = "helper-SECRET-a1b2c3"
IDENTITY = "refresh-IDENTITY-0x42"
TOKEN_PREFIX = "registry-TOKEN-"
CHALLENGE = 'Bearer realm="https://cgr.dev/token",service="cgr.dev"'


@dataclass
class Env:
    home: Path
    cache: Path
    docker_config: Path
    bin: Path

    def write_config(self, config: object) -> Path:
        """Write ``config.json`` (a dict, or raw text) and forget the parsed copy."""
        path = self.docker_config / "config.json"
        path.write_text(config if isinstance(config, str) else json.dumps(config))
        dockerconfig.load.cache_clear()
        return path


_ENV_NAMES = (
    "CGHISTORY_REGISTRY", "CGHISTORY_ORG", "CGHISTORY_INSECURE_REGISTRIES",
    "DOCKER_CLI_PLUGIN_SOCKET", "DOCKER_CLI_PLUGIN_ORIGINAL_CLI_COMMAND", "_ARGCOMPLETE",
    "HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy",
    "NETRC", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE",
)


@pytest.fixture(autouse=True)
def isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Env]:
    env = Env(tmp_path / "home", tmp_path / "cache", tmp_path / "home" / ".docker",
              tmp_path / "bin")
    for folder in (env.home, env.cache, env.docker_config, env.bin):
        folder.mkdir(parents=True, exist_ok=True)
    monkeypatch.setenv("HOME", str(env.home))
    monkeypatch.setenv("XDG_CACHE_HOME", str(env.cache))
    monkeypatch.setenv("DOCKER_CONFIG", str(env.docker_config))
    monkeypatch.setenv("PATH", f"{env.bin}{os.pathsep}{os.environ.get('PATH', '')}")
    for name in _ENV_NAMES:
        monkeypatch.delenv(name, raising=False)
    dockerconfig.load.cache_clear()
    log.enable(False)
    yield env
    dockerconfig.load.cache_clear()
    log.enable(False)


HELPER_SOURCE = textwrap.dedent(
    '''\
    #!{python}
    """A docker credential helper speaking the real protocol, driven by a JSON file."""
    import json
    import os
    import sys

    here = os.path.dirname(os.path.abspath(__file__))
    with open(os.path.join(here, "{name}.json")) as handle:
        data = json.load(handle)
    if sys.argv[1:] != ["get"]:
        sys.stderr.write("unsupported: " + " ".join(sys.argv[1:]))
        sys.exit(2)
    server = sys.stdin.read().strip()
    with open(os.path.join(here, "{name}.calls"), "a") as handle:
        handle.write(server + "\\n")
    if data.get("sleep"):
        import time

        time.sleep(data["sleep"])
    if data.get("fail"):
        sys.stderr.write(data["fail"])
        sys.stdout.write(data.get("fail_stdout", ""))
        sys.exit(data.get("exit", 3))
    if "raw" in data:
        sys.stdout.write(data["raw"])
        sys.exit(0)
    entry = data.get("credentials", {{}}).get(server)
    if entry is None:
        sys.stdout.write("credentials not found in native keychain\\n")
        sys.exit(1)
    json.dump({{"ServerURL": server, "Username": entry[0], "Secret": entry[1]}}, sys.stdout)
    '''
)


@dataclass
class Helper:
    """A ``docker-credential-NAME`` executable on PATH; ``calls`` lists the servers asked."""

    name: str
    folder: Path

    def configure(self, **data: object) -> None:
        (self.folder / f"docker-credential-{self.name}.json").write_text(json.dumps(data))

    @property
    def calls(self) -> list[str]:
        path = self.folder / f"docker-credential-{self.name}.calls"
        return path.read_text().splitlines() if path.exists() else []


@pytest.fixture
def credential_helper(isolated_env: Env):
    """Factory: ``credential_helper("test", credentials={"cgr.dev": ("user", "secret")})``."""

    def make(name: str = "test", **data: object) -> Helper:
        program = isolated_env.bin / f"docker-credential-{name}"
        program.write_text(HELPER_SOURCE.format(python=sys.executable,
                                                name=f"docker-credential-{name}"))
        program.chmod(program.stat().st_mode | stat.S_IXUSR)
        helper = Helper(name, isolated_env.bin)
        helper.configure(**data)
        return helper

    return make


# --- a fake cgr.dev -------------------------------------------------------------------------


def digest_of(seed: object) -> str:
    return "sha256:" + hashlib.sha256(str(seed).encode()).hexdigest()


def entries(count: int, newest: datetime | None = None, step=timedelta(hours=6),
            seed: str = "") -> list[dict]:
    """``count`` API entries, oldest first, the newest ``newest`` (default: an hour ago)."""
    newest = (newest or utcnow() - timedelta(hours=1)).replace(microsecond=0)
    return [{"updateTimestamp": format_timestamp(newest - step * (count - 1 - i)),
             "digest": digest_of(f"{seed}{i}")} for i in range(count)]


class FakeCgr:
    def __init__(self, mocker, host: str = "cgr.dev") -> None:
        self.host = host
        self.base = f"https://{host}"
        self.histories: dict[tuple[str, str], list[dict]] = {}
        self.public: set[str] = set()
        self.users = {"puller": PASSWORD}
        self.bearer_secrets = {HELPER_SECRET}
        self.identities = {IDENTITY}
        self.tokens: dict[str, tuple[str, str]] = {}  # token -> (repository, who)
        self.expires_in: object = 300
        self.issued = 0
        self.refuse_all_tokens = False
        self.no_history_api = False
        self.manifest_digest_header = True
        pattern = re.compile(rf"^https://{re.escape(host)}/")
        for method in ("GET", "HEAD", "POST"):
            mocker.register_uri(method, pattern, content=self.handle)
        self.mocker = mocker

    # --- state -------------------------------------------------------------------------------
    def add(self, repository: str, tag: str, history: list[dict], public: bool = False) -> None:
        self.histories[(repository, tag)] = history
        if public:
            self.public.add(repository)

    def calls(self, path_prefix: str = "", method: str | None = None) -> list:
        return [r for r in self.mocker.request_history
                if urlsplit(r.url).netloc == self.host
                and urlsplit(r.url).path.startswith(path_prefix)
                and (method is None or r.method == method)]

    @property
    def token_calls(self) -> list:
        return self.calls("/token")

    # --- the server --------------------------------------------------------------------------
    def handle(self, request, context) -> bytes:
        parts = urlsplit(request.url)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        if parts.path == "/token":
            return self.token(request, context, query)
        if parts.path == "/v2/":
            context.status_code = 401
            context.headers["WWW-Authenticate"] = CHALLENGE
            return b"{}"
        match = re.fullmatch(r"/v2/(.+)/(_chainguard/history|manifests)/([^/]+)", parts.path)
        if not match:
            context.status_code = 404
            return b'{"errors":[{"code":"NAME_UNKNOWN"}]}'
        repository, kind, tag = match.groups()
        grant = self.tokens.get(request.headers.get("Authorization", "")[len("Bearer "):])
        if grant is None or grant[0] != repository or self.refuse_all_tokens:
            context.status_code = 401
            context.headers["WWW-Authenticate"] = (
                CHALLENGE + f',scope="repository:{repository}:pull"')
            return b'{"errors":[{"code":"UNAUTHORIZED"}]}'
        known = (repository, tag) in self.histories
        public = repository in self.public or repository.startswith("chainguard/")
        if grant[1] == "anonymous" and not (public and tag in ("latest", "latest-dev")):
            context.status_code = 403
            return b'{"errors":[{"code":"DENIED"}]}'
        if kind == "manifests":
            context.status_code = 200 if known else 404
            if known and self.manifest_digest_header:
                context.headers["Docker-Content-Digest"] = self.histories[(repository, tag)][-1][
                    "digest"]
            return b""
        if not known or self.no_history_api:
            context.status_code = 404
            return b'{"errors":[{"code":"MANIFEST_UNKNOWN"}]}'
        items = self.histories[(repository, tag)]
        start = parse_timestamp(query["start"]) if "start" in query else None
        end = parse_timestamp(query["end"]) if "end" in query else None
        selected = [e for e in items
                    if (start is None or parse_timestamp(e["updateTimestamp"]) >= start)
                    and (end is None or parse_timestamp(e["updateTimestamp"]) <= end)]
        context.status_code = 200
        context.headers["Content-Type"] = "application/json"
        return json.dumps({"history": selected[:1000]}).encode()

    def token(self, request, context, query: dict[str, str]) -> bytes:
        scope = query.get("scope", "")
        form: dict[str, str] = {}
        if request.method == "POST":
            form = {k: v[0] for k, v in parse_qs(request.text or "").items()}
            scope = form.get("scope", scope)
        match = re.fullmatch(r"repository:(.+):pull", scope)
        if not match:
            context.status_code = 400
            return b'{"errors":[{"code":"BAD_SCOPE"}]}'
        who = self.authenticate(request, form)
        if who is None:
            context.status_code = 401
            return b'{"errors":[{"code":"UNAUTHORIZED","message":"bad credentials"}]}'
        self.issued += 1
        token = f"{TOKEN_PREFIX}{self.issued}-{who}"
        self.tokens[token] = (match.group(1), who)
        context.status_code = 200
        body: dict[str, object] = {"issued_at": "2024-01-01T00:00:00Z"}
        if request.method == "POST":
            body["access_token"] = token
        else:
            body["token"] = token
        if self.expires_in is not None:
            body["expires_in"] = self.expires_in
        return json.dumps(body).encode()

    def authenticate(self, request, form: dict[str, str]) -> str | None:
        if form:
            if form.get("grant_type") == "refresh_token" and form.get("refresh_token") in (
                    self.identities):
                return "identity"
            return None
        header = request.headers.get("Authorization", "")
        if not header:
            return "anonymous"
        scheme, _, value = header.partition(" ")
        if scheme == "Basic":
            user, _, password = base64.b64decode(value).decode().partition(":")
            return f"user-{user}" if self.users.get(user) == password else None
        if scheme == "Bearer":
            return "bearer" if value in self.bearer_secrets else None
        return None



class _SyncThread:
    """Runs a thread's target at ``start``: prewarm pings finish before the mock is gone."""

    def __init__(self, target=None, name=None, daemon=None, args=(), kwargs=None) -> None:
        self._call = lambda: target(*args, **(kwargs or {}))

    def start(self) -> None:
        self._call()

    def join(self, timeout=None) -> None:
        return None


@pytest.fixture
def synchronous_background_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    """Background threads of the registry client (connection prewarming) run inline."""
    fake_threading = types.SimpleNamespace(**vars(threading))
    fake_threading.Thread = _SyncThread
    monkeypatch.setattr(registry, "threading", fake_threading)


@pytest.fixture
def cgr(requests_mock, synchronous_background_threads) -> FakeCgr:
    """cgr.dev with a public ``python`` (latest, 3.12) and a private ``acme.com/private``."""
    fake = FakeCgr(requests_mock)
    fake.add("chainguard/python", "latest", entries(5), public=True)
    fake.add("chainguard/python", "3.12", entries(4, seed="312"), public=True)
    fake.add("acme.com/private", "latest", entries(3, seed="p"))
    return fake
