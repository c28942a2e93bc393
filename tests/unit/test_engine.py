"""The engine adapter against fakes of docker-py's low-level API object (tests/unit/enginefakes.py).

The pull command's recipe is tested in test_pull_command.py, where the engine is found in
test_endpoint.py, and the terminal progress in test_progress.py.
"""

from __future__ import annotations

import os
import signal
import socket
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import requests
from docker.errors import DockerException

from docker_cghistory import engine, local, log
from docker_cghistory.endpoint import Endpoint
from docker_cghistory.engine import Engine
from docker_cghistory.errors import AuthError, EngineError, RegistryError
from docker_cghistory.reference import Reference
from tests.unit.enginefakes import (
    D1,
    D2,
    D3,
    ENDPOINT,
    NAME,
    PULL_EVENTS,
    SECRET,
    FakeAPI,
    api_error,
    image,
)

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


def test_local_state_tells_the_tagged_build_from_builds_merely_present() -> None:
    """After ``pull --retag`` the image NAME:latest carries D2: it is "tagged"; D1 and D3
    are present by digest only. Another repository's tag, another tag of this repository and
    untagged records mark nothing."""
    listing = [
        image("sha256:i1", f"{NAME}@{D1}", tags=(f"{NAME}:3.12",)),
        image("sha256:i2", f"{NAME}@{D2}", tags=(f"{NAME}:latest", "myapp:old")),
        image("sha256:i3", f"{NAME}@{D3}", f"cgr.dev/chainguard/node@{D1}",
              tags=("cgr.dev/chainguard/node:latest", "<none>:<none>")),
        {"Id": "sha256:i4", "RepoTags": None, "RepoDigests": None},
    ]
    state = local.local_state_of(listing, NAME, "latest")
    assert state.present == {D1, D2, D3}
    assert state.tagged == {D2}
    assert local.local_state_of(listing, NAME, "3.12").tagged == {D1}
    assert local.local_state_of(listing, NAME, "nope").tagged == set()
    assert local.local_state_of(listing, NAME, None).tagged == set()


def test_a_docker_hub_tag_is_read_in_its_short_form() -> None:
    hub = "docker.io/library/busybox"
    listing = [image("sha256:i1", f"busybox@{D1}", tags=("busybox:latest",))]
    assert local.local_state_of(listing, hub, "latest") == local.LocalState(
        frozenset({D1}), frozenset({D1}))


def test_local_images_filters_on_the_repository() -> None:
    api = FakeAPI()
    api.listing = [image("sha256:i1", f"{NAME}@{D1}", tags=(f"{NAME}:latest",)), "junk"]
    assert Engine(api, ENDPOINT).local_images(NAME) == [api.listing[0]]
    assert '"reference":["cgr.dev/chainguard/python"]' in api.calls[0][2]["params"]["filters"]


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


def test_remove_says_whether_the_image_was_there() -> None:
    api = FakeAPI()
    api.images_by_ref[TARGET] = image("sha256:img", TARGET)
    assert Engine(api, ENDPOINT).remove(TARGET) is True
    assert Engine(api, ENDPOINT).remove(TARGET) is False  # already gone: not an error
    assert api.calls == [("remove_image", (TARGET,), {})] * 2


@pytest.mark.parametrize(
    ("failure", "expected"),
    [
        (api_error(409, "conflict: image is being used by\nrunning container abc"),
         "the Docker engine did not remove it: conflict: image is being used by running "
         "container abc"),
        (requests.exceptions.ConnectionError(OSError(111, "Connection refused")),
         "cannot reach the Docker engine at unix:///fake/docker.sock: Connection refused"),
        (DockerException(OSError(13, "Permission denied")),
         "the Docker engine did not remove it: Permission denied"),
    ],
)
def test_remove_failures_are_one_line_naming_no_image(failure: Exception, expected: str) -> None:
    """The caller's line names the image (``could not remove IMAGE: ...``); ours does not."""
    api = FakeAPI()
    api.remove_error = failure
    with pytest.raises(EngineError) as caught:
        Engine(api, ENDPOINT).remove(TARGET)
    assert str(caught.value) == expected


