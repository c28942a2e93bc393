"""apk and dpkg databases in the layouts the package managers really write."""

from __future__ import annotations

from pathlib import Path

import pytest

from docker_cghistory.packages import Package
from docker_cghistory.pkgdb import (
    PackageDBError,
    parse_apk_installed,
    parse_dpkg_status,
    parse_dpkg_status_d,
)

DATA = Path(__file__).resolve().parent.parent / "data" / "pkgdb"


def _versions(packages):
    return {p.name: p.version for p in packages}


def test_apk_installed_gives_name_and_version_of_every_stanza():
    packages = parse_apk_installed((DATA / "apk_installed").read_bytes())
    assert {p.type for p in packages} == {"apk"}
    assert _versions(packages) == {
        "ca-certificates-bundle": "20241121-r1", "glibc": "2.40-r3", "libssl3": "3.4.0-r2",
        "python-3.12": "3.12.8-r0", "wolfi-baselayout": "20230201-r16",
    }


def test_apk_installed_without_a_final_blank_line_keeps_the_last_package():
    data = (DATA / "apk_installed").read_bytes().rstrip(b"\n")
    assert "wolfi-baselayout" in _versions(parse_apk_installed(data))


def test_apk_installed_with_crlf_and_odd_file_names_still_parses():
    data = b"P:busybox\r\nV:1.37.0-r0\r\nF:etc/\xff\xfe\r\nR:x\r\n\r\nP:zlib\nV:1.3.1-r0\n"
    assert _versions(parse_apk_installed(data)) == {"busybox": "1.37.0-r0", "zlib": "1.3.1-r0"}


def test_an_empty_apk_database_is_no_packages():
    assert parse_apk_installed(b"") == ()


@pytest.mark.parametrize("data", [b"\x1f\x8b\x08\x00garbage", b"P:x\nthis is not a field\n",
                                  b"<html>\n<body>404</body>\n"])
def test_garbage_in_the_apk_database_is_one_line(data):
    with pytest.raises(PackageDBError) as caught:
        parse_apk_installed(data)
    assert "\n" not in str(caught.value) and "lib/apk/db/installed" in str(caught.value)


def test_dpkg_status_counts_installed_packages_only():
    packages = parse_dpkg_status((DATA / "dpkg_status").read_bytes())
    assert {p.type for p in packages} == {"deb"}
    assert _versions(packages) == {
        "base-files": "12.4+deb12u8", "libc6": "2.36-9+deb12u9",
        "libssl3": "3.0.15-1~deb12u1", "tzdata": "2024b-0+deb12u1",
    }


def test_dpkg_continuation_lines_do_not_start_packages():
    data = (b"Package: a\nStatus: install ok installed\nVersion: 1\nDescription: x\n"
            b" Package: b\n\tVersion: 2\n .\n")
    assert _versions(parse_dpkg_status(data)) == {"a": "1"}


def test_dpkg_epochs_are_kept_and_held_packages_count():
    data = b"Package: vim\nStatus: hold ok installed\nVersion: 2:9.0.1378-2\n"
    assert _versions(parse_dpkg_status(data)) == {"vim": "2:9.0.1378-2"}


def test_a_dpkg_status_stanza_without_status_is_not_installed():
    assert parse_dpkg_status(b"Package: ghost\nVersion: 1\n") == ()


@pytest.mark.parametrize("data", [b" continuation first\n", b"Package: a\nno colon here\n"])
def test_garbage_in_dpkg_status_is_one_line(data):
    with pytest.raises(PackageDBError) as caught:
        parse_dpkg_status(data)
    assert "var/lib/dpkg/status line" in str(caught.value)


def test_distroless_status_d_reads_every_file_but_md5sums():
    files = {p.name: p.read_bytes() for p in (DATA / "status.d").iterdir()}
    assert "libc6.md5sums" in files
    packages = parse_dpkg_status_d(files)
    assert _versions(packages) == {"base-files": "12.4+deb12u8", "libc6": "2.36-9+deb12u9",
                                   "netbase": "6.4", "tzdata": "2024b-0+deb12u1"}


def test_a_bad_status_d_file_is_named_in_the_error():
    with pytest.raises(PackageDBError, match=r"status\.d/broken"):
        parse_dpkg_status_d({"broken": b"  oops\n"})


def test_two_copies_of_one_package_join_their_versions():
    data = (b"Package: libc6\nStatus: install ok installed\nArchitecture: amd64\nVersion: 2.36\n\n"
            b"Package: libc6\nStatus: install ok installed\nArchitecture: i386\nVersion: 2.35\n")
    assert parse_dpkg_status(data) == (Package("deb", "libc6", "2.35, 2.36"),)
