"""The engine adapter against fakes of docker-py's low-level API object, and the pull recipe."""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import signal
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import requests
from docker.errors import APIError, NotFound

from docker_cghistory import engine, log
from docker_cghistory.commands import pull
from docker_cghistory.engine import Endpoint, Engine, PullProgress
from docker_cghistory.errors import (
    AuthError,
    EngineError,
    InvalidReference,
    RegistryError,
    UsageError,
)
from docker_cghistory.history import Build
from docker_cghistory.reference import Reference

NAME = "cgr.dev/chainguard/python"
D1 = "sha256:" + "1" * 64
D2 = "sha256:" + "2" * 64
D3 = "sha256:" + "3" * 64
SECRET = "s3cret-pull-token"
ENDPOINT = Endpoint("unix:///fake/docker.sock")


def api_error(status: int, explanation: str) -> APIError:
    response = requests.Response()
    response.status_code = status
    response.url = "http+docker://localhost/v1.41/images/create"
    error_class = NotFound if status == 404 else APIError
    return error_class(f"{status} error", response=response, explanation=explanation)


class FakeAPI:
    """Stands in for ``docker.APIClient``: canned answers, every call recorded."""

    api_version = "1.41"

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple, dict]] = []
        self.events: list[Any] = []
        self.pull_error: BaseException | None = None
        self.stream_error: BaseException | None = None
        self.images_by_ref: dict[str, dict] = {}
        self.listing: list[dict] = []
        self.closed = False

    def pull(self, *args: Any, **kwargs: Any) -> Iterator[Any]:
        self.calls.append(("pull", args, kwargs))
        if self.pull_error is not None:
            raise self.pull_error

        def stream() -> Iterator[Any]:
            yield from self.events
            if self.stream_error is not None:
                raise self.stream_error

        return stream()

    def inspect_image(self, ref: str) -> dict:
        self.calls.append(("inspect_image", (ref,), {}))
        if ref not in self.images_by_ref:
            raise api_error(404, f"No such image: {ref}")
        return self.images_by_ref[ref]

    def tag(self, image: str, repository: str, tag: str | None = None,
            force: bool = False) -> bool:
        self.calls.append(("tag", (image, repository, tag), {"force": force}))
        return True

    base_url = "http+docker://localhost"
    timeout = 1.0
    listing_status = 200

    def get(self, url: str, **kwargs: Any) -> requests.Response:
        self.calls.append(("get", (url,), kwargs))
        response = requests.Response()
        response.status_code = self.listing_status
        response._content = json.dumps(self.listing).encode()
        response.raw = io.BytesIO(b"")
        return response

    def close(self) -> None:
        self.closed = True


def image(image_id: str, *repo_digests: str, tags: tuple[str, ...] = ()) -> dict:
    return {"Id": image_id, "RepoDigests": list(repo_digests), "RepoTags": list(tags)}


# --- progress -------------------------------------------------------------------------------

PULL_EVENTS = [
    {"status": "Pulling from chainguard/python", "id": D1},
    {"status": "Pulling fs layer", "progressDetail": {}, "id": "aaaa"},
    {"status": "Pulling fs layer", "progressDetail": {}, "id": "bbbb"},
    {"status": "Downloading", "progressDetail": {"current": 1, "total": 4},
     "progress": "[=>  ] 1B/4B", "id": "aaaa"},
    {"status": "Download complete", "progressDetail": {}, "id": "bbbb"},
    {"status": "Pull complete", "progressDetail": {}, "id": "aaaa"},
    {"status": f"Digest: {D1}"},
    {"status": f"Status: Downloaded newer image for {NAME}@{D1}"},
]


def test_progress_rewrites_each_layer_line_in_place() -> None:
    out = io.StringIO()
    render = PullProgress(out, width=200)
    for event in PULL_EVENTS[:6]:
        render(event)
    assert out.getvalue() == (
        f"{D1}: Pulling from chainguard/python\n"
        "aaaa: Pulling fs layer\n"
        "bbbb: Pulling fs layer\n"
        "\x1b[2A\r\x1b[2Kaaaa: Downloading [=>  ] 1B/4B\r\x1b[2B"
        "\x1b[1A\r\x1b[2Kbbbb: Download complete\r\x1b[1B"
        "\x1b[2A\r\x1b[2Kaaaa: Pull complete\r\x1b[2B"
    )


