"""The on-disk cache: private, atomic, and never holding a token in clear."""

from __future__ import annotations

import json
import os
import stat
import time
from pathlib import Path

import pytest

from docker_cghistory import cache

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
