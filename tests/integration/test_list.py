"""``docker cghistory IMAGE[:TAG]`` (the listing) through the real docker CLI and the front.

Every test drives the plugin as a user would: ``docker cghistory ...`` with an isolated
DOCKER_CONFIG where the plugin is installed, against the Chainguard-compatible front over the
session's real registry. Histories are synthetic (``make_history``) so every digest and
timestamp is known in advance; the front's request log shows what the plugin asked for.
No dockerd is needed: listing never pulls.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import re
import signal
import stat
import subprocess
import threading
import time
import urllib.request
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pexpect
import pytest

from docker_cghistory import __version__
from tests.support.front import Front, LoggedRequest, fake_digest, make_history, parse_timestamp
from tests.support.services import CredHelper, DockerConfig, Registry, push_blob

pytestmark = pytest.mark.integration

PROG = "docker cghistory"
HISTORY = "/_chainguard/history/"
HISTORY_RE = r"/_chainguard/history/"
NOW = datetime.now(timezone.utc).replace(microsecond=0)
RFC3339_Z = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?Z$")
DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")

# Seven builds seven hours apart, with and without fractional seconds (as cgr.dev sends them).
SMALL = make_history(7, datetime(2024, 3, 1, tzinfo=timezone.utc), timedelta(hours=7),
                     seed="list-small", fractional="mixed")
# A nightly-ish tag with 2500 builds (more than two full pages of 1000), the newest 12 h old.
BIG = make_history(2500, NOW - timedelta(hours=12) * 2500, timedelta(hours=12),
                   seed="list-big", fractional="mixed")

# Credentials and markers: every secret holds "MARK" so a leak is easy to spot by eye too.
USER = "list-puller"
PASSWORD = "pw-MARK-6b1d0c7e"
WRONG_PASSWORD = "wrongpw-MARK-0a9d31"
BEARER = "bearer-MARK-93ae51f0"
IDENTITY = "idtok-MARK-4c77f2aa"
TOKEN_PREFIX = "tok-MARK-e0c4a9-"  # every token the front issues starts with this
PRIVATE = "foo.com/list-private"  # an org name with a dot


# --------------------------------------------------------------------------- helpers
def cghistory(env: DockerConfig, *args: str,
              timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """``docker cghistory ARGS`` through the real docker CLI."""
    return env.run("docker", "cghistory", *args, timeout=timeout)


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, f"exit {result.returncode}: {result.stderr}"
    assert "Traceback" not in result.stderr
    return result.stdout


def one_line_error(result: subprocess.CompletedProcess[str], status: int = 1) -> str:
    """The failure contract: the status, nothing on stdout, one ``docker cghistory:`` line."""
    assert result.returncode == status, (result.returncode, result.stdout, result.stderr)
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"{PROG}: "), lines[0]
    return lines[0]


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def newest_first(entries: Iterable[list[str]], start: datetime | None = None,
                 end: datetime | None = None) -> list[tuple[datetime, str]]:
    """What the listing must show: (updated, digest), newest first, inside [start, end]."""
    parsed = [(parse_timestamp(ts), digest) for ts, digest in entries]
    return sorted(((t, d) for t, d in parsed
                   if (start is None or t >= start) and (end is None or t <= end)), reverse=True)


def digests(expected: list[tuple[datetime, str]]) -> list[str]:
    return [digest for _, digest in expected]


def json_rows(stdout: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stdout.splitlines()]


def assert_json(stdout: str, expected: list[tuple[datetime, str]], name: str, tag: str,
                first_index: int = 0) -> None:
    """``first_index``: the full-listing index of the first row (a window keeps its indexes)."""
    rows = json_rows(stdout)
    assert len(rows) == len(expected)
    for index, (row, (updated, digest)) in enumerate(zip(rows, expected, strict=True)):
        assert list(row) == ["Index", "Updated", "Digest", "Reference", "Tag", "Local",
                             "LocalTag"], row
        # No engine here (listing never pulls): unknown, not false.
        assert (row["Local"], row["LocalTag"]) == (None, None)
        assert row["Index"] == first_index + index
        assert RFC3339_Z.match(row["Updated"]), row["Updated"]
        assert parse_timestamp(row["Updated"]) == updated, (index, row["Updated"])
        assert DIGEST.match(row["Digest"]) and row["Digest"] == digest, index
        assert row["Reference"] == f"{name}@{digest}"
        assert row["Tag"] == tag


def printed(updated: datetime) -> str:
    """The time the listing prints: exact, always with a fraction (these histories have
    milliseconds at most), since a bare second typed back covers the whole second."""
    return updated.strftime("%Y-%m-%dT%H:%M:%S.") + f"{updated.microsecond // 1000:03d}Z"


def table(stdout: str) -> tuple[list[str], list[list[str]]]:
    """Header and rows of aligned output (columns are 3+ spaces apart; AGE has single ones)."""
    rows = [re.split(r" {2,}", line.strip()) for line in stdout.splitlines()]
    return rows[0], rows[1:]


def history_requests(front: Front) -> list[LoggedRequest]:
    return [r for r in front.requests if HISTORY in r.path]


def token_requests(front: Front) -> list[LoggedRequest]:
    return [r for r in front.requests if r.path == "/token"]


def bound(request: LoggedRequest, key: str) -> datetime | None:
    values = request.query.get(key)
    return parse_timestamp(values[-1]) if values else None


def served(entries: list[list[str]], request: LoggedRequest, cap: int = 1000) -> int:
    """How many records the front answered ``request`` with (it applies start/end, then the
    cap), recomputed from the logged query; 401s before the token count as served too."""
    start, end = bound(request, "start"), bound(request, "end")
    inside = sum(1 for ts, _ in entries
                 if (start is None or parse_timestamp(ts) >= start)
                 and (end is None or parse_timestamp(ts) <= end))
    return min(inside, cap)


def public_repo(front: Front, name: str, entries: list[list[str]], tag: str = "latest",
                **config: Any) -> str:
    front.set_repo(name, {"public": True, "public_tags": ["latest", "latest-dev", tag],
                          "history": {tag: entries}, **config})
    return f"{front.host}/{name}:{tag}"


def private_repo(front: Front, entries: list[list[str]] = SMALL) -> str:
    front.configure(token_prefix=TOKEN_PREFIX)
    front.set_repo(PRIVATE, {
        "public": False,
        "users": {USER: {"password": PASSWORD}},
        "bearer_secrets": [BEARER],
        "identity_tokens": {IDENTITY: USER},
        "history": {"latest": entries},
    })
    return f"{front.host}/{PRIVATE}:latest"


def wait_for(condition: Callable[[], bool], timeout: float = 60, what: str = "") -> None:
    """Poll until ``condition``; ``timeout`` is a ceiling against hangs (loaded CI is slow)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what or condition}")
        time.sleep(0.005)


