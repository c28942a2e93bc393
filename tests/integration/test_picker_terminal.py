"""The picker, pull progress and bisect's folded progress on a real pseudo-terminal, read back
as a screen.

``docker cghistory pull IMAGE`` (and ``bisect``) runs under pexpect against the real registry
behind the front and the private dockerd. Its output is fed to pyte, a VT100 emulator, because
the picker redraws by difference (only the cells that changed): the raw byte stream never holds
a whole line, the screen does. The emulator also answers the cursor-position requests
prompt_toolkit makes, as a terminal would. Waiting is reading the child's output until the
screen shows what is expected; the deadlines only guard against a hang.
"""

from __future__ import annotations

import re
import shlex
import time
from collections.abc import Callable
from pathlib import Path

import pexpect
import pyte
import pytest

from tests.support.front import Front
from tests.support.services import Builds, DockerConfig, Dockerd

pytestmark = pytest.mark.integration

DEADLINE = 90.0  # a loaded 2-core box pulling through a proxying front: generous


def newest_first(builds: Builds, index: int) -> tuple[str, str]:
    """(digest, marker) of the build numbered ``index`` in the listing (0 = newest)."""
    position = len(builds.digests) - 1 - index
    return builds.digests[position], builds.markers[position]


class Terminal:
    """A command on a pseudo-terminal of ``rows`` x ``columns``, with the screen it leaves."""

    def __init__(self, env: DockerConfig, *args: str, stdout: Path, rows: int = 40,
                 columns: int = 160) -> None:
        command = " ".join(shlex.quote(a) for a in ("docker", "cghistory", *args))
        self.child = pexpect.spawn(
            "/bin/sh", ["-c", f"exec {command} > {shlex.quote(str(stdout))}"], env=env.env,
            cwd=str(env.home), encoding="utf-8", dimensions=(rows, columns),
        )
        child = self.child

        class Answering(pyte.Screen):  # type: ignore[misc]
            def write_process_input(self, data: str) -> None:
                child.send(data)  # the cursor-position report prompt_toolkit asks for

        self.screen = Answering(columns, rows)
        self.stream = pyte.Stream(self.screen)
        self.status: int | None = None

    @property
    def lines(self) -> list[str]:
        return [line.rstrip() for line in self.screen.display]

    @property
    def text(self) -> str:
        return "\n".join(self.lines).rstrip()

    def _read(self, deadline: float) -> bool:
        """Feed what the child wrote next to the screen; False once it has exited."""
        try:
            data = self.child.read_nonblocking(65536, timeout=max(deadline - time.monotonic(),
                                                                   0.1))
        except pexpect.TIMEOUT:
            return True
        except pexpect.EOF:
            return False
        self.stream.feed(data)
        return True

    def wait_for(self, shown: Callable[[str], bool], what: str) -> None:
        deadline = time.monotonic() + DEADLINE
        while not shown(self.text):
            if time.monotonic() > deadline:
                raise AssertionError(f"no {what} on screen after {DEADLINE}s:\n{self.text}")
            if not self._read(deadline):
                raise AssertionError(f"exited before showing {what}:\n{self.text}")

    def wait_exit(self) -> int:
        deadline = time.monotonic() + DEADLINE
        while self._read(deadline):
            if time.monotonic() > deadline:
                raise AssertionError(f"still running after {DEADLINE}s:\n{self.text}")
        self.child.close()
        assert self.child.exitstatus is not None, self.text
        return self.child.exitstatus

    def build_rows(self) -> list[str]:
        """The picker's build rows on screen (``> #N ...`` is the highlighted one)."""
        return [line for line in self.lines if line.startswith(("> #", "  #"))]


def ref(front: Front, builds: Builds) -> str:
    return f"{front.host}/{builds.repo}:{builds.tag}"


def pulled_digests(env: DockerConfig) -> set[str]:
    result = env.run("docker", "image", "ls", "--digests", "--format", "{{.Digest}}")
    assert result.returncode == 0, result.stderr
    return {line for line in result.stdout.split() if line.startswith("sha256:")}


def open_picker(env: DockerConfig, front: Front, builds: Builds, tmp_path: Path,
                **size: int) -> tuple[Terminal, Path]:
    out = tmp_path / "stdout.txt"
    terminal = Terminal(env, "pull", ref(front, builds), stdout=out, **size)
    last = len(builds.digests) - 1
    terminal.wait_for(lambda text: "Build of" in text and f"  #{last}  " in text,
                      "the picker with every build")
    return terminal, out


def test_a_filter_matching_nothing_shows_no_build_and_enter_pulls_nothing(
    plugin_env: DockerConfig, dockerd: Dockerd, front: Front, builds: Builds, tmp_path: Path,
) -> None:
    terminal, out = open_picker(plugin_env, front, builds, tmp_path)
    terminal.child.send("zzzz")
    terminal.wait_for(lambda text: "no build matches 'zzzz'" in text, "the no-match line")
    assert terminal.build_rows() == []
    terminal.child.send("\r")
    terminal.wait_for(lambda text: "Enter pulls nothing" in text, "the answer to Enter")
    assert terminal.child.isalive()  # still in the picker, nothing chosen ...
    assert dockerd.image_ids() == []  # ... and nothing pulled
    terminal.child.send("\x1b")
    assert terminal.wait_exit() == 130
    assert "cancelled: no build picked" in terminal.text
    assert out.read_text() == ""
    assert dockerd.image_ids() == []


