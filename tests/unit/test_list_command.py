"""The ``list`` command through ``cli.run``: rows, the table, json, templates, and the
``--since``/``--until``/``--last`` windows. Parsing, dispatch and error rendering are
``test_cli.py``'s; what the registry client reads is ``test_registry.py``'s.
"""

from __future__ import annotations

import base64
import json
import re
from typing import ClassVar

import pytest

from docker_cghistory import cli, local
from docker_cghistory.commands import list as list_command
from docker_cghistory.local import LocalState
from docker_cghistory.timespec import format_timestamp, parse_timestamp

from .conftest import PASSWORD, Env, FakeCgr, entries
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


# --- LOCAL: builds present, and the build the local tag points at ---------------------------


class FakeLookup:
    """Stands in for ``local.LocalLookup``: the engine's answer, given by the test."""

    state_: ClassVar[LocalState | None] = None
    asked: ClassVar[list[tuple[str, str | None]]] = []

    def __init__(self, name: str, tag: str | None = None, **kwargs: object) -> None:
        FakeLookup.asked.append((name, tag))

    def state(self, wait: float = 0.2) -> LocalState | None:
        return FakeLookup.state_


@pytest.fixture
def engine_has(monkeypatch: pytest.MonkeyPatch):
    def give(present: set[str], tagged: set[str]) -> None:
        FakeLookup.state_ = LocalState(frozenset(present), frozenset(tagged))
        FakeLookup.asked = []

    monkeypatch.setattr(local, "LocalLookup", FakeLookup)
    return give


def test_the_local_column_tells_the_tagged_build_from_builds_merely_present(
        cgr: FakeCgr, capsys, engine_has) -> None:
    digests = newest_first(cgr)
    engine_has({digests[0], digests[1]}, {digests[1]})  # after pull --previous --retag
    code, out, _ = invoke(capsys, "python")
    assert code == 0
    header, *rows = out.splitlines()
    assert header.split() == ["#", "UPDATED", "AGE", "DIGEST", "LOCAL"]
    marks = [row.split()[-1] if row.split()[-1] in ("tag", "yes") else "" for row in rows]
    assert marks == ["yes", "tag"] + [""] * (len(digests) - 2)
    assert FakeLookup.asked == [("cgr.dev/chainguard/python", "latest")]


def test_json_and_templates_say_local_as_go_does(cgr: FakeCgr, capsys, engine_has) -> None:
    digests = newest_first(cgr)
    engine_has({digests[0], digests[1]}, {digests[1]})
    _, out, _ = invoke(capsys, "python", "-n", "3", "--format", "json")
    rows = [json.loads(line) for line in out.splitlines()]
    assert [(r["Local"], r["LocalTag"]) for r in rows] == [(True, False), (True, True),
                                                           (False, False)]
    _, out, _ = invoke(capsys, "python", "-n", "3", "--format", "{{.Local}} {{.LocalTag}}")
    assert out.splitlines() == ["true false", "true true", "false false"]
    _, out, _ = invoke(capsys, "python", "-n", "3", "--format",
                       "{{if .LocalTag}}*{{else if .Local}}+{{else}} {{end}}{{.Digest}}")
    assert out.splitlines() == ["+" + digests[0], "*" + digests[1], " " + digests[2]]
    _, out, _ = invoke(capsys, "python", "-n", "1", "--format", "{{json .}}")
    assert json.loads(out)["LocalTag"] is False


def test_without_an_engine_local_is_null_and_the_column_absent(cgr: FakeCgr, capsys) -> None:
    _, out, _ = invoke(capsys, "python", "-n", "1", "--format", "json")
    row = json.loads(out)
    assert (row["Local"], row["LocalTag"]) == (None, None)
    _, out, _ = invoke(capsys, "python", "-n", "1")
    assert "LOCAL" not in out.splitlines()[0]


def test_an_unsupported_template_is_one_line_naming_what_works(cgr: FakeCgr, capsys) -> None:
    code, out, err = invoke(capsys, "python", "--format", "{{range .Tag}}x{{end}}")
    assert (code, out) == (2, "")
    assert len(err.splitlines()) == 1
    assert "'range' is not supported" in err and "{{if ...}}" in err


# --- an empty listing, and a digest typed as a tag -------------------------------------------


def test_an_empty_window_says_so_and_when_the_newest_build_is_from(cgr: FakeCgr,
                                                                   capsys) -> None:
    history = cgr.histories[("chainguard/python", "latest")]
    code, out, err = invoke(capsys, "python", "--since", "1m")  # the newest is an hour old
    assert code == 0
    assert out.splitlines()[0].split()[:4] == ["#", "UPDATED", "AGE", "DIGEST"]
    assert len(out.splitlines()) == 1
    newest = exact(history[-1]["updateTimestamp"])
    assert err.startswith("no build of cgr.dev/chainguard/python:latest matches --since 1m; "
                          f"the newest, #0, is from {newest} (")
    assert len(err.splitlines()) == 1
    code, out, err = invoke(capsys, "python", "-q", "--since", "1m")
    assert (code, out) == (0, "") and "matches --since 1m" in err
    code, out, err = invoke(capsys, "python", "--format", "json", "--until", "2001-01-01")
    assert (code, out) == (0, "")
    oldest = exact(history[0]["updateTimestamp"])
    assert err.rstrip("\n").endswith(f", the first is from {oldest}")


def test_a_listing_with_rows_says_nothing_on_stderr(cgr: FakeCgr, capsys) -> None:
    code, _, err = invoke(capsys, "python", "--since", "30d")
    assert (code, err) == (0, "")


def exact(stamp: str) -> str:
    """A registry time as every output prints it (``timespec.format_timestamp``)."""
    return format_timestamp(parse_timestamp(stamp))


def _login(isolated_env: Env) -> None:
    auth = base64.b64encode(f"puller:{PASSWORD}".encode()).decode()
    isolated_env.write_config({"auths": {"cgr.dev": {"auth": auth}}})


def test_a_missing_tag_that_looks_like_a_digest_gets_the_digest_command(
        cgr: FakeCgr, capsys, isolated_env: Env, requests_mock) -> None:
    _login(isolated_env)
    requests_mock.get("https://cgr.dev/v2/chainguard/python/tags/list",
                      json={"tags": ["latest", "3.12"]})
    code, out, err = invoke(capsys, "python:c171a551fee2")
    assert (code, out) == (1, "")
    assert one_line(err) == (
        "not found: cgr.dev/chainguard/python:c171a551fee2 (chainguard/python has no tag "
        "c171a551fee2; no tag of it is close); c171a551fee2 looks like a digest, not a tag; "
        "to pull that build: docker-cghistory pull python --digest c171a551fee2")
    code, _, err = invoke(capsys, "python:latst")
    assert code == 1 and one_line(err).endswith("did you mean latest?)")


def one_line(err: str) -> str:
    lines = err.splitlines()
    assert len(lines) == 1, err
    prefix = "docker-cghistory: "
    assert lines[0].startswith(prefix)
    return lines[0][len(prefix):]
