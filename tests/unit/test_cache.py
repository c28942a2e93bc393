"""The on-disk cache: private, atomic, and never holding a token in clear."""

from __future__ import annotations

import json
import os
import stat
import time
from pathlib import Path

import pytest

from docker_cghistory import cache, cache_trust

from .conftest import Env


def mode(path: str | Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_cache_dir_follows_xdg_then_home(isolated_env: Env, monkeypatch) -> None:
    assert cache.cache_dir() == str(isolated_env.cache / "docker-cghistory")
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert cache.cache_dir() == str(isolated_env.home / ".cache" / "docker-cghistory")
    monkeypatch.setenv("XDG_CACHE_HOME", "")
    assert cache.cache_dir() == str(isolated_env.home / ".cache" / "docker-cghistory")


@pytest.mark.parametrize("umask", [0o022, 0o002, 0o000])
def test_folders_0700_and_files_0600(umask: int) -> None:
    previous = os.umask(umask)
    try:
        cache.write_json("tokens", "entry", {"a": 1})
        cache.seal("x", b"material")
    finally:
        os.umask(previous)
    root = cache.cache_dir()
    assert mode(root) == 0o700
    assert mode(os.path.join(root, "tokens")) == 0o700
    assert mode(os.path.join(root, "tokens", "entry")) == 0o600
    assert mode(os.path.join(root, "key")) == 0o600


def test_json_round_trip_and_misses(isolated_env: Env) -> None:
    assert cache.read_json("tokens", "absent") is None
    value = {"list": [1, 2, "three"], "nested": {"x": None}}
    cache.write_json("realms", "k", value)
    assert cache.read_json("realms", "k") == value
    cache.delete("realms", "k")
    assert cache.read_json("realms", "k") is None
    cache.delete("realms", "k")  # deleting twice is fine


def test_stale_and_corrupt_entries_are_misses() -> None:
    cache.write_json("plans", "k", [1])
    path = os.path.join(cache.cache_dir(), "plans", "k")
    old = time.time() - 1000
    os.utime(path, (old, old))
    assert cache.read_json("plans", "k", max_age=10_000) == [1]
    assert cache.read_json("plans", "k", max_age=100) is None
    Path(path).write_bytes(b"{not json")
    assert cache.read_json("plans", "k") is None
    Path(path).write_bytes(b"\xff\xfe\x00")
    assert cache.read_json("plans", "k") is None


def test_write_atomic_replaces_whole_files_and_leaves_no_temporaries() -> None:
    path = os.path.join(cache.cache_dir(), "tokens", "t")
    cache.write_atomic(path, b"first version, longer than the second")
    cache.write_atomic(path, b"second")
    assert Path(path).read_bytes() == b"second"
    assert os.listdir(os.path.dirname(path)) == ["t"]


def test_write_atomic_failure_keeps_the_old_file(monkeypatch) -> None:
    path = os.path.join(cache.cache_dir(), "tokens", "t")
    cache.write_atomic(path, b"old")

    def broken_replace(source: str, target: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(cache.os, "replace", broken_replace)
    with pytest.raises(OSError):
        cache.write_atomic(path, b"new")
    monkeypatch.undo()
    assert Path(path).read_bytes() == b"old"
    assert os.listdir(os.path.dirname(path)) == ["t"]


def test_unwritable_cache_is_not_an_error(isolated_env: Env, monkeypatch) -> None:
    blocker = isolated_env.home / "file"
    blocker.write_text("a file where a folder should be")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))
    cache.write_json("tokens", "k", {"a": 1})  # no exception
    assert cache.read_json("tokens", "k") is None


def test_key_name_is_a_hash() -> None:
    name = cache.key_name("cgr.dev", "chainguard/python", "secret-fingerprint")
    assert len(name) == 40 and all(c in "0123456789abcdef" for c in name)
    assert "secret" not in name
    assert name != cache.key_name("cgr.dev", "chainguard/pythonsecret-fingerprint")
    assert name != cache.key_name("cgr.dev", "chainguard/python", "other")
    assert name == cache.key_name("cgr.dev", "chainguard/python", "secret-fingerprint")


# --- sealing ------------------------------------------------------------------------------------

TOKEN = "eyJhbGciOiJSUzI1NiJ9.registry-token-PLAINTEXT.signature"


def test_seal_round_trip() -> None:
    sealed = cache.seal(TOKEN, b"credential material")
    assert cache.unseal(sealed, b"credential material") == TOKEN
    assert cache.unseal(cache.seal("", b"m"), b"m") == ""
    assert cache.unseal(cache.seal("ünï\u2603", b"m"), b"m") == "ünï\u2603"


