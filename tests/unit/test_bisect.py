"""Bisect: the search state, BUILD values, the command runner, the result a script reads."""

from __future__ import annotations

import io
import json
import math
import os
import signal
import sys
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace
from typing import ClassVar

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from docker_cghistory import diffreport
from docker_cghistory.bisect import (
    BUILD_HELP,
    Bisection,
    Candidate,
    Problem,
    Search,
    Stop,
    Undecided,
    Verdict,
    candidates_between,
    classify,
    describe_status,
    group_by_image,
    locate,
    max_runs,
    parse_build,
    render_json,
    render_text,
    resolve_build,
)
from docker_cghistory.changes import (
    ConfigChange,
    ImageSize,
    PackageChange,
    PackageChanges,
    PackageVersion,
    to_json,
)
from docker_cghistory.commands import bisect as command
from docker_cghistory.errors import (
    AuthError,
    CghistoryError,
    EngineError,
    Interrupted,
    SelectionError,
    UsageError,
)
from docker_cghistory.history import Build
from docker_cghistory.platforms import parse_platform
from docker_cghistory.reference import Reference
from docker_cghistory.testcommand import CannotRun, run_command, substitute
from docker_cghistory.timespec import Moment
from tests.unit.terminal import Captured

NOW = datetime(2024, 7, 1, tzinfo=timezone.utc)
GOOD, BAD, SKIP = Verdict.GOOD, Verdict.BAD, Verdict.SKIP


def digest(n: int) -> str:
    """A digest with letters in it (an all-digit one would read as an index)."""
    return "sha256:" + (f"{n:02x}" + "ab") * 16


def run_search(count: int, verdict: Callable[[int], Verdict]) -> tuple[Search, list[int]]:
    search = Search(count)
    asked = []
    while (index := search.next_candidate()) is not None:
        asked.append(index)
        search.record(index, verdict(index))
    return search, asked


def monotone(first_bad: int, skipped: frozenset[int] = frozenset()) -> Callable[[int], Verdict]:
    def verdict(index: int) -> Verdict:
        if index in skipped:
            return SKIP
        return GOOD if index < first_bad else BAD

    return verdict


# --- exit codes ------------------------------------------------------------------------------


@pytest.mark.parametrize(("code", "verdict"), [
    (0, GOOD), (1, BAD), (2, BAD), (124, BAD), (125, SKIP), (126, BAD), (127, BAD),
    (128, None), (130, None), (137, None), (255, None), (-9, None), (-2, None),
])
def test_exit_codes_follow_git_bisect_run(code: int, verdict: Verdict | None) -> None:
    assert classify(code) == verdict


# --- the search ------------------------------------------------------------------------------


def test_both_ends_are_checked_first_good_then_bad() -> None:
    search = Search(10)
    assert search.next_candidate() == 0
    search.record(0, GOOD)
    assert search.next_candidate() == 9
    search.record(9, BAD)
    assert search.next_candidate() == 4
    assert (search.good, search.bad) == (0, 9)


def test_two_builds_need_only_the_checks() -> None:
    search, asked = run_search(2, monotone(1))
    assert asked == [0, 1]
    assert search.done
    assert search.result is not None and search.result.first_bad == 1
    assert search.result.last_good == 0 and not search.result.ambiguous


@pytest.mark.parametrize("count", range(2, 130))
def test_every_boundary_is_found_within_the_bound(count: int) -> None:
    for first_bad in range(1, count):
        search, asked = run_search(count, monotone(first_bad))
        assert search.result is not None
        assert search.result.first_bad == first_bad
        assert search.result.last_good == first_bad - 1
        assert len(asked) == search.runs <= math.ceil(math.log2(count)) + 2


def test_bound_is_tight_somewhere() -> None:
    """Halving N-1 possible boundaries costs ceil(log2(N-1)) runs, no more, after the checks."""
    for count in (2, 3, 4, 5, 9, 16, 17, 100):
        worst = max(run_search(count, monotone(f))[0].runs for f in range(1, count))
        assert worst == math.ceil(math.log2(count - 1)) + 2 <= max_runs(count)


def test_good_that_is_bad_is_a_problem_not_a_result() -> None:
    search = Search(5)
    search.record(0, BAD)
    assert search.problem is Problem.GOOD_IS_BAD
    assert search.done and search.result is None and search.next_candidate() is None


@pytest.mark.parametrize(("end", "verdict", "problem"), [
    (0, SKIP, Problem.GOOD_UNTESTABLE),
    (4, GOOD, Problem.BAD_IS_GOOD),
    (4, SKIP, Problem.BAD_UNTESTABLE),
])
def test_bound_problems(end: int, verdict: Verdict, problem: Problem) -> None:
    search = Search(5)
    if end == 4:
        search.record(0, GOOD)
    search.record(end, verdict)
    assert search.problem is problem
    assert search.result is None


def test_skips_try_neighbours_of_the_midpoint_alternating_sides() -> None:
    search = Search(21)
    search.record(0, GOOD)
    search.record(20, BAD)
    asked = []
    for _ in range(6):
        index = search.next_candidate()
        assert index is not None
        asked.append(index)
        search.record(index, SKIP)
    assert asked == [10, 11, 9, 12, 8, 13]


def test_a_verdict_after_skips_halves_from_the_new_bound() -> None:
    search = Search(21)
    search.record(0, GOOD)
    search.record(20, BAD)
    search.record(10, SKIP)
    search.record(11, GOOD)
    # Between 11 and 20 the midpoint is 15; the skipped 10 is outside the range now.
    assert search.next_candidate() == 15