def test_progress_lines_without_id_are_new_lines_and_keep_the_arithmetic() -> None:
    out = io.StringIO()
    render = PullProgress(out, width=200)
    render({"status": "Pulling fs layer", "id": "aaaa"})
    render({"status": "Digest: sha256:abc"})
    render({"status": "Extracting", "id": "aaaa"})
    assert out.getvalue() == (
        "aaaa: Pulling fs layer\nDigest: sha256:abc\n"
        "\x1b[2A\r\x1b[2Kaaaa: Extracting\r\x1b[2B"
    )


def test_progress_cuts_lines_to_the_terminal_width() -> None:
    out = io.StringIO()
    PullProgress(out, width=20)({"status": "Downloading", "id": "layer",
                                 "progress": "[=======>          ] 12MB/40MB"})
    assert out.getvalue() == "layer: Downloading \n"


def test_progress_neutralises_control_characters_and_skips_errors() -> None:
    out = io.StringIO()
    render = PullProgress(out, width=200)
    render({"status": "evil\x1b[2Jclear", "id": "x\x07"})
    render({"error": "boom", "errorDetail": {"message": "boom"}})
    render({})
    assert "\x1b[2J" not in out.getvalue() and "\x07" not in out.getvalue()
    assert out.getvalue().count("\n") == 1


# --- RepoDigests --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("entries", "name", "wanted", "expected"),
    [
        ([f"{NAME}@{D1}"], NAME, D1, True),
        ([f"{NAME}@{D2}", f"{NAME}@{D1}"], NAME, D1, True),
        ([f"{NAME}@{D2}"], NAME, D1, False),
        ([f"cgr.dev/chainguard/node@{D1}"], NAME, D1, False),
        ([f"127.0.0.1:5000/chainguard/python@{D1}"], "127.0.0.1:5000/chainguard/python", D1,
         True),
        ([f"busybox@{D1}"], "docker.io/library/busybox", D1, True),
        ([f"docker.io/library/busybox@{D1}"], "docker.io/library/busybox", D1, True),
        (["<none>@<none>", "not a reference", 42], NAME, D1, False),
        ([], NAME, D1, False),
    ],
)
def test_has_repo_digest(entries: list, name: str, wanted: str, expected: bool) -> None:
    assert engine.has_repo_digest({"RepoDigests": entries}, name, wanted) is expected


def test_repo_digests_absent_or_null() -> None:
    assert engine.repo_digests({"RepoDigests": None}, NAME) == []
    assert engine.repo_digests({}, NAME) == []


def test_local_digests_of_a_listing() -> None:
    listing = [
        image("sha256:i1", f"{NAME}@{D1}", f"cgr.dev/chainguard/node@{D3}"),
        image("sha256:i2", f"{NAME}@{D2}"),
        {"Id": "sha256:i3", "RepoDigests": None},
    ]
    assert engine.local_digests_of(listing, NAME) == {D1, D2}


# --- failures -----------------------------------------------------------------------------

TARGET = f"{NAME}@{D1}"


@pytest.mark.parametrize(
    ("message", "status", "error_class", "words"),
    [
        ("Head \"https://cgr.dev/v2/chainguard/python/manifests/sha256:1\": unauthorized: "
         "authentication required", 500, AuthError, ["with helper (x)", "unauthorized"]),
        ("pull access denied for cgr.dev/chainguard/python, repository does not exist or may "
         "require 'docker login': denied: requested access to the resource is denied", 404,
         AuthError, ["pull access denied"]),
        ("anything", 401, AuthError, ["with helper (x)"]),
        ("denied: pull denied by policy: cooldown (7 days)", 403, AuthError,
         ["by policy", "pull denied by policy: cooldown (7 days)"]),
        ("failed to register layer: write /var/lib/docker/x: no space left on device", 500,
         EngineError, ["disk space"]),
        ("manifest unknown: manifest unknown", 404, RegistryError, ["does not have"]),
        ("toomanyrequests: slow down", 429, RegistryError, ["throttling"]),
        ("failed to extract layer: something odd", 500, EngineError, ["failed to pull"]),
    ],
)
def test_classify_pull_failure(message: str, status: int, error_class: type,
                               words: list[str]) -> None:
    error = engine.classify_pull_failure(message, TARGET, status=status,
                                         credential_source="helper (x)")
    assert type(error) is error_class
    text = str(error)
    assert "\n" not in text and TARGET in text
    for word in words:
        assert word in text


