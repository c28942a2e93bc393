"""The ``pull`` recipe (commands/pull.py) with a fake registry client over a fake engine.

The engine adapter runs for real on ``FakeAPI`` (tests/unit/enginefakes.py), so these check
what the command asks of the engine, in which order, and what it prints.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import threading
import time
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from docker_cghistory.commands import pull
from docker_cghistory.engine import Engine
from docker_cghistory.errors import InvalidReference, TagNotFound, UsageError
from docker_cghistory.history import Build
from docker_cghistory.reference import Reference
from tests.unit.enginefakes import D1, D2, D3, ENDPOINT, NAME, PULL_EVENTS, SECRET, FakeAPI, image
from tests.unit.terminal import Captured

NOW = datetime.now(timezone.utc)
BUILDS = [Build(NOW - timedelta(days=i, hours=1), d) for i, d in enumerate((D1, D2, D3))]


class FakeCredential:
    source = "config.json auths for cgr.dev"

    def engine_auth(self) -> dict[str, str]:
        return {"username": "u", "password": SECRET}


class FakeClient:
    credential = FakeCredential()

    def __init__(self) -> None:
        self.calls: list[dict] = []

    def history(self, reference: Reference, **kwargs: Any) -> list[Build]:
        self.calls.append(kwargs)
        last = kwargs.get("last")
        return BUILDS[:last] if last else list(BUILDS)

    def history_page(self, reference: Reference, window: Any) -> list[Build]:
        return sorted(BUILDS)


class FakeContext:
    default_registry, default_org, program = "cgr.dev", "chainguard", "docker cghistory"

    def __init__(self) -> None:
        self.client_ = FakeClient()

    def parse(self, text: str) -> Reference:
        from docker_cghistory.reference import parse_cli

        return parse_cli(text)

    def client(self, registry: str) -> FakeClient:
        return self.client_


def pull_args(**given: Any) -> argparse.Namespace:
    base = {"image": "python", "digest": None, "index": None, "previous": False, "at": None,
            "cooldown": None, "tag": None, "retag": False, "platform": None, "quiet": False,
            "format": None}
    base.update(given)
    return argparse.Namespace(**base)


@pytest.fixture
def fake_engine(monkeypatch: pytest.MonkeyPatch) -> FakeAPI:
    api = FakeAPI()
    for digest in (D1, D2, D3):
        api.images_by_ref[f"{NAME}@{digest}"] = image(f"sha256:img{digest[7]}",
                                                      f"{NAME}@{digest}")
    monkeypatch.setattr(Engine, "connect", classmethod(lambda cls, *a, **k: cls(api, ENDPOINT)))
    return api


def test_pull_previous_prints_the_reference(fake_engine: FakeAPI) -> None:
    context, streams = FakeContext(), Captured()
    assert pull.run(pull_args(previous=True), context, streams) == 0  # type: ignore[arg-type]
    assert streams.out == f"{NAME}@{D2}\n"
    assert streams.err == ""  # not a terminal: quiet but for the result
    assert context.client_.calls == [{"last": 2}]
    assert fake_engine.calls[0][2]["tag"] == D2
    assert [call[0] for call in fake_engine.calls] == ["pull", "inspect_image"]  # no tagging
    assert fake_engine.closed


def test_retag_says_what_the_tag_pointed_at_and_how_to_undo_it(fake_engine: FakeAPI) -> None:
    fake_engine.images_by_ref[f"{NAME}:latest"] = image("sha256:img1", f"{NAME}@{D1}")
    streams = Captured()
    assert pull.run(pull_args(index=2, retag=True, tag="myapp:old"), FakeContext(),  # type: ignore[arg-type]
                    streams) == 0
    assert streams.out == f"{NAME}@{D3}\n"
    assert streams.err.splitlines() == [
        f"Tagged {NAME}@{D3} as myapp:old",
        f"{NAME}:latest now points at {NAME}@{D3} (before: {NAME}@{D1})",
        f"To undo: docker tag {NAME}@{D1} {NAME}:latest",
    ]
    tags = [call[1] for call in fake_engine.calls if call[0] == "tag"]
    assert tags == [("sha256:img3", "myapp", "old"), ("sha256:img3", NAME, "latest")]


def test_retag_of_an_absent_tag_is_undone_by_removing_it(fake_engine: FakeAPI) -> None:
    streams = Captured(tty=True)
    assert pull.run(pull_args(index=1, retag=True, quiet=True), FakeContext(), streams) == 0  # type: ignore[arg-type]
    # Said even with -q: it is the only record of what to go back to.
    assert streams.err.splitlines() == [
        f"{NAME}:latest now points at {NAME}@{D2} (it did not exist before)",
        f"To undo: docker rmi {NAME}:latest",
    ]


def test_retag_names_a_previous_image_without_a_digest_by_its_id(fake_engine: FakeAPI) -> None:
    """A locally built image tagged NAME:latest has no digest in the repository: its ID
    is what ``docker tag`` can point the tag back at."""
    fake_engine.images_by_ref[f"{NAME}:latest"] = image("sha256:built", "other/repo@" + D1)
    streams = Captured()
    assert pull.run(pull_args(index=1, retag=True), FakeContext(), streams) == 0  # type: ignore[arg-type]
    assert f"To undo: docker tag sha256:built {NAME}:latest" in streams.err


def test_retag_to_the_image_it_already_named_has_nothing_to_undo(fake_engine: FakeAPI) -> None:
    fake_engine.images_by_ref[f"{NAME}:latest"] = image("sha256:img2", f"{NAME}@{D2}")
    streams = Captured()
    assert pull.run(pull_args(previous=True, retag=True, format="json"), FakeContext(),  # type: ignore[arg-type]
                    streams) == 0
    assert streams.err == f"{NAME}:latest already pointed at {NAME}@{D2}\n"
    row = json.loads(streams.out)
    assert (row["PreviousTarget"], row["Undo"]) == (f"{NAME}@{D2}", None)


def test_format_json_is_one_object_of_what_changed(fake_engine: FakeAPI) -> None:
    fake_engine.images_by_ref[f"{NAME}:latest"] = image("sha256:img1", f"{NAME}@{D1}")
    streams = Captured()
    assert pull.run(pull_args(previous=True, retag=True, tag="myapp:old", format="json"),  # type: ignore[arg-type]
                    FakeContext(), streams) == 0
    assert len(streams.out.splitlines()) == 1
    assert json.loads(streams.out) == {
        "Reference": f"{NAME}@{D2}", "Digest": D2, "Index": 1,
        "Updated": BUILDS[1].timestamp, "Tag": "myapp:old", "Retagged": f"{NAME}:latest",
        "PreviousTarget": f"{NAME}@{D1}", "Undo": f"docker tag {NAME}@{D1} {NAME}:latest",
    }


def test_format_json_without_retag_has_nulls(fake_engine: FakeAPI) -> None:
    streams = Captured()
    assert pull.run(pull_args(index=0, format="json"), FakeContext(), streams) == 0  # type: ignore[arg-type]
    row = json.loads(streams.out)
    assert row["Reference"] == f"{NAME}@{D1}" and row["Index"] == 0
    assert [row[k] for k in ("Tag", "Retagged", "PreviousTarget", "Undo")] == [None] * 4


def test_format_template_and_a_bad_one_fails_before_pulling(fake_engine: FakeAPI) -> None:
    streams = Captured()
    fmt = "{{.Digest}} {{if .Retagged}}moved{{else}}kept{{end}}"
    assert pull.run(pull_args(index=1, format=fmt), FakeContext(), streams) == 0  # type: ignore[arg-type]
    assert streams.out == f"{D2} kept\n"
    fake_engine.calls.clear()
    with pytest.raises(UsageError, match="unknown field"):
        pull.run(pull_args(index=1, format="{{.Nope}}"), FakeContext(), Captured())  # type: ignore[arg-type]
    assert fake_engine.calls == []


# --- a pull by digest, and a digest typed as a tag -------------------------------------------


def test_pull_by_digest_reads_no_history(fake_engine: FakeAPI) -> None:
    context, streams = FakeContext(), Captured()
    assert pull.run(pull_args(image=f"python@{D3}", format="json"), context, streams) == 0  # type: ignore[arg-type]
    assert context.client_.calls == []
    assert fake_engine.calls[0][2]["tag"] == D3
    row = json.loads(streams.out)
    assert (row["Reference"], row["Index"], row["Updated"]) == (f"{NAME}@{D3}", None, None)


def test_pull_by_digest_with_a_tag_retags_that_tag(fake_engine: FakeAPI) -> None:
    streams = Captured()
    assert pull.run(pull_args(image=f"python:3.12@{D3}", retag=True), FakeContext(), streams) == 0  # type: ignore[arg-type]
    tags = [call[1] for call in fake_engine.calls if call[0] == "tag"]
    assert tags == [("sha256:img3", NAME, "3.12")]
    assert f"To undo: docker rmi {NAME}:3.12" in streams.err


@pytest.mark.parametrize(("given", "words"), [
    ({"previous": True}, "names its build already; drop --previous"),
    ({"retag": True}, f"write IMAGE:TAG@DIGEST (for example {NAME}:latest@{D3})"),
])
def test_pull_by_digest_refuses_what_means_nothing(fake_engine: FakeAPI, given: dict,
                                                   words: str) -> None:
    with pytest.raises(UsageError) as caught:
        pull.run(pull_args(image=f"python@{D3}", **given), FakeContext(), Captured())  # type: ignore[arg-type]
    assert words in str(caught.value) and "\n" not in str(caught.value)
    assert fake_engine.calls == []


def test_a_digest_typed_as_a_tag_gets_the_digest_command(fake_engine: FakeAPI) -> None:
    with pytest.raises(UsageError) as caught:
        pull.run(pull_args(image="python:c171a551fee2"), FakeContext(), Captured())  # type: ignore[arg-type]
    assert str(caught.value) == ("c171a551fee2 looks like a digest, not a tag; to pull that "
                                 "build: docker cghistory pull python --digest c171a551fee2")


def test_a_missing_digest_looking_tag_gets_the_hint_too(fake_engine: FakeAPI) -> None:
    context = FakeContext()

    def missing(reference: Reference, **kwargs: Any) -> list[Build]:
        raise TagNotFound(f"not found: {reference.tagged} (chainguard/python has no tag x)")

    context.client_.history = missing  # type: ignore[method-assign]
    with pytest.raises(TagNotFound) as caught:
        pull.run(pull_args(image="cgr.dev/chainguard/python:c171a551fee2", previous=True),  # type: ignore[arg-type]
                 context, Captured())
    assert str(caught.value).endswith(
        "; c171a551fee2 looks like a digest, not a tag; to pull that build: docker cghistory "
        "pull cgr.dev/chainguard/python --digest c171a551fee2")
    assert fake_engine.calls == []  # nothing pulled


def test_bad_new_tag_fails_before_pulling(fake_engine: FakeAPI) -> None:
    for bad in ("UPPER/Case", "name@sha256:" + "1" * 64, "bad tag"):
        with pytest.raises(InvalidReference):
            pull.run(pull_args(index=1, tag=bad), FakeContext(), Captured())  # type: ignore[arg-type]
    assert fake_engine.calls == []


@pytest.mark.parametrize("known", [{}, {"stderr_is_tty": True}, {"stdin_is_tty": True}])
def test_no_selector_without_a_terminal_names_the_selectors(
        fake_engine: FakeAPI, known: dict[str, bool]) -> None:
    """The picker needs keys from stdin and a screen on stderr: one of them is not enough."""
    context = FakeContext()
    with pytest.raises(UsageError) as caught:
        pull.run(pull_args(), context, Captured(**known))  # type: ignore[arg-type]
    for flag in ("--digest", "--index", "--previous", "--at", "--cooldown"):
        assert flag in str(caught.value)
    assert fake_engine.calls == [] and context.client_.calls == []  # refused before any work


def test_interrupt_during_retag_finishes_it_first(fake_engine: FakeAPI) -> None:
    """Ctrl-C between ``--tag`` and ``--retag`` must not leave one done and one not."""
    original = fake_engine.tag

    def tag_then_interrupt(*args: Any, **kwargs: Any) -> bool:
        result = original(*args, **kwargs)
        if threading.current_thread() is threading.main_thread():
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.05)
        return result

    fake_engine.tag = tag_then_interrupt  # type: ignore[method-assign]
    streams = Captured()
    with pytest.raises(KeyboardInterrupt):
        pull.run(pull_args(index=1, tag="myapp:x", retag=True), FakeContext(), streams)  # type: ignore[arg-type]
    tags = [call[1] for call in fake_engine.calls if call[0] == "tag"]
    assert tags == [("sha256:img2", "myapp", "x"), ("sha256:img2", NAME, "latest")]
    assert streams.out == ""  # interrupted: no reference claimed as the result


def test_a_terminal_on_stderr_gets_the_build_and_progress_cut_to_its_width(
        fake_engine: FakeAPI) -> None:
    """Told stderr is a terminal, the command draws there; stdout still holds the result only."""
    fake_engine.events = PULL_EVENTS[:4]
    streams = Captured(stderr_is_tty=True, width=24)
    assert pull.run(pull_args(index=1), FakeContext(), streams) == 0  # type: ignore[arg-type]
    assert streams.out == f"{NAME}@{D2}\n"
    first, *progress = streams.err.split("\n")
    assert first.startswith(f"Pulling {NAME}:latest #1 (updated ")
    # The line naming the image is whole (the terminal wraps it); layer lines are cut.
    whole = f"{D1}: Pulling from chainguard/python"
    assert progress[:3] == [whole, "aaaa: Pulling fs layer", "bbbb: Pulling fs layer"]
    assert "\x1b[2A\r\x1b[2Kaaaa: Downloading [=>" in streams.err


def test_quiet_draws_nothing_even_on_a_terminal(fake_engine: FakeAPI) -> None:
    fake_engine.events = PULL_EVENTS
    streams = Captured(tty=True)
    assert pull.run(pull_args(index=1, quiet=True), FakeContext(), streams) == 0  # type: ignore[arg-type]
    assert (streams.out, streams.err) == (f"{NAME}@{D2}\n", "")
