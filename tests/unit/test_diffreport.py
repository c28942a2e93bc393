"""diffreport: the json keys the issue lists, the Markdown table, -q, the text report and the
one line of an identical platform image; foreign text never reaches the terminal raw."""

from __future__ import annotations

import json

import pytest

from docker_cghistory import diffreport
from docker_cghistory.changes import ImageSize, diff_config, diff_packages
from docker_cghistory.diffreport import DiffReport, Side
from docker_cghistory.packages import Package

OLD_DIGEST = "sha256:" + "a1" * 32
NEW_DIGEST = "sha256:" + "b2" * 32
OLD_PLATFORM = "sha256:" + "c3" * 32
NEW_PLATFORM = "sha256:" + "d4" * 32

OLD_PACKAGES = [Package("apk", "openssl", "3.3.0-r1"), Package("apk", "ncurses", "6.4-r1"),
                Package("apk", "zlib", "1.3.1-r0"), Package("pypi", "requests", "2.31.0")]
NEW_PACKAGES = [Package("apk", "openssl", "3.3.1-r0"), Package("apk", "libexpat1", "2.6.2-r0"),
                Package("apk", "zlib", "1.3.1-r0"), Package("pypi", "requests", "2.32.0"),
                Package("apk", "requests", "1.0-r0")]
OLD_CONFIG = {"config": {"User": "65532", "Env": ["PATH=/bin", "PYTHON_VERSION=3.12.3"]}}
NEW_CONFIG = {"config": {"User": "0", "Env": ["PATH=/bin", "PYTHON_VERSION=3.12.4"],
                         "Labels": {"org.example.x": "y"}}}


def report(**changes) -> DiffReport:
    old = Side(1, OLD_DIGEST, OLD_PLATFORM, "2024-06-06T00:00:00.000Z", "sbom",
               ImageSize(12_300_000, 4))
    new = Side(0, NEW_DIGEST, NEW_PLATFORM, "2024-06-07T00:00:00.000Z", "layers",
               ImageSize(12_504_800, 5))
    values = {
        "image": "cgr.dev/chainguard/python:latest", "platform": "linux/amd64", "old": old,
        "new": new, "packages": diff_packages(OLD_PACKAGES, NEW_PACKAGES),
        "config": tuple(diff_config(OLD_CONFIG, NEW_CONFIG)),
    }
    values.update(changes)
    return DiffReport(**values)


def test_json_has_exactly_the_issue_keys_with_display_names() -> None:
    document = json.loads(diffreport.render(report(), "json"))
    assert list(document) == ["Image", "Platform", "Old", "New", "Source", "Packages", "Config",
                              "Size", "Identical"]
    assert document["Old"] == {"Index": 1, "Digest": OLD_DIGEST, "PlatformDigest": OLD_PLATFORM,
                               "Updated": "2024-06-06T00:00:00.000Z"}
    assert list(document["New"]) == ["Index", "Digest", "PlatformDigest", "Updated"]
    assert document["Source"] == {"Old": "sbom", "New": "layers"}
    packages = document["Packages"]
    assert list(packages) == ["Added", "Removed", "Changed"]
    # requests exists as apk and pypi in the new build: both get their type prefix
    assert packages["Added"] == [{"Name": "apk/requests", "Version": "1.0-r0"},
                                 {"Name": "libexpat1", "Version": "2.6.2-r0"}]
    assert packages["Removed"] == [{"Name": "ncurses", "Version": "6.4-r1"}]
    assert packages["Changed"] == [{"Name": "openssl", "Old": "3.3.0-r1", "New": "3.3.1-r0"},
                                   {"Name": "pypi/requests", "Old": "2.31.0", "New": "2.32.0"}]
    assert {c["Field"]: (c["Old"], c["New"]) for c in document["Config"]} == {
        "User": ("65532", "0"), "Env.PYTHON_VERSION": ("3.12.3", "3.12.4"),
        "Labels.org.example.x": (None, "y")}
    assert document["Size"] == {"Old": 12_300_000, "New": 12_504_800}
    assert document["Identical"] is False


def test_builds_named_by_reference_have_null_index_and_updated() -> None:
    old = Side(None, OLD_DIGEST, OLD_PLATFORM, None, "sbom")
    new = Side(None, NEW_DIGEST, NEW_PLATFORM, None, "sbom")
    document = json.loads(diffreport.render_json(report(old=old, new=new)))
    assert document["Old"]["Index"] is None and document["Old"]["Updated"] is None
    assert document["New"]["Index"] is None and document["New"]["Updated"] is None
    assert OLD_DIGEST[7:19] in diffreport.render_text(report(old=old, new=new))


