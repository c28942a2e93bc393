"""The docker CLI's side of the plugin protocol: global flags before the plugin's name."""

from __future__ import annotations

import os

import pytest

from docker_cghistory import plugin

# What ``apply_docker_settings`` may write into ``os.environ``.
_DOCKER_VARIABLES = ("DOCKER_HOST", "DOCKER_CONTEXT", "DOCKER_CERT_PATH", "DOCKER_TLS_VERIFY",
                     "DOCKER_CONFIG")


@pytest.fixture(autouse=True)
def _docker_variables_restored(monkeypatch: pytest.MonkeyPatch) -> None:
    """Put the variables back after each test: ``apply_docker_settings`` writes ``os.environ``
    directly, and monkeypatch restores only what it recorded, so a variable that was absent
    (``delenv(raising=False)`` records nothing) would leak into later tests."""
    for name in _DOCKER_VARIABLES:
        value = os.environ.get(name)
        monkeypatch.setenv(name, "recorded")
        if value is None:
            monkeypatch.delenv(name)
        else:
            monkeypatch.setenv(name, value)


@pytest.mark.parametrize(
    ("words", "expected"),
    [
        (["cghistory", "python"], (["python"], {}, False)),
        (["-D", "cghistory", "python"], (["python"], {}, True)),
        (["--config", "/c", "cghistory", "ls"], (["ls"], {"DOCKER_CONFIG": "/c"}, False)),
        (["--config=/c", "cghistory"], ([], {"DOCKER_CONFIG": "/c"}, False)),
        (["-H", "unix:///s", "cghistory", "pull", "x"],
         (["pull", "x"], {"DOCKER_HOST": "unix:///s"}, False)),
        (["--context", "remote", "cghistory", "-H", "kept"],
         (["-H", "kept"], {"DOCKER_CONTEXT": "remote"}, False)),
        (["--log-level", "debug", "--tlsverify", "cghistory"],
         ([], {"DOCKER_TLS_VERIFY": "1"}, False)),
    ],
)
def test_docker_invocations_are_recognised(words: list[str], expected: tuple) -> None:
    assert plugin.split_docker_invocation(words) == expected


@pytest.mark.parametrize(
    "words",
    [["python"], ["--debug", "python"], ["pull", "cghistory"], ["-H"], ["--registry", "x"], []],
)
def test_direct_invocations_are_left_alone(words: list[str]) -> None:
    assert plugin.split_docker_invocation(words) is None


def test_host_flag_wins_over_a_context_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DOCKER_CONTEXT", "remote")
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    plugin.apply_docker_settings({"DOCKER_HOST": "unix:///s"})
    assert os.environ["DOCKER_HOST"] == "unix:///s"
    assert "DOCKER_CONTEXT" not in os.environ


def test_tls_files_become_a_cert_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """docker-py reads a folder: the files' folder is exported, not the flags themselves."""
    monkeypatch.delenv("DOCKER_CERT_PATH", raising=False)
    plugin.apply_docker_settings({"tlscacert": "/certs/ca.pem", "tlscert": "/certs/cert.pem"})
    assert os.environ["DOCKER_CERT_PATH"] == "/certs"
    assert not {"tlscacert", "tlscert", "tlskey"} & set(os.environ)