def test_all_between_skipped_gives_the_range() -> None:
    search, _ = run_search(6, monotone(3, frozenset({1, 2, 3, 4})))
    result = search.result
    assert result is not None and result.ambiguous
    assert result.first_bad is None
    assert result.last_good == 0
    assert result.candidates == (1, 2, 3, 4, 5)
    assert search.skipped == [1, 2, 3, 4]


def test_skips_outside_the_boundary_do_not_hide_it() -> None:
    search, _ = run_search(12, monotone(7, frozenset({2, 3, 4, 5, 9, 10})))
    assert search.result is not None and search.result.first_bad == 7
    assert search.result.last_good == 6


def test_record_refuses_what_the_search_would_not_ask() -> None:
    search = Search(10)
    with pytest.raises(ValueError):
        search.record(10, GOOD)
    with pytest.raises(ValueError):
        search.record(4, GOOD)  # the bounds are not checked yet
    search.record(0, GOOD)
    with pytest.raises(ValueError):
        search.record(0, GOOD)
    search.record(9, BAD)
    search.record(4, BAD)
    with pytest.raises(ValueError):
        search.record(6, GOOD)  # already known bad: outside the open range
    with pytest.raises(ValueError):
        Search(1)


def test_remaining_and_steps_left() -> None:
    search = Search(10)
    assert search.remaining == 8
    assert search.steps_left == 2 + math.ceil(math.log2(9))
    search.record(0, GOOD)
    search.record(9, BAD)
    assert search.remaining == 8
    assert search.steps_left == math.ceil(math.log2(9))
    search.record(4, GOOD)
    assert search.remaining == 4
    search.record(6, SKIP)
    assert search.remaining == 3
    assert search.steps_left == 2


@settings(max_examples=400, deadline=None)
@given(st.data())
def test_property_finds_the_boundary_or_exactly_the_hidden_range(data: st.DataObject) -> None:
    count = data.draw(st.integers(min_value=2, max_value=300), label="count")
    first_bad = data.draw(st.integers(min_value=1, max_value=count - 1), label="first_bad")
    inner = range(1, count - 1)
    skipped = data.draw(
        st.frozensets(st.sampled_from(inner)) if len(inner) else st.just(frozenset()),
        label="skipped",
    )
    search, asked = run_search(count, monotone(first_bad, skipped))
    result = search.result
    assert result is not None
    assert len(asked) == len(set(asked)) <= count
    last_good = max(i for i in range(first_bad) if i not in skipped)
    bad_bound = min(i for i in range(first_bad, count) if i not in skipped)
    assert result.last_good == last_good
    assert result.candidates == tuple(range(last_good + 1, bad_bound + 1))
    assert first_bad in result.candidates
    if not skipped:
        assert result.first_bad == first_bad
        assert search.runs <= max_runs(count)


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_property_any_answers_end_at_a_good_bad_edge(data: st.DataObject) -> None:
    """A flaky test cannot make the search loop or lie about what it saw."""
    count = data.draw(st.integers(min_value=2, max_value=80))
    answers = data.draw(st.lists(st.sampled_from(list(Verdict)), min_size=count,
                                 max_size=count))
    search, asked = run_search(count, answers.__getitem__)
    assert len(asked) == len(set(asked))
    if search.problem is not None:
        assert asked[-1] in (0, count - 1)
        return
    result = search.result
    assert result is not None
    assert search.verdicts[result.last_good] is GOOD
    assert search.verdicts[result.candidates[-1]] is BAD
    assert all(search.verdicts[i] is SKIP for i in result.candidates[:-1])


# --- BUILD values ----------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "kind", "value"), [
    ("0", "index", 0),
    ("12", "index", 12),
    ("123456", "index", 123456),  # up to 6 digits is an index even when it could be hex
    ("1234567", "digest", "1234567"),  # longer: a digest prefix, as 'list' prints some
    ("123456789012", "digest", "123456789012"),
    ("sha256:123456", "digest", "sha256:123456"),
    ("abcdef", "digest", "abcdef"),
    ("ABCDEF01", "digest", "ABCDEF01"),
    (digest(7), "digest", digest(7)),
    (digest(7)[7:], "digest", digest(7)[7:]),
    # Without a fraction a time covers its whole second; an age and now are instants.
    ("2024-06-01", "at", Moment(datetime(2024, 6, 1, tzinfo=timezone.utc),
                                datetime(2024, 6, 1, 0, 0, 0, 999999, tzinfo=timezone.utc))),
    ("2024-06-01T09:30:00Z", "at", Moment(
        datetime(2024, 6, 1, 9, 30, tzinfo=timezone.utc),
        datetime(2024, 6, 1, 9, 30, 0, 999999, tzinfo=timezone.utc))),
    ("7d", "at", Moment.instant(NOW - timedelta(days=7))),
    ("now", "at", Moment.instant(NOW)),
    ("100000d", "digest", "100000d"),  # the documented quirk: 6+ hex characters
])
def test_build_values_are_read_by_their_characters(text: str, kind: str, value: object) -> None:
    selector = parse_build(text, "--good", NOW)
    assert (selector.kind, selector.value, selector.flag) == (kind, value, "--good")


@pytest.mark.parametrize("text", ["", "  ", "abcde", "sha256:abc", "sha256:xyz123",
                                  "yesterday", "-1", "1.5"])
