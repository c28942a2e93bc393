"""A planted token realm must never receive the user's credentials.

The realm cached for a registry decides where Basic credentials go before the registry is
asked; before it was authenticated, an entry planted in a shared or pre-created cache folder
sent them to another user's listener. Here the attacker's listener is a requests-mock URL
that records whatever reaches it, and ``cgr`` is the fake cgr.dev of ``conftest``.

``test_planted_realm_in_our_own_folder_*`` needs ``registry.RegistryClient`` to read realms
with ``cache.read_signed_json`` (and store them with ``write_signed_json``).
"""

from __future__ import annotations

import base64
import os
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from docker_cghistory import cache, cache_trust
from docker_cghistory.credentials import Credential
from docker_cghistory.reference import parse_cli
from docker_cghistory.registry import RegistryClient

from .conftest import PASSWORD, FakeCgr

BASIC = Credential("auths['cgr.dev']", "puller", PASSWORD)
LISTENER = "https://attacker.example/token"
PLANTED = {"scheme": "bearer", "realm": LISTENER, "service": "cgr.dev"}
SECRET = base64.b64encode(f"puller:{PASSWORD}".encode()).decode()


@pytest.fixture(autouse=True)
def fresh_verdicts(monkeypatch) -> None:
    """Each test is a fresh process as far as folder verdicts and warnings go."""
    monkeypatch.setattr(cache_trust, "_verdicts", {})
    monkeypatch.setattr(cache_trust, "_warned", set())


@pytest.fixture
def listener(requests_mock) -> list:
    """The attacker's token endpoint: it answers with a token, as a real listener would."""
    requests_mock.get(LISTENER, json={"token": "attacker-token", "expires_in": 300})
    requests_mock.post(LISTENER, json={"access_token": "attacker-token", "expires_in": 300})
    return requests_mock.request_history


def reached(history: list) -> list:
    return [r for r in history if urlsplit(r.url).netloc == "attacker.example"]


def client() -> RegistryClient:
    return RegistryClient("cgr.dev", credential=BASIC, sleep=lambda seconds: None)


def realm_file() -> Path:
    return Path(cache.cache_dir(), "realms", cache.key_name("cgr.dev"))


def plant(value: object, mode: int = 0o700) -> None:
    """Write the realm entry as another user with access to the folder could."""
    cache.write_json("realms", cache.key_name("cgr.dev"), value)
    for folder in (Path(cache.cache_dir()), realm_file().parent):
        folder.chmod(mode)
    cache_trust._verdicts.clear()  # the victim's run starts after the planting


def assert_safe(cgr: FakeCgr, history: list) -> None:
    assert reached(history) == [], "credentials went to the planted realm"
    for request in history:
        if urlsplit(request.url).netloc != "cgr.dev":
            assert SECRET not in request.headers.get("Authorization", "")
    assert cgr.token_calls, "the real realm was not asked"


def test_planted_realm_in_our_own_folder_gets_nothing(cgr: FakeCgr, listener: list) -> None:
    """The entry sits in a folder that passes every check: only the MAC can refuse it."""
    plant(PLANTED)
    builds = client().history(parse_cli("cgr.dev/acme.com/private"))
    assert len(builds) == 3
    assert_safe(cgr, listener)


def test_planted_realm_copied_from_another_registry_gets_nothing(cgr: FakeCgr,
                                                                 listener: list) -> None:
    """A properly signed entry of ours, for another registry, moved under cgr.dev's name."""
    cache.write_signed_json("realms", cache.key_name("attacker.example"), PLANTED)
    plant(cache.read_json("realms", cache.key_name("attacker.example")))
    client().history(parse_cli("cgr.dev/acme.com/private"))
    assert_safe(cgr, listener)


@pytest.mark.parametrize("mode", [0o777, 0o733])
def test_planted_realm_in_a_shared_folder_gets_nothing(cgr: FakeCgr, listener: list,
                                                       capsys, mode: int) -> None:
    plant(PLANTED, mode=mode)
    client().history(parse_cli("cgr.dev/acme.com/private"))
    assert_safe(cgr, listener)
    assert "ignoring cache folder" in capsys.readouterr().err


def test_planted_realm_in_another_users_folder_gets_nothing(cgr: FakeCgr, listener: list,
                                                            monkeypatch, capsys) -> None:
    """Two users: the cache folder (and the key beside it) belong to the attacker."""
    cache.write_signed_json("realms", cache.key_name("cgr.dev"), PLANTED)  # under their key
    cache_trust._verdicts.clear()  # the victim's run starts after the planting
    monkeypatch.setattr(os, "geteuid", lambda: os.stat(cache.cache_dir()).st_uid + 1)
    client().history(parse_cli("cgr.dev/acme.com/private"))
    assert_safe(cgr, listener)
    assert f"ignoring cache folder {os.path.normpath(cache.cache_dir())}: owned by uid" in (
        capsys.readouterr().err)


def test_our_own_realm_is_still_reused(cgr: FakeCgr, listener: list) -> None:
    """The cache keeps its point: a second client skips the 401 round trip."""
    client().history(parse_cli("cgr.dev/acme.com/private"))
    assert realm_file().exists()
    cgr.add("acme.com/other", "latest", cgr.histories[("acme.com/private", "latest")])
    client().history(parse_cli("cgr.dev/acme.com/other"))
    other = [r for r in listener if urlsplit(r.url).path.startswith("/v2/acme.com/other/")]
    assert other and all("Authorization" in r.headers for r in other), "the realm was not reused"
    assert reached(listener) == []