def test_engine_failure_leaves_other_exceptions_alone() -> None:
    """Our own errors and programming errors are not relabelled as the engine's."""
    assert engine.engine_failure(ValueError("x"), ENDPOINT, "failed") is None
    assert engine.engine_failure(EngineError("ours"), ENDPOINT, "failed") is None


def test_unprobed_client_sends_nothing_until_asked(tmp_path: Path) -> None:
    """The listing's client is made without ``/version``: the engine hears nothing until the
    first call, and an engine that does not answer shows at that call."""
    path = tmp_path / "docker.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as server:
        server.bind(str(path))
        server.listen(4)
        server.setblocking(False)
        client = Engine.connect(Endpoint(f"unix://{path}"), timeout=0.5, probe=False)
        with pytest.raises(BlockingIOError):
            server.accept()  # no connection was made by connect()
        with pytest.raises(EngineError, match=r"cannot reach the Docker engine .*timed out"):
            client.local_digests(NAME)
        server.accept()[0].close()  # the call did connect
        client.close()


def test_unprobed_client_to_an_absent_engine_fails_at_the_call(tmp_path: Path) -> None:
    client = Engine.connect(Endpoint(f"unix://{tmp_path}/absent.sock"), timeout=1, probe=False)
    with pytest.raises(EngineError, match="No such file or directory"):
        client.local_digests(NAME)


# --- the listing's background lookup ------------------------------------------------------


class FakeEngine:
    def __init__(self, digests: set[str], delay: float = 0.0) -> None:
        self.digests, self.delay = digests, delay

    def __enter__(self) -> FakeEngine:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def local_images(self, name: str) -> list[dict]:
        time.sleep(self.delay)
        return [image(f"sha256:img{d[7]}", f"{name}@{d}") for d in sorted(self.digests)]


def _socket_file(tmp_path: Path) -> Endpoint:
    """An engine address whose socket file exists (the lookup skips absent sockets)."""
    (tmp_path / "docker.sock").touch()
    return Endpoint(f"unix://{tmp_path}/docker.sock")


def test_local_lookup_answers(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(Engine, "connect", classmethod(lambda cls, *a, **k: FakeEngine({D1})))
    lookup = local.LocalLookup(NAME, endpoint=_socket_file(tmp_path), tag="latest")
    assert lookup.result(wait=60) == {D1}  # returns as soon as the engine answers
    assert lookup.state(wait=60) == local.LocalState(frozenset({D1}), frozenset())


def test_slow_engine_is_not_waited_for(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(Engine, "connect",
                        classmethod(lambda cls, *a, **k: FakeEngine({D1}, delay=60.0)))
    started = time.monotonic()
    assert local.LocalLookup(NAME, endpoint=_socket_file(tmp_path)).result(wait=0.05) is None
    assert time.monotonic() - started < 30.0  # a ceiling: the engine would take 60 s


def test_absent_engine_means_no_local_column(tmp_path: Path) -> None:
    lookup = local.LocalLookup(NAME, endpoint=Endpoint(f"unix://{tmp_path}/none.sock"))
    assert lookup.result(wait=2) is None


def test_ssh_engine_is_not_asked_for_the_mark(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: Any, **kwargs: Any) -> Engine:
        raise AssertionError("must not connect")

    monkeypatch.setattr(Engine, "connect", classmethod(refuse))
    lookup = local.LocalLookup(NAME, endpoint=Endpoint("ssh://user@host"))
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


def test_without_an_interrupt_the_block_runs_and_ctrl_c_comes_back() -> None:
    """Nothing raised when nothing arrived, Ctrl-C held during the block, restored after."""
    before = signal.getsignal(signal.SIGINT)
    done = []
    with engine.interrupts_deferred():
        held_by = signal.getsignal(signal.SIGINT)
        done.append("finished")
    assert done == ["finished"]
    assert held_by is not before
    assert signal.getsignal(signal.SIGINT) is before


def test_outside_the_main_thread_signals_are_left_alone() -> None:
    """Only the main thread may set signal handlers; elsewhere the block just runs."""
    seen: list[object] = []

    def run() -> None:
        with engine.interrupts_deferred():
            seen.append(signal.getsignal(signal.SIGINT))

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(5)
    assert seen == [signal.getsignal(signal.SIGINT)]