def test_classify_scrubs_url_queries_and_control_characters() -> None:
    message = ("Get \"https://cdn.example/blob?X-Amz-Signature=abcdef&token=zzz\": "
               "EOF\x1b[31m\nsecond line")
    text = str(engine.classify_pull_failure(message, TARGET))
    assert "X-Amz-Signature" not in text and "token=zzz" not in text
    assert "https://cdn.example/blob?..." in text
    assert "\x1b" not in text and "\n" not in text


def test_unreachable_names_the_endpoint_and_the_cause() -> None:
    cause = requests.exceptions.ConnectionError(
        OSError(2, "No such file or directory"))
    error = engine.unreachable(Endpoint("unix:///nope.sock", source="DOCKER_HOST"), cause)
    assert str(error) == ("cannot reach the Docker engine at unix:///nope.sock: "
                          "No such file or directory")


def test_connect_to_a_missing_socket(tmp_path: Path) -> None:
    where = f"unix://{tmp_path}/absent.sock"
    with pytest.raises(EngineError) as caught:
        Engine.connect(Endpoint(where), timeout=2)
    assert str(caught.value) == (
        f"cannot reach the Docker engine at {where}: No such file or directory")


# --- Engine.pull / tag / inspect ----------------------------------------------------------


def test_pull_passes_digest_auth_and_platform_and_checks_repo_digests() -> None:
    api = FakeAPI()
    api.events = PULL_EVENTS
    api.images_by_ref[TARGET] = image("sha256:img", f"{NAME}@{D1}")
    seen: list[dict] = []
    result = Engine(api, ENDPOINT).pull(
        NAME, D1, auth={"username": "u", "password": SECRET}, platform="linux/arm64",
        on_event=seen.append)
    assert result["Id"] == "sha256:img"
    assert seen == PULL_EVENTS
    kind, arguments, options = api.calls[0]
    assert (kind, arguments) == ("pull", (NAME,))
    assert options == {"tag": D1, "stream": True, "decode": True, "platform": "linux/arm64",
                       "auth_config": {"username": "u", "password": SECRET,
                                       "serveraddress": "cgr.dev"}}


def test_anonymous_pull_sends_an_empty_auth() -> None:
    """``None`` would let docker-py consult the config again, maybe with other credentials."""
    api = FakeAPI()
    api.images_by_ref[TARGET] = image("sha256:img", f"{NAME}@{D1}")
    Engine(api, ENDPOINT).pull(NAME, D1, auth=None)
    assert api.calls[0][2]["auth_config"] == {}


def test_identity_token_auth_passes_through() -> None:
    api = FakeAPI()
    api.images_by_ref[TARGET] = image("sha256:img", f"{NAME}@{D1}")
    Engine(api, ENDPOINT).pull(NAME, D1, auth={"identitytoken": SECRET})
    assert api.calls[0][2]["auth_config"] == {"identitytoken": SECRET, "serveraddress": "cgr.dev"}


def test_pull_error_event_in_the_stream() -> None:
    api = FakeAPI()
    api.events = [PULL_EVENTS[0], {"errorDetail": {"message": "unauthorized: who are you"},
                                   "error": "unauthorized: who are you"}]
    with pytest.raises(AuthError) as caught:
        Engine(api, ENDPOINT).pull(NAME, D1, auth={"username": "u", "password": SECRET},
                                   credential_source="docker-credential-cgr", hint="log in")
    text = str(caught.value)
    assert "docker-credential-cgr" in text and "log in" in text
    assert SECRET not in text


def test_pull_refused_before_the_stream() -> None:
    api = FakeAPI()
    api.pull_error = api_error(403, "denied: pull denied by policy: cooldown")
    with pytest.raises(AuthError, match="by policy: denied: pull denied by policy: cooldown"):
        Engine(api, ENDPOINT).pull(NAME, D1)


def test_disk_full_while_pulling() -> None:
    api = FakeAPI()
    api.events = [{"error": "write /x: no space left on device"}]
    with pytest.raises(EngineError, match="ran out of disk space"):
        Engine(api, ENDPOINT).pull(NAME, D1)


def test_engine_gone_during_the_pull() -> None:
    api = FakeAPI()
    api.events = PULL_EVENTS[:2]
    api.stream_error = requests.exceptions.ConnectionError(
        OSError(104, "Connection reset by peer"))
    with pytest.raises(EngineError) as caught:
        Engine(api, ENDPOINT).pull(NAME, D1)
    assert str(caught.value) == ("cannot reach the Docker engine at unix:///fake/docker.sock: "
                                 "Connection reset by peer")


