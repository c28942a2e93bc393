"""Drawing the engine's pull stream on a terminal, as ``docker pull`` does (pure)."""

from __future__ import annotations

import io
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace

import pytest

from docker_cghistory.progress import PullProgress
from tests.unit.enginefakes import D1, NAME, PULL_EVENTS
from tests.unit.terminal import Captured, Screen


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


def _pull(width: int, before: str = "") -> tuple[PullProgress, io.StringIO]:
    out = io.StringIO(before)
    out.seek(len(before))
    render = PullProgress(out, width=width)
    for event in PULL_EVENTS:
        render(event)
    return render, out


@pytest.mark.parametrize("width", [20, 40, 80, 200])
def test_a_narrow_terminal_cuts_layer_lines_but_never_the_name_or_the_status(
    width: int,
) -> None:
    _, out = _pull(width)
    screen = Screen(width).feed(out.getvalue())
    # The image name and the last status are whole, wrapped over as many rows as they need.
    assert f"{D1}: Pulling from chainguard/python" in screen.joined
    assert f"Status: Downloaded newer image for {NAME}@{D1}" in screen.joined
    assert f"Digest: {D1}" in screen.joined
    # Each layer is one row holding its last state, cut to fit.
    layer_rows = [line for line in screen.lines if line.startswith(("aaaa:", "bbbb:"))]
    expected = ["aaaa: Pull complete", "bbbb: Download complete"]
    assert layer_rows == [line[: width - 1] for line in expected]
    assert all(len(line) <= width for line in screen.lines)


def test_layer_rows_stay_in_place_below_a_wrapped_name_line() -> None:
    """A 40-column terminal wraps the name line over three rows: a layer rewritten later must
    still land on its own row, not on the name."""
    out = io.StringIO()
    render = PullProgress(out, width=40)
    render({"status": "Pulling from chainguard/python", "id": D1})
    layers = [f"{n:012x}" for n in range(1, 5)]
    for layer in layers:
        render({"status": "Pulling fs layer", "id": layer})
    for step in range(1, 4):
        for layer in layers:
            render({"status": "Downloading", "id": layer,
                    "progress": f"[{'=' * step * 10}>{' ' * (40 - step * 10)}] {step}MB/4MB"})
    render({"status": "Pull complete", "id": layers[1]})
    screen = Screen(40).feed(out.getvalue())
    assert screen.lines[:3] == [
        f"{D1}: Pulling from chainguard/python"[i:i + 40] for i in range(0, 120, 40)]
    assert [line[:12] for line in screen.lines[3:]] == layers
    assert screen.lines[4] == f"{layers[1]}: Pull complete"
    assert screen.lines[5].startswith(f"{layers[2]}: Downloading [===")
    assert len(screen.lines) == 7


def test_collapse_erases_the_progress_and_leaves_one_line() -> None:
    before = "bisect: 8 builds from #7 to #0\n"
    render, out = _pull(40, before)
    render.collapse("bisect: pulled #3 sha256:c40ac3a1171c (run 1 of ~4)")
    screen = Screen(40).feed(out.getvalue())
    assert screen.lines == [
        "bisect: 8 builds from #7 to #0",
        "bisect: pulled #3 sha256:c40ac3a1171c (r", "un 1 of ~4)",
    ]
    # The next pull draws below the summary, its arithmetic starting afresh.
    render({"status": "Pulling fs layer", "id": "cccc"})
    render({"status": "Pull complete", "id": "cccc"})
    assert Screen(40).feed(out.getvalue()).lines[-1] == "cccc: Pull complete"


def test_collapse_with_nothing_drawn_only_writes_the_line() -> None:
    out = io.StringIO()
    PullProgress(out, width=80).collapse("done")
    assert out.getvalue() == "done\n"


# --- bisect folds each finished pull into one line ------------------------------------------


class _Engine:
    """Just what ``ImageKeeper.pull`` asks of the engine: nothing local, a pull that streams."""

    def local_digests(self, name: str) -> set[str]:
        return set()

    def pull(self, name: str, digest: str, **options: object) -> dict:
        on_event = options["on_event"]
        if on_event is not None:
            for event in PULL_EVENTS:
                on_event(event)  # type: ignore[operator]
        return {"Id": "sha256:" + "f" * 64}


def _keeper(tty: bool) -> tuple[object, Captured, list[object]]:
    from docker_cghistory.bisect import candidates_between
    from docker_cghistory.commands.bisect import ImageKeeper
    from docker_cghistory.credentials import Credential
    from docker_cghistory.history import Build
    from docker_cghistory.reference import Reference

    now = datetime(2024, 6, 10, tzinfo=timezone.utc)
    builds = [Build(now - timedelta(days=i), "sha256:" + f"{i + 1:x}" * 64) for i in range(4)]
    reference = Reference("cgr.dev", "chainguard/python", "latest")
    client = SimpleNamespace(registry="cgr.dev", credential=Credential("anonymous"))
    streams = Captured(tty=tty, width=80)
    keeper = ImageKeeper(client, streams)  # type: ignore[arg-type]
    keeper._engine = _Engine()  # type: ignore[assignment]
    return keeper, streams, candidates_between(reference, builds, 3, 0)


def test_bisect_leaves_one_line_per_finished_pull_on_a_terminal() -> None:
    keeper, streams, candidates = _keeper(tty=True)
    left = iter([4, 2])
    keeper.steps_left = lambda: next(left)  # type: ignore[attr-defined]
    for candidate in candidates[:2]:
        streams.stderr.write("bisect: pulling ...\n")
        keeper.pull(candidate)  # type: ignore[attr-defined]
    first, second = (f"#{c.position} sha256:{c.build.short}" for c in candidates[:2])
    assert Screen(80).feed(streams.err).lines == [
        "bisect: pulling ...",
        f"bisect: pulled {first} (run 1 of ~4)",
        "bisect: pulling ...",
        f"bisect: pulled {second} (run 2 of ~3)",
    ]


def test_bisect_off_a_terminal_stays_quiet() -> None:
    keeper, streams, candidates = _keeper(tty=False)
    keeper.pull(candidates[0])  # type: ignore[attr-defined]
    assert streams.err == ""