def test_seal_is_randomised() -> None:
    assert cache.seal(TOKEN, b"m") != cache.seal(TOKEN, b"m")


def test_unseal_with_wrong_material_or_key() -> None:
    sealed = cache.seal(TOKEN, b"right")
    assert cache.unseal(sealed, b"wrong") is None
    assert cache.unseal(sealed, b"") is None
    # Another user (another random key) cannot read a copied cache file.
    os.unlink(os.path.join(cache.cache_dir(), "key"))
    assert cache.unseal(sealed, b"right") is None


@pytest.mark.parametrize("position", [0, 15, 16, 47, 48, -1])
def test_unseal_detects_tampering(position: int) -> None:
    sealed = bytearray(bytes.fromhex(cache.seal(TOKEN, b"m")))
    sealed[position] ^= 0x01
    assert cache.unseal(sealed.hex(), b"m") is None


@pytest.mark.parametrize("garbage", ["", "zz", "00" * 47, "not hex at all", "0" * 97])
def test_unseal_garbage(garbage: str) -> None:
    assert cache.unseal(garbage, b"m") is None


def test_truncated_or_extended_ciphertext_is_refused() -> None:
    sealed = cache.seal(TOKEN, b"m")
    assert cache.unseal(sealed[:-2], b"m") is None
    assert cache.unseal(sealed + "00", b"m") is None


def test_sealed_files_never_hold_the_plaintext() -> None:
    cache.write_json("tokens", "k", {"expires": 1, "sealed": cache.seal(TOKEN, b"m")})
    for folder, _, files in os.walk(cache.cache_dir()):
        for name in files:
            data = Path(folder, name).read_bytes()
            assert TOKEN.encode() not in data
            assert b"PLAINTEXT" not in data
            assert TOKEN.encode().hex().encode() not in data
    entry = json.loads(Path(cache.cache_dir(), "tokens", "k").read_text())
    assert cache.unseal(entry["sealed"], b"m") == TOKEN


def test_local_key_is_stable_and_random(isolated_env: Env, monkeypatch) -> None:
    first = cache._local_key()
    assert len(first) == 32 and cache._local_key() == first
    monkeypatch.setenv("XDG_CACHE_HOME", str(isolated_env.home / "other"))
    assert cache._local_key() != first


# --- trust: folders and the key must be ours alone ---------------------------------------------

OTHER_UID = 4242


@pytest.fixture
def fresh_verdicts(monkeypatch) -> None:
    """Forget this process's folder verdicts and warnings: each test judges its own folders."""
    monkeypatch.setattr(cache_trust, "_verdicts", {})
    monkeypatch.setattr(cache_trust, "_warned", set())


def plant(kind: str, name: str, value: object, mode: int = 0o700) -> Path:
    """An entry written behind the cache's back, as another user with access could."""
    folder = Path(cache.cache_dir(), kind)
    folder.mkdir(parents=True, exist_ok=True)
    Path(cache.cache_dir()).chmod(mode)
    folder.chmod(mode)
    path = folder / name
    path.write_text(json.dumps(value))
    return path


def warnings(capsys) -> list[str]:
    return [line for line in capsys.readouterr().err.splitlines() if "cache folder" in line]


def assert_unused(path: Path, planted: object) -> None:
    """Reads miss, writes leave the planted file alone, no key is created."""
    assert cache.read_json(path.parent.name, path.name) is None
    cache.write_json(path.parent.name, path.name, {"ours": True})
    assert json.loads(path.read_text()) == planted
    cache.write_json(path.parent.name, "new", {"ours": True})
    assert not (path.parent / "new").exists()
    assert cache.unseal(cache.seal(TOKEN, b"m"), b"m") == TOKEN  # a key for this run only
    assert not Path(cache.cache_dir(), "key").exists()


def test_root_owned_by_another_uid_is_not_used(fresh_verdicts, monkeypatch, capsys) -> None:
    path = plant("realms", "r", {"planted": 1})
    monkeypatch.setattr(os, "geteuid", lambda: OTHER_UID)
    assert not cache.trusted_dir(cache.cache_dir())
    assert cache.usable_root() is None
    assert_unused(path, {"planted": 1})
    root = os.path.normpath(cache.cache_dir())
    assert warnings(capsys) == [
        f"docker-cghistory: ignoring cache folder {root}: owned by uid {os.stat(root).st_uid}"]