def test_pull_without_the_digest_afterwards_is_an_error() -> None:
    api = FakeAPI()
    api.images_by_ref[TARGET] = image("sha256:img", f"{NAME}@{D2}")
    with pytest.raises(EngineError, match=f"has no image {TARGET} .it knows {NAME}@{D2}"):
        Engine(api, ENDPOINT).pull(NAME, D1)


def test_pull_with_no_image_afterwards() -> None:
    with pytest.raises(EngineError, match="no digests for it"):
        Engine(FakeAPI(), ENDPOINT).pull(NAME, D1)


def test_keyboard_interrupt_is_not_swallowed() -> None:
    api = FakeAPI()
    api.events = PULL_EVENTS[:1]
    api.stream_error = KeyboardInterrupt()
    with pytest.raises(KeyboardInterrupt):
        Engine(api, ENDPOINT).pull(NAME, D1)


def test_no_secret_in_debug_log(capsys: pytest.CaptureFixture[str]) -> None:
    log.enable(True)
    api = FakeAPI()
    api.pull_error = api_error(401, "unauthorized")
    with pytest.raises(AuthError) as caught:
        Engine(api, ENDPOINT).pull(NAME, D1, auth={"username": "u", "password": SECRET},
                                   credential_source="config.json auths")
    assert SECRET not in capsys.readouterr().err
    assert SECRET not in str(caught.value)


def test_tag_uses_the_familiar_name_and_forces() -> None:
    api = FakeAPI()
    Engine(api, ENDPOINT).tag("sha256:img", Reference("docker.io", "library/myapp", "v1"))
    Engine(api, ENDPOINT).tag("sha256:img", Reference("cgr.dev", "chainguard/python", None))
    assert api.calls == [
        ("tag", ("sha256:img", "myapp", "v1"), {"force": True}),
        ("tag", ("sha256:img", "cgr.dev/chainguard/python", "latest"), {"force": True}),
    ]


def test_inspect_absent_is_none_and_other_errors_are_one_line() -> None:
    api = FakeAPI()
    assert Engine(api, ENDPOINT).inspect("nothing:here") is None

    def broken(ref: str) -> dict:
        raise api_error(500, "layer store\ncorrupt")

    api.inspect_image = broken  # type: ignore[method-assign]
    with pytest.raises(EngineError, match="failed to inspect x:y: layer store corrupt"):
        Engine(api, ENDPOINT).inspect("x:y")


def test_local_digests_one_unversioned_call() -> None:
    api = FakeAPI()
    api.listing = [image("sha256:i1", f"{NAME}@{D1}"), image("sha256:i2", f"{NAME}@{D3}"),
                   "junk"]  # type: ignore[list-item]
    assert Engine(api, ENDPOINT).local_digests(NAME) == {D1, D3}
    assert api.calls == [("get", ("http+docker://localhost/images/json",),
                          {"params": {"filters": '{"reference":["' + NAME + '"]}'},
                           "timeout": 1.0})]


def test_local_digests_engine_error() -> None:
    api = FakeAPI()
    api.listing_status = 500
    with pytest.raises(EngineError, match="HTTP 500"):
        Engine(api, ENDPOINT).local_digests(NAME)


def test_unprobed_client_sends_nothing_until_asked(tmp_path: Path) -> None:
    """The listing's client is made without ``/version``: an absent engine shows at the call."""
    where = Endpoint(f"unix://{tmp_path}/absent.sock")
    client = Engine.connect(where, timeout=1, probe=False)
    with pytest.raises(EngineError, match="No such file or directory"):
        client.local_digests(NAME)


# --- where the engine is ------------------------------------------------------------------


def write_context(docker_config: Path, name: str, host: str, tls: bool = False) -> None:
    key = hashlib.sha256(name.encode()).hexdigest()
    meta = docker_config / "contexts" / "meta" / key
    meta.mkdir(parents=True)
    (meta / "meta.json").write_text(json.dumps({
        "Name": name, "Metadata": {},
        "Endpoints": {"docker": {"Host": host, "SkipTLSVerify": False}},
    }))
    if tls:
        folder = docker_config / "contexts" / "tls" / key / "docker"
        folder.mkdir(parents=True)
        for file in ("ca.pem", "cert.pem", "key.pem"):
            (folder / file).write_text("x")


def test_default_endpoint() -> None:
    assert engine.resolve_endpoint({}) == Endpoint("unix:///var/run/docker.sock")