def test_unreadable_build_values_explain_the_rule(text: str) -> None:
    with pytest.raises(UsageError) as caught:
        parse_build(text, "--bad", NOW)
    message = str(caught.value)
    assert message.startswith(("--bad is empty", "invalid --bad", "--bad: invalid digest"))
    assert "\n" not in message
    if "sha256" not in text:
        assert "up to 6 digits" in message and BUILD_HELP in message


BUILDS = [Build(NOW - timedelta(days=i), digest(i)) for i in range(8)]  # newest first


@pytest.mark.parametrize(("text", "position"), [
    ("0", 0), ("7", 7), (digest(3), 3), (digest(5)[7:15], 5),
    ("2024-06-28T12:00:00Z", 3), ("2024-06-29", 2), ("now", 0),
])
def test_resolve_names_a_listing_position(text: str, position: int) -> None:
    assert resolve_build(BUILDS, parse_build(text, "--good", NOW), text, NOW) == position


@pytest.mark.parametrize(("text", "expected"), [
    ("8", "--good 8: index 8 is out of range"),
    ("123456", "(read as an index; for a digest prefix write sha256:123456)"),
    ("abcdef", "--good abcdef (read as a digest prefix): no build"),
    ("2020-01-01", "--good 2020-01-01: no build at or before 2020-01-01T00:00:00Z: that is "
                   "before the tag's first build"),
])
def test_resolve_errors_say_how_the_value_was_read(text: str, expected: str) -> None:
    with pytest.raises(SelectionError) as caught:
        resolve_build(BUILDS, parse_build(text, "--good", NOW), text, NOW)
    assert expected in str(caught.value)


REF = Reference("cgr.example", "acme/app", "1.2")


def test_locate_defaults_bad_to_the_newest() -> None:
    assert locate(BUILDS, "5", None, NOW) == (5, 0)
    assert locate(BUILDS, "5", digest(2)[7:20], NOW) == (5, 2)


@pytest.mark.parametrize(("good", "bad", "expected"), [
    ("3", "3", "--good and --bad are the same build, #3"),
    ("1", "4", "--good #1 sha256:01ab01ab01ab (2024-06-30T00:00:00.000Z) is newer than --bad #4"),
])
def test_locate_refuses_an_empty_or_reversed_range(good: str, bad: str, expected: str) -> None:
    with pytest.raises(UsageError, match=expected.replace("(", r"\(").replace(")", r"\)")):
        locate(BUILDS, good, bad, NOW)


def test_locate_needs_builds() -> None:
    with pytest.raises(SelectionError, match="has no builds"):
        locate([], "1", None, NOW)


def test_candidates_are_in_time_order() -> None:
    candidates = candidates_between(REF, BUILDS, 5, 1)
    assert [c.position for c in candidates] == [5, 4, 3, 2, 1]
    assert candidates[0].pinned == f"cgr.example/acme/app@{digest(5)}"
    assert candidates[0].describe() == "#5 sha256:05ab05ab05ab (2024-06-26T00:00:00.000Z)"


# --- the command runner ----------------------------------------------------------------------


def test_substitute_replaces_every_brace_pair_in_every_word() -> None:
    assert substitute(["docker", "run", "{}", "x{}y{}", "{ }", "{{}}"], "R@D") == [
        "docker", "run", "R@D", "xR@DyR@D", "{ }", "{R@D}"]


def python(code: str) -> list[str]:
    return [sys.executable, "-c", code]


def test_runner_passes_the_image_as_argument_and_environment(tmp_path) -> None:
    out = io.StringIO()
    code = ("import os, sys; print('arg', sys.argv[1]); "
            "print('env', os.environ['CGHISTORY_IMAGE']); print('keep', os.environ['KEEP'])")
    status = run_command([*python(code), "{}"], "h/r@sha256:ab",
                         env={**os.environ, "KEEP": "yes"}, output=out)
    assert status == 0
    assert out.getvalue().splitlines() == ["arg h/r@sha256:ab", "env h/r@sha256:ab",
                                           "keep yes"]


def test_runner_sends_the_commands_stdout_to_stderr(capfd: pytest.CaptureFixture[str]) -> None:
    status = run_command(["sh", "-c", "echo out; echo err >&2; exit 3"], "img",
                         output=sys.stderr)
    captured = capfd.readouterr()
    assert status == 3
    assert captured.out == ""
    assert "out" in captured.err and "err" in captured.err


@pytest.mark.parametrize(("script", "status", "verdict"), [
    ("exit 0", 0, GOOD), ("exit 1", 1, BAD), ("exit 125", 125, SKIP),
    ("exit 127", 127, BAD), ("no-such-command-here", 127, BAD),
    ("kill -9 $$", -9, None), ("exit 137", 137, None),
])
def test_runner_statuses(script: str, status: int, verdict: Verdict | None) -> None:
    code = run_command(["sh", "-c", script], "img", output=io.StringIO())
    assert code == status
    assert classify(code) == verdict


def test_a_command_that_cannot_start_is_not_a_verdict() -> None:
    with pytest.raises(CannotRun, match="cannot run 'no-such-program-xyz'"):
        run_command(["no-such-program-xyz", "{}"], "img", output=io.StringIO())


def test_describe_status() -> None:
    assert describe_status(-signal.SIGKILL) == "was killed by SIGKILL"
    assert describe_status(130) == "exited with status 130 (killed by SIGINT?)"


# --- the loop and the result -----------------------------------------------------------------

