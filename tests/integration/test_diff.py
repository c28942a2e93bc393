"""``docker cghistory diff`` through the real docker CLI, against real multi-platform builds in
the real registry behind the front (tests/support/images): what it reports for every pair of
consecutive builds, how OLD/NEW and full references name builds, platforms, the SBOM sources
and the layer fallback, proven from the front's log of blob downloads.
"""

from __future__ import annotations

import json
import subprocess
from typing import Any

import pytest

from docker_cghistory.platforms import local_platform
from tests.support.front import Front
from tests.support.images import WRONG_SUBJECT_MARKER, Series, push_all, register
from tests.support.services import DockerConfig, Registry

pytestmark = pytest.mark.integration

PROG = "docker cghistory"


@pytest.fixture(scope="module")
def images(registry: Registry, front: Front) -> dict[str, Series]:
    series = push_all(registry)
    register(front, series.values())
    front.save_baseline()
    return series


def cghistory(env: DockerConfig, *args: str) -> subprocess.CompletedProcess[str]:
    return env.run("docker", "cghistory", *args, timeout=120)


def ok(result: subprocess.CompletedProcess[str], status: int = 0) -> str:
    assert result.returncode == status, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    return result.stdout


def one_line_error(result: subprocess.CompletedProcess[str], status: int = 1) -> str:
    assert result.returncode == status, (result.returncode, result.stdout, result.stderr)
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"{PROG}: "), result.stderr
    return lines[0]


def ref(front: Front, series: Series) -> str:
    return f"{front.host}/{series.repo}:{series.tag}"


def diff_json(env: DockerConfig, *args: str, status: int = 0) -> dict[str, Any]:
    return dict(json.loads(ok(cghistory(env, "diff", *args, "--format", "json"), status)))


def expected_document(series: Series, old_index: int, new_index: int,
                      platform: str) -> dict[str, Any]:
    """The json ``diff`` must print, from what the fixture pushed (Config compared sorted)."""
    old, new = series.by_index(old_index), series.by_index(new_index)
    expected = series.expected_diff(old, new, platform)
    packages = expected.packages
    return {
        "Platform": platform,
        "Old": {"Index": old_index, "Digest": old.digest,
                "PlatformDigest": old.platforms[platform].digest},
        "New": {"Index": new_index, "Digest": new.digest,
                "PlatformDigest": new.platforms[platform].digest},
        "Source": expected.source, "Packages": packages,
        "Config": expected.config, "Size": expected.size, "Identical": expected.identical,
    }


def comparable(document: dict[str, Any]) -> dict[str, Any]:
    out = {key: document[key] for key in ("Platform", "Source", "Packages", "Size",
                                          "Identical")}
    out["Config"] = sorted(document["Config"], key=lambda change: change["Field"])
    for side in ("Old", "New"):
        out[side] = {k: document[side][k] for k in ("Index", "Digest", "PlatformDigest")}
    return out


def test_every_consecutive_pair_reports_what_the_fixture_changed(
        images: dict[str, Series], front: Front, plugin_env: DockerConfig) -> None:
    checked = 0
    for series in images.values():
        for platform in sorted({p for build in series.builds for p in build.platforms}):
            for old, new, _ in series.consecutive_diffs(platform):
                document = diff_json(plugin_env, ref(front, series), str(old.list_index),
                                     str(new.list_index), "--platform", platform)
                assert list(document) == ["Image", "Platform", "Old", "New", "Source",
                                          "Packages", "Config", "Size", "Identical"]
                assert document["Image"] == ref(front, series)
                assert comparable(document) == expected_document(
                    series, old.list_index, new.list_index, platform), (series.tag, platform)
                assert document["Old"]["Updated"].startswith(old.updated[:19])
                names = {p["Name"] for kind in document["Packages"].values() for p in kind}
                assert WRONG_SUBJECT_MARKER not in names
                checked += 1
    assert checked >= 15


def test_defaults_are_the_previous_and_the_newest_build_on_this_platform(
        images: dict[str, Series], front: Front, plugin_env: DockerConfig) -> None:
    series = images["latest"]
    # DOCKER_HOST names a socket with no engine behind it: the machine's platform is used.
    platform = str(local_platform())
    if platform not in series.by_index(0).platforms:  # another machine: refused in one line
        refused = cghistory(plugin_env, "diff", ref(front, series))
        assert refused.returncode == 1 and len(refused.stderr.splitlines()) == 1
        assert f"{platform} image" in refused.stderr and " has linux/" in refused.stderr
        return
    result = cghistory(plugin_env, "diff", ref(front, series), "--format", "json")
    document = json.loads(ok(result))
    assert comparable(document) == expected_document(series, 1, 0, platform)


