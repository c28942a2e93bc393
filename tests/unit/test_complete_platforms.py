"""``--platform`` completion: the platforms the image's newest build really has, from the
cache first and from the registry within completion's budget, else the common ones; a cached
answer imports nothing heavy (the same guard as ``test_complete``'s)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from docker_cghistory import dockerconfig, spec
from docker_cghistory.complete import core, store
from docker_cghistory.complete.sources import Sources
from docker_cghistory.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
KEY = "cgr.dev/chainguard/python:latest"


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in list(os.environ):
        if name.startswith(("CGHISTORY_", "_ARGCOMPLETE", "COMP_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "docker"))
    monkeypatch.setenv("CGHISTORY_NO_BACKGROUND", "1")
    (tmp_path / "docker").mkdir()
    dockerconfig.load.cache_clear()
    return tmp_path


class Fetcher:
    def __init__(self, platforms: dict[tuple[str, str, str], list[str]],
                 error: Exception | None = None) -> None:
        self.found = platforms
        self.error = error
        self.calls: list[tuple[str, str, str]] = []

    def platforms(self, host: str, repository: str, tag: str, timeout: float) -> list[str]:
        self.calls.append((host, repository, tag))
        if self.error is not None:
            raise self.error
        return self.found.get((host, repository, tag), [])


def complete(line: str, fetcher: Fetcher) -> core.Answer:
    words = line.split(" ")
    sources = Sources(Settings(config={}), fetcher=fetcher, background=False)
    return core.complete(words[:-1], words[-1], sources)


def values(answer: core.Answer) -> list[str]:
    return [value for value, _ in answer.candidates]


def test_platforms_of_the_newest_build_are_offered_and_cached() -> None:
    fetcher = Fetcher({("cgr.dev", "chainguard/python", "latest"):
                       ["linux/amd64", "linux/arm64", "linux/riscv64"]})
    answer = complete("list python --platform ", fetcher)
    assert values(answer) == ["linux/amd64", "linux/arm64", "linux/riscv64"]
    assert answer.directive & core.NO_FILES
    again = complete("pull python:latest --platform linux/ar", fetcher)
    assert values(again) == ["linux/arm64"]
    assert fetcher.calls == [("cgr.dev", "chainguard/python", "latest")]  # the second: cached
    assert store.read_entry("platforms", KEY)[0] == ["linux/amd64", "linux/arm64",
                                                     "linux/riscv64"]


@pytest.mark.parametrize("line", ["list --platform ", "list python --platform "])
def test_without_an_image_or_an_answer_the_common_platforms_are_offered(line: str) -> None:
    answer = complete(line, Fetcher({}, error=OSError("unreachable")))
    assert values(answer) == [value for value, _ in spec.PLATFORMS]


def test_a_cache_line_that_is_no_platform_is_never_offered() -> None:
    store.write_entry("platforms", KEY, ["linux/amd64", "linux/arm64;rm -rf", "a/b/c/d",
                                         "Linux/AMD64", "linux/"])
    answer = complete("list python --platform ", Fetcher({}))
    assert values(answer) == ["linux/amd64"]


IMPORTS = """
import io, sys
before = set(sys.modules)
from docker_cghistory import complete
out = io.StringIO()
complete.cobra_complete(sys.argv[1:], stream=out, silence=False)
sys.stdout.write(out.getvalue() + "MODULES " + " ".join(sorted(set(sys.modules) - before)))
"""


def test_a_cached_platform_answer_imports_nothing_heavy() -> None:
    store.write_entry("platforms", KEY, ["linux/amd64", "linux/arm64"])
    result = subprocess.run([sys.executable, "-c", IMPORTS, "__complete", "cghistory", "list",
                             "python", "--platform", ""], capture_output=True, text=True,
                            timeout=30, check=False, cwd=str(ROOT), env=dict(os.environ))
    answer, _, modules = result.stdout.partition("MODULES ")
    assert answer.splitlines()[:2] == ["linux/amd64\tin the newest build",
                                       "linux/arm64\tin the newest build"]
    imported = {name.split(".")[0] for name in modules.split()}
    heavy = {"requests", "docker", "argparse", "json", "hashlib", "datetime", "typing",
             "dataclasses"}
    assert imported & heavy == set()
    assert not {f"docker_cghistory.{name}" for name in
                ("buildfacts", "content", "context", "registry", "platforms")} & set(
        modules.split())
