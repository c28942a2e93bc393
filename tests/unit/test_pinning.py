"""``pinning``: the pure decisions of ``pin`` and how they are shown, and bisect's pin hint.

No files, no registry: sites are read from small texts by the real readers, and the wanted
build is given. Each rule of the module docstring has a case here.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest

from docker_cghistory import pinning
from docker_cghistory.bisect import Candidate
from docker_cghistory.bisect_report import pin_command
from docker_cghistory.errors import UsageError
from docker_cghistory.history import Build
from docker_cghistory.pinning import (
    ALREADY,
    FAILED,
    OTHER,
    PINNED,
    SKIPPED,
    UNCHANGED,
    UPDATED,
    BuildPlatforms,
    Options,
    Wanted,
    decide,
)
from docker_cghistory.platforms import Platform
from docker_cghistory.reference import Reference, parse_cli, parse_docker
from docker_cghistory.rewrite import find_dockerfile_sites

A = "sha256:" + "a1" * 32
B = "sha256:" + "b2" * 32


def site(text: str):
    sites, _ = find_dockerfile_sites("Dockerfile", f"FROM {text}\n")
    (found,) = sites
    return found


def cli(text: str) -> Reference:
    return parse_cli(text)


# --------------------------------------------------------------------------- --image
@pytest.mark.parametrize(("filters", "written", "expected"), [
    (["python"], "cgr.dev/chainguard/python:3.12", True),        # no tag: every tag
    (["python"], "cgr.dev/chainguard/python", True),
    (["python"], f"cgr.dev/chainguard/python@{A}", True),        # digest-only: the image
    (["python:latest"], "cgr.dev/chainguard/python", True),      # no tag written: latest
    (["python:latest"], f"cgr.dev/chainguard/python:latest@{A}", True),
    (["python:latest"], "cgr.dev/chainguard/python:3.12", False),
    (["python:latest"], f"cgr.dev/chainguard/python@{A}", False),  # its tag is unknown
    (["python"], "python:3.12", False),                          # docker.io/library/python
    (["python"], "cgr.dev/chainguard/python-dev", False),
    (["python"], "CGR.dev/chainguard/python", True),             # host names ignore case
    (["docker.io/library/python"], "python", True),
    (["index.docker.io/library/python"], "python", True),
    (["go", "python:3.12"], "cgr.dev/chainguard/python:3.12", True),
    (["go", "python:3.12"], "cgr.dev/chainguard/go:1.22", True),
    (["go", "python:3.12"], "cgr.dev/chainguard/nginx", False),
    ([], "anything:1", True),                                    # no filter: all
])
def test_image_filters(filters: list[str], written: str, expected: bool) -> None:
    assert pinning.matches([cli(f) for f in filters], parse_docker(written)) is expected


def test_image_filters_use_the_registry_and_org_defaults() -> None:
    mine = parse_cli("python", "registry.example:5000", "acme")
    assert pinning.matches([mine], parse_docker("registry.example:5000/acme/python:1"))
    assert not pinning.matches([mine], parse_docker("cgr.dev/chainguard/python:1"))


@pytest.mark.parametrize("flag", ["--digest", "--index", "--previous"])
@pytest.mark.parametrize(("filters", "why"), [
    ([], "no --image was given"),
    (["python"], "--image cgr.dev/chainguard/python names every tag of that image"),
    (["python:latest", "python:3.12"], "the --image filters name 2 tags"),
    (["python:latest", "go:latest"], "the --image filters name 2 tags"),
])
def test_one_build_selectors_need_exactly_one_tag(flag: str, filters: list[str],
                                                   why: str) -> None:
    with pytest.raises(UsageError) as caught:
        pinning.check_scope([cli(f) for f in filters], flag)
    message = str(caught.value)
    assert message.startswith(f"{flag} picks a build of one tag: give exactly one --image "
                              "IMAGE:TAG")
    assert message.endswith(why) and "\n" not in message


@pytest.mark.parametrize(("flag", "filters"), [
    ("--previous", ["python:latest"]),
    ("--digest", ["python:latest", "cgr.dev/chainguard/python:latest"]),  # the same tag twice
    ("--at", []), ("--cooldown", ["python"]), ("--at", ["go", "python:3.12"]), (None, []),
])
def test_selectors_accepted(flag: str | None, filters: list[str]) -> None:
    pinning.check_scope([cli(f) for f in filters], flag)


# --------------------------------------------------------------------------- decisions
PLAIN, SELECTED = Options(), Options(selected=True)
UPDATE, SELECTED_UPDATE = Options(update=True), Options(update=True, selected=True)


@pytest.mark.parametrize(("written", "options", "wanted", "status", "new"), [
    ("python:3.12", PLAIN, Wanted(A), PINNED, f"python:3.12@{A}"),
    ("python", SELECTED, Wanted(A), PINNED, f"python:latest@{A}"),
    # Pinned, nothing selected: left alone, without asking which build is wanted.
    (f"python:3.12@{B}", PLAIN, None, ALREADY, None),
    (f"python:3.12@{A}", SELECTED, Wanted(A), ALREADY, None),
    # The rollback case: pinned to another build than the one asked for.
    (f"python:3.12@{B}", SELECTED, Wanted(A), OTHER, f"python:3.12@{A}"),
    (f"python:3.12@{B}", SELECTED_UPDATE, Wanted(A), UPDATED, f"python:3.12@{A}"),
    (f"python:3.12@{B}", UPDATE, Wanted(A), UPDATED, f"python:3.12@{A}"),
    (f"python:3.12@{A}", UPDATE, Wanted(A), ALREADY, None),
    # A digest-only pin names no tag: nothing can be wanted for it.
    (f"python@{B}", PLAIN, None, ALREADY, None),
    (f"python@{B}", SELECTED, None, SKIPPED, None),
    (f"python@{B}", UPDATE, None, SKIPPED, None),
    ("python:3.12", PLAIN, Wanted(problem="tag not found"), FAILED, None),
    (f"python:3.12@{B}", SELECTED, Wanted(problem="no build at or before"), FAILED, None),
])
def test_decide(written: str, options: Options, wanted: Wanted | None, status: str,
                new: str | None) -> None:
    found = site(written)
    assert pinning.needs_build(found, options) is (wanted is not None)
    outcome = decide(found, wanted, options)
    assert (outcome.status, outcome.new, outcome.old) == (status, new, written)
    assert (outcome.reason is None) is (status in (PINNED, UPDATED, ALREADY))


def test_digest_only_option_drops_the_tag() -> None:
    outcome = decide(site("python:3.12"), Wanted(A), Options(digest_only=True))
    assert outcome.new == f"python@{A}"


# --------------------------------------------------------------------------- reporting
def report_of(*outcomes: pinning.Outcome, failures: tuple[str, ...] = ()) -> pinning.Report:
    return pinning.Report(files=2, outcomes=list(outcomes), failures=list(failures))


def test_summary_counts_other_builds_apart_and_says_update_moves_them() -> None:
    other = decide(site(f"python:3.12@{B}"), Wanted(A), SELECTED)
    already = decide(site(f"go:1@{A}"), Wanted(A), SELECTED)
    report = report_of(other, already)
    text = pinning.summary(report, check=False, dry_run=False, update=False)
    lines = text.splitlines()
    assert lines[0] == ("2 files scanned, 0 references pinned, 0 updated, 1 already pinned, "
                        "1 pinned to other builds, 0 skipped")
    # The shape of every per-reference summary line: two spaces, what, FILE:LINE: REFERENCE.
    assert lines[1] == f"  other build Dockerfile:1: python:3.12@{B}"
    assert lines[-1] == ("  1 reference pinned to other builds than the selected one: "
                         "--update moves it")
    assert report.exit_code(check=False) == 0
    # --check: it is a difference; listed on stdout by the command, counted here.
    checked = pinning.summary(report, check=True, dry_run=False, update=False)
    assert ", 1 not pinned as wanted" in checked.splitlines()[0]
    assert "other build Dockerfile" not in checked
    assert report.exit_code(check=True) == 1
    assert [o.change() for o in report.violations()] == [
        f"Dockerfile:1: python:3.12@{B} -> python:3.12@{A}"]


@pytest.mark.parametrize(("check", "dry_run"), [(True, False), (False, True), (True, True)])
def test_a_run_that_writes_nothing_says_would_for_every_change(check: bool,
                                                               dry_run: bool) -> None:
    moved = decide(site(f"python:3.12@{B}"), Wanted(A), Options(update=True, check=check))
    pinned = decide(site("go:1"), Wanted(A), PLAIN)
    first = pinning.summary(report_of(moved, pinned), check, dry_run, update=True)
    assert first.splitlines()[0].startswith(
        "2 files scanned, 1 reference would pin, 1 would update, 0 already pinned, ")
    written = pinning.summary(report_of(moved, pinned), False, False, update=True)
    assert written.splitlines()[0].startswith(
        "2 files scanned, 1 reference pinned, 1 updated, 0 already pinned, ")


def test_the_skipped_line_has_the_shape_of_the_other_build_line() -> None:
    skip = pinning.Outcome("compose.yaml", 5, "${X}", None, SKIPPED, "why")
    other = decide(site(f"python:3.12@{B}"), Wanted(A), SELECTED)
    lines = pinning.summary(report_of(skip, other), False, False, False).splitlines()
    assert lines[1:3] == ["  skipped compose.yaml:5: ${X}: why",
                          f"  other build Dockerfile:1: python:3.12@{B}"]


def test_json_lines_use_docker_keys_one_object_per_line() -> None:
    report = report_of(decide(site("python:3.12"), Wanted(A), PLAIN),
                       pinning.Outcome("compose.yaml", 3, "${X}", None, SKIPPED, "why"))
    lines = pinning.json_lines(report.outcomes).splitlines()
    assert [json.loads(line) for line in lines] == [
        {"File": "Dockerfile", "Line": 1, "Old": "python:3.12", "New": f"python:3.12@{A}",
         "Status": "pinned", "Reason": None},
        {"File": "compose.yaml", "Line": 3, "Old": "${X}", "New": None, "Status": "skipped",
         "Reason": "why"},
    ]
    assert {status for status, _ in pinning.STATUSES} == {
        PINNED, UPDATED, ALREADY, OTHER, UNCHANGED, SKIPPED, FAILED}


def test_a_file_not_written_turns_its_pins_into_failures() -> None:
    report = report_of(decide(site("go:1"), Wanted(A), PLAIN))
    report.outcomes.append(pinning.Outcome("b/Dockerfile", 1, "x", "y", PINNED))
    report.fail_file("Dockerfile", 0, "Dockerfile: read-only; not written")
    assert [(o.path, o.status) for o in report.outcomes] == [
        ("Dockerfile", FAILED), ("b/Dockerfile", PINNED)]
    assert report.outcomes[0].reason == "Dockerfile: read-only; not written"


# --------------------------------------------------------------------------- diffs
OLD = b"# \x1b[2J\nFROM go:1\r\nRUN x\n"
NEW = b"# \x1b[2J\nFROM go:1@" + A.encode() + b"\r\nRUN x\n"


def test_a_plain_diff_has_no_escape_at_all() -> None:
    text = pinning.diff("Dockerfile", OLD, NEW, colour=False)
    assert "\x1b" not in text
    assert text.startswith("--- a/Dockerfile\n+++ b/Dockerfile\n@@ -1,3 +1,3 @@\n")
    assert " # \\x1b[2J\n-FROM go:1\r\n+FROM go:1@" in text


def test_a_coloured_diff_paints_lines_and_still_escapes_the_file() -> None:
    text = pinning.diff("Dockerfile", OLD, NEW, colour=True)
    lines = text.split("\n")
    assert lines[0] == "\x1b[1m--- a/Dockerfile\x1b[0m"
    assert lines[1] == "\x1b[1m+++ b/Dockerfile\x1b[0m"
    assert lines[2] == "\x1b[36m@@ -1,3 +1,3 @@\x1b[0m"
    assert lines[3] == " # \\x1b[2J"  # context: the file's escape shown, nothing painted
    assert lines[4] == "\x1b[31m-FROM go:1\x1b[0m\r"  # colour closed before the line ends
    assert lines[5] == f"\x1b[32m+FROM go:1@{A}\x1b[0m\r"
    # Without our escapes it is the plain diff.
    for code in ("\x1b[1m", "\x1b[36m", "\x1b[31m", "\x1b[32m", "\x1b[0m"):
        text = text.replace(code, "")
    assert text == pinning.diff("Dockerfile", OLD, NEW)


# --------------------------------------------------------------------------- bisect's hint
def candidate(digest: str, position: int = 0) -> Candidate:
    build = Build(datetime(2024, 6, 1, tzinfo=timezone.utc), digest)
    return Candidate(position, build, Reference("cgr.dev", "chainguard/python", "latest"))


def test_bisect_hint_names_the_image_and_a_short_digest() -> None:
    good = candidate(A)
    assert pin_command("docker cghistory", good, [good, candidate(B, 1)]) == (
        f"docker cghistory pin --image cgr.dev/chainguard/python:latest --digest {A[7:19]}")


def test_bisect_hint_lengthens_a_prefix_another_candidate_shares() -> None:
    twin = "sha256:" + A[7:22] + "f" * 49  # the same 15 first characters
    hint = pin_command("p", candidate(A), [candidate(A), candidate(twin, 1)])
    assert hint.endswith(f"--digest {A[7:23]}")
    # The same digest met again is the same build: no need to lengthen.
    assert pin_command("p", candidate(A), [candidate(A), candidate(A, 2)]).endswith(A[7:19])


# --------------------------------------------------------------------------- --platform
AMD, ARM = Platform("linux", "amd64"), Platform("linux", "arm64", "v8")
AMD_1, AMD_2, ARM_1, ARM_2 = (f"sha256:{c * 64}" for c in "1234")
HOST = "cgr.dev"
PINNED_TEXT = f"{HOST}/chainguard/python:latest@{B}"


def builds(pinned: dict[Platform, str] | None, wanted: dict[Platform, str] | None,
           problem: str = "manifest unknown") -> dict[pinning.BuildKey, BuildPlatforms]:
    """The platforms of the pinned build B and the selected build A, as pin reads them."""
    def of(found: dict[Platform, str] | None) -> BuildPlatforms:
        return BuildPlatforms(found) if found is not None else BuildPlatforms(problem=problem)

    return {(HOST, "chainguard/python", B): of(pinned), (HOST, "chainguard/python", A): of(wanted)}


def platform_options(*platforms: Platform, update: bool = True) -> Options:
    """``--update``, or else a build selector (what makes a pin at another build reported)."""
    return Options(update=update, selected=not update, platforms=platforms)


def test_the_same_manifest_for_the_named_platform_stays() -> None:
    outcome = decide(site(PINNED_TEXT), Wanted(A), platform_options(AMD),
                     builds({AMD: AMD_1, ARM: ARM_1}, {AMD: AMD_1, ARM: ARM_2}))
    assert (outcome.status, outcome.new, outcome.reason) == (
        UNCHANGED, None, "unchanged for linux/amd64")
    report = report_of(outcome)
    report.platforms = (AMD,)
    assert "1 unchanged for linux/amd64" in pinning.summary(report, False, False, True)
    assert report.exit_code(check=True) == 0  # not a violation: --check passes it


@pytest.mark.parametrize("update", [True, False])
def test_a_change_on_one_named_platform_moves_the_index_pin(update: bool) -> None:
    outcome = decide(site(PINNED_TEXT), Wanted(A), platform_options(AMD, ARM, update=update),
                     builds({AMD: AMD_1, ARM: ARM_1}, {AMD: AMD_1, ARM: ARM_2}))
    assert outcome.status == (UPDATED if update else OTHER)
    assert outcome.new == f"{HOST}/chainguard/python:latest@{A}"  # the index, not ARM_2
    assert outcome.reason is not None and outcome.reason.startswith("linux/arm64 changed")
    assert not outcome.missing
    assert report_of(outcome).exit_code(check=True) == 1


@pytest.mark.parametrize(("pinned", "wanted", "reason"), [
    ({AMD: AMD_1}, {AMD: AMD_1, ARM: ARM_2}, "the pinned build has no linux/arm64"),
    ({AMD: AMD_1, ARM: ARM_1}, {AMD: AMD_1}, "the selected build has no linux/arm64"),
    ({AMD: AMD_1}, {AMD: AMD_2}, "neither build has linux/arm64"),
])
def test_a_platform_missing_on_either_side_moves_and_the_summary_says_why(
        pinned: dict[Platform, str], wanted: dict[Platform, str], reason: str) -> None:
    outcome = decide(site(PINNED_TEXT), Wanted(A), platform_options(ARM),
                     builds(pinned, wanted))
    assert (outcome.status, outcome.reason, outcome.missing) == (UPDATED, reason, True)
    report = report_of(outcome)
    report.platforms = (ARM,)
    assert f"  moved Dockerfile:1: {reason}" in pinning.summary(report, False, False, True)
    assert "would move Dockerfile:1" in pinning.summary(report, True, False, True)


def test_platforms_that_cannot_be_read_fail_the_reference() -> None:
    outcome = decide(site(PINNED_TEXT), Wanted(A), platform_options(AMD),
                     builds(None, {AMD: AMD_1}, problem="no such manifest"))
    assert outcome.status == FAILED and outcome.new is None
    assert outcome.reason is not None and "no such manifest" in outcome.reason


@pytest.mark.parametrize(("written", "wanted", "status"), [
    ("python:3.12", Wanted(A), PINNED),                      # nothing to compare: pinned
    (f"python:3.12@{A}", Wanted(A), ALREADY),                # the wanted build already
    (f"python@{B}", Wanted(A), SKIPPED),                     # digest-only: no tag to follow
])
def test_platforms_only_judge_pins_at_another_build(written: str, wanted: Wanted,
                                                    status: str) -> None:
    assert decide(site(written), wanted, platform_options(AMD), {}).status == status


def test_without_platforms_nothing_changes() -> None:
    outcome = decide(site(PINNED_TEXT), Wanted(A), Options(update=True), None)
    assert (outcome.status, outcome.reason) == (UPDATED, None)
    assert "unchanged for" not in pinning.summary(report_of(outcome), False, False, True)


def test_platform_verdict_names_every_platform_and_reads_variants_as_docker_does() -> None:
    verdict = pinning.platform_verdict({AMD: AMD_1, ARM: ARM_1}, {AMD: AMD_1, ARM: ARM_1},
                                       [AMD, Platform("linux", "arm64")])
    assert verdict == pinning.Verdict(False, "unchanged for linux/amd64, linux/arm64")


# --------------------------------------------------------------------------- --changes times
class _History:
    """A registry's history of one tag, or the error reading it raises."""

    def __init__(self, builds: list[Build] | Exception) -> None:
        self.builds = builds

    def history(self, reference: Reference) -> list[Build]:
        if isinstance(self.builds, Exception):
            raise self.builds
        return self.builds


class _Context:
    def __init__(self, client: _History) -> None:
        self.client = lambda registry: client


def test_the_pinned_builds_time_is_read_from_the_history_or_not_shown() -> None:
    from docker_cghistory import pinbuilds
    from docker_cghistory.errors import NoHistoryAPI

    when = datetime(2026, 12, 2, 5, 25, 32, tzinfo=timezone.utc)
    builds = [Build(when, A), Build(when.replace(day=1), B, "2026-12-01T05:25:32.5Z")]
    move = pinbuilds.Move("r.example/x:latest", "r.example", "x", B, A, tag="latest")
    assert pinbuilds._time_of(_Context(_History(builds)), move) == builds[1].timestamp
    assert pinbuilds._time_of(_Context(_History(builds[:1])), move) is None  # not in it
    assert pinbuilds._time_of(_Context(_History(NoHistoryAPI("none"))), move) is None
    untagged = pinbuilds.Move("r.example/x:latest", "r.example", "x", B, A)
    assert pinbuilds._time_of(_Context(_History(AssertionError())), untagged) is None