@pytest.mark.parametrize("form", ["index", "digest-prefix", "full-digest", "time"])
def test_old_and_new_name_builds_as_bisect_does(images: dict[str, Series], front: Front,
                                                 plugin_env: DockerConfig, form: str) -> None:
    series = images["latest"]
    old, new = series.by_index(4), series.by_index(2)

    def name(build: Any) -> str:
        if form == "index":
            return str(build.list_index)
        if form == "digest-prefix":
            hexa = build.digest.removeprefix("sha256:")
            return next(hexa[:n] for n in range(7, 64) if any(c.isalpha() for c in hexa[:n]))
        if form == "full-digest":
            return str(build.digest)
        return str(build.updated)

    document = diff_json(plugin_env, ref(front, series), name(old), name(new), "--platform",
                         "linux/amd64")
    assert comparable(document) == expected_document(series, 4, 2, "linux/amd64")


def test_an_unknown_build_is_refused_as_bisect_refuses_it(
        images: dict[str, Series], front: Front, plugin_env: DockerConfig) -> None:
    series = images["latest"]
    line = one_line_error(cghistory(plugin_env, "diff", ref(front, series), "40", "0",
                                    "--platform", "linux/amd64"))
    assert line.startswith(f"{PROG}: OLD 40: "), line
    usage = one_line_error(cghistory(plugin_env, "diff", ref(front, series), "soon!"), 2)
    assert "invalid OLD 'soon!'" in usage


def test_only_arm64_changed(images: dict[str, Series], front: Front,
                            plugin_env: DockerConfig) -> None:
    series = images["latest"]
    first, second = series.builds[0], series.builds[1]
    assert first.platforms["linux/amd64"].digest == second.platforms["linux/amd64"].digest
    args = [ref(front, series), str(first.list_index), str(second.list_index)]
    same = cghistory(plugin_env, "diff", *args, "--platform", "linux/amd64", "--exit-code")
    lines = ok(same).splitlines()
    assert len(lines) == 1
    assert "linux/amd64" in lines[0] and "identical" in lines[0]
    assert lines[0].endswith("differ only in linux/arm64")
    document = diff_json(plugin_env, *args, "--platform", "linux/amd64")
    assert document["Identical"] is True
    assert document["Packages"] == {"Added": [], "Removed": [], "Changed": []}
    assert document["Config"] == []
    assert ok(cghistory(plugin_env, "diff", *args, "--platform", "linux/amd64", "-q")) == ""
    changed = cghistory(plugin_env, "diff", *args, "--platform", "linux/arm64/v8", "-q",
                        "--exit-code")
    expected = series.expected_diff(first, second, "linux/arm64")
    assert ok(changed, 1).splitlines() == expected.changed_names
    assert "openssl" in expected.changed_names


def test_attested_builds_download_no_layer_and_a_second_diff_no_sbom(
        images: dict[str, Series], front: Front, plugin_env: DockerConfig) -> None:
    series = images["latest"]
    old, new = series.by_index(5), series.by_index(4)  # amd64: .att tag, then referrers
    sides = (old.platforms["linux/amd64"], new.platforms["linux/amd64"])
    assert [side.attestation for side in sides] == ["cosign", "referrers"]
    front.reset_log()
    document = diff_json(plugin_env, ref(front, series), "5", "4", "--platform", "linux/amd64")
    assert document["Source"] == {"Old": "sbom", "New": "sbom"}
    kinds = [download.kind for download in front.blob_downloads(series.repo)]
    assert kinds.count("attestation") == 2
    assert "layer" not in kinds
    paths = [request.path for request in front.requests]
    assert any("/referrers/" in path for path in paths)
    assert any(path.endswith(".att") for path in paths)
    front.reset_log()
    again = diff_json(plugin_env, ref(front, series), "5", "4", "--platform", "linux/amd64")
    assert again == document
    assert front.blob_downloads(series.repo) == []


def test_a_wrong_subject_sbom_is_refused_with_a_warning_and_the_layers_read(
        images: dict[str, Series], front: Front, plugin_env: DockerConfig) -> None:
    series = images["latest"]
    newest = series.by_index(0).platforms["linux/amd64"]
    assert newest.attestation == "wrong-subject"
    front.reset_log()
    result = cghistory(plugin_env, "diff", ref(front, series), "--platform", "linux/amd64",
                       "--format", "json")
    document = json.loads(ok(result))
    assert document["Source"]["New"] == "layers"
    warnings = result.stderr.splitlines()
    assert len(warnings) == 1 and warnings[0].startswith("warning: ")
    assert newest.digest[:19] in warnings[0]
    # Layers were read, and only those of the two builds without a usable SBOM.
    layer_downloads = {d.digest for d in front.blob_downloads(series.repo) if d.kind == "layer"}
    allowed = {*newest.layers, *series.by_index(1).platforms["linux/amd64"].layers}
    assert layer_downloads and layer_downloads <= allowed


