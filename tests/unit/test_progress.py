"""Drawing the engine's pull stream on a terminal, as ``docker pull`` does (pure)."""

from __future__ import annotations

import io

from docker_cghistory.progress import PullProgress
from tests.unit.enginefakes import D1, PULL_EVENTS


def test_progress_rewrites_each_layer_line_in_place() -> None:
    out = io.StringIO()
    render = PullProgress(out, width=200)
    for event in PULL_EVENTS[:6]:
        render(event)
    assert out.getvalue() == (
        f"{D1}: Pulling from chainguard/python\n"
        "aaaa: Pulling fs layer\n"
        "bbbb: Pulling fs layer\n"
        "\x1b[2A\r\x1b[2Kaaaa: Downloading [=>  ] 1B/4B\r\x1b[2B"
        "\x1b[1A\r\x1b[2Kbbbb: Download complete\r\x1b[1B"
        "\x1b[2A\r\x1b[2Kaaaa: Pull complete\r\x1b[2B"
    )


def test_progress_lines_without_id_are_new_lines_and_keep_the_arithmetic() -> None:
    out = io.StringIO()
    render = PullProgress(out, width=200)
    render({"status": "Pulling fs layer", "id": "aaaa"})
    render({"status": "Digest: sha256:abc"})
    render({"status": "Extracting", "id": "aaaa"})
    assert out.getvalue() == (
        "aaaa: Pulling fs layer\nDigest: sha256:abc\n"
        "\x1b[2A\r\x1b[2Kaaaa: Extracting\r\x1b[2B"
    )


def test_progress_cuts_lines_to_the_terminal_width() -> None:
    out = io.StringIO()
    PullProgress(out, width=20)({"status": "Downloading", "id": "layer",
                                 "progress": "[=======>          ] 12MB/40MB"})
    assert out.getvalue() == "layer: Downloading \n"


def test_progress_neutralises_control_characters_and_skips_errors() -> None:
    out = io.StringIO()
    render = PullProgress(out, width=200)
    render({"status": "evil\x1b[2Jclear", "id": "x\x07"})
    render({"error": "boom", "errorDetail": {"message": "boom"}})
    render({})
    assert out.getvalue() == "x\\x07: evil\\x1b[2Jclear\n"