HISTORY = [Build(datetime(2024, 6, 20, 9, 30, tzinfo=timezone.utc) + timedelta(days=i),
                 digest(i)) for i in range(10)][::-1]  # newest first: position 0 is digest(9)


def bisection_for(good: int = 9, bad: int = 0,
                  history: list[Build] | None = None) -> Bisection:
    return Bisection(candidates_between(REF, history or HISTORY, good, bad))


def recording(statuses: Callable[[Candidate], int]) -> tuple[
        Callable[[Candidate], int], list[str]]:
    seen: list[str] = []

    def test(candidate: Candidate) -> int:
        seen.append(candidate.build.digest)
        return statuses(candidate)

    return test, seen


def broken_from(first_bad_digest_number: int, skip: frozenset[int] = frozenset()):
    def status(candidate: Candidate) -> int:
        number = int(candidate.build.digest[7:9], 16)
        if number in skip:
            return 125
        return 0 if number < first_bad_digest_number else 1

    return status


def test_drive_finds_the_first_bad_build_and_logs_each_run() -> None:
    bisection = bisection_for()
    test, seen = recording(broken_from(6))
    lines: list[str] = []
    result = bisection.drive(test, lines.append)
    assert bisection.candidates[result.first_bad].build.digest == digest(6)
    assert bisection.candidates[result.last_good].build.digest == digest(5)
    assert len(seen) == bisection.tested <= max_runs(10)
    verdicts = [line for line in lines if line.endswith((": good", ": bad (exit 1)"))]
    assert len(verdicts) == len(seen)
    assert lines[0] == ("pulling #9 sha256:00ab00ab00ab (2024-06-20T09:30:00.000Z): "
                        "checking that --good is good")
    assert lines[1] == "testing #9 sha256:00ab00ab00ab (2024-06-20T09:30:00.000Z): good"


def test_a_digest_seen_before_is_not_run_again() -> None:
    history = list(HISTORY)
    history[4] = Build(history[4].updated, history[7].digest)  # a rebuild with the same digest
    bisection = bisection_for(history=history)
    test, seen = recording(lambda c: 0 if c.position >= 3 else 1)
    lines: list[str] = []
    result = bisection.drive(test, lines.append)
    assert len(seen) == len(set(seen))
    assert bisection.candidates[result.first_bad].position == 2
    reused = [run for run in bisection.runs if run.returncode is None]
    assert all(run.candidate.build.digest == digest(2) for run in reused)
    assert any("same digest as" in line for line in lines) == bool(reused)


def test_a_signal_stops_with_the_state_so_far() -> None:
    bisection = bisection_for()
    calls = iter([0, 1, -signal.SIGKILL])
    with pytest.raises(Stop) as caught:
        bisection.drive(lambda c: next(calls), lambda _: None)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"the command was killed by SIGKILL while testing "
                              f"cgr.example/acme/app@{digest(4)}; stopped.")
    assert "last good #9 sha256:00ab00ab00ab" in message
    assert "first bad at or before #0 sha256:09ab09ab09ab" in message
    assert f"resume with --good {digest(0)} --bad {digest(9)}" in message


@pytest.mark.parametrize("error", [
    EngineError("the Docker engine failed to pull X: boom"),
    AuthError("the registry refused X by policy: cooldown"),
    CannotRun("cannot run 'x': No such file or directory"),
])
def test_a_failed_pull_or_start_stops_with_the_state_so_far(error: CghistoryError) -> None:
    bisection = bisection_for()
    calls = iter([0, 1])

    def test(candidate: Candidate) -> int:
        for status in calls:
            return status
        raise error

    with pytest.raises(Stop) as caught:
        bisection.drive(test, lambda _: None)
    message = str(caught.value)
    assert message.startswith(f"{error}; stopped at #5 sha256:04ab04ab04ab")
    assert "So far: last good #9" in message and "\n" not in message
    assert caught.value.exit_code == error.exit_code


def test_ctrl_c_ends_with_the_state_so_far() -> None:
    bisection = bisection_for()
    calls = iter([0])

    def test(candidate: Candidate) -> int:
        try:
            return next(calls)
        except StopIteration:
            raise KeyboardInterrupt from None

    with pytest.raises(Interrupted, match=r"interrupted\. So far: last good #9 .*--bad not"):
        bisection.drive(test, lambda _: None)


@pytest.mark.parametrize(("statuses", "expected"), [
    ([1], "--good #9 sha256:00ab00ab00ab (2024-06-20T09:30:00.000Z) is bad (the command exited 1)"
          ": give an older --good"),
    ([0, 0], "--bad #0 sha256:09ab09ab09ab (2024-06-29T09:30:00.000Z) is good (the command "
             "exited 0): nothing to look for up to it"),
    ([125], "--good #9 sha256:00ab00ab00ab (2024-06-20T09:30:00.000Z) cannot be tested"),
    ([0, 125], "--bad #0 sha256:09ab09ab09ab (2024-06-29T09:30:00.000Z) cannot be tested"),
])
def test_wrong_bounds_are_reported_as_such(statuses: list[int], expected: str) -> None:
    bisection = bisection_for()
    calls = iter(statuses)
    with pytest.raises(Stop) as caught:
        bisection.drive(lambda c: next(calls), lambda _: None)
    assert str(caught.value).startswith(expected)
    assert len(bisection.runs) == len(statuses)


