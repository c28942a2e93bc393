"""Many processes at once on one cache: same answers, and a cache that is never torn.

Shells run completions side by side, CI jobs list in parallel, and all of them share
``~/.cache/docker-cghistory``. Here 50 processes start at the same moment (a 2-core machine
runs them all, slowly) against the front, on one ``XDG_CACHE_HOME``, first with an empty cache
(every process races to create the key, learn the realm, store its token and window plan),
then with a warm one. Every listing must be the true history; every completion the right
candidates (or, while the cache is cold and 50 processes share two cores, none: its budget is
1 s); afterwards every cache file must parse, every sealed token must open with the shared
key, and no temporary file may be left.
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from tests.support.front import Front, make_history

from .helpers import add_repo, cache_dirs, cache_files, hard_config, start_tool

pytestmark = pytest.mark.integration

PROCESSES = 50
NOW = datetime.now(timezone.utc).replace(microsecond=0)
# Three pages: listing plans windows, reads them in parallel and remembers the plan.
HISTORY = make_history(2500, NOW - timedelta(hours=6) * 2501, timedelta(hours=6),
                       seed="concurrency", fractional="mixed")
EXPECTED = [digest for _, digest in reversed(HISTORY)]


@dataclass
class Finished:
    kind: str
    returncode: int
    stdout: str
    stderr: str
    seconds: float


def _wave(env: dict[str, str], cwd: Path, commands: list[tuple[str, list[str]]]
          ) -> tuple[list[Finished], float]:
    """Start every command at once, then wait for all of them."""
    started = time.monotonic()
    finished = []
    with contextlib.ExitStack() as files:
        procs = []
        for kind, args in commands:
            out = files.enter_context(tempfile.TemporaryFile())
            err = files.enter_context(tempfile.TemporaryFile())
            procs.append((kind, start_tool(env, args, cwd, out, err), out, err,
                          time.monotonic()))
        for kind, proc, out, err, began in procs:
            try:
                code = proc.wait(timeout=180)
            except subprocess.TimeoutExpired:
                proc.kill()
                code = proc.wait()
            seconds = time.monotonic() - began
            out.seek(0)
            err.seek(0)
            finished.append(Finished(kind, code, out.read().decode(), err.read().decode(),
                                     seconds))
    return finished, time.monotonic() - started


def _candidates(stdout: str) -> list[str]:
    return [line.split("\t")[0] for line in stdout.splitlines()[:-1]]


def _check_cache(cache_home: Path) -> dict[str, int]:
    """Every file of the cache parses as what it is; returns how many of each kind."""
    from docker_cghistory import cache
    from docker_cghistory.complete import store
    from docker_cghistory.credentials import ANONYMOUS
    from docker_cghistory.timespec import parse_timestamp

    root = cache_home / "docker-cghistory"
    kinds: Counter[str] = Counter()
    previous = os.environ.get("XDG_CACHE_HOME")
    os.environ["XDG_CACHE_HOME"] = str(cache_home)
    try:
        for path in cache_files(cache_home):
            relative = path.relative_to(root)
            assert not path.name.endswith(".tmp"), f"temporary file left: {relative}"
            assert stat.S_IMODE(path.stat().st_mode) == 0o600, relative
            top = relative.parts[0]
            data = path.read_bytes()
            if top == "key":
                assert len(data) == 32, "the local key is damaged"
            elif top == "tokens":
                entry = json.loads(data)
                assert isinstance(entry["expires"], (int, float)), relative
                token = cache.unseal(entry["sealed"], ANONYMOUS.key_material)
                assert token, f"{relative}: sealed under another key (a torn key file?)"
            elif top == "realms":
                # Signed (a planted realm would send credentials elsewhere): the value must
                # still verify under the key every racing process shared.
                entry = cache.read_signed_json("realms", path.name)
                assert isinstance(entry, dict), f"{relative}: torn, or signed under another key"
                assert entry["scheme"] == "bearer" and entry["realm"].startswith("http"), entry
            elif top == "plans":
                for text in json.loads(data):
                    parse_timestamp(text)
            elif top == "complete" and relative.name == "local.attempt":
                assert data == b"", relative  # a time stamp: only its mtime counts
            elif top == "complete":
                header = data.decode().partition("\n")[0]
                assert header.startswith("cghistory-completion 1\t"), relative
                assert data.endswith(b"\n"), relative
                key = header.split("\t", 1)[1]
                kind = relative.parts[1]
                found = store.read_entry(kind, key)
                assert found is not None, f"{relative} does not read back"
                if kind == "builds":
                    assert [line.split(" ")[1] for line in found[0]] == EXPECTED[:len(found[0])]
            else:
                raise AssertionError(f"unexpected cache file {relative}")
            kinds[top] += 1
    finally:
        if previous is None:
            os.environ.pop("XDG_CACHE_HOME", None)
        else:
            os.environ["XDG_CACHE_HOME"] = previous
    for folder in cache_dirs(cache_home):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700, folder
    return dict(kinds)


def test_fifty_processes_share_one_cache(front: Front, tmp_path: Path) -> None:
    reference = add_repo(front, "concurrency/app", HISTORY)
    # Not a test of timeouts: 50 processes and a loaded machine can keep the front from
    # answering within the usual 10 s.
    config = hard_config(tmp_path / "client", CGHISTORY_TIMEOUT="120")
    config.env.pop("CGHISTORY_NO_BACKGROUND")  # let completion refresh local images too
    listing = ["list", "-q", reference]
    completing = ["__complete", "cghistory", "pull", reference, "--digest", ""]
    images = ["__complete", "cghistory", "list", ""]  # recent references, local images
    figures = {}
    for wave in ("cold", "warm"):
        commands = ([("list", listing)] * 20 + [("complete", completing)] * 20
                    + [("images", images)] * (PROCESSES - 40))
        finished, seconds = _wave(config.env, tmp_path, commands)
        lists = [f for f in finished if f.kind == "list"]
        completions = [f for f in finished if f.kind == "complete"]
        for result in (f for f in finished if f.kind == "images"):
            assert result.stdout.splitlines()[-1].startswith(":"), result.stdout
            if wave == "warm":  # the listings of the first wave remembered the reference
                assert reference in _candidates(result.stdout), result.stdout
        for result in finished:
            assert result.returncode == 0, (wave, result)
            assert "\x1b" not in result.stderr and "Traceback" not in result.stderr, result
        for result in lists:
            assert result.stdout.split() == EXPECTED, (wave, result.stderr)
            assert result.stderr == "", result.stderr
        answered = 0
        for result in completions:
            got = _candidates(result.stdout)
            assert result.stdout.splitlines()[-1].startswith(":"), result.stdout[-200:]
            if wave == "warm":
                assert got == EXPECTED[:500], (wave, result.stdout[:300])
            else:
                assert got in ([], EXPECTED[:500]), (wave, result.stdout[:300])
            answered += bool(got)
        figures[wave] = (seconds, max(f.seconds for f in finished), answered)
        print(f"{wave}: {PROCESSES} processes in {seconds:.1f} s (slowest {figures[wave][1]:.1f}"
              f" s), {answered}/{len(completions)} completions answered")
    # The forked refresher of the local image list is detached: wait for it (it ends when
    # `docker image ls` does, 10 s at most, however slowly it starts under load).
    local = config.cache / "docker-cghistory" / "complete" / "lists"
    deadline = time.monotonic() + 120  # a ceiling against hangs; ends as the list appears
    while time.monotonic() < deadline and not any(
            p.name.startswith("local-") for p in local.iterdir()):
        time.sleep(0.1)
    assert any(p.name.startswith("local-") for p in local.iterdir())
    kinds = _check_cache(config.cache)
    print(f"cache after {2 * PROCESSES} processes: {kinds}")
    assert kinds.get("key") == 1 and kinds.get("tokens") == 1 and kinds.get("plans") == 1, kinds
    # Everyone who asked the registry used the same token: one token request per process at
    # most, and the warm wave asked for none.
    tokens = sum(1 for r in front.requests if r.path == "/token")
    print(f"token requests for {2 * PROCESSES} processes: {tokens}")
    assert tokens <= PROCESSES


def test_the_local_key_is_the_same_for_every_racing_process(tmp_path: Path) -> None:
    """The first run on an empty cache creates the key that seals tokens; 40 runs racing to
    create it must all end with the same 32 bytes (a reader used to see the file created
    but not yet written, and sealed its tokens under an empty key)."""
    code = ("import sys, time; from docker_cghistory import cache; "
            "time.sleep(max(0.0, float(sys.argv[1]) - time.time())); "
            "print(cache._local_key().hex())")
    root = Path(__file__).resolve().parents[2]
    for trial in range(3):
        env = dict(os.environ, XDG_CACHE_HOME=str(tmp_path / f"t{trial}"),
                   PYTHONPATH=str(root))
        go = time.time() + 1.0
        procs = [subprocess.Popen([sys.executable, "-c", code, str(go)], env=env,
                                  stdout=subprocess.PIPE, text=True) for _ in range(40)]
        keys = Counter(proc.communicate(timeout=60)[0].strip() for proc in procs)
        assert len(keys) == 1 and len(next(iter(keys))) == 64, keys
        stored = (tmp_path / f"t{trial}" / "docker-cghistory" / "key").read_bytes()
        assert stored.hex() == next(iter(keys))
