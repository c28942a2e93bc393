"""Which tags read as a digest pasted after ``:``: those get the ``--digest`` command instead
of "tag not found". The rule must not catch real tags: versions, dates and words."""

from __future__ import annotations

import pytest

from docker_cghistory.notfound import digest_hint, looks_like_digest


@pytest.mark.parametrize("tag", ["c171a551fee2", "c171a55", "0" * 63 + "a", "deadbeef1"])
def test_hex_with_letters_and_digits_looks_like_a_digest(tag: str) -> None:
    assert looks_like_digest(tag)


@pytest.mark.parametrize("tag", [
    None, "latest", "3.12", "20240607", "123456789012",  # digits alone: a date or a build number
    "deadbeef", "c171a5",  # letters alone; too short
    "C171A551FEE2", "c171a551fee2-dev", "a" * 64 + "1",
])
def test_tags_that_are_not_read_as_a_digest(tag: str | None) -> None:
    assert not looks_like_digest(tag)


def test_the_hint_names_the_image_without_the_tag() -> None:
    assert digest_hint(" python:c171a551fee2", "c171a551fee2", "docker cghistory") == (
        "c171a551fee2 looks like a digest, not a tag; to pull that build: "
        "docker cghistory pull python --digest c171a551fee2")