def test_text_result() -> None:
    bisection = bisection_for()
    result = bisection.drive(recording(broken_from(6, frozenset({4})))[0], lambda _: None)
    text = render_text(bisection, result, "docker cghistory")
    assert text == (
        f"first bad build: cgr.example/acme/app@{digest(6)} (2024-06-26T09:30:00.000Z)\n"
        f"last good build: cgr.example/acme/app@{digest(5)} (2024-06-25T09:30:00.000Z)\n"
        f"FROM cgr.example/acme/app:1.2@{digest(5)}\n"
        f"tested: {bisection.tested} builds, skipped: 1\n"
        f"pin: docker cghistory pin --image cgr.example/acme/app:1.2 --digest {digest(5)[7:19]}\n"
    )


def test_json_result() -> None:
    bisection = bisection_for()
    result = bisection.drive(recording(broken_from(6, frozenset({4})))[0], lambda _: None)
    document = json.loads(render_json(bisection, result, "docker-cghistory"))
    assert list(document) == ["FirstBad", "LastGood", "FromLine", "Candidates", "Tested",
                              "Skipped", "Runs", "PinCommand", "Changes", "Diff"]
    assert document["Changes"] is None and document["Diff"] is None  # none was given
    good = {"Index": 4, "Updated": "2024-06-25T09:30:00.000Z", "Digest": digest(5),
            "Reference": f"cgr.example/acme/app@{digest(5)}"}
    assert document["FirstBad"] == {"Index": 3, "Updated": "2024-06-26T09:30:00.000Z",
                                    "Digest": digest(6),
                                    "Reference": f"cgr.example/acme/app@{digest(6)}"}
    assert document["LastGood"] == good
    assert document["FromLine"] == f"FROM cgr.example/acme/app:1.2@{digest(5)}"
    assert document["Candidates"] == [document["FirstBad"]]
    assert document["Skipped"] == 1
    assert document["Tested"] == len(document["Runs"]) - 1
    assert document["Runs"][0] == {"Index": 9, "Updated": "2024-06-20T09:30:00.000Z",
                                   "Digest": digest(0),
                                   "Reference": f"cgr.example/acme/app@{digest(0)}",
                                   "Verdict": "good", "ExitCode": 0}
    assert {run["Verdict"] for run in document["Runs"]} == {"good", "bad", "skip"}
    assert document["PinCommand"] == ("docker-cghistory pin --image cgr.example/acme/app:1.2 "
                                      f"--digest {digest(5)[7:19]}")


def test_ambiguous_result_lists_the_candidates() -> None:
    bisection = bisection_for(good=6, bad=2)  # digests 3..7
    result = bisection.drive(recording(broken_from(5, frozenset({4, 5})))[0], lambda _: None)
    assert result.ambiguous
    text = render_text(bisection, result, "docker cghistory")
    assert text.splitlines()[:5] == [
        "the first bad build is one of:",
        f"  cgr.example/acme/app@{digest(4)} (2024-06-24T09:30:00.000Z) skipped",
        f"  cgr.example/acme/app@{digest(5)} (2024-06-25T09:30:00.000Z) skipped",
        f"  cgr.example/acme/app@{digest(6)} (2024-06-26T09:30:00.000Z) bad",
        f"last good build: cgr.example/acme/app@{digest(3)} (2024-06-23T09:30:00.000Z)",
    ]
    document = json.loads(render_json(bisection, result, "p"))
    assert document["FirstBad"] is None
    assert [c["Digest"] for c in document["Candidates"]] == [digest(4), digest(5), digest(6)]


# --- the command, with a fake registry and engine --------------------------------------------


class FakeClient:
    registry = "cgr.example"

    def history(self, reference: Reference, **_: object) -> list[Build]:
        return list(HISTORY)


class FakeImages:
    instances: ClassVar[list[FakeImages]] = []

    def __init__(self, client: object, streams: object, *, platform: str | None = None) -> None:
        self.pulls: list[str] = []
        self.cleaned = self.closed = False
        FakeImages.instances.append(self)

    def connect(self) -> None:
        pass

    def pull(self, candidate: Candidate) -> None:
        self.pulls.append(candidate.pinned)

    def cleanup(self, log: Callable[[str], None]) -> None:
        self.cleaned = True

    def close(self) -> None:
        self.closed = True


class FakeContext:
    program = "docker cghistory"

    def parse(self, text: str) -> Reference:
        return REF

    def client(self, registry: str) -> FakeClient:
        return FakeClient()


BREAKS_AT_6 = 'case "$CGHISTORY_IMAGE" in *@sha256:0[6-9]*) exit 1;; esac'


def args(**overrides: object) -> SimpleNamespace:
    values = {"image": "acme/app:1.2", "good": "9", "bad": None, "keep": False,
              "format": None, "platform": None, "command": ["sh", "-c", BREAKS_AT_6, "{}"]}
    return SimpleNamespace(**{**values, **overrides})


diffs_asked: list[tuple[str, str, str]] = []  # (last good, first bad, platform) per diff asked


def fake_what_changed(client: object, reference: Reference, last_good: Candidate,
                      first_bad: Candidate, platform: object, streams: object) -> str:
    diffs_asked.append((last_good.build.digest, first_bad.build.digest, str(platform)))
    return "no registry in this test"


@pytest.fixture
def fake_images(monkeypatch: pytest.MonkeyPatch) -> type[FakeImages]:
    FakeImages.instances = []
    diffs_asked.clear()
    monkeypatch.setattr(command, "ImageKeeper", FakeImages)
    monkeypatch.setattr(command, "what_changed", fake_what_changed)
    monkeypatch.setattr(command.hostplatform, "in_background",
                        lambda: lambda: parse_platform("linux/riscv64"))
    return FakeImages


