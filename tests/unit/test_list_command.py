"""The ``list`` command through ``cli.run``: rows, the table, json, templates, and the
``--since``/``--until``/``--last`` windows. Parsing, dispatch and error rendering are
``test_cli.py``'s; what the registry client reads is ``test_registry.py``'s.
"""

from __future__ import annotations

import json
import re

import pytest

from docker_cghistory import cli
from docker_cghistory.commands import list as list_command

from .conftest import Env, FakeCgr, entries
from .registryhelpers import expected


@pytest.fixture(autouse=True)
def no_engine(monkeypatch: pytest.MonkeyPatch, isolated_env: Env) -> None:
    """The table asks the engine for local images: point it at nothing."""
    monkeypatch.setenv("DOCKER_HOST", f"unix://{isolated_env.home}/no-docker.sock")
    monkeypatch.delenv("DOCKER_CONTEXT", raising=False)


def newest_first(fake: FakeCgr, repository: str = "chainguard/python") -> list[str]:
    return expected(fake, repository)


def invoke(capsys: pytest.CaptureFixture, *words: str) -> tuple[int, str, str]:
    code = cli.run(list(words))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_list_table(cgr: FakeCgr, capsys) -> None:
    code, out, err = invoke(capsys, "python")
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert lines[0].split()[:4] == ["#", "UPDATED", "AGE", "DIGEST"]
    digests = newest_first(cgr)
    assert len(lines) == 1 + len(digests)
    for index, (line, digest) in enumerate(zip(lines[1:], digests, strict=True)):
        cells = line.split()
        assert cells[0] == str(index)
        assert cells[-1] == digest[7:19]
        # Exact, always with a fraction: typed back, a bare second covers the whole second.
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{1,9}Z", cells[1])


@pytest.mark.parametrize("image", ["python:latest", "python"])
def test_list_json_lines(cgr: FakeCgr, capsys, image: str) -> None:
    code, out, _ = invoke(capsys, image, "--format", "json")
    assert code == 0
    rows = [json.loads(line) for line in out.splitlines()]
    assert [row["Digest"] for row in rows] == newest_first(cgr)
    assert [row["Index"] for row in rows] == list(range(len(rows)))
    assert rows[0]["Reference"] == f"cgr.dev/chainguard/python@{rows[0]['Digest']}"
    # A tag not written is the one read: ``latest``, as the registry was asked for it.
    assert rows[0]["Tag"] == "latest"
    assert set(rows[0]) == set(list_command.JSON_FIELDS)


def test_list_template_last_and_no_trunc(cgr: FakeCgr, capsys) -> None:
    code, out, _ = invoke(capsys, "python", "--last", "2", "--format", r"{{.Index}}\t{{.Digest}}")
    assert code == 0
    assert out.splitlines() == [f"{i}\t{d}" for i, d in enumerate(newest_first(cgr)[:2])]
    code, out, _ = invoke(capsys, "python", "--no-trunc", "-n", "1")
    assert code == 0 and newest_first(cgr)[0] in out


def test_list_since_until(cgr: FakeCgr, capsys) -> None:
    history = cgr.histories[("chainguard/python", "latest")]
    since, until = history[1]["updateTimestamp"], history[3]["updateTimestamp"]
    code, out, _ = invoke(capsys, "python", "-q", "--since", since, "--until", until)
    assert code == 0
    assert out.split() == [e["digest"] for e in reversed(history[1:4])]


def test_a_wide_history(cgr: FakeCgr, capsys) -> None:
    cgr.add("chainguard/nightly", "latest", entries(1500, seed="w"), public=True)
    code, out, _ = invoke(capsys, "nightly", "-q")
    assert code == 0
    assert out.split() == newest_first(cgr, "chainguard/nightly")
    code, out, _ = invoke(capsys, "nightly", "-q", "--last", "1200")
    assert out.split() == newest_first(cgr, "chainguard/nightly")[:1200]