def test_builds_without_sbom_read_only_their_own_layers(
        images: dict[str, Series], front: Front, plugin_env: DockerConfig) -> None:
    for series in (images["single"], images["dpkg"], images["distroless"]):
        front.reset_log()
        document = diff_json(plugin_env, ref(front, series), "--platform", "linux/amd64")
        assert set(document["Source"].values()) <= {"layers", "none"}
        read = {d.digest for d in front.blob_downloads(series.repo) if d.kind == "layer"}
        mine = {layer for index in (0, 1)
                for layer in series.by_index(index).platforms["linux/amd64"].layers}
        assert read and read <= mine, series.tag


def test_two_full_references_need_no_history(images: dict[str, Series], front: Front,
                                             plugin_env: DockerConfig) -> None:
    series = images["latest"]
    old, new = series.by_index(3), series.by_index(2)
    front.reset_log()
    document = diff_json(plugin_env, f"{front.host}/{series.repo}@{old.digest}",
                         f"{front.host}/{series.repo}@{new.digest}", "--platform",
                         "linux/arm64")
    assert document["Old"] == {"Index": None, "Digest": old.digest, "Updated": None,
                               "PlatformDigest": old.platforms["linux/arm64"].digest}
    assert document["New"]["Index"] is None and document["New"]["Updated"] is None
    assert document["Image"] == f"{front.host}/{series.repo}"
    expected = series.expected_diff(old, new, "linux/arm64")
    assert document["Packages"] == expected.packages
    assert not any("/_chainguard/history/" in request.path for request in front.requests)


def test_a_registry_without_history_still_compares_full_references(
        images: dict[str, Series], front: Front, plugin_env: DockerConfig) -> None:
    series = images["dpkg"]
    front.update_repo(series.repo, history_api=False)
    line = one_line_error(cghistory(plugin_env, "diff", ref(front, series)))
    assert "has no tag history API" in line and "REF@sha256:" in line
    old, new = series.by_index(1), series.by_index(0)
    document = diff_json(plugin_env, f"{front.host}/{series.repo}@{old.digest}",
                         f"{front.host}/{series.repo}@{new.digest}", "--platform", "linux/amd64")
    expected = series.expected_diff(old, new, "linux/amd64")
    assert document["Packages"] == expected.packages and document["Source"] == expected.source


def test_a_platform_the_build_lacks_names_the_ones_it_has(
        images: dict[str, Series], front: Front, plugin_env: DockerConfig) -> None:
    series = images["latest"]
    assert "linux/arm64" not in series.by_index(1).platforms
    line = one_line_error(cghistory(plugin_env, "diff", ref(front, series), "2", "1",
                                    "--platform", "linux/arm64"))
    assert "has no linux/arm64 image; it has linux/amd64" in line


def test_exit_code_and_the_text_report(images: dict[str, Series], front: Front,
                                       plugin_env: DockerConfig) -> None:
    series = images["latest"]
    result = cghistory(plugin_env, "diff", ref(front, series), "5", "4", "--platform",
                       "linux/amd64", "--exit-code")
    text = ok(result, 1)
    lines = text.splitlines()
    old, new = series.by_index(5), series.by_index(4)
    assert lines[0] == f"{ref(front, series)}  linux/amd64"
    assert f"#5 {old.digest[7:19]}" in lines[1] and f"#4 {new.digest[7:19]}" in lines[2]
    expected = series.expected_diff(old, new, "linux/amd64")
    for change in expected.packages["Changed"]:
        assert any(line.split() == [change["Name"], change["Old"], "→", change["New"]]
                   for line in lines), change
    for added in expected.packages["Added"]:
        assert any(line.split() == [added["Name"], added["Version"]] for line in lines)
    assert any(line.strip().startswith("Env.PYTHON_VERSION") for line in lines)
    delta = expected.size["New"] - expected.size["Old"]
    assert f"({delta:+,} bytes)" in lines[-1]
    assert result.stderr == ""  # not a terminal: no progress
    markdown = ok(cghistory(plugin_env, "diff", ref(front, series), "5", "4", "--platform",
                            "linux/amd64", "--format", "markdown"))
    assert "| Package | Old | New |" in markdown


def test_progress_on_a_terminal_only_while_layers_are_read(
        images: dict[str, Series], front: Front, plugin_env: DockerConfig) -> None:
    import pexpect

    series = images["dpkg"]
    child = pexpect.spawn("docker", ["cghistory", "diff", ref(front, series), "--platform",
                                     "linux/amd64"], env=plugin_env.env,
                          cwd=str(plugin_env.home), encoding="utf-8", timeout=60)
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0, child.before
    screen = child.before
    assert "reading image layers for their package database: " in screen
    # The progress line is erased before the report is written.
    report = screen[screen.rindex("\x1b[2K") + len("\x1b[2K"):]
    assert report.lstrip("\r").startswith(f"{ref(front, series)}  linux/amd64")
