"""Package, config and size changes, and the shapes every output shares."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from docker_cghistory import packages as pkgs
from docker_cghistory.changes import (
    ConfigChange,
    PackageChange,
    PackageChanges,
    PackageVersion,
    diff_config,
    diff_packages,
    size_of,
    summary,
    to_json,
)
from docker_cghistory.packages import Package
from docker_cghistory.platforms import ManifestError

OLD = [Package("apk", "openssl", "3.4.0-r2"), Package("apk", "ncurses", "6.5-r0"),
       Package("apk", "glibc", "2.40-r3"), Package("pypi", "requests", "2.32.2")]
NEW = [Package("apk", "openssl", "3.4.0-r3"), Package("apk", "libexpat1", "2.6.4-r0"),
       Package("apk", "glibc", "2.40-r3"), Package("pypi", "requests", "2.32.3")]


def test_added_removed_and_changed_sorted_by_name():
    changes = diff_packages(OLD, NEW)
    assert changes.added == (PackageVersion("libexpat1", "2.6.4-r0"),)
    assert changes.removed == (PackageVersion("ncurses", "6.5-r0"),)
    assert changes.changed == (PackageChange("openssl", "3.4.0-r2", "3.4.0-r3"),
                               PackageChange("requests", "2.32.2", "2.32.3"))
    assert changes.names() == ["libexpat1", "ncurses", "openssl", "requests"]


def test_to_json_has_exactly_the_documented_shape():
    assert to_json(diff_packages(OLD, NEW)) == {
        "Added": [{"Name": "libexpat1", "Version": "2.6.4-r0"}],
        "Removed": [{"Name": "ncurses", "Version": "6.5-r0"}],
        "Changed": [{"Name": "openssl", "Old": "3.4.0-r2", "New": "3.4.0-r3"},
                    {"Name": "requests", "Old": "2.32.2", "New": "2.32.3"}],
    }
    assert to_json(PackageChanges()) == {"Added": [], "Removed": [], "Changed": []}


def test_a_name_shared_by_two_types_on_either_side_is_prefixed_on_both():
    old = [Package("pypi", "requests", "2.32.2")]
    new = [Package("pypi", "requests", "2.32.3"), Package("deb", "requests", "1.0")]
    changes = diff_packages(old, new)
    assert changes.changed == (PackageChange("pypi/requests", "2.32.2", "2.32.3"),)
    assert changes.added == (PackageVersion("deb/requests", "1.0"),)


def test_summary_reads_like_the_changes_column_and_is_cut_to_width():
    changes = diff_packages(OLD, NEW)
    text = summary(changes, 200)
    assert text == "openssl 3.4.0-r3, requests 2.32.3, +libexpat1, -ncurses"
    short = summary(changes, 20)
    assert len(short) <= 20 and short.endswith("…") and short.startswith("openssl 3.4.0-r3")
    assert summary(changes, 0) == ""
    assert summary(PackageChanges(), 40) == ""


@given(st.integers(min_value=1, max_value=80))
def test_summary_never_exceeds_the_width(width):
    assert len(summary(diff_packages(OLD, NEW), width)) <= width


package_lists = st.lists(st.builds(
    Package, st.sampled_from(["apk", "deb", "pypi"]),
    st.text("abcdefgh-", min_size=1, max_size=5),
    st.text("0123456789.-r", max_size=6)), max_size=12)


@given(package_lists)
def test_a_build_against_itself_has_no_changes(packages):
    assert not diff_packages(packages, packages)


@given(package_lists, package_lists)
def test_diff_the_other_way_round_is_the_inverse(a, b):
    assert diff_packages(a, b).inverted() == diff_packages(b, a)


@given(package_lists)
def test_the_cached_form_round_trips(packages):
    assert pkgs.from_json(json.loads(json.dumps(pkgs.to_json(packages)))) == pkgs.merge(packages)


@pytest.mark.parametrize("bad", [{}, [["apk", "x"]], [["apk", "", "1"]], [[1, 2, 3]]])
def test_a_malformed_cached_list_is_an_error(bad):
    with pytest.raises(pkgs.PackageListError):
        pkgs.from_json(bad)


def _config(**fields):
    return {"architecture": "amd64", "os": "linux", "config": fields,
            "rootfs": {"type": "layers", "diff_ids": []}}


def test_config_changes_per_key_and_whole_values_in_a_fixed_order():
    old = _config(User="65532", Env=["PATH=/usr/bin", "PYTHON_VERSION=3.12.7", "LANG=C"],
                  Entrypoint=["/usr/bin/python"], Cmd=None, WorkingDir="/app",
                  Labels={"org.opencontainers.image.version": "3.12.7",
                          "org.opencontainers.image.vendor": "Chainguard"},
                  ExposedPorts={"8080/tcp": {}}, StopSignal="SIGTERM")
    new = _config(User="65532", Env=["PATH=/usr/bin", "PYTHON_VERSION=3.12.8", "SSL=1"],
                  Entrypoint=["/usr/bin/python3"], Cmd=[], WorkingDir="/app",
                  Labels={"org.opencontainers.image.version": "3.12.8",
                          "org.opencontainers.image.vendor": "Chainguard"},
                  ExposedPorts={"8080/tcp": {}, "9090/tcp": {}}, Volumes={"/data": {}})
    assert diff_config(old, new) == [
        ConfigChange("Entrypoint", ["/usr/bin/python"], ["/usr/bin/python3"]),
        ConfigChange("Env.LANG", "C", None),
        ConfigChange("Env.PYTHON_VERSION", "3.12.7", "3.12.8"),
        ConfigChange("Env.SSL", None, "1"),
        ConfigChange("Labels.org.opencontainers.image.version", "3.12.7", "3.12.8"),
        ConfigChange("ExposedPorts", ["8080/tcp"], ["8080/tcp", "9090/tcp"]),
        ConfigChange("Volumes", None, ["/data"]),
        ConfigChange("StopSignal", "SIGTERM", None),
    ]
    assert diff_config(old, new)[0].to_json() == {
        "Field": "Entrypoint", "Old": ["/usr/bin/python"], "New": ["/usr/bin/python3"]}


def test_same_config_and_a_later_env_entry_overriding_an_earlier_one():
    config = _config(Env=["A=1", "A=2"])
    assert diff_config(config, config) == []
    assert diff_config(json.dumps(config).encode(), config) == []
    assert diff_config(_config(Env=["A=2"]), config) == []
    assert diff_config(None, _config(User="root")) == [ConfigChange("User", None, "root")]


@pytest.mark.parametrize("bad", [_config(Env="A=1"), _config(Labels=["a"]), _config(Env=[1]),
                                 {"config": "x"}, ["not", "an", "object"]])
def test_a_malformed_config_is_a_manifest_error(bad):
    with pytest.raises(ManifestError):
        diff_config(bad, _config())


def test_size_adds_up_the_compressed_layers():
    manifest = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                           "digest": "sha256:" + "0" * 64, "size": 1500},
                "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                            "digest": "sha256:" + c * 64, "size": n}
                           for c, n in (("1", 30_123_456), ("2", 2_048))]}
    size = size_of(manifest)
    assert (size.total, size.layers) == (30_125_504, 2)
    assert size_of(json.dumps(manifest).encode()) == size
    manifest["layers"][0]["size"] = -5
    with pytest.raises(ManifestError):
        size_of(manifest)