def test_run_prints_only_the_result_on_stdout(fake_images: type[FakeImages]) -> None:
    captured = Captured()
    assert command.run(args(), FakeContext(), captured) == 0
    assert captured.out.splitlines()[0] == (
        f"first bad build: cgr.example/acme/app@{digest(6)} (2024-06-26T09:30:00.000Z)")
    # What changed, for the default platform, between last good and first bad; a diff that
    # cannot be read is one line and leaves the result and the exit status alone.
    assert diffs_asked == [(digest(5), digest(6), "linux/riscv64")]
    assert captured.out.splitlines()[-1] == (
        "What changed: could not be read: no registry in this test")
    assert "bisect: testing #9" in captured.err
    images = fake_images.instances[0]
    assert images.cleaned and len(images.pulls) <= max_runs(10)


def test_run_json_and_keep(fake_images: type[FakeImages]) -> None:
    captured = Captured()
    assert command.run(args(format="json", keep=True), FakeContext(), captured) == 0
    document = json.loads(captured.out)
    assert document["FirstBad"]["Digest"] == digest(6)
    assert document["Changes"] is None and document["Diff"] is None
    assert "bisect: what changed could not be read: no registry in this test\n" in captured.err
    images = fake_images.instances[0]
    assert images.closed and not images.cleaned


def test_run_ambiguous_prints_the_range_and_fails(fake_images: type[FakeImages]) -> None:
    script = 'case "$CGHISTORY_IMAGE" in *:0[45]*) exit 125;; *:0[5-9]*) exit 1;; esac'
    captured = Captured()
    with pytest.raises(Undecided, match="one of 3"):
        command.run(args(good="6", bad="2", command=["sh", "-c", script]), FakeContext(),
                    captured)
    assert captured.out.startswith("the first bad build is one of:\n")


def test_run_cleans_up_when_the_bisect_stops(fake_images: type[FakeImages]) -> None:
    with pytest.raises(Stop, match=r"--good #9 .* is bad"):
        command.run(args(command=["false"]), FakeContext(), Captured())
    assert fake_images.instances[0].cleaned


def test_run_requires_good(fake_images: type[FakeImages]) -> None:
    with pytest.raises(UsageError, match="--good is required"):
        command.run(args(good=None), FakeContext(), Captured())
    assert not fake_images.instances


# --- the command line ------------------------------------------------------------------------


@pytest.mark.parametrize("words", [
    ["bisect", "img", "--good", "11", "--bad", "2", "--", "docker", "run", "--rm", "{}"],
    ["bisect", "--good", "11", "img", "--bad", "2", "--", "docker", "run", "--rm", "{}"],
])
def test_options_after_the_image_are_kept(words: list[str]) -> None:
    from docker_cghistory import cli

    _, parsed = cli.parse(words, "docker-cghistory")
    assert (parsed.image, parsed.good, parsed.bad) == ("img", "11", "2")
    assert parsed.command == ["docker", "run", "--rm", "{}"]


def test_the_words_after_the_separator_pass_through_untouched() -> None:
    from docker_cghistory import cli

    words = ["bisect", "img", "--", "cmd", "--flag", "--good", "x", "--", "-q", "{}"]
    _, parsed = cli.parse(words, "docker-cghistory")
    assert parsed.command == ["cmd", "--flag", "--good", "x", "--", "-q", "{}"]
    assert (parsed.image, parsed.good, parsed.format) == ("img", None, None)


@pytest.mark.parametrize("words", [
    ["bisect", "img", "--good", "1", "true"],
    ["bisect", "--good", "1", "img", "true"],
    ["bisect", "--good", "1", "img", "true", "--", "cmd"],
])
def test_a_command_without_the_separator_is_refused(words: list[str]) -> None:
    from docker_cghistory import cli

    with pytest.raises(UsageError, match="unrecognized arguments: true"):
        cli.parse(words, "docker-cghistory")


@pytest.mark.parametrize("words", [
    ["bisect", "img", "--good", "1"],
    ["bisect", "img", "--good", "1", "--"],
])
def test_no_test_command_is_a_usage_error(words: list[str]) -> None:
    from docker_cghistory import cli

    with pytest.raises(UsageError) as caught:
        cli.parse(words, "docker-cghistory")
    assert str(caught.value) == (
        "give COMMAND [ARG...] after '--'. See 'docker-cghistory bisect --help'")


def test_format_takes_only_its_choices() -> None:
    from docker_cghistory import cli

    for fmt in ("text", "json"):
        _, parsed = cli.parse(["bisect", "img", "--format", fmt, "--", "true"], "p")
        assert parsed.format == fmt
    with pytest.raises(UsageError) as caught:
        cli.parse(["bisect", "img", "--format", "table", "--", "true"], "p")
    message = str(caught.value)
    assert "\n" not in message
    assert "--format" in message and "table" in message
    assert "choose from" in message and "text" in message and "json" in message  # quoting varies


def test_run_sends_the_test_commands_output_to_the_given_stderr(
        fake_images: type[FakeImages]) -> None:
    """A stream without a descriptor gets the command's output copied in, stdout and stderr."""
    loud = ["sh", "-c", f'echo "out {{}}"; echo "err {{}}" >&2; {BREAKS_AT_6}', "{}"]
    captured = Captured()
    assert command.run(args(command=loud), FakeContext(), captured) == 0
    assert captured.out.startswith("first bad build: ") and "out cgr" not in captured.out
    assert f"out cgr.example/acme/app@{digest(9)}" in captured.err
    assert f"err cgr.example/acme/app@{digest(9)}" in captured.err