@pytest.mark.parametrize("first", ["", "zzzz\r\x15"], ids=["straight", "after-no-match"])
def test_a_matching_filter_pulls_exactly_that_build(
    plugin_env: DockerConfig, dockerd: Dockerd, front: Front, builds: Builds, tmp_path: Path,
    first: str,
) -> None:
    """``after-no-match`` is the bug's own path: a filter that matched nothing, Enter (which
    must not pull #0), the filter erased with Ctrl-U, then the build's digest."""
    digest, marker = newest_first(builds, 4)
    terminal, out = open_picker(plugin_env, front, builds, tmp_path)
    if first:
        terminal.child.send(first)
        terminal.wait_for(lambda text: "Enter pulls nothing" not in text
                          and f"  #{len(builds.digests) - 1}  " in text, "the list back")
    terminal.child.send(digest[7:15])
    terminal.wait_for(lambda text: len(terminal.build_rows()) == 1, "one matching build")
    assert terminal.build_rows()[0].startswith("> #4  ")
    assert terminal.build_rows()[0].endswith(f"sha256:{digest[7:19]}")
    terminal.child.send("\r")
    assert terminal.wait_exit() == 0, terminal.text
    name = f"{front.host}/{builds.repo}"
    assert out.read_text() == f"{name}@{digest}\n"
    assert pulled_digests(plugin_env) == {digest}
    run = plugin_env.run("docker", "run", "--rm", "--network", "none", f"{name}@{digest}",
                         "cat", "/build", timeout=60)
    assert run.stdout.strip() == marker, run.stderr


def test_escape_cancels_with_one_line_and_pulls_nothing(
    plugin_env: DockerConfig, dockerd: Dockerd, front: Front, builds: Builds, tmp_path: Path,
) -> None:
    terminal, out = open_picker(plugin_env, front, builds, tmp_path)
    terminal.child.send("\x1b")
    assert terminal.wait_exit() == 130
    # The picker erased itself: the message is all that is left.
    assert terminal.text.strip() == "docker cghistory: cancelled: no build picked"
    assert out.read_text() == ""
    assert dockerd.image_ids() == []


def test_progress_on_a_40_column_terminal_keeps_the_name_and_the_status(
    plugin_env: DockerConfig, dockerd: Dockerd, front: Front, builds: Builds, tmp_path: Path,
) -> None:
    digest, _ = newest_first(builds, 1)
    name = f"{front.host}/{builds.repo}"
    terminal = Terminal(plugin_env, "pull", ref(front, builds), "--previous",
                        stdout=tmp_path / "stdout.txt", rows=40, columns=40)
    assert terminal.wait_exit() == 0, terminal.text
    joined = "".join(line.ljust(40) for line in terminal.lines)  # wrapped lines read whole
    assert f"Pulling from {builds.repo}" in joined
    assert f"Status: Downloaded newer image for {name}@{digest}" in joined
    assert all(len(line) <= 40 for line in terminal.lines)


def test_bisect_folds_each_finished_pull_into_one_line(
    plugin_env: DockerConfig, dockerd: Dockerd, front: Front, builds: Builds, tmp_path: Path,
) -> None:
    """On a terminal the layer lines of each pull are erased once it is done; what stays is
    one ``pulled`` line per run, between the log lines and the command's own output."""
    script = "case $(cat /build) in build-[345]) exit 1;; esac"
    terminal = Terminal(plugin_env, "bisect", ref(front, builds), "--good", "5", "--",
                        "docker", "run", "--rm", "--network", "none", "{}", "sh", "-c", script,
                        stdout=tmp_path / "stdout.txt", rows=60, columns=200)
    assert terminal.wait_exit() == 0, terminal.text
    lines = terminal.lines
    pulled = [line for line in lines if line.startswith("bisect: pulled #")]
    tested = [line for line in lines if line.startswith("bisect: testing #")]
    assert len(pulled) == len(tested) >= 3, terminal.text
    for run, line in enumerate(pulled, start=1):
        assert re.fullmatch(rf"bisect: pulled #\d+ sha256:[0-9a-f]{{12}} \(run {run} of ~\d+\)",
                            line), line
    assert pulled[0].startswith("bisect: pulled #5 sha256:")  # --good is checked first
    assert not any("Pull complete" in line or "Pulling from" in line for line in lines), (
        terminal.text)
    # Each pull's line comes right after its "pulling" line: nothing of the progress is left.
    for index, line in enumerate(lines):
        if line.startswith("bisect: pulled #"):
            assert lines[index - 1].startswith("bisect: pulling #"), terminal.text
    first_bad = (tmp_path / "stdout.txt").read_text().splitlines()[0]
    assert first_bad.startswith("first bad build: ")
    assert newest_first(builds, 2)[0] in first_bad