@pytest.mark.parametrize("mode", [0o777, 0o770, 0o702])
def test_root_writable_by_others_is_not_used_and_warned_once(
        fresh_verdicts, capsys, mode: int) -> None:
    path = plant("realms", "r", {"planted": 1}, mode=mode)
    assert_unused(path, {"planted": 1})
    for _ in range(3):
        assert cache.read_json("realms", "r") is None
    root = os.path.normpath(cache.cache_dir())
    assert warnings(capsys) == [
        f"docker-cghistory: ignoring cache folder {root}: writable by others"]


def test_a_refused_subfolder_spoils_only_itself(fresh_verdicts, capsys) -> None:
    cache.write_json("tokens", "t", {"ours": 1})
    path = plant("realms", "r", {"planted": 1})
    path.parent.chmod(0o777)
    Path(cache.cache_dir()).chmod(0o700)
    assert cache.read_json("realms", "r") is None
    assert cache.read_json("tokens", "t") == {"ours": 1}
    assert warnings(capsys) == [
        f"docker-cghistory: ignoring cache folder {path.parent}: writable by others"]


def test_symlinked_root_is_not_used(fresh_verdicts, isolated_env: Env, capsys) -> None:
    elsewhere = isolated_env.home / "elsewhere"
    (elsewhere / "realms").mkdir(parents=True, mode=0o700)
    elsewhere.chmod(0o700)
    (elsewhere / "realms" / "r").write_text(json.dumps({"planted": 1}))
    os.symlink(elsewhere, cache.cache_dir())
    assert cache.read_json("realms", "r") is None
    cache.write_json("tokens", "t", {"ours": 1})
    assert not (elsewhere / "tokens").exists()
    assert warnings(capsys) == [
        f"docker-cghistory: ignoring cache folder {cache.cache_dir()}: is a symbolic link"]


def test_symlinked_or_special_entries_are_not_read(fresh_verdicts, isolated_env: Env) -> None:
    cache.write_json("realms", "real", {"ours": 1})
    target = isolated_env.home / "outside.json"
    target.write_text(json.dumps({"planted": 1}))
    os.symlink(target, os.path.join(cache.cache_dir(), "realms", "link"))
    assert cache.read_json("realms", "link") is None
    os.mkfifo(os.path.join(cache.cache_dir(), "realms", "fifo"))
    assert cache.read_json("realms", "fifo") is None  # and does not hang
    assert cache.read_json("realms", "real") == {"ours": 1}


@pytest.mark.parametrize("key_mode", [0o644, 0o640, 0o604, 0o660])
def test_key_readable_by_others_spoils_the_cache(fresh_verdicts, capsys, key_mode: int) -> None:
    cache.write_json("realms", "r", {"ours": 1})
    key_path = Path(cache.cache_dir(), "key")
    cache.seal("x", b"m")  # creates the key
    known = key_path.read_bytes()
    key_path.chmod(key_mode)
    # A fresh process: nothing judged yet.
    cache_trust._verdicts.clear()
    assert cache.read_json("realms", "r") is None
    assert cache._local_key() != known
    cache.write_json("realms", "r", {"ours": 2})
    assert json.loads(Path(cache.cache_dir(), "realms", "r").read_text()) == {"ours": 1}
    root = os.path.normpath(cache.cache_dir())
    assert warnings(capsys) == [
        f"docker-cghistory: ignoring cache folder {root}: key file has mode {key_mode:04o}"]


def test_key_that_turns_bad_mid_run_is_refused(fresh_verdicts, capsys) -> None:
    key = cache._local_key()
    Path(cache.cache_dir(), "key").chmod(0o644)
    assert cache._local_key() != key
    assert cache.usable_root() is None
    assert len(warnings(capsys)) == 1


def test_symlinked_or_foreign_key_is_refused(fresh_verdicts, isolated_env: Env, monkeypatch,
                                             capsys) -> None:
    cache.write_json("realms", "r", {"ours": 1})
    outside = isolated_env.home / "known-key"
    outside.write_bytes(b"k" * 32)
    outside.chmod(0o600)
    os.symlink(outside, os.path.join(cache.cache_dir(), "key"))
    cache_trust._verdicts.clear()
    assert cache._local_key() != b"k" * 32
    assert cache.read_json("realms", "r") is None
    assert warnings(capsys)[0].endswith("key file is not a regular file")


