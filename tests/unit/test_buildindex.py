"""The listing's platform facts, the pure parts: which build is the same as the next older
one, what each listed build changed against the build before it, and the helpers that read
many builds at once (each key computed once, results in order)."""

from __future__ import annotations

import threading

import pytest

from docker_cghistory import buildindex
from docker_cghistory.buildindex import Change, ImageFacts, Once, changes_of, parallel, same_as
from docker_cghistory.changes import PackageChanges, to_json
from docker_cghistory.packages import Package

A, B, C = ("sha256:" + c * 64 for c in "abc")


def test_same_as_points_at_the_next_older_build_only() -> None:
    # newest first: a run of three identical, a different one, then the first one again
    digests = [A, A, A, B, A]
    assert same_as(digests, [10, 11, 12, 13, 14], previous=None) == [11, 12, None, None, None]
    # the build before the oldest listed one counts, though it is not listed
    assert same_as(digests, [10, 11, 12, 13, 14], previous=A) == [11, 12, None, None, 15]
    # a missing manifest is never the same as another missing one
    assert same_as([None, None, C], [0, 1, 2], previous=C) == [None, None, 3]


def test_same_as_keeps_full_listing_indexes_after_a_window() -> None:
    assert same_as([B, B], [7, 8], previous=B) == [8, 9]


def packages(**versions: str) -> tuple[Package, ...]:
    return tuple(Package("apk", name, version) for name, version in versions.items())


def test_each_build_is_compared_with_the_next_older_and_the_oldest_with_previous() -> None:
    images = {
        "n0": ImageFacts(A, packages(openssl="3.4", zlib="1")),
        "n1": ImageFacts(B, packages(openssl="3.3", zlib="1", ncurses="6")),
        "n2": ImageFacts(B, packages(openssl="3.3", zlib="1", ncurses="6")),
        "before": ImageFacts(C, packages(openssl="3.3", ncurses="6")),
    }
    found = changes_of(["n0", "n1", "n2"], "before", images)
    assert [c.kind for c in found] == ["changes", "same", "changes"]
    assert to_json(found[0].packages) == {
        "Added": [], "Removed": [{"Name": "ncurses", "Version": "6"}],
        "Changed": [{"Name": "openssl", "Old": "3.3", "New": "3.4"}]}
    assert found[1].packages == PackageChanges()
    assert to_json(found[2].packages)["Added"] == [{"Name": "zlib", "Version": "1"}]
    # without a build before it, the oldest listed one is the first build
    assert changes_of(["n0", "n1"], None, images)[-1] == Change("first")
    assert changes_of(["n2"], None, images) == [Change("first")]


@pytest.mark.parametrize(("newer", "older", "kind"), [
    (ImageFacts(problem="x"), ImageFacts(A, ()), "unreadable"),
    (ImageFacts(), ImageFacts(A, ()), "missing"),
    (ImageFacts(A, ()), ImageFacts(), "previous-missing"),
    (ImageFacts(A, ()), ImageFacts(problem="x"), "unreadable"),
    (ImageFacts(A, None), ImageFacts(B, ()), "no-data"),
    (ImageFacts(A, ()), ImageFacts(B, None), "no-data"),
    (ImageFacts(A, None), ImageFacts(A, None), "same"),
])
def test_what_cannot_be_compared_says_why(newer: ImageFacts, older: ImageFacts,
                                          kind: str) -> None:
    assert buildindex.change(newer, older).kind == kind


def test_once_computes_each_key_once_across_threads() -> None:
    once: Once[int] = Once()
    calls: list[str] = []
    gate = threading.Event()

    def compute(key: str) -> int:
        calls.append(key)
        gate.wait(30)
        return len(key)

    results: list[int] = []
    threads = [threading.Thread(target=lambda k=k: results.append(once.get(k, lambda: compute(k))))
               for k in ("aa", "aa", "aa", "b")]
    for thread in threads:
        thread.start()
    gate.set()
    for thread in threads:
        thread.join(30)
    assert sorted(results) == [1, 2, 2, 2]
    assert sorted(calls) == ["aa", "b"]


def test_once_hands_a_failure_to_every_caller() -> None:
    once: Once[int] = Once()

    def fail() -> int:
        raise ValueError("boom")

    for _ in range(2):
        with pytest.raises(ValueError, match="boom"):
            once.get("k", fail)


def test_parallel_keeps_the_order_and_raises_the_first_failure() -> None:
    assert parallel(lambda n: n * 2, list(range(20))) == [n * 2 for n in range(20)]
    with pytest.raises(KeyError):
        parallel(lambda n: {}[n], [1, 2, 3])


def test_the_listing_prewarms_as_many_connections_as_it_reads_with() -> None:
    from docker_cghistory import listfacts

    assert listfacts._WORKERS == buildindex.WORKERS
