"""The ``list`` command through ``cli.run``: rows, the table, json, templates, and the
``--since``/``--until``/``--last`` windows. Parsing, dispatch and error rendering are
``test_cli.py``'s; what the registry client reads is ``test_registry.py``'s.
"""

from __future__ import annotations

import base64
import io
import json
import re
from typing import ClassVar

import pytest

from docker_cghistory import cli, local, output
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


# --- platform columns: the options, checked before any request -------------------------------


@pytest.mark.parametrize(("words", "named"), [
    (["--platform", "amd64"], "OS/ARCH[/VARIANT]"),
    (["--platform", "linux/amd64/v1/x"], "OS/ARCH[/VARIANT]"),
    (["--distinct"], "--platform"),
    (["--format", "{{.SameAs}}"], "--platform"),
    (["--format", "{{.PlatformDigest}}"], "--platform"),
    (["--format", "{{json .Platforms}}"], "--platforms"),
    (["--format", "table {{.Index}}\\t{{.Changes}}"], "--changes"),
])
def test_platform_options_refuse_bad_input_in_one_line_before_any_request(
        cgr: FakeCgr, capsys, words: list[str], named: str) -> None:
    code, out, err = invoke(capsys, "python", *words)
    assert (code, out) == (2, "")
    assert len(err.splitlines()) == 1 and named in err
    assert cgr.calls("/v2/") == [] and cgr.token_calls == []


def test_quiet_skips_platform_reads_unless_distinct_needs_them(cgr: FakeCgr, capsys) -> None:
    code, out, _ = invoke(capsys, "python", "-q", "--platform", "linux/amd64", "--platforms",
                          "--changes")
    assert code == 0 and out.split() == newest_first(cgr)
    assert [c for c in cgr.calls("/v2/") if "/manifests/" in c.url] == []


class Source:
    """A history with builds sharing a time: what ``build_before`` reads back from."""

    def __init__(self, builds: list) -> None:
        self.builds = sorted(builds, reverse=True)
        self.asked: list[dict] = []

    def history(self, reference, *, since=None, until=None, last=None):
        self.asked.append({"until": until, "last": last})
        kept = [b for b in self.builds if until is None or b.updated <= until]
        return kept[:last] if last is not None else kept


def test_the_build_before_the_oldest_listed_one_respects_builds_sharing_its_time() -> None:
    from docker_cghistory.history import Build

    t0, t1 = parse_timestamp("2024-06-01T00:00:00Z"), parse_timestamp("2024-06-02T00:00:00Z")
    builds = [Build(t0, "sha256:" + "1" * 64), Build(t1, "sha256:" + "a" * 64),
              Build(t1, "sha256:" + "b" * 64), Build(t1, "sha256:" + "c" * 64)]
    source = Source(builds)
    ordered = source.builds  # newest first: c, b, a at t1, then 1 at t0
    listed = [(0, ordered[0]), (1, ordered[1])]
    assert list_command.build_before(source, None, listed) == ordered[2]
    assert list_command.build_before(source, None, [(0, ordered[0]), (1, ordered[1]),
                                                    (2, ordered[2])]) == ordered[3]
    assert list_command.build_before(source, None, [(3, ordered[3])]) is None
    assert list_command.build_before(source, None, []) is None


def test_the_changes_column_is_cut_to_the_width_the_other_columns_leave() -> None:
    from docker_cghistory import buildindex, listfacts
    from docker_cghistory.changes import PackageChange, PackageChanges
    from docker_cghistory.history import Build
    from docker_cghistory.platforms import Platform

    builds = [(4, Build(parse_timestamp("2024-06-02T00:00:00Z"), "sha256:" + "a" * 64)),
              (5, Build(parse_timestamp("2024-06-01T00:00:00Z"), "sha256:" + "b" * 64))]
    many = PackageChanges(changed=tuple(PackageChange(f"package-{n}", "1", "2")
                                        for n in range(20)))
    wanted = listfacts.Wanted(None, False, False, True)
    facts = listfacts.Facts(wanted, [b.digest for _, b in builds],
                            {b.digest: i for i, b in builds}, None,
                            changes_platform=Platform("linux", "amd64"))
    facts.change = {builds[0][1].digest: buildindex.Change("changes", many),
                    builds[1][1].digest: buildindex.Change("first")}
    rows = list_command.rows_for(parse("python"), builds, None)
    for width in (100, 140):
        header, cells = list_command.table_for(builds, rows, False, None, facts, width)
        out = io.StringIO()
        output.align([header, *cells], out)
        lines = out.getvalue().splitlines()
        assert all(len(line) <= width for line in lines), lines
        assert lines[1].endswith("…") and "package-0 2" in lines[1]
        assert lines[2].endswith("(first build)")
    header, cells = list_command.table_for(builds, rows, False, None, facts, None)
    assert cells[0][-1] == ", ".join(f"package-{n} 2" for n in range(20))


def parse(text: str):
    from docker_cghistory.reference import parse_cli

    return parse_cli(text, "cgr.dev", "chainguard")


def test_short_platform_names_drop_linux_only() -> None:
    from docker_cghistory.listfacts import short_platform
    from docker_cghistory.platforms import parse_platform

    assert [short_platform(parse_platform(p)) for p in
            ("linux/amd64", "linux/arm64/v8", "linux/arm/v7", "windows/amd64")] == [
        "amd64", "arm64", "arm/v7", "windows/amd64"]


LAZY = """
import argparse, io, sys
from docker_cghistory.commands import list as command
from docker_cghistory.streams import Streams

class Reference:
    registry, repository, tag_or_latest = "r.example", "team/app", "latest"

command.fetch_builds = lambda args, context, previous=False: (Reference, [], None)
command.nothing_matched = lambda *args: "none"
command.remember_reference = command.remember_builds = lambda *args: None
flags = dict(platform=None, platforms=False, distinct=False, changes=False)
flags.update({sys.argv[1]: sys.argv[2]} if len(sys.argv) > 2 else {})
args = argparse.Namespace(image="app", quiet=True, format=None, no_trunc=False, since=None,
                          until=None, last=None, **flags)
command.run(args, None, Streams(io.StringIO(), io.StringIO()))
print(" ".join(sorted(m for m in sys.modules if m.startswith("docker_cghistory."))))
"""


def test_a_plain_listing_imports_none_of_the_platform_readers() -> None:
    import subprocess
    import sys

    def loaded(*flag: str) -> set[str]:
        done = subprocess.run([sys.executable, "-c", LAZY, *flag], capture_output=True,
                              text=True, timeout=60, check=True)
        return set(done.stdout.split())

    readers = {"docker_cghistory.listfacts", "docker_cghistory.buildfacts",
               "docker_cghistory.sbom", "docker_cghistory.layers"}
    assert loaded() & readers == set()
    assert "docker_cghistory.listfacts" in loaded("platform", "linux/amd64")


def test_notes_in_the_changes_column_are_cut_like_summaries() -> None:
    from docker_cghistory import buildindex, listfacts
    from docker_cghistory.platforms import Platform

    digest = "sha256:" + "a" * 64
    facts = listfacts.Facts(listfacts.Wanted(None, False, False, True), [digest], {digest: 3},
                            None, changes_platform=Platform("linux", "arm64"))
    facts.change = {digest: buildindex.Change("same")}
    assert facts.change_cell(digest, None) == "(same linux/arm64 image)"
    assert facts.change_cell(digest, 12) == "(same linux…"
    facts.change = {digest: buildindex.Change("previous-missing")}
    assert facts.change_cell(digest, None) == "(#4 has no linux/arm64 image)"