def cache_files(env: DockerConfig) -> list[Path]:
    return [p for p in env.cache.rglob("*") if p.is_file()]


SECRETS = (PASSWORD, WRONG_PASSWORD, BEARER, IDENTITY, TOKEN_PREFIX,
           b64(f"{USER}:{PASSWORD}"), b64(f"{USER}:{WRONG_PASSWORD}"), b64(f"<token>:{IDENTITY}"))


def assert_no_secret(env: DockerConfig, *outputs: str) -> None:
    """No secret in clear (nor hex- or base64-encoded) in the outputs or under the cache."""
    blobs = [text.encode() for text in outputs]
    blobs += [path.read_bytes() for path in cache_files(env)]
    for secret in SECRETS:
        forms = {secret.encode(), secret.encode().hex().encode(), b64(secret).encode()}
        for blob in blobs:
            for form in forms:
                assert form not in blob, f"secret {secret!r} leaked"


def push_config_only_image(registry: Registry, repo: str, tag: str) -> str:
    """A minimal OCI image (a config blob, no layers) pushed straight to the registry."""
    config = b'{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}'
    digest = push_blob(registry, repo, config)
    manifest = json.dumps({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": digest,
                   "size": len(config)},
        "layers": [],
    }).encode()
    put = urllib.request.Request(
        f"{registry.url}/v2/{repo}/manifests/{tag}", method="PUT", data=manifest,
        headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json"})
    with urllib.request.urlopen(put, timeout=10) as response:
        return str(response.headers["Docker-Content-Digest"])


# --------------------------------------------------------------------------- plugin protocol
def test_metadata_from_the_launcher_and_the_module(plugin_env: DockerConfig) -> None:
    launcher = plugin_env.run(str(plugin_env.plugins_dir / "docker-cghistory"),
                              "docker-cli-plugin-metadata")
    module = plugin_env.cghistory("docker-cli-plugin-metadata")
    for result in (launcher, module):
        metadata = json.loads(ok(result))
        assert set(metadata) == {"SchemaVersion", "Vendor", "Version", "ShortDescription", "URL"}
        assert metadata["SchemaVersion"] == "0.1.0"
        assert metadata["Version"] == __version__
        assert metadata["ShortDescription"] and metadata["Vendor"]
    assert json.loads(launcher.stdout) == json.loads(module.stdout)


def test_docker_help_lists_the_plugin(plugin_env: DockerConfig) -> None:
    out = ok(plugin_env.run("docker", "--help"))
    lines = [line for line in out.splitlines() if re.match(r"^\s+cghistory\*?\s", line)]
    assert len(lines) == 1, out
    assert "Chainguard" in lines[0]


def test_version_and_help_through_docker(plugin_env: DockerConfig) -> None:
    version = ok(cghistory(plugin_env, "--version"))
    assert version.strip() == f"{PROG} {__version__}"
    usage = ok(cghistory(plugin_env, "--help"))
    assert usage.startswith(f"usage: {PROG} ")
    for word in ("IMAGE[:TAG]", "--since", "--until", "--last", "--format", "--quiet",
                 "--no-trunc", "--registry", "--org", "--debug"):
        assert word in usage, word


# --------------------------------------------------------------------------- exact listings
def test_table_columns_and_short_digests(front: Front, plugin_env: DockerConfig) -> None:
    ref = public_repo(front, "chainguard/list-table", SMALL)
    header, rows = table(ok(cghistory(plugin_env, ref)))
    assert header == ["#", "UPDATED", "AGE", "DIGEST"]
    expected = newest_first(SMALL)
    assert len(rows) == len(expected)
    for index, (row, (updated, digest)) in enumerate(zip(rows, expected, strict=True)):
        assert row[0] == str(index)
        assert row[1] == printed(updated)
        assert row[2].endswith(" ago"), row
        assert row[3] == digest.removeprefix("sha256:")[:12]


@pytest.mark.parametrize(
    ("order", "legacy"),
    [("asc", False), ("desc", False), ("shuffled", False), ("shuffled", True)],
    ids=["sorted", "newest-first", "unsorted", "unsorted-legacy-keys"],
)
def test_json_exact_whatever_the_server_order_and_keys(
    front: Front, plugin_env: DockerConfig, order: str, legacy: bool
) -> None:
    ref = public_repo(front, "chainguard/list-json", SMALL, order=order, legacy_keys=legacy)
    out = ok(cghistory(plugin_env, "--format", "json", ref))
    assert_json(out, newest_first(SMALL), f"{front.host}/chainguard/list-json", "latest")


def test_quiet_and_no_trunc(front: Front, plugin_env: DockerConfig) -> None:
    ref = public_repo(front, "chainguard/list-quiet", SMALL, order="shuffled")
    expected = digests(newest_first(SMALL))
    assert ok(cghistory(plugin_env, "-q", ref)).split("\n") == [*expected, ""]
    assert ok(cghistory(plugin_env, "--quiet", "--format", "json", ref)).split() == expected
    header, rows = table(ok(cghistory(plugin_env, "--no-trunc", ref)))
    assert header[-1] == "DIGEST"
    assert [row[3] for row in rows] == expected


def test_go_templates(front: Front, plugin_env: DockerConfig) -> None:
    ref = public_repo(front, "chainguard/list-template", SMALL)
    expected = newest_first(SMALL)
    out = ok(cghistory(plugin_env, "--format", r"{{.Digest}}\t{{.Updated}}", ref))
    lines = [line.split("\t") for line in out.splitlines()]
    assert [digest for digest, _ in lines] == digests(expected)
    assert [parse_timestamp(updated) for _, updated in lines] == [t for t, _ in expected]
    header, rows = table(ok(cghistory(plugin_env, "--format", r"table {{.Index}}\t{{.Digest}}",
                                      ref)))
    assert header == ["#", "DIGEST"]
    assert rows == [[str(i), digest] for i, digest in enumerate(digests(expected))]
    out = ok(cghistory(plugin_env, "--format", "{{.Reference}} {{.Tag}}", ref))
    assert out.splitlines() == [f"{front.host}/chainguard/list-template@{d} latest"
                                for d in digests(expected)]


def test_an_empty_history_is_an_empty_listing(front: Front, plugin_env: DockerConfig) -> None:
    ref = public_repo(front, "chainguard/list-empty", [])
    assert ok(cghistory(plugin_env, "-q", ref)) == ""
    assert table(ok(cghistory(plugin_env, ref))) == (["#", "UPDATED", "AGE", "DIGEST"], [])


def test_output_into_a_closed_pipe_is_quiet(front: Front, plugin_env: DockerConfig) -> None:
    ref = public_repo(front, "chainguard/list-pipe", BIG)  # ~150 kB of table: > a pipe buffer
    result = plugin_env.run("sh", "-c", f"docker cghistory {ref} | head -n 2")
    assert result.returncode == 0
    assert len(result.stdout.splitlines()) == 2
    assert result.stderr == ""


# --------------------------------------------------------------------------- 2500 builds
@pytest.mark.parametrize(("order", "legacy"), [("asc", False), ("shuffled", True)],
                         ids=["sorted", "unsorted-legacy-keys"])
def test_2500_builds_complete_in_few_requests_and_cached_across_runs(
    front: Front, plugin_env: DockerConfig, order: str, legacy: bool
) -> None:
    front.configure(token_prefix=TOKEN_PREFIX)
    ref = public_repo(front, "chainguard/list-big", BIG, order=order, legacy_keys=legacy)
    expected = newest_first(BIG)
    first = cghistory(plugin_env, "--format", "json", ref)
    assert_json(ok(first), expected, f"{front.host}/chainguard/list-big", "latest")
    reads = history_requests(front)
    sizes = [served(BIG, r) for r in reads]
    assert 3 <= len(reads) <= 6, [r.query for r in reads]
    assert max(sizes) <= 1000
    assert sum(sizes) < 2 * len(BIG), sizes  # no re-reading of the whole history
    assert token_requests(front), "the first run needs a token"

    front.reset_log()
    second = cghistory(plugin_env, "--format", "json", ref)
    assert ok(second) == first.stdout
    assert token_requests(front) == [], "the token cached by the first run was not reused"
    reads = history_requests(front)
    assert 3 <= len(reads) <= 6, [r.query for r in reads]
    assert all(r.auth == "bearer" for r in reads)

    root = plugin_env.cache / "docker-cghistory"
    assert stat.S_IMODE(root.stat().st_mode) == 0o700
    for path in root.rglob("*"):
        want = 0o700 if path.is_dir() else 0o600
        assert stat.S_IMODE(path.stat().st_mode) == want, path
    assert any((root / "tokens").iterdir()), "no token was cached"
    assert_no_secret(plugin_env, first.stdout, first.stderr, second.stdout, second.stderr)


@pytest.mark.parametrize("count", [5, 1500, 3000])
def test_last_n_is_exact_and_reads_little(front: Front, plugin_env: DockerConfig,
                                          count: int) -> None:
    ref = public_repo(front, "chainguard/list-big", BIG)
    out = ok(cghistory(plugin_env, "-q", "-n", str(count), ref))
    assert out.split() == digests(newest_first(BIG))[:count]
    reads = history_requests(front)
    assert len(reads) <= 6, [r.query for r in reads]
    if count == 5:
        records = sum(served(BIG, r) for r in reads)
        assert records <= 100, f"read {records} records for the newest 5"
        assert len(reads) <= 3


# --------------------------------------------------------------------------- --since/--until
def test_since_until_are_sent_as_start_end_and_inclusive(
    front: Front, plugin_env: DockerConfig
) -> None:
    ref = public_repo(front, "chainguard/list-window", SMALL, order="desc")
    name = f"{front.host}/chainguard/list-window"
    since, until = SMALL[1][0], SMALL[4][0]  # one has milliseconds, one has none
    assert "." in since and "." not in until
    out = ok(cghistory(plugin_env, "--format", "json", "--since", since, "--until", until, ref))
    # --until without a fraction covers its whole second (with one, it would be exact).
    until_end = parse_timestamp(until) + timedelta(seconds=1)
    expected = newest_first(SMALL, parse_timestamp(since), parse_timestamp(until))
    assert len(expected) == 4
    assert_json(out, expected, name, "latest",
                first_index=digests(newest_first(SMALL)).index(expected[0][1]))
    reads = history_requests(front)
    windowed = [read for read in reads if bound(read, "end") is not None]
    assert windowed
    for read in windowed:
        assert bound(read, "start") == parse_timestamp(since), read.query
        assert bound(read, "end") == until_end, read.query  # the server rounds up: sent so
    # The others count the builds after --until, which give the first row its index.
    for read in reads:
        if bound(read, "end") is None:
            start = bound(read, "start")
            assert start is not None and parse_timestamp(until) < start < until_end, read.query

    # One instant: exactly that build. One millisecond later: not it.
    moment = SMALL[3][0]
    out = ok(cghistory(plugin_env, "-q", "--since", moment, "--until", moment, ref))
    assert out.split() == [SMALL[3][1]]
    later = (parse_timestamp(moment) + timedelta(milliseconds=1)).isoformat().replace(
        "+00:00", "Z")
    out = ok(cghistory(plugin_env, "-q", "--since", later, "--until", SMALL[4][0], ref))
    assert out.split() == [SMALL[4][1]]


def test_dates_ages_and_offsets(front: Front, plugin_env: DockerConfig) -> None:
    ref = public_repo(front, "chainguard/list-dates", SMALL)
    midnight = datetime(2024, 3, 2, tzinfo=timezone.utc)
    out = ok(cghistory(plugin_env, "-q", "--since", "2024-03-02", ref))
    assert out.split() == digests(newest_first(SMALL, start=midnight))
    out = ok(cghistory(plugin_env, "-q", "--until", "2024-03-02", ref))
    assert out.split() == digests(newest_first(SMALL, end=midnight))
    out = ok(cghistory(plugin_env, "-q", "--until", "2024-03-02T01:00:00+01:00", ref))
    assert out.split() == digests(newest_first(SMALL, end=midnight))

    # 721h: half a step away from any build of BIG, so the exact "now" does not matter.
    ref = public_repo(front, "chainguard/list-big", BIG)
    out = ok(cghistory(plugin_env, "-q", "--since", "721h", ref))
    expected = digests(newest_first(BIG, start=NOW - timedelta(hours=721)))
    assert len(expected) == 60
    assert out.split() == expected


def test_a_window_of_more_than_1000_builds(front: Front, plugin_env: DockerConfig) -> None:
    ref = public_repo(front, "chainguard/list-big", BIG, order="shuffled")
    since, until = BIG[200][0], BIG[1800][0]
    start, end = parse_timestamp(since), parse_timestamp(until)
    out = ok(cghistory(plugin_env, "-q", "--since", since, "--until", until, ref))
    expected = digests(newest_first(BIG, start, end))
    assert len(expected) == 1601
    assert out.split() == expected
    reads = history_requests(front)
    assert len(reads) <= 8
    # --until has no fraction: it covers its second, sent rounded up to the millisecond.
    assert "." not in until
    for read in reads:
        assert bound(read, "start") is not None and bound(read, "start") >= start, read.query
        if bound(read, "end") is None:  # counting the builds after --until, for the indexes
            assert bound(read, "start") >= end, read.query
        else:
            assert bound(read, "end") <= end + timedelta(seconds=1), read.query


def test_sub_millisecond_bounds_are_exact(front: Front, plugin_env: DockerConfig) -> None:
    ref = public_repo(front, "chainguard/list-window", SMALL)
    stamp = parse_timestamp(SMALL[1][0])  # 2024-03-01T07:00:00.xxxZ
    since = (stamp + timedelta(microseconds=500)).isoformat().replace("+00:00", "Z")
    out = ok(cghistory(plugin_env, "-q", "--since", since, ref))
    assert SMALL[1][1] not in out.split(), f"build at {SMALL[1][0]} is before --since {since}"


# --------------------------------------------------------------------------- short names
def test_short_names_with_flags(front: Front, plugin_env: DockerConfig) -> None:
    public_repo(front, "chainguard/python", SMALL[:2])
    public_repo(front, "foo.com/chainguard-base", SMALL[2:5], tag="3.12")
    host = front.host
    out = ok(cghistory(plugin_env, "--format", "json", "--registry", host, "python:latest"))
    assert_json(out, newest_first(SMALL[:2]), f"{host}/chainguard/python", "latest")
    out = ok(cghistory(plugin_env, "--registry", host, "--format", "json", "python"))
    assert_json(out, newest_first(SMALL[:2]), f"{host}/chainguard/python", "latest")
    out = ok(cghistory(plugin_env, "--registry", host, "-q", "chainguard/python"))
    assert out.split() == digests(newest_first(SMALL[:2]))
    out = ok(cghistory(plugin_env, "--registry", host, "--org", "foo.com", "--format", "json",
                       "chainguard-base:3.12"))
    assert_json(out, newest_first(SMALL[2:5]), f"{host}/foo.com/chainguard-base", "3.12")
    paths = {r.path for r in history_requests(front)}
    assert paths == {"/v2/chainguard/python/_chainguard/history/latest",
                     "/v2/foo.com/chainguard-base/_chainguard/history/3.12"}


@pytest.mark.parametrize("source", ["env", "config"])
def test_short_names_from_env_and_config(front: Front, plugin_env: DockerConfig,
                                         source: str) -> None:
    public_repo(front, "foo.com/chainguard-base", SMALL)
    if source == "env":
        plugin_env.env.update(CGHISTORY_REGISTRY=front.host, CGHISTORY_ORG="foo.com")
    else:
        plugin_env.update(plugins={"cghistory": {"registry": front.host, "org": "foo.com"}})
    out = ok(cghistory(plugin_env, "--format", "json", "chainguard-base"))
    assert_json(out, newest_first(SMALL), f"{front.host}/foo.com/chainguard-base", "latest")


def test_flags_beat_env_which_beats_config(front: Front, plugin_env: DockerConfig) -> None:
    public_repo(front, "chainguard/python", SMALL[:3])
    public_repo(front, "foo.com/python", SMALL[3:])
    plugin_env.update(plugins={"cghistory": {"registry": "127.0.0.1:9", "org": "wrong.org"}})
    plugin_env.env.update(CGHISTORY_REGISTRY=front.host, CGHISTORY_ORG="foo.com")
    out = ok(cghistory(plugin_env, "-q", "python"))
    assert out.split() == digests(newest_first(SMALL[3:]))
    out = ok(cghistory(plugin_env, "-q", "--org", "chainguard", "python"))
    assert out.split() == digests(newest_first(SMALL[:3]))
    del plugin_env.env["CGHISTORY_REGISTRY"]
    out = ok(cghistory(plugin_env, "-q", "--registry", front.host, "python"))
    assert out.split() == digests(newest_first(SMALL[3:]))


def test_org_names_with_dots(front: Front, plugin_env: DockerConfig) -> None:
    ref = public_repo(front, "foo.com/chainguard-base", SMALL)
    out = ok(cghistory(plugin_env, "--format", "json", ref))
    assert_json(out, newest_first(SMALL), f"{front.host}/foo.com/chainguard-base", "latest")
    scopes = {s for r in token_requests(front) for s in r.query.get("scope", [])}
    assert scopes == {"repository:foo.com/chainguard-base:pull"}


# --------------------------------------------------------------------------- errors
def test_unknown_tag_of_a_public_repo(front: Front, plugin_env: DockerConfig) -> None:
    public_repo(front, "chainguard/list-small", SMALL, tag="latest-dev")
    line = one_line_error(cghistory(plugin_env, f"{front.host}/chainguard/list-small:latest"))
    assert "not found" in line and f"{front.host}/chainguard/list-small:latest" in line


def test_unknown_repository(front: Front, plugin_env: DockerConfig) -> None:
    line = one_line_error(cghistory(plugin_env, f"{front.host}/chainguard/list-nosuch:1.0"))
    assert "not found" in line and "chainguard/list-nosuch" in line


def test_unknown_tag_of_a_private_repo(front: Front, plugin_env: DockerConfig) -> None:
    private_repo(front)
    plugin_env.update(auths={front.host: {"auth": b64(f"{USER}:{PASSWORD}")}})
    line = one_line_error(cghistory(plugin_env, f"{front.host}/{PRIVATE}:nope"))
    assert "not found" in line and f"{PRIVATE}:nope" in line


def test_a_missing_tag_is_told_from_a_missing_repository_with_the_nearest_tags(
        front: Front, plugin_env: DockerConfig, registry: Registry) -> None:
    """Issue 12 item 8: ``pythn`` and ``python:latst`` both said ``tag not found``. The tags
    list (through the front, from the real registry) tells them apart and names neighbours."""
    name = "chainguard/list-near"
    for tag in ("latest", "latest-dev", "3.12", "3.11"):
        push_config_only_image(registry, name, tag)
    # Anonymous may read these tags, so the history's 404 is reached, not a refusal.
    public_repo(front, name, SMALL, public_tags=["latest", "latest-dev", "latst", "3.13",
                                                  "c171a551fee2"])
    line = one_line_error(cghistory(plugin_env, f"{front.host}/{name}:latst"))
    assert line == (f"{PROG}: not found: {front.host}/{name}:latst ({name} has no tag latst; "
                    "did you mean latest?)")
    line = one_line_error(cghistory(plugin_env, f"{front.host}/{name}:3.13"))
    assert line.endswith(f"({name} has no tag 3.13; did you mean 3.11 or 3.12?)")
    line = one_line_error(cghistory(plugin_env, f"{front.host}/chainguard/list-pythn"))
    assert line == (f"{PROG}: not found: {front.host}/chainguard/list-pythn:latest (the "
                    "registry has no repository chainguard/list-pythn)")
    # A digest pasted as a tag: the command to use instead, runnable as printed.
    line = one_line_error(cghistory(plugin_env, f"{front.host}/{name}:c171a551fee2"))
    assert line.endswith(f"; c171a551fee2 looks like a digest, not a tag; to pull that build: "
                         f"{PROG} pull {front.host}/{name} --digest c171a551fee2")


def test_an_unreadable_tags_list_says_nothing_about_tags(front: Front,
                                                        plugin_env: DockerConfig) -> None:
    name = "chainguard/list-notags"
    public_repo(front, name, SMALL, public_tags=["latest", "latst"])
    front.add_fault(r"/tags/list$", "status", status=403, count=-1)
    line = one_line_error(cghistory(plugin_env, f"{front.host}/{name}:latst"))
    assert line == f"{PROG}: not found: {front.host}/{name}:latst ({name} has no tag latst)"


def test_an_empty_window_says_when_the_newest_build_is_from(front: Front,
                                                           plugin_env: DockerConfig) -> None:
    """Issue 12 item 8: ``--since 7d`` on a tag last built in 2024 printed a bare header. It
    still does on stdout (as docker's filters do, exit 0), and stderr says why."""
    ref = public_repo(front, "chainguard/list-stale", SMALL)
    newest = ok(cghistory(plugin_env, ref)).splitlines()[1].split()[1]  # as the table prints
    result = cghistory(plugin_env, ref, "--since", "7d")
    assert table(ok(result)) == (["#", "UPDATED", "AGE", "DIGEST"], [])
    assert result.stderr.startswith(f"no build of {ref} matches --since 7d; the newest, #0, "
                                    f"is from {newest} (")
    assert len(result.stderr.splitlines()) == 1
    quiet = cghistory(plugin_env, ref, "-q", "--format", "json", "--until", "2020-01-01")
    assert ok(quiet) == ""
    oldest = printed(newest_first(SMALL)[-1][0])
    assert quiet.stderr.rstrip("\n").endswith(f", the first is from {oldest}")
    # The time printed, pasted back, lists that very build.
    assert ok(cghistory(plugin_env, ref, "-q", "--since", newest)).split() == [
        digests(newest_first(SMALL))[0]]


def test_if_else_templates_and_unsupported_actions(front: Front,
                                                   plugin_env: DockerConfig) -> None:
    ref = public_repo(front, "chainguard/list-if", SMALL)
    out = ok(cghistory(plugin_env, ref, "-n", "2", "--format",
                       '{{if eq .Index 0}}newest{{else}}older{{end}} {{- " "}}{{.Digest}}'))
    assert out.splitlines() == [f"newest {d}" if i == 0 else f"older {d}"
                                for i, d in enumerate(digests(newest_first(SMALL))[:2])]
    line = one_line_error(cghistory(plugin_env, ref, "--format", "{{.Tag | upper}}"), status=2)
    assert "not supported" in line and "{{if ...}}" in line


def test_registry_without_the_history_api(front: Front, plugin_env: DockerConfig,
                                          registry: Registry) -> None:
    push_config_only_image(registry, "chainguard/list-plain", "latest")
    front.set_repo("chainguard/list-plain", {"public": True, "history_api": False})
    line = one_line_error(cghistory(plugin_env, f"{front.host}/chainguard/list-plain:latest"))
    assert "history API" in line, line


@pytest.mark.parametrize("reference", [
    "Python:latest", "python:", "python:bad!tag", "a//b", "python@sha256:" + "a" * 64,
    "127.0.0.1:5000/python@sha256:abc", " ",
])
def test_bad_references(plugin_env: DockerConfig, reference: str) -> None:
    """A reference that cannot be read is a usage error (exit 2), whatever the registry holds."""
    line = one_line_error(cghistory(plugin_env, reference), status=2)
    assert "reference" in line or "digest" in line, line


@pytest.mark.parametrize("args", [
    ["--since", "bogus"], ["--until", "yesterday"], ["--since", "2024-13-01"],
    ["--since", "2024-02-01", "--until", "2024-01-01"], ["-n", "0"], ["-n", "x"],
    ["--no-such-flag"], [],
], ids=["since", "until", "month", "reversed", "n0", "nx", "flag", "no-image"])
def test_usage_errors(front: Front, plugin_env: DockerConfig, args: list[str]) -> None:
    image = [f"{front.host}/chainguard/list-small"] if args else []
    one_line_error(cghistory(plugin_env, *args, *image), status=2)
    assert history_requests(front) == []


def test_bad_format_is_a_usage_error(front: Front, plugin_env: DockerConfig) -> None:
    ref = public_repo(front, "chainguard/list-small", SMALL)
    line = one_line_error(cghistory(plugin_env, "--format", "{{.Nope}}", ref), status=2)
    assert ".Digest" in line


# --------------------------------------------------------------------------- faults
@pytest.mark.parametrize(("where", "kind", "options"), [
    (HISTORY_RE, "status", {"status": 503}),
    (HISTORY_RE, "status", {"status": 502, "count": 2}),
    (HISTORY_RE, "reset", {}),
    (HISTORY_RE, "truncate", {}),
    (HISTORY_RE, "html", {"status": 504}),
    (r"^/token", "status", {"status": 503}),
    (r"^/token", "truncate", {}),
], ids=["503", "502x2", "reset", "truncated", "html-504", "token-503", "token-truncated"])
def test_retryable_faults_are_survived(front: Front, plugin_env: DockerConfig, where: str,
                                       kind: str, options: dict[str, Any]) -> None:
    ref = public_repo(front, "chainguard/list-faults", SMALL)
    fault = front.add_fault(where, kind, after_auth=True, **options)
    out = ok(cghistory(plugin_env, "--format", "json", ref))
    assert_json(out, newest_first(SMALL), f"{front.host}/chainguard/list-faults", "latest")
    assert fault.hits == options.get("count", 1)


@pytest.mark.parametrize(("kind", "options", "said"), [
    ("html", {}, "HTML"),
    ("nonjson", {}, "instead of JSON"),
    ("status", {"status": 500}, "HTTP 500"),
    ("body", {"body": '{"history": [{"digest": "sha256:nope\\u001b[31m", '
                      '"updateTimestamp": "2024-01-01T00:00:00Z"}]}'}, "invalid digest"),
    ("body", {"body": '{"history": [{"digest": "sha256:' + "a" * 64 + '", '
                      '"updateTimestamp": "yesterday\\u001b]0;pwned\\u0007"}]}'},
     "invalid timestamp"),
    ("status", {"status": 429, "retry_after": 3600}, "try again later"),
], ids=["html-200", "not-json", "500", "bad-digest", "bad-timestamp", "429-for-an-hour"])
def test_untrustworthy_or_final_answers_are_one_line(
    front: Front, plugin_env: DockerConfig, kind: str, options: dict[str, Any], said: str
) -> None:
    ref = public_repo(front, "chainguard/list-faults", SMALL)
    fault = front.add_fault(HISTORY_RE, kind, after_auth=True, count=-1, **options)
    line = one_line_error(cghistory(plugin_env, ref))
    assert fault.hits == 1, f"a final answer was asked for {fault.hits} times"  # no retry
    assert said in line, line
    assert "\x1b" not in line and "\x07" not in line and "Bad Gateway" not in line


def test_429_retry_after_is_honoured(front: Front, plugin_env: DockerConfig) -> None:
    ref = public_repo(front, "chainguard/list-faults", SMALL)
    fault = front.add_fault(HISTORY_RE, "status", status=429, retry_after=1, after_auth=True)
    started = time.monotonic()
    out = ok(cghistory(plugin_env, "-q", ref))
    assert time.monotonic() - started >= 1.0
    assert out.split() == digests(newest_first(SMALL))
    assert fault.hits == 1


def test_token_expiry_in_the_middle_of_a_paged_read(front: Front,
                                                    plugin_env: DockerConfig) -> None:
    """The token dies once the first page is in: the windows after it get 401, fetch a new
    token and carry on. The front expires the tokens as it answers the first page (an
    ``expire`` fault), so no thread has to win a race against the windowed read."""
    ref = public_repo(front, "chainguard/list-big", BIG)
    expire = front.add_fault(HISTORY_RE, "expire", after_auth=True, count=1)
    out = ok(cghistory(plugin_env, "-q", ref))
    assert expire.hits == 1
    assert out.split() == digests(newest_first(BIG))
    log = front.requests
    first_window = next(i for i, r in enumerate(log) if HISTORY in r.path and "start" in r.query)
    assert any(r.path == "/token" for r in log[first_window:]), "no new token after expiry"


# --------------------------------------------------------------------------- Ctrl-C
def spawn_in_terminal(env: DockerConfig, *args: str) -> pexpect.spawn:
    return pexpect.spawn("docker", ["cghistory", *args], env=env.env, cwd=str(env.home),
                         encoding="utf-8", timeout=10)


def test_ctrl_c_in_a_terminal_stops_a_hung_read(front: Front,
                                                plugin_env: DockerConfig) -> None:
    ref = public_repo(front, "chainguard/list-small", SMALL)
    fault = front.add_fault(HISTORY_RE, "hang", count=-1)
    child = spawn_in_terminal(plugin_env, ref)
    try:
        wait_for(lambda: fault.hits >= 1, what="the history request")
        child.sendintr()
        # A ceiling against hangs: without the interrupt the read would end only after 2 x 30 s
        # read timeouts, with exit status 1, not 130.
        child.expect(pexpect.EOF, timeout=20)
        child.close()
        assert child.exitstatus == 130, (child.exitstatus, child.signalstatus, child.before)
        assert "Traceback" not in child.before
        assert f"{PROG}: interrupted" in child.before
    finally:
        child.close(force=True)
        front.clear_faults()


def test_ctrl_c_in_a_terminal_during_the_parallel_read(front: Front,
                                                       plugin_env: DockerConfig) -> None:
    ref = public_repo(front, "chainguard/list-big", BIG)
    ok(cghistory(plugin_env, "-q", ref))  # remembers the windows: the next run reads at once
    fault = front.add_fault(HISTORY_RE, "hang", count=-1)
    child = spawn_in_terminal(plugin_env, ref)
    try:
        wait_for(lambda: fault.hits >= 3, what="the parallel history requests")
        child.sendintr()
        try:
            child.expect(pexpect.EOF, timeout=20)  # ceiling; the read times out after 60 s
        except pexpect.TIMEOUT:
            pytest.fail("the plugin was still running 20 s after Ctrl-C")
        child.close()
        assert child.exitstatus == 130, (child.exitstatus, child.signalstatus, child.before)
    finally:
        child.close(force=True)
        front.clear_faults()


def plugin_pid(docker_pid: int) -> int:
    """The plugin process docker started (its only child)."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == docker_pid:
            return int(entry.name)
    raise AssertionError(f"docker (pid {docker_pid}) has no child")


def start_piped(env: DockerConfig, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(["docker", "cghistory", *args], env=env.env, cwd=env.home,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)


def finish(process: subprocess.Popen[str], timeout: float) -> tuple[str, str] | None:
    """Output after exit, or ``None`` (and the process group killed) if it did not exit."""
    try:
        return process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        return None


def test_docker_closing_the_plugin_socket_stops_a_hung_read(
    front: Front, plugin_env: DockerConfig
) -> None:
    """SIGINT to the docker CLI alone (stdout not a terminal): docker closes the plugin socket
    instead of relying on the terminal's process-group signal."""
    ref = public_repo(front, "chainguard/list-small", SMALL)
    fault = front.add_fault(HISTORY_RE, "hang", count=-1)
    process = start_piped(plugin_env, ref)
    try:
        wait_for(lambda: fault.hits >= 1, what="the history request")
        os.kill(process.pid, signal.SIGINT)
        output = finish(process, timeout=20)  # ceiling; the read times out after 60 s
        assert output is not None, "the plugin was still running 20 s after the socket closed"
        assert process.returncode == 130, (process.returncode, output)
        assert output[1] == f"{PROG}: interrupted\n"
    finally:
        if process.poll() is None:
            finish(process, timeout=0)
        front.clear_faults()


def test_ctrl_c_with_output_piped_is_one_line(front: Front, plugin_env: DockerConfig) -> None:
    """``docker cghistory python 2>&1 | less`` then Ctrl-C: the whole group gets SIGINT and,
    stdout not being a terminal, docker also closes the plugin socket. Which the plugin sees
    first is a race; here the plugin gets its SIGINT first and a full stderr pipe holds it in
    its "interrupted" line until docker has closed the socket, which makes the bad order
    certain. A second interrupt must not turn that line into a traceback."""
    ref = public_repo(front, "chainguard/list-small", SMALL)
    fault = front.add_fault(HISTORY_RE, "hang", count=-1)
    read_end, write_end = os.pipe()
    os.set_blocking(write_end, False)
    filler = 0
    with contextlib.suppress(BlockingIOError):
        while True:
            filler += os.write(write_end, b"." * 4096)
    os.set_blocking(write_end, True)
    process = subprocess.Popen(["docker", "cghistory", ref], env=plugin_env.env,
                               cwd=plugin_env.home, stdout=subprocess.DEVNULL, stderr=write_end,
                               start_new_session=True)
    os.close(write_end)
    chunks: list[bytes] = []
    try:
        wait_for(lambda: fault.hits >= 1, what="the history request")
        os.kill(plugin_pid(process.pid), signal.SIGINT)
        time.sleep(0.3)  # the plugin is now blocked writing its line into the full pipe
        os.kill(process.pid, signal.SIGINT)  # docker: closes the plugin socket
        time.sleep(0.3)
        drain = threading.Thread(target=lambda: chunks.extend(iter(
            lambda: os.read(read_end, 65536), b"")), daemon=True)
        drain.start()
        try:
            status = process.wait(timeout=20)  # ceiling; the read times out after 60 s
        except subprocess.TimeoutExpired:
            pytest.fail("the plugin was still running 20 s after Ctrl-C")
        drain.join(5)
    finally:
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        os.close(read_end)
        front.clear_faults()
    stderr = b"".join(chunks)[filler:].decode(errors="replace")
    assert (status, stderr) == (130, f"{PROG}: interrupted\n"), stderr[-800:]


# --------------------------------------------------------------------------- credentials
def setup_credentials(how: str, env: DockerConfig, host: str,
                      cred_helper: Callable[..., CredHelper]) -> CredHelper | None:
    """Configure one credential source for ``host``; returns the helper if there is one."""
    if how == "auths":
        env.update(auths={host: {"auth": b64(f"{USER}:{PASSWORD}")}})
    elif how == "auths-url-key":
        env.update(auths={f"http://{host}/v2/": {"auth": b64(f"{USER}:{PASSWORD}")}})
    elif how == "auths-identitytoken":
        env.update(auths={host: {"identitytoken": IDENTITY}})
    elif how == "auths-token-user":
        env.update(auths={host: {"auth": b64(f"<token>:{IDENTITY}")}})
    elif how == "credHelpers-bearer":
        helper = cred_helper("listcgr", {host: ("_token", BEARER)})
        env.update(credHelpers={host: "listcgr"})
        return helper
    elif how == "credHelpers-identity":
        helper = cred_helper("listcgr", {host: ("<token>", IDENTITY)})
        env.update(credHelpers={host: "listcgr"})
        return helper
    elif how == "credsStore":
        helper = cred_helper("liststore", {host: (USER, PASSWORD)})
        env.update(credsStore="liststore", auths={host: {}})
        return helper
    else:  # pragma: no cover
        raise AssertionError(how)
    return None


@pytest.mark.parametrize(("how", "exchange"), [
    ("auths", ["basic"]),
    ("auths-url-key", ["basic"]),
    ("auths-identitytoken", ["refresh"]),
    ("auths-token-user", ["refresh"]),
    ("credHelpers-bearer", ["basic", "bearer"]),
    ("credHelpers-identity", ["refresh"]),
    ("credsStore", ["basic"]),
])
def test_private_repo_with_each_credential_source_and_no_secret_in_debug(
    front: Front, plugin_env: DockerConfig, cred_helper: Callable[..., CredHelper],
    how: str, exchange: list[str],
) -> None:
    ref = private_repo(front)
    helper = setup_credentials(how, plugin_env, front.host, cred_helper)
    result = cghistory(plugin_env, "--debug", "--format", "json", ref)
    assert_json(ok(result), newest_first(SMALL), f"{front.host}/{PRIVATE}", "latest")
    assert [r.auth for r in token_requests(front)] == exchange
    if helper is not None:
        assert ("get", front.host) in helper.calls()
    assert result.stderr, "--debug printed nothing"
    assert_no_secret(plugin_env, result.stdout, result.stderr)
    # The second run takes the sealed token from the cache and still shows nothing.
    front.reset_log()
    again = cghistory(plugin_env, "--debug", "-q", ref)
    assert ok(again).split() == digests(newest_first(SMALL))
    assert token_requests(front) == []
    assert_no_secret(plugin_env, again.stdout, again.stderr)


def test_dockers_own_debug_flag_shows_no_secret(front: Front, plugin_env: DockerConfig) -> None:
    """``docker -D cghistory ...``: docker's global debug flag turns on the plugin's too."""
    ref = private_repo(front)
    plugin_env.update(auths={front.host: {"auth": b64(f"{USER}:{PASSWORD}")}})
    result = plugin_env.run("docker", "-D", "cghistory", "-q", ref)
    assert ok(result).split() == digests(newest_first(SMALL))
    assert "/token" in result.stderr, "no debug output"
    assert_no_secret(plugin_env, result.stdout, result.stderr)


@pytest.mark.parametrize("how", [
    "missing", "wrong-password", "wrong-identity-token", "wrong-helper-secret",
    "helper-without-entry", "helper-not-installed",
])
def test_missing_or_wrong_credentials(
    front: Front, plugin_env: DockerConfig, cred_helper: Callable[..., CredHelper], how: str,
) -> None:
    ref = private_repo(front)
    host = front.host
    if how == "wrong-password":
        plugin_env.update(auths={host: {"auth": b64(f"{USER}:{WRONG_PASSWORD}")}})
        source = "auths"
    elif how == "wrong-identity-token":
        plugin_env.update(auths={host: {"identitytoken": WRONG_PASSWORD}})
        source = "auths"
    elif how == "wrong-helper-secret":
        cred_helper("listcgr", {host: (USER, WRONG_PASSWORD)})
        plugin_env.update(credHelpers={host: "listcgr"})
        source = "docker-credential-listcgr"
    elif how == "helper-without-entry":
        cred_helper("listcgr", {"elsewhere.example": (USER, PASSWORD)})
        plugin_env.update(credHelpers={host: "listcgr"})
        source = "anonymous"
    elif how == "helper-not-installed":
        plugin_env.update(credHelpers={host: "listnosuch"})
        source = "docker-credential-listnosuch"
    else:
        source = "anonymous"
    line = one_line_error(cghistory(plugin_env, ref))
    assert source in line, line
    if how != "helper-not-installed":
        assert f"docker login {host}" in line, line
        assert PRIVATE in line
    debug = cghistory(plugin_env, "--debug", ref)
    assert debug.returncode == 1
    assert debug.stdout == ""
    assert_no_secret(plugin_env, line, debug.stderr)


# --------------------------------------------------------------------------- issue 12: #, times
# Several builds in one second, with and without fractions (newest first: #0 .. #6).
SAME_SECOND_STAMPS = [
    "2024-06-30T00:00:00Z",  # 0
    "2024-06-29T10:00:00.123Z",  # 1
    "2024-06-29T09:07:00.971Z",  # 2
    "2024-06-29T09:07:00.2Z",  # 3
    "2024-06-29T09:07:00Z",  # 4: the registry wrote no fraction
    "2024-06-28T09:07:00.5Z",  # 5
    "2024-06-27T09:07:00Z",  # 6
]
SAME_SECOND = [[stamp, fake_digest("same-second", index)]
               for index, stamp in reversed(list(enumerate(SAME_SECOND_STAMPS)))]


@pytest.mark.parametrize(("args", "indexes"), [
    (["--until", "2024-06-29T09:07:00Z"], [2, 3, 4, 5, 6]),  # the whole second
    (["--until", "2024-06-29T09:07:00.000Z"], [4, 5, 6]),  # that instant
    (["--until", "2024-06-28"], [6]),
    (["--since", "2024-06-28", "--until", "2024-06-29T09:07:00.2Z"], [3, 4, 5]),
    (["--since", "2024-06-29T09:07:00Z"], [0, 1, 2, 3, 4]),  # from the second's start
    (["--since", "2024-06-29T09:07:00.5Z"], [0, 1, 2]),
    (["-n", "3"], [0, 1, 2]),
    (["--until", "2024-06-29T09:07:00Z", "-n", "2"], [2, 3]),
    (["--since", "2024-06-28", "--until", "2024-06-29T10:00:00Z", "-n", "2"], [1, 2]),
], ids=["until-second", "until-exact", "until-date", "since-until", "since-second",
        "since-exact", "last", "until-last", "since-until-last"])
def test_windows_keep_their_full_listing_indexes(
    front: Front, plugin_env: DockerConfig, args: list[str], indexes: list[int]
) -> None:
    """Issue 12 item 2: ``#`` (and ``.Index``, JSON ``Index``) is the index ``pull --index``
    and ``bisect`` read, whatever part of the listing is shown."""
    ref = public_repo(front, "chainguard/list-indexes", SAME_SECOND, order="shuffled")
    full = json_rows(ok(cghistory(plugin_env, "--format", "json", ref)))
    assert [row["Index"] for row in full] == list(range(len(SAME_SECOND_STAMPS)))
    rows = json_rows(ok(cghistory(plugin_env, "--format", "json", *args, ref)))
    assert [row["Index"] for row in rows] == indexes
    assert rows == [full[index] for index in indexes]
    _, cells = table(ok(cghistory(plugin_env, *args, ref)))
    assert [(cell[0], cell[1]) for cell in cells] == [
        (str(index), full[index]["Updated"]) for index in indexes]
    out = ok(cghistory(plugin_env, "--format", "{{.Index}} {{.Digest}}", *args, ref))
    assert out.splitlines() == [f"{index} {full[index]['Digest']}" for index in indexes]


def test_every_printed_time_is_that_builds_exact_time(
    front: Front, plugin_env: DockerConfig
) -> None:
    """Issue 12 item 3: the table showed 09:07:00Z for a build at 09:07:00.971Z. Every time is
    now exact (a fraction always, ``.000`` when the registry wrote none), and pasted into
    ``--until``/``--since`` it bounds the listing at that very build."""
    ref = public_repo(front, "chainguard/list-exact", SAME_SECOND)
    _, cells = table(ok(cghistory(plugin_env, ref)))
    shown = [cell[1] for cell in cells]
    assert shown == [stamp if "." in stamp else stamp[:-1] + ".000Z"
                     for stamp in SAME_SECOND_STAMPS]
    for index, time_ in enumerate(shown):
        _, upto = table(ok(cghistory(plugin_env, "--until", time_, "-n", "1", ref)))
        assert [(c[0], c[1]) for c in upto] == [(str(index), time_)]
    _, after = table(ok(cghistory(plugin_env, "--since", shown[4], ref)))
    assert [c[0] for c in after] == ["0", "1", "2", "3", "4"]