def test_key_owned_by_another_uid_is_refused(fresh_verdicts, monkeypatch, capsys) -> None:
    key = cache._local_key()
    cache_trust._verdicts.clear()
    real_uid = os.geteuid()
    monkeypatch.setattr(cache_trust, "_folder_problem", lambda path: "")  # the folders pass
    monkeypatch.setattr(os, "geteuid", lambda: OTHER_UID)
    assert cache._local_key() != key
    assert warnings(capsys)[0].endswith(f"key file owned by uid {real_uid}")


def test_cleared_cache_folder_comes_back_mid_run(fresh_verdicts) -> None:
    import shutil

    cache.write_json("realms", "r", {"ours": 1})
    shutil.rmtree(cache.cache_dir())
    cache.write_json("realms", "r", {"ours": 2})
    assert cache.read_json("realms", "r") == {"ours": 2}
    assert mode(cache.cache_dir()) == 0o700


def test_write_atomic_refuses_paths_outside_the_cache(isolated_env: Env) -> None:
    with pytest.raises(PermissionError):
        cache.write_atomic(str(isolated_env.home / "elsewhere"), b"x")
    assert not (isolated_env.home / "elsewhere").exists()


# --- authenticated entries ---------------------------------------------------------------------

REALM = {"scheme": "bearer", "realm": "https://cgr.dev/token", "service": "cgr.dev"}
ATTACKER = {"scheme": "bearer", "realm": "https://attacker.example/token", "service": "cgr.dev"}


def test_signed_round_trip_and_max_age() -> None:
    cache.write_signed_json("realms", "r", REALM)
    assert cache.read_signed_json("realms", "r") == REALM
    assert cache.read_signed_json("realms", "r", max_age=100) == REALM
    path = os.path.join(cache.cache_dir(), "realms", "r")
    old = time.time() - 1000
    os.utime(path, (old, old))
    assert cache.read_signed_json("realms", "r", max_age=100) is None
    assert cache.read_signed_json("realms", "absent") is None
    for value in ([1, "two", None], "text", 3.5, {"b": {"z": 1, "a": [True]}}):
        cache.write_signed_json("plans", "v", value)
        assert cache.read_signed_json("plans", "v") == value


def test_planted_plain_entry_is_rejected() -> None:
    cache.write_json("realms", "r", ATTACKER)
    assert cache.read_signed_json("realms", "r") is None
    cache.write_json("realms", "r", {"mac": "00" * 32, "value": ATTACKER})
    assert cache.read_signed_json("realms", "r") is None
    cache.write_json("realms", "r", {"mac": "ünï", "value": ATTACKER})
    assert cache.read_signed_json("realms", "r") is None


def test_entry_copied_from_another_name_or_kind_is_rejected() -> None:
    cache.write_signed_json("realms", cache.key_name("attacker.example"), ATTACKER)
    copied = cache.read_json("realms", cache.key_name("attacker.example"))
    cache.write_json("realms", cache.key_name("cgr.dev"), copied)
    assert cache.read_signed_json("realms", cache.key_name("cgr.dev")) is None
    cache.write_json("plans", cache.key_name("attacker.example"), copied)
    assert cache.read_signed_json("plans", cache.key_name("attacker.example")) is None


def test_altered_or_extended_entry_is_rejected() -> None:
    cache.write_signed_json("realms", "r", REALM)
    entry = cache.read_json("realms", "r")
    assert isinstance(entry, dict)
    cache.write_json("realms", "r", dict(entry, value=ATTACKER))
    assert cache.read_signed_json("realms", "r") is None
    cache.write_json("realms", "r", dict(entry, extra=1))
    assert cache.read_signed_json("realms", "r") is None
    cache.write_json("realms", "r", entry)
    assert cache.read_signed_json("realms", "r") == REALM


def test_entry_signed_under_another_users_key_is_rejected(isolated_env: Env,
                                                          monkeypatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(isolated_env.home / "other-user"))
    cache.write_signed_json("realms", "r", ATTACKER)
    foreign = cache.read_json("realms", "r")
    monkeypatch.setenv("XDG_CACHE_HOME", str(isolated_env.cache))
    cache.write_json("realms", "r", foreign)
    assert cache.read_signed_json("realms", "r") is None


def test_unencodable_values_are_not_stored() -> None:
    cache.write_signed_json("realms", "r", {"x": object()})
    cache.write_signed_json("realms", "s", {1: "a", "b": 2})  # keys that cannot be sorted
    assert cache.read_json("realms", "r") is None
    assert cache.read_json("realms", "s") is None