def test_identical_platform_image() -> None:
    old = Side(1, OLD_DIGEST, OLD_PLATFORM, "2024-06-06T00:00:00.000Z", "sbom")
    new = Side(0, NEW_DIGEST, OLD_PLATFORM, "2024-06-07T00:00:00.000Z", "sbom")
    same = report(old=old, new=new, packages=diff_packages([], []), config=(), identical=True,
                  others=("linux/arm64",))
    text = diffreport.render(same, None)
    assert text.count("\n") == 1
    assert "linux/amd64" in text and "linux/arm64" in text and "identical" in text
    assert OLD_PLATFORM[:19] in text
    document = json.loads(diffreport.render(same, "json"))
    assert document["Identical"] is True
    assert document["Packages"] == {"Added": [], "Removed": [], "Changed": []}
    assert document["Config"] == []
    assert diffreport.render(same, None, quiet=True) == ""
    assert diffreport.render(same, "json", quiet=True) == ""
    assert not same.differs and report().differs
    markdown = diffreport.render(same, "markdown")
    assert "|" not in markdown and "identical" in markdown


def test_quiet_prints_each_changed_added_or_removed_name_once() -> None:
    assert diffreport.render(report(), None, quiet=True).splitlines() == [
        "apk/requests", "libexpat1", "ncurses", "openssl", "pypi/requests"]


def test_markdown_table_of_packages_and_config() -> None:
    lines = diffreport.render(report(), "markdown").splitlines()
    assert lines[0].startswith("### cgr.dev/chainguard/python:latest (linux/amd64): #1 ")
    start = lines.index("| Package | Old | New |")
    assert lines[start + 1] == "| --- | --- | --- |"
    rows = lines[start + 2 : start + 7]
    assert rows == [
        "| openssl | 3.3.0-r1 | 3.3.1-r0 |",
        "| pypi/requests | 2.31.0 | 2.32.0 |",
        "| apk/requests |  | 1.0-r0 |",
        "| libexpat1 |  | 2.6.2-r0 |",
        "| ncurses | 6.4-r1 |  |",
    ]
    assert "| Env.PYTHON\\_VERSION | 3.12.3 | 3.12.4 |" in lines
    assert any(line.startswith("Size: 12.3 MB") for line in lines)


def test_markdown_cells_cannot_break_the_table() -> None:
    hostile = [Package("apk", "evil|name", "1`<b>"), Package("apk", "zlib", "1")]
    lines = diffreport.render(report(packages=diff_packages([], hostile)), "markdown")
    row = next(line for line in lines.splitlines() if "evil" in line)
    assert row == "| evil\\|name |  | 1\\`\\<b\\> |"
    assert row.count(" | ") == 2  # three cells, no more


def test_text_report_sections_and_size() -> None:
    text = diffreport.render(report(), None)
    lines = text.splitlines()
    assert lines[0] == "cgr.dev/chainguard/python:latest  linux/amd64"
    assert "#1 a1a1a1a1a1a1" in lines[1] and "2024-06-06T00:00:00.000Z" in lines[1]
    assert "SBOM" in lines[1] and "layers" in lines[2] and "#0 b2b2b2b2b2b2" in lines[2]
    assert "Packages changed (2)" in lines
    changed = lines[lines.index("Packages changed (2)") + 1]
    assert changed.split() == ["openssl", "3.3.0-r1", "→", "3.3.1-r0"]
    assert "Packages added (2)" in lines and "Packages removed (1)" in lines
    config = lines[lines.index("Config") + 1:]
    assert any(line.split() == ["User", "65532", "→", "0"] for line in config)
    assert any(line.split() == ["Labels.org.example.x", "(none)", "→", "y"] for line in config)
    assert lines[-1].strip() == "12.3 MB → 12.5 MB (+204,800 bytes), 4 → 5 layers"


def test_no_package_data_is_one_line_and_config_and_size_still_show() -> None:
    old = Side(1, OLD_DIGEST, OLD_PLATFORM, None, "none")
    text = diffreport.render_text(report(old=old, packages=diff_packages([], [])))
    assert sum("no package data" in line for line in text.splitlines()) == 1
    assert "Config" in text and "Size" in text


def test_foreign_text_is_escaped_in_the_report() -> None:
    hostile = [Package("apk", "x\x1b]0;pwned\x07", "1\x1b[2J")]
    text = diffreport.render_text(report(packages=diff_packages([], hostile)))
    assert "\x1b" not in text and "\x07" not in text
    assert "\\x1b" in text


@pytest.mark.parametrize(("size", "shown"), [
    (0, "0 B"), (999, "999 B"), (1000, "1 kB"), (12_345_678, "12.3 MB"),
    (3_000_000_000, "3 GB")])
def test_human_size(size: int, shown: str) -> None:
    assert diffreport.human_size(size) == shown
