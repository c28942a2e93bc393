"""The pre-commit hook's definition: its file pattern matches exactly what ``pin`` discovers.

Pure: reads ``.pre-commit-hooks.yaml`` and the discovery rule, no registry or engine.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from docker_cghistory.rewrite.files import discover

ROOT = Path(__file__).resolve().parents[2]
HOOKS = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())
MATCHED = ("Dockerfile", "Dockerfile.dev", "app.Dockerfile", "Containerfile",
           "compose.yaml", "docker-compose.prod.yml", "sub/dir/Dockerfile",
           "compose.override.yml", "docker-compose.yaml", "Containerfile.ci",
           "Dockerfile-prod", "api/Dockerfile_ci", "prod.Dockerfile", "dockerfile",
           "Containerfile-arm64", "app.containerfile", "DOCKERFILE.DEV")
NOT_MATCHED = ("README.md", "mycompose.yaml", "xDockerfile", "docs/Dockerfiles.txt",
               "compose.json", "Compose.yaml", "DOCKER-COMPOSE.YML", "Dockerfile/notes.md",
               "Containerfiles", "prod-Dockerfile.txt")


def test_pre_commit_hook_definition() -> None:
    assert isinstance(HOOKS, list) and len(HOOKS) == 1
    (hook,) = HOOKS
    assert hook["id"] == "cghistory-pin-check"
    assert hook["entry"] == "docker-cghistory pin --check"
    assert hook["language"] == "python"
    pattern = re.compile(hook["files"])
    for name in MATCHED:
        assert pattern.search(name), name
    for name in NOT_MATCHED:
        assert not pattern.search(name), name


@pytest.mark.parametrize("name", MATCHED + NOT_MATCHED)
def test_the_hook_pattern_and_pin_discovery_agree(tmp_path: Path, name: str) -> None:
    """pre-commit hands the hook what its pattern matches; pin scans what it discovers."""
    target = tmp_path / name
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text("FROM scratch\n" if "ompose" not in name else "services: {}\n")
    found = {Path(p).resolve() for p in discover([str(tmp_path)])}
    (hook,) = HOOKS
    assert (target.resolve() in found) == bool(re.search(hook["files"], name))
