"""Credentials resolved the way the docker CLI resolves them, with real helper executables."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path

import pytest

from docker_cghistory import dockerconfig
from docker_cghistory.credentials import ANONYMOUS, Credential, call_helper, resolve
from docker_cghistory.errors import ConfigError

from .conftest import Env

RAW_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
PASSWORD = "pull-token-PASSWORD-s3cr3t"
IDENTITY = "identity-REFRESH-token-xyz"


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def one_line(message: str) -> None:
    assert "\n" not in message and not RAW_CONTROL.search(message), repr(message)


def test_no_config_is_anonymous() -> None:
    credential = resolve("cgr.dev")
    assert credential is ANONYMOUS
    assert credential.anonymous and credential.secret is None


@pytest.mark.parametrize("key", ["cgr.dev", "https://cgr.dev", "https://cgr.dev/", "http://cgr.dev/v2/"])
def test_auths_basic(isolated_env: Env, key: str) -> None:
    isolated_env.write_config({"auths": {key: {"auth": b64(f"puller:{PASSWORD}")}}})
    credential = resolve("cgr.dev")
    assert (credential.username, credential.secret, credential.identity_token) == (
        "puller", PASSWORD, None)
    assert not credential.anonymous and not credential.from_helper
    assert key in credential.source and "config.json" in credential.source


def test_auths_exact_key_wins_over_other_spellings(isolated_env: Env) -> None:
    # docker's file store looks the exact key up first, whatever the order in the file.
    isolated_env.write_config({"auths": {"https://cgr.dev/v1/": {"auth": b64("old:stale")},
                                         "cgr.dev": {"auth": b64(f"new:{PASSWORD}")}}})
    assert resolve("cgr.dev").secret == PASSWORD


def test_auths_password_may_contain_colons(isolated_env: Env) -> None:
    isolated_env.write_config({"auths": {"cgr.dev": {"auth": b64("u:a:b:c")}}})
    assert resolve("cgr.dev").secret == "a:b:c"


@pytest.mark.parametrize("key", ["cgr.dev.evil.com", "evil.com", "https://evil.com/cgr.dev",
                                 "cgr.dev:5000"])
def test_auths_for_other_hosts_do_not_match(isolated_env: Env, key: str) -> None:
    isolated_env.write_config({"auths": {key: {"auth": b64(f"u:{PASSWORD}")}}})
    assert resolve("cgr.dev") is ANONYMOUS


def test_auths_identity_token(isolated_env: Env) -> None:
    isolated_env.write_config(
        {"auths": {"cgr.dev": {"auth": b64("u:p"), "identitytoken": IDENTITY}}})
    credential = resolve("cgr.dev")
    assert credential.identity_token == IDENTITY
    assert credential.secret is None and not credential.anonymous


def test_auths_token_username_means_identity_token(isolated_env: Env) -> None:
    isolated_env.write_config({"auths": {"cgr.dev": {"auth": b64(f"<token>:{IDENTITY}")}}})
    credential = resolve("cgr.dev")
    assert credential.identity_token == IDENTITY and credential.secret is None


def test_auths_username_password_fields(isolated_env: Env) -> None:
    isolated_env.write_config({"auths": {"cgr.dev": {"username": "u", "password": PASSWORD}}})
    assert (resolve("cgr.dev").username, resolve("cgr.dev").secret) == ("u", PASSWORD)


def test_auths_entry_without_secret_is_anonymous(isolated_env: Env) -> None:
    isolated_env.write_config({"auths": {"cgr.dev": {}, "other.example": {"auth": ""}}})
    assert resolve("cgr.dev") is ANONYMOUS
    assert resolve("other.example") is ANONYMOUS


@pytest.mark.parametrize(
    "auth",
    ["!!not base64!!", b64("no-colon-" + PASSWORD), 42, base64.b64encode(b"\xff:\xfe").decode()],
)
def test_auths_broken_auth_is_a_config_error(isolated_env: Env, auth: object) -> None:
    isolated_env.write_config({"auths": {"cgr.dev": {"auth": auth}}})
    with pytest.raises(ConfigError) as caught:
        resolve("cgr.dev")
    message = str(caught.value)
    one_line(message)
    assert "auth" in message
    assert PASSWORD not in message
    if isinstance(auth, str):
        assert auth not in message


@pytest.mark.parametrize("key",
                         ["https://index.docker.io/v1/", "docker.io", "registry-1.docker.io"])
def test_docker_hub_aliases(isolated_env: Env, key: str) -> None:
    isolated_env.write_config({"auths": {key: {"auth": b64(f"hub:{PASSWORD}")}}})
    for host in ("docker.io", "index.docker.io", "registry-1.docker.io"):
        assert resolve(host).secret == PASSWORD
    assert resolve("cgr.dev") is ANONYMOUS


# --- credential helpers -------------------------------------------------------------------------


def test_cred_helper(isolated_env: Env, credential_helper) -> None:
    helper = credential_helper("test", credentials={"cgr.dev": ["helper-user", PASSWORD]})
    isolated_env.write_config({"credHelpers": {"cgr.dev": "test"},
                               "auths": {"cgr.dev": {"auth": b64("file:other")}}})
    credential = resolve("cgr.dev")
    assert (credential.username, credential.secret) == ("helper-user", PASSWORD)
    assert credential.from_helper
    assert "docker-credential-test" in credential.source and "credHelpers" in credential.source
    assert helper.calls == ["cgr.dev"]


def test_cred_helper_identity_token(isolated_env: Env, credential_helper) -> None:
    credential_helper("test", credentials={"cgr.dev": ["<token>", IDENTITY]})
    isolated_env.write_config({"credHelpers": {"cgr.dev": "test"}})
    credential = resolve("cgr.dev")
    assert credential.identity_token == IDENTITY
    assert credential.secret is None and credential.username is None and credential.from_helper


def test_cred_helper_not_found_falls_through(isolated_env: Env, credential_helper) -> None:
    helper = credential_helper("test", credentials={})
    isolated_env.write_config({"credHelpers": {"cgr.dev": "test"},
                               "auths": {"cgr.dev": {"auth": b64(f"file:{PASSWORD}")}}})
    credential = resolve("cgr.dev")
    assert (credential.username, credential.secret) == ("file", PASSWORD)
    assert not credential.from_helper
    assert helper.calls == ["cgr.dev"]
    isolated_env.write_config({"credHelpers": {"cgr.dev": "test"}})
    assert resolve("cgr.dev") is ANONYMOUS


def test_cred_helper_empty_secret_falls_through(isolated_env: Env, credential_helper) -> None:
    credential_helper("test", credentials={"cgr.dev": ["user", ""]})
    isolated_env.write_config({"credHelpers": {"cgr.dev": "test"}})
    assert resolve("cgr.dev") is ANONYMOUS


def test_cred_helper_failure_is_not_echoed(isolated_env: Env, credential_helper) -> None:
    credential_helper("test", fail=f"fatal: keychain locked, password was {PASSWORD}\x1b[2J\n",
                      fail_stdout="more\x07noise", exit=3)
    isolated_env.write_config({"credHelpers": {"cgr.dev": "test"}})
    with pytest.raises(ConfigError) as caught:
        resolve("cgr.dev")
    message = str(caught.value)
    one_line(message)
    assert "docker-credential-test" in message and "exit 3" in message
    assert PASSWORD not in message and "keychain" not in message and "noise" not in message


@pytest.mark.parametrize(
    "raw",
    ["not json", "[]", '"string"', '{"Username": "u"}', '{"Username": 1, "Secret": "s"}',
     '{"Username": "u", "Secret": null}', ""],
)
def test_cred_helper_bad_answer(isolated_env: Env, credential_helper, raw: str) -> None:
    credential_helper("test", raw=raw)
    isolated_env.write_config({"credHelpers": {"cgr.dev": "test"}})
    with pytest.raises(ConfigError) as caught:
        resolve("cgr.dev")
    one_line(str(caught.value))
    assert "docker-credential-test" in str(caught.value)


def test_cred_helper_missing_from_path(isolated_env: Env) -> None:
    isolated_env.write_config({"credHelpers": {"cgr.dev": "absent-helper"}})
    with pytest.raises(ConfigError, match="docker-credential-absent-helper is not on PATH") as e:
        resolve("cgr.dev")
    assert str(isolated_env.docker_config / "config.json") in str(e.value)


def test_cred_helper_timeout(credential_helper) -> None:
    credential_helper("slow", sleep=5, credentials={"cgr.dev": ["u", PASSWORD]})
    with pytest.raises(ConfigError, match="did not answer"):
        call_helper("slow", "cgr.dev", timeout=0.3)


def test_creds_store(isolated_env: Env, credential_helper) -> None:
    helper = credential_helper("store", credentials={
        "cgr.dev": ["store-user", PASSWORD],
        "https://index.docker.io/v1/": ["hub-user", "hub-secret"],
    })
    isolated_env.write_config({"credsStore": "store"})
    assert resolve("cgr.dev").secret == PASSWORD
    assert resolve("cgr.dev").source.startswith("credsStore")
    assert resolve("docker.io").username == "hub-user"  # Hub's server URL, as docker asks it
    assert resolve("localhost:5000") is ANONYMOUS
    assert "https://index.docker.io/v1/" in helper.calls and "localhost:5000" in helper.calls


def test_creds_store_not_found_falls_back_to_auths(isolated_env: Env, credential_helper) -> None:
    credential_helper("store", credentials={})
    isolated_env.write_config({"credsStore": "store",
                               "auths": {"https://cgr.dev": {"auth": b64(f"file:{PASSWORD}")}}})
    assert resolve("cgr.dev").secret == PASSWORD


def test_cred_helpers_win_over_creds_store(isolated_env: Env, credential_helper) -> None:
    store = credential_helper("store", credentials={"cgr.dev": ["store", "from-store"]})
    credential_helper("cgr", credentials={"cgr.dev": ["cgr", "from-helper"]})
    isolated_env.write_config({"credsStore": "store", "credHelpers": {"cgr.dev": "cgr"}})
    assert resolve("cgr.dev").secret == "from-helper"
    assert store.calls == []


def test_cred_helper_for_docker_hub_alias(isolated_env: Env, credential_helper) -> None:
    helper = credential_helper("hub", credentials={"https://index.docker.io/v1/": ["h", "s"]})
    isolated_env.write_config({"credHelpers": {"index.docker.io": "hub"}})
    assert resolve("docker.io").secret == "s"
    assert helper.calls == ["https://index.docker.io/v1/"]


# --- the config file ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ('{"auths": {"cgr.dev": {"auth": "' + PASSWORD + '"}', "not valid JSON (line 1)"),
        ('{\n  "auths": {\n    "cgr.dev": ' + PASSWORD + "\n}", "not valid JSON (line 3)"),
        ("\xff\xfe garbage", "not valid JSON"),
        ('["auths"]', "not a JSON object"),
        ('{"auths": ["cgr.dev"]}', "'auths' must be an object"),
        ('{"credHelpers": "cgr"}', "'credHelpers' must be an object"),
    ],
)
def test_malformed_config_is_one_line(isolated_env: Env, text: str, words: str) -> None:
    path = isolated_env.docker_config / "config.json"
    path.write_bytes(text.encode("latin-1"))
    dockerconfig.load.cache_clear()
    with pytest.raises(ConfigError) as caught:
        resolve("cgr.dev")
    message = str(caught.value)
    one_line(message)
    assert words in message and str(path) in message
    assert PASSWORD not in message


def test_empty_config_is_empty(isolated_env: Env) -> None:
    isolated_env.write_config("  \n")
    assert resolve("cgr.dev") is ANONYMOUS
    assert dockerconfig.plugin_settings() == {}


def test_docker_config_env_is_honoured(isolated_env: Env, monkeypatch) -> None:
    other = isolated_env.home / "elsewhere"
    other.mkdir()
    (other / "config.json").write_text(json.dumps({"auths": {"cgr.dev": {"auth": b64("a:b")}}}))
    monkeypatch.setenv("DOCKER_CONFIG", str(other))
    dockerconfig.load.cache_clear()
    assert resolve("cgr.dev").secret == "b"
    monkeypatch.delenv("DOCKER_CONFIG")
    assert dockerconfig.config_dir() == str(isolated_env.home / ".docker")


def test_plugin_settings(isolated_env: Env) -> None:
    isolated_env.write_config({"plugins": {"cghistory": {"org": "acme"}, "other": {"x": "y"}}})
    assert dockerconfig.plugin_settings() == {"org": "acme"}
    isolated_env.write_config({"plugins": {"cghistory": "acme"}})
    with pytest.raises(ConfigError, match=r"plugins\.cghistory must be an object"):
        dockerconfig.plugin_settings()


# --- Credential never shows its secret ------------------------------------------------------------


def test_credential_repr_hides_secrets() -> None:
    for credential in (Credential("auths", "user", PASSWORD),
                       Credential("helper", None, None, identity_token=IDENTITY, from_helper=True)):
        for shown in (repr(credential), str(credential), f"{credential}", f"{credential!r}",
                      credential.fingerprint):
            assert PASSWORD not in shown and IDENTITY not in shown


def test_fingerprint_and_key_material() -> None:
    one = Credential("a", "user", PASSWORD)
    assert one.fingerprint == Credential("b", "user", PASSWORD).fingerprint
    assert one.fingerprint != Credential("a", "user", PASSWORD + "x").fingerprint
    assert one.fingerprint != Credential("a", "other", PASSWORD).fingerprint
    assert one.fingerprint != ANONYMOUS.fingerprint
    assert PASSWORD.encode() in one.key_material
    assert ANONYMOUS.key_material != one.key_material


# --- helpers are found the way docker finds them: never in the current folder ---------------


def evil_program(path: Path) -> Path:
    """An executable that answers a credential and leaves ``<path>.ran`` when it runs."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"#!/bin/sh\n: > '{path}.ran'\n"
                    'echo \'{"Username": "evil", "Secret": "stolen"}\'\n')
    path.chmod(0o755)
    return path


