"""The terminal object commands are given, and progress drawn through it."""

from __future__ import annotations

import io
import sys

import pytest

from docker_cghistory.progress import PullProgress
from docker_cghistory.streams import Streams
from tests.unit.terminal import Captured


def test_stringio_is_no_terminal_and_80_columns() -> None:
    streams = Streams(io.StringIO(), io.StringIO(), io.StringIO())
    assert not (streams.stdout_is_tty or streams.stderr_is_tty or streams.stdin_is_tty)
    assert streams.width == 80 and not streams.no_color


def test_a_missing_or_closed_stream_is_no_terminal() -> None:
    closed = io.StringIO()
    closed.close()
    streams = Streams(io.StringIO(), closed, None)
    assert not streams.stderr_is_tty and not streams.stdin_is_tty and streams.width == 80


def test_what_the_test_says_wins() -> None:
    streams = Captured(stderr_is_tty=True, width=33)
    assert streams.stderr_is_tty and not streams.stdout_is_tty and streams.width == 33


@pytest.mark.parametrize(("environ", "no_color"), [
    ({}, False), ({"NO_COLOR": ""}, False), ({"NO_COLOR": "1"}, True), ({"NO_COLOR": "0"}, True),
])
def test_no_color_counts_when_set_and_not_empty(environ: dict[str, str], no_color: bool) -> None:
    streams = Streams.from_process(environ)
    assert streams.no_color is no_color
    assert (streams.stdout, streams.stderr, streams.stdin) == (sys.stdout, sys.stderr, sys.stdin)


def test_progress_on_streams_draws_on_stderr_and_asks_the_width_each_line() -> None:
    streams = Captured(stderr_is_tty=True, width=200)
    render = PullProgress.on(streams)
    render({"status": "Downloading", "id": "layer", "progress": "[=======>    ] 12MB/40MB"})
    streams._width = 20  # the window was made narrower mid-pull
    render({"status": "Extracting", "id": "other", "progress": "[=======>    ] 12MB/40MB"})
    assert streams.out == ""
    assert streams.err.splitlines() == ["layer: Downloading [=======>    ] 12MB/40MB",
                                        "other: Extracting ["]  # 19 columns