# --- --platform: one candidate per distinct image ------------------------------------------

AMD64 = parse_platform("linux/amd64")


def image(n: int) -> str:
    return "sha256:" + (f"{n:02x}" + "cd") * 16


def grouped(images: list[int | None], good: int = 9,
            bad: int = 0) -> tuple[list[Candidate], list[Candidate]]:
    """HISTORY's range grouped by ``images`` (one per build, oldest first; None: missing)."""
    range_ = candidates_between(REF, HISTORY, good, bad)
    return group_by_image(range_, [image(n) if n is not None else None for n in images])


def positions(candidates: list[Candidate]) -> list[list[int]]:
    return [[c.position for c in candidate.group] for candidate in candidates]


def test_consecutive_builds_with_one_image_are_one_candidate() -> None:
    groups, missing = grouped([1, 1, 1, 2, 3, 3, 4, 4, 4, 4])
    assert positions(groups) == [[9, 8, 7], [6], [5, 4], [3, 2, 1, 0]]
    assert missing == []
    # The candidate is the newest build of its group (the last good one when good); its
    # oldest is the first bad one when bad. Every member carries the image.
    assert [c.position for c in groups] == [7, 6, 4, 0]
    assert [c.first.position for c in groups] == [9, 6, 5, 3]
    assert [c.image for c in groups] == [image(1), image(2), image(3), image(4)]
    assert all(m.image == c.image for c in groups for m in c.group)


def test_an_image_that_comes_back_is_a_group_of_its_own() -> None:
    groups, _ = grouped([1, 1, 2, 1, 1, 3, 3, 3, 3, 3])
    assert positions(groups) == [[9, 8], [7], [6, 5], [4, 3, 2, 1, 0]]
    assert [c.image for c in groups] == [image(1), image(2), image(1), image(3)]


def test_builds_without_the_platform_are_left_out_and_end_a_group() -> None:
    groups, missing = grouped([1, 1, None, 1, 2, None, None, 2, 3, 3])
    assert [c.position for c in missing] == [7, 4, 3]
    assert positions(groups) == [[9, 8], [6], [5], [2], [1, 0]]


def test_the_search_runs_over_distinct_images_and_reuses_a_returning_one() -> None:
    # 10 builds, 4 images, image 1 back in the middle: bad from image 3 on.
    groups, _ = grouped([1, 1, 2, 2, 1, 1, 3, 3, 4, 4])
    bisection = Bisection(groups)
    pulled: list[str] = []

    def test(candidate: Candidate) -> int:
        pulled.append(candidate.target)
        return 1 if candidate.image in (image(3), image(4)) else 0

    lines: list[str] = []
    result = bisection.drive(test, lines.append)
    first_bad, last_good = groups[result.first_bad], groups[result.last_good]
    assert [c.position for c in first_bad.group] == [3, 2]
    assert first_bad.first.position == 3 and last_good.position == 4  # newest of its group
    assert len(pulled) == len(set(pulled)) <= max_runs(5)
    assert all(target.startswith("cgr.example/acme/app@sha256:") and target[-64:] in
               {image(n)[7:] for n in range(1, 5)} for target in pulled)
    reused = [run for run in bisection.runs if run.returncode is None]
    assert all(run.candidate.image == image(1) for run in reused)
    assert all("[same image as #" in line for line in lines
               if line.startswith(("pulling #6", "pulling #2")))


def test_text_and_json_name_every_build_of_the_first_bad_image() -> None:
    groups, missing = grouped([1, 1, 2, None, 3, 3, 3, 4, 4, 4])
    bisection = Bisection(groups)
    result = bisection.drive(lambda c: 1 if c.image in (image(3), image(4)) else 0,
                             lambda _: None)
    text = render_text(bisection, result, "docker cghistory", platform="linux/amd64",
                       missing=missing, changes="registry down")
    name = "cgr.example/acme/app"
    times = {b.digest: b.timestamp for b in HISTORY}
    assert text.splitlines()[:6] == [
        f"first bad build: {name}@{digest(4)} ({times[digest(4)]})",
        f"same image: {name}@{digest(5)} ({times[digest(5)]})",
        f"same image: {name}@{digest(6)} ({times[digest(6)]})",
        f"no linux/amd64 image: {name}@{digest(3)} ({times[digest(3)]})",
        f"last good build: {name}@{digest(2)} ({times[digest(2)]})",
        f"FROM {name}:1.2@{digest(2)}",
    ]
    assert text.splitlines()[-1] == "What changed: could not be read: registry down"
    document = json.loads(render_json(bisection, result, "p", platform="linux/amd64",
                                      missing=missing, changes="registry down"))
    assert document["Platform"] == "linux/amd64"
    assert document["FirstBad"]["Digest"] == digest(4)
    assert document["FirstBad"]["PlatformDigest"] == image(3)
    assert [(b["Digest"], b["PlatformDigest"]) for b in document["SameImage"]] == [
        (digest(5), image(3)), (digest(6), image(3))]
    assert [b["Digest"] for b in document["NoImage"]] == [digest(3)]
    assert document["LastGood"]["Digest"] == digest(2)
    assert document["Changes"] is None and document["Diff"] is None