def test_docker_host_wins_over_the_context(isolated_env: Any) -> None:
    isolated_env.write_config({"currentContext": "remote"})
    write_context(isolated_env.docker_config, "remote", "tcp://10.0.0.1:2375")
    chosen = engine.resolve_endpoint({"DOCKER_HOST": "unix:///tmp/x.sock",
                                      "DOCKER_CONTEXT": "remote"})
    assert (chosen.host, chosen.source) == ("unix:///tmp/x.sock", "DOCKER_HOST")


def test_current_context_from_config(isolated_env: Any) -> None:
    isolated_env.write_config({"currentContext": "remote"})
    write_context(isolated_env.docker_config, "remote", "tcp://10.0.0.1:2375")
    chosen = engine.resolve_endpoint({})
    assert chosen.host == "tcp://10.0.0.1:2375"
    assert chosen.shown == "tcp://10.0.0.1:2375 (docker context 'remote')"


def test_docker_context_variable_wins_over_config(isolated_env: Any) -> None:
    isolated_env.write_config({"currentContext": "remote"})
    write_context(isolated_env.docker_config, "remote", "tcp://10.0.0.1:2375")
    write_context(isolated_env.docker_config, "other", "unix:///run/other.sock", tls=True)
    chosen = engine.resolve_endpoint({"DOCKER_CONTEXT": "other"})
    assert chosen.host == "unix:///run/other.sock"
    assert chosen.tls and chosen.tls.verify is True
    assert engine.resolve_endpoint({"DOCKER_CONTEXT": "default"}).host == engine.DEFAULT_HOST


def test_unknown_context(isolated_env: Any) -> None:
    with pytest.raises(EngineError, match="docker context 'ghost' not found"):
        engine.resolve_endpoint({"DOCKER_CONTEXT": "ghost"})


# --- the listing's background lookup ------------------------------------------------------


class FakeEngine:
    def __init__(self, digests: set[str], delay: float = 0.0) -> None:
        self.digests, self.delay = digests, delay

    def __enter__(self) -> FakeEngine:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def local_digests(self, name: str) -> set[str]:
        time.sleep(self.delay)
        return self.digests


def _socket_file(tmp_path: Path) -> Endpoint:
    """An engine address whose socket file exists (the lookup skips absent sockets)."""
    (tmp_path / "docker.sock").touch()
    return Endpoint(f"unix://{tmp_path}/docker.sock")


