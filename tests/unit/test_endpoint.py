"""Where the engine is: DOCKER_HOST, DOCKER_CONTEXT, config.json and the CLI's context store."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from docker_cghistory import endpoint
from docker_cghistory.endpoint import Endpoint
from docker_cghistory.errors import EngineError


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
    assert endpoint.resolve_endpoint({}) == Endpoint("unix:///var/run/docker.sock")


def test_docker_host_wins_over_the_context(isolated_env: Any) -> None:
    isolated_env.write_config({"currentContext": "remote"})
    write_context(isolated_env.docker_config, "remote", "tcp://10.0.0.1:2375")
    chosen = endpoint.resolve_endpoint({"DOCKER_HOST": "unix:///tmp/x.sock",
                                        "DOCKER_CONTEXT": "remote"})
    assert (chosen.host, chosen.source) == ("unix:///tmp/x.sock", "DOCKER_HOST")


def test_current_context_from_config(isolated_env: Any) -> None:
    isolated_env.write_config({"currentContext": "remote"})
    write_context(isolated_env.docker_config, "remote", "tcp://10.0.0.1:2375")
    chosen = endpoint.resolve_endpoint({})
    assert chosen.host == "tcp://10.0.0.1:2375"
    assert chosen.shown == "tcp://10.0.0.1:2375 (docker context 'remote')"


def test_docker_context_variable_wins_over_config(isolated_env: Any) -> None:
    isolated_env.write_config({"currentContext": "remote"})
    write_context(isolated_env.docker_config, "remote", "tcp://10.0.0.1:2375")
    write_context(isolated_env.docker_config, "other", "unix:///run/other.sock", tls=True)
    chosen = endpoint.resolve_endpoint({"DOCKER_CONTEXT": "other"})
    assert chosen.host == "unix:///run/other.sock"
    assert chosen.tls and chosen.tls.verify is True
    assert endpoint.resolve_endpoint({"DOCKER_CONTEXT": "default"}).host == endpoint.DEFAULT_HOST


def test_unknown_context(isolated_env: Any) -> None:
    with pytest.raises(EngineError, match="docker context 'ghost' not found"):
        endpoint.resolve_endpoint({"DOCKER_CONTEXT": "ghost"})