def report(old_source: str = "sbom", identical: bool = False) -> diffreport.DiffReport:
    packages = PackageChanges(added=(PackageVersion("libexpat1", "2.6.2-r0"),),
                              changed=(PackageChange("openssl", "3.3.0-r0", "3.3.1-r0"),))
    return diffreport.DiffReport(
        "cgr.example/acme/app:1.2", "linux/amd64",
        diffreport.Side(4, digest(5), image(5), "2024-06-25T09:30:00.000Z", old_source,
                        ImageSize(1000, 3)),
        diffreport.Side(3, digest(6), image(6), "2024-06-26T09:30:00.000Z", "sbom",
                        ImageSize(1500, 3)),
        PackageChanges() if identical else packages,
        () if identical else (ConfigChange("User", "65532", "0"),), identical=identical)


def test_what_changed_is_diffs_report_after_the_result() -> None:
    bisection = bisection_for()
    result = bisection.drive(recording(broken_from(6))[0], lambda _: None)
    plain = render_text(bisection, result, "docker cghistory")
    text = render_text(bisection, result, "docker cghistory", changes=report())
    assert text.startswith(plain)
    assert text[len(plain):] == ("\nWhat changed (last good → first bad):\n"
                                 + diffreport.render_text(report()))
    document = json.loads(render_json(bisection, result, "p", changes=report()))
    assert document["Changes"] == to_json(report().packages)
    assert document["Diff"] == json.loads(diffreport.render_json(report()))
    assert "SameImage" not in document and "Platform" not in document
    # Without package data on a side the package changes are unknown, not empty.
    unknown = json.loads(render_json(bisection, result, "p", changes=report("none")))
    assert unknown["Changes"] is None and unknown["Diff"]["Source"]["Old"] == "none"
    same = json.loads(render_json(bisection, result, "p", changes=report(identical=True)))
    assert same["Changes"] == {"Added": [], "Removed": [], "Changed": []}


class PlatformIndexes:
    """``buildindex.read_platforms`` for HISTORY: each build's amd64 image from ``images``
    (oldest first; None: the build has only linux/arm64)."""

    def __init__(self, images: list[int | None]) -> None:
        self.images = images
        self.asked: list[list[str]] = []

    def __call__(self, content: object, digests: list[str], **_: object) -> dict[str, object]:
        from docker_cghistory.buildindex import BuildPlatforms

        self.asked.append(list(digests))
        arm = parse_platform("linux/arm64")
        out: dict[str, object] = {}
        for d in digests:
            n = self.images[int(d[7:9], 16)]
            found = {arm: image(99)} | ({AMD64: image(n)} if n is not None else {})
            out[d] = BuildPlatforms(found)
        return out


@pytest.fixture
def indexes(monkeypatch: pytest.MonkeyPatch) -> Callable[[list[int | None]], PlatformIndexes]:
    from docker_cghistory import buildindex

    def install(images: list[int | None]) -> PlatformIndexes:
        fake = PlatformIndexes(images)
        monkeypatch.setattr(buildindex, "read_platforms", fake)
        return fake

    return install


BAD_FROM_IMAGE_3 = ('case "$CGHISTORY_IMAGE" in *@' + image(3) + '|*@' + image(4)
                    + ') exit 1;; esac')


def test_run_with_platform_pulls_and_runs_each_distinct_image_once(
        fake_images: type[FakeImages], indexes: Callable[..., PlatformIndexes],
        monkeypatch: pytest.MonkeyPatch) -> None:
    from docker_cghistory import content

    monkeypatch.setattr(content, "Content", lambda client, repository: None)
    fake = indexes([1, 1, 2, 2, 2, 3, 3, 4, 4, 4])
    captured = Captured()
    code = command.run(args(platform="linux/amd64", format="json",
                            command=["sh", "-c", BAD_FROM_IMAGE_3, "{}"]),
                       FakeContext(), captured)
    assert code == 0
    assert fake.asked == [[digest(n) for n in range(10)]]  # every index once, in one call
    document = json.loads(captured.out)
    assert document["FirstBad"]["Digest"] == digest(5)
    assert [b["Digest"] for b in document["SameImage"]] == [digest(6)]
    assert document["LastGood"]["Digest"] == digest(4)  # the newest build of image 2
    assert len(document["Runs"]) <= max_runs(4)
    # The images were asked for the platform; what changed is for that platform too.
    assert diffs_asked == [(digest(4), digest(5), "linux/amd64")]
    assert "10 builds from #9 " in captured.err
    assert "4 distinct linux/amd64 images" in captured.err


def test_run_with_platform_refuses_a_bound_without_it(
        fake_images: type[FakeImages], indexes: Callable[..., PlatformIndexes],
        monkeypatch: pytest.MonkeyPatch) -> None:
    from docker_cghistory import content

    monkeypatch.setattr(content, "Content", lambda client, repository: None)
    indexes([None, 1, 1, 2, 2, 2, 3, 3, 4, 4])
    with pytest.raises(UsageError, match=r"^--good #9 sha256:00ab.* has no linux/amd64 image "
                                         r"\(it has linux/arm64\): give another --good$"):
        command.run(args(platform="linux/amd64"), FakeContext(), Captured())
    indexes([1] * 10)
    with pytest.raises(UsageError, match="same linux/amd64 image"):
        command.run(args(platform="linux/amd64"), FakeContext(), Captured())
    assert not any(images.pulls for images in fake_images.instances)
