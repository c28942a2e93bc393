"""The picker's rule: Enter answers only a build on screen; a filter matching nothing shows
and answers none. The pure ``Picker`` state first, then the prompt_toolkit application driven
through a pipe (the pseudo-terminal run is tests/integration/test_picker_terminal.py)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from docker_cghistory import picker
from docker_cghistory.errors import Interrupted
from docker_cghistory.history import Build
from docker_cghistory.reference import Reference
from docker_cghistory.selection import Choice

NOW = datetime(2024, 6, 10, 12, 0, 0, tzinfo=timezone.utc)
REF = Reference("cgr.dev", "chainguard/python", "latest")
# Sent after the test's keys: a picker still open then is cancelled instead of hanging.
GUARD = "\x03"


def daily(count: int) -> list[Build]:
    """``count`` builds a day apart, newest first, digests distinct in their first 12 hex."""
    newest = NOW - timedelta(hours=1)
    return [Build(newest - timedelta(days=i), "sha256:" + f"{i + 1:x}" * 64)
            for i in range(count)]


def state(count: int = 5, query: str = "") -> picker.Picker:
    machine = picker.Picker(picker.rows(daily(count), None, NOW))
    if query:
        machine.type(query)
    return machine


def run(keys: str, builds: list[Build], local: set[str] | None = None) -> Choice:
    from prompt_toolkit.input import create_pipe_input
    from prompt_toolkit.output import DummyOutput

    with create_pipe_input() as pipe:
        pipe.send_text(keys + GUARD)
        return picker.pick(REF, builds, local, NOW, input=pipe, output=DummyOutput())


# --- the pure state -----------------------------------------------------------------------


def test_a_filter_matching_nothing_leaves_nothing_to_choose() -> None:
    machine = state(5, "zzzz")
    assert machine.matches == []
    machine.move(1)
    assert machine.chosen() is None
    screen = [text for _, text in machine.lines("Build of x to pull:")]
    assert "  no build matches 'zzzz'" in screen
    assert not any(line.lstrip("> ").startswith("#") for line in screen[1:])
    assert "Enter pulls nothing" in screen[-1]


def test_the_cursor_moves_among_matches_only() -> None:
    builds = daily(6)
    machine = picker.Picker(picker.rows(builds, {builds[2].digest, builds[4].digest}, NOW))
    machine.type("LOCAL")  # case does not matter
    assert machine.matches == [2, 4]
    assert machine.chosen() == 2
    machine.move(1)
    assert machine.chosen() == 4
    machine.move(1)  # wraps around
    assert machine.chosen() == 2
    machine.move(-1)
    assert machine.chosen() == 4


def test_editing_the_filter_brings_builds_back_and_puts_the_cursor_on_the_first() -> None:
    machine = state(4, "qq")  # "q" alone matches nothing either
    machine.backspace()
    assert machine.matches == []
    machine.backspace()
    assert machine.matches == [0, 1, 2, 3]
    machine.move(2)
    machine.type("#")
    assert machine.chosen() == 0
    machine.clear()
    assert machine.query == "" and machine.matches == [0, 1, 2, 3]


def test_a_long_list_scrolls_with_the_cursor_and_says_what_is_hidden() -> None:
    machine = state(40)
    machine.jump(25)
    lines = [text for _, text in machine.lines("t", height=10)]
    pointed = [line for line in lines if line.startswith("> ")]
    assert pointed == ["> " + picker.rows(daily(40), None, NOW)[25]]
    assert len([line for line in lines if line.startswith(("> #", "  #"))]) == 10
    assert "  (16 more above)" in lines
    assert "  (14 more below)" in lines
    machine.jump(-100)
    assert machine.chosen() == 0
    machine.jump(100)
    assert machine.chosen() == 39


# --- the application, through a pipe ------------------------------------------------------


def test_enter_on_an_empty_filter_pulls_nothing_and_cancel_still_works() -> None:
    with pytest.raises(Interrupted, match="cancelled: no build picked") as caught:
        run("zzzz\r\r\x1b[B\r", daily(3))
    assert caught.value.exit_code == 130


def test_enter_after_erasing_a_filter_that_matched_nothing_pulls_the_pointed_build() -> None:
    builds = daily(4)
    assert run("qq\r\x7f\x7f\x1b[B\x1b[B\r", builds) == Choice(builds[2], 2)


def test_a_matching_filter_pulls_that_build() -> None:
    builds = daily(5)
    wanted = builds[3].digest[7:15]
    assert run(wanted + "\r", builds) == Choice(builds[3], 3)


def test_filter_by_full_listing_index() -> None:
    builds = daily(12)
    assert run("#11\r", builds) == Choice(builds[11], 11)


def test_ctrl_u_clears_the_filter() -> None:
    builds = daily(3)
    assert run("qqq\x15\x1b[B\r", builds) == Choice(builds[1], 1)


@pytest.mark.parametrize("keys", ["\x1b", "\x04", "abc\x1b"])
def test_escape_and_ctrl_d_cancel(keys: str) -> None:
    with pytest.raises(Interrupted, match="cancelled"):
        run(keys, daily(3))