@pytest.mark.parametrize("path", ["{bin}:", "{bin}::/usr/bin", ":{bin}", ".:{bin}",
                                  "bin:{bin}", "./bin:{bin}"])
def test_a_helper_in_the_current_folder_is_not_run(
        isolated_env: Env, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, path: str) -> None:
    """Go's exec.LookPath (docker) refuses empty and relative PATH entries; so do we."""
    checkout = tmp_path / "checkout"
    planted = [evil_program(checkout / "docker-credential-evil"),
               evil_program(checkout / "bin" / "docker-credential-evil")]
    monkeypatch.chdir(checkout)
    monkeypatch.setenv("PATH", path.format(bin=isolated_env.bin))
    isolated_env.write_config({"credsStore": "evil"})
    with pytest.raises(ConfigError) as caught:
        resolve("cgr.dev")
    one_line(str(caught.value))
    assert str(caught.value) == (
        "credential helper docker-credential-evil is not on PATH (configured in "
        f"{isolated_env.docker_config / 'config.json'})")
    assert not any(Path(f"{program}.ran").exists() for program in planted)


def test_a_helper_on_an_absolute_entry_still_runs_beside_unsafe_ones(
        isolated_env: Env, credential_helper, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    helper = credential_helper("test", credentials={"cgr.dev": ["u", PASSWORD]})
    evil_program(tmp_path / "checkout" / "docker-credential-test")
    monkeypatch.chdir(tmp_path / "checkout")
    monkeypatch.setenv("PATH", f":.:bin:{isolated_env.bin}:")
    isolated_env.write_config({"credHelpers": {"cgr.dev": "test"}})
    assert resolve("cgr.dev").secret == PASSWORD
    assert helper.calls == ["cgr.dev"]
    assert not (tmp_path / "checkout" / "docker-credential-test.ran").exists()


@pytest.mark.parametrize("name", ["../../evil/x", "evil/x", "/tmp/evil", "..", "x\n/y"])
def test_a_helper_name_with_a_folder_part_is_refused(
        isolated_env: Env, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    # "docker-credential-../../evil/x" from here is checkout/evil/x: a path, not a program name.
    checkout = tmp_path / "checkout"
    (checkout / "docker-credential-..").mkdir(parents=True)
    (checkout / "docker-credential-evil").mkdir()
    planted = evil_program(checkout / "evil" / "x")
    monkeypatch.chdir(checkout)
    isolated_env.write_config({"credHelpers": {"cgr.dev": name}})
    with pytest.raises(ConfigError) as caught:
        resolve("cgr.dev")
    message = str(caught.value)
    one_line(message)
    assert message.startswith("credential helper name ")
    assert "is not a plain program name (configured in " in message
    assert not Path(f"{planted}.ran").exists()


def test_engine_auth() -> None:
    """What the engine gets for a pull: the credential itself, never a registry token."""
    assert ANONYMOUS.engine_auth() is None
    basic = Credential("auths['cgr.dev']", "puller", PASSWORD)
    assert basic.engine_auth() == {"username": "puller", "password": PASSWORD}
    identity = Credential("identity", None, None, identity_token=IDENTITY)
    assert identity.engine_auth() == {"identitytoken": IDENTITY}
    helper = Credential("credHelpers", None, PASSWORD, from_helper=True)
    assert helper.engine_auth() == {"username": "", "password": PASSWORD}