def test_local_lookup_answers(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(Engine, "connect", classmethod(lambda cls, *a, **k: FakeEngine({D1})))
    lookup = engine.LocalLookup(NAME, endpoint=_socket_file(tmp_path))
    assert lookup.result(wait=2) == {D1}


def test_slow_engine_is_not_waited_for(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(Engine, "connect",
                        classmethod(lambda cls, *a, **k: FakeEngine({D1}, delay=1.0)))
    started = time.monotonic()
    assert engine.LocalLookup(NAME, endpoint=_socket_file(tmp_path)).result(wait=0.05) is None
    assert time.monotonic() - started < 0.5


def test_absent_engine_means_no_local_column(tmp_path: Path) -> None:
    lookup = engine.LocalLookup(NAME, endpoint=Endpoint(f"unix://{tmp_path}/none.sock"))
    assert lookup.result(wait=2) is None


# --- interrupts ---------------------------------------------------------------------------


def test_interrupt_is_held_until_the_block_ends() -> None:
    done = []
    with pytest.raises(KeyboardInterrupt), engine.interrupts_deferred():
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.05)
        done.append("finished")
    assert done == ["finished"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_no_interrupt_no_exception() -> None:
    with engine.interrupts_deferred():
        pass


# --- the pull recipe, with a fake registry client and engine ---------------------------------

NOW = datetime.now(timezone.utc)
BUILDS = [Build(NOW - timedelta(days=i, hours=1), d) for i, d in enumerate((D1, D2, D3))]


class FakeCredential:
    source = "config.json auths for cgr.dev"


class FakeClient:
    credential = FakeCredential()

    def __init__(self) -> None:
        self.calls: list[dict] = []

    def history(self, reference: Reference, **kwargs: Any) -> list[Build]:
        self.calls.append(kwargs)
        last = kwargs.get("last")
        return BUILDS[:last] if last else list(BUILDS)

    def history_page(self, reference: Reference, window: Any) -> list[Build]:
        return sorted(BUILDS)

    def engine_auth(self) -> dict[str, str]:
        return {"username": "u", "password": SECRET}


class FakeContext:
    def __init__(self) -> None:
        self.client_ = FakeClient()

    def parse(self, text: str) -> Reference:
        from docker_cghistory.reference import parse_cli

        return parse_cli(text)

    def client(self, registry: str) -> FakeClient:
        return self.client_


def pull_args(**given: Any) -> argparse.Namespace:
    base = {"image": "python", "digest": None, "index": None, "previous": False, "at": None,
            "cooldown": None, "tag": None, "retag": False, "platform": None, "quiet": False}
    base.update(given)
    return argparse.Namespace(**base)


@pytest.fixture
def fake_engine(monkeypatch: pytest.MonkeyPatch) -> FakeAPI:
    api = FakeAPI()
    for digest in (D1, D2, D3):
        api.images_by_ref[f"{NAME}@{digest}"] = image(f"sha256:img{digest[7]}",
                                                      f"{NAME}@{digest}")
    monkeypatch.setattr(Engine, "connect", classmethod(lambda cls, *a, **k: cls(api, ENDPOINT)))
    return api


def test_pull_previous_prints_the_reference(fake_engine: FakeAPI,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    context = FakeContext()
    assert pull.run(pull_args(previous=True), context) == 0  # type: ignore[arg-type]
    out, err = capsys.readouterr()
    assert out == f"{NAME}@{D2}\n"
    assert err == ""  # not a terminal: quiet but for the result
    assert context.client_.calls == [{"last": 2}]
    assert fake_engine.calls[0][2]["tag"] == D2
    assert fake_engine.closed


def test_retag_says_what_the_tag_pointed_at(fake_engine: FakeAPI,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    fake_engine.images_by_ref[f"{NAME}:latest"] = image("sha256:img1", f"{NAME}@{D1}")
    assert pull.run(pull_args(index=2, retag=True, tag="myapp:old"), FakeContext()) == 0  # type: ignore[arg-type]
    out, err = capsys.readouterr()
    assert out == f"{NAME}@{D3}\n"
    assert f"Tagged {NAME}@{D3} as myapp:old" in err
    assert f"{NAME}:latest now points at {NAME}@{D3}; before: image sha256:img1" in err
    assert f"({NAME}@{D1})" in err
    tags = [call[1] for call in fake_engine.calls if call[0] == "tag"]
    assert tags == [("sha256:img3", "myapp", "old"), ("sha256:img3", NAME, "latest")]


def test_retag_of_an_absent_tag(fake_engine: FakeAPI,
                                capsys: pytest.CaptureFixture[str]) -> None:
    assert pull.run(pull_args(index=1, retag=True), FakeContext()) == 0  # type: ignore[arg-type]
    assert "(it was absent)" in capsys.readouterr().err


def test_bad_new_tag_fails_before_pulling(fake_engine: FakeAPI) -> None:
    for bad in ("UPPER/Case", "name@sha256:" + "1" * 64, "bad tag"):
        with pytest.raises(InvalidReference):
            pull.run(pull_args(index=1, tag=bad), FakeContext())  # type: ignore[arg-type]
    assert fake_engine.calls == []


def test_no_selector_without_a_terminal_names_the_selectors(fake_engine: FakeAPI) -> None:
    with pytest.raises(UsageError) as caught:
        pull.run(pull_args(), FakeContext())  # type: ignore[arg-type]
    for flag in ("--digest", "--index", "--previous", "--at", "--cooldown"):
        assert flag in str(caught.value)


def test_interrupt_during_retag_finishes_it_first(
    fake_engine: FakeAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C between ``--tag`` and ``--retag`` must not leave one done and one not."""
    original = fake_engine.tag

    def tag_then_interrupt(*args: Any, **kwargs: Any) -> bool:
        result = original(*args, **kwargs)
        if threading.current_thread() is threading.main_thread():
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.05)
        return result

    fake_engine.tag = tag_then_interrupt  # type: ignore[method-assign]
    with pytest.raises(KeyboardInterrupt):
        pull.run(pull_args(index=1, tag="myapp:x", retag=True), FakeContext())  # type: ignore[arg-type]
    assert [c[0] for c in fake_engine.calls].count("tag") == 2


def test_ssh_engine_is_not_asked_for_the_mark(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: Any, **kwargs: Any) -> Engine:
        raise AssertionError("must not connect")

    monkeypatch.setattr(Engine, "connect", classmethod(refuse))
    lookup = engine.LocalLookup(NAME, endpoint=Endpoint("ssh://user@host"))
    assert lookup.result(wait=2) is None
