"""The README's quick start, word for word, as a new Debian user would type it.

Debian's own ``/usr/bin/python3`` refuses ``pip install`` outside a virtual environment
(PEP 668), which CI used to hide with ``PIP_BREAK_SYSTEM_PACKAGES``. So this test reads the
block marked ``<!-- quickstart ... -->`` out of README.md and runs it in a fresh home
directory, with Debian's default ``PATH`` (no ``~/.local/bin``, no virtual environment, no
pyenv) and without ``PIP_BREAK_SYSTEM_PACKAGES``. Only the ``git clone`` of the public
repository is replaced, by a copy of the working tree under test. Pip's own settings (an
offline mirror, certificates, timeouts) pass through untouched.

Then the real docker CLI must run the plugin the quick start installed.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.support.services import require_binary, unavailable

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
SYSTEM_PYTHON = Path("/usr/bin/python3")
# What a fresh Debian account starts with (/etc/login.defs, /etc/profile): no ~/.local/bin.
DEBIAN_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
BLOCK = re.compile(r"<!--\s*quickstart\b[^>]*-->\s*\n```[\w-]*\n(.*?)\n```", re.S)
CLONE = re.compile(r"\bgit clone\s+(?:-\S+\s+)*(\S+)(?:\s+(?!&&)(\S+))?")
COMMANDS = ("list", "pull", "pin", "bisect", "install", "uninstall")


def quickstart() -> str:
    blocks = BLOCK.findall((ROOT / "README.md").read_text(encoding="utf-8"))
    assert len(blocks) == 1, f"README.md needs exactly one <!-- quickstart --> block: {blocks}"
    return blocks[0]


def working_tree(dst: Path) -> None:
    """Copy the checkout as it is on disk, uncommitted edits included, minus ignored files."""
    listed = subprocess.run(
        ["git", "-C", str(ROOT), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        capture_output=True, check=True,
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        src = ROOT / name
        if src.is_file():  # tracked but deleted in the working tree: gone in the copy too
            (dst / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst / name)


def with_local_clone(block: str, source: Path) -> str:
    """``block`` with its ``git clone URL [DIR]`` made a copy of ``source`` into DIR."""
    def local(match: re.Match[str]) -> str:
        url, folder = match.group(1), match.group(2)
        folder = folder or url.rstrip("/").rsplit("/", 1)[-1].removesuffix(".git")
        return f"cp -R {shlex.quote(str(source))} {shlex.quote(folder)}"

    script, count = CLONE.subn(local, block)
    assert count == 1, f"the quick start should clone the repository once:\n{block}"
    return script


def fresh_env(home: Path, docker: str) -> dict[str, str]:
    env = {
        key: value for key, value in os.environ.items()
        if key != "PIP_BREAK_SYSTEM_PACKAGES" and key != "VIRTUAL_ENV"
        and not key.startswith(("PYTHON", "PYENV", "PIPX_", "CONDA", "XDG_"))
        and key != "DOCKER_CONFIG"
    }
    path = DEBIAN_PATH.split(":")
    if str(Path(docker).parent) not in path:
        path.append(str(Path(docker).parent))
    env.update(HOME=str(home), PATH=":".join(path))
    return env


def test_readme_quickstart_works_word_for_word_with_debian_python(tmp_path: Path) -> None:
    if not SYSTEM_PYTHON.exists():
        unavailable(f"no {SYSTEM_PYTHON}: the quick start is written for Debian's python3")
    docker = require_binary("docker")
    home = tmp_path / "home"
    home.mkdir()
    env = fresh_env(home, docker)
    if shutil.which("pipx", path=env["PATH"]) is None:
        unavailable("pipx is not installed (scripts/test.sh installs it: apt-get install pipx)")
    assert not (home / ".local" / "bin").exists()

    source = tmp_path / "source"
    working_tree(source)
    work = tmp_path / "work"
    work.mkdir()
    script = with_local_clone(quickstart(), source)
    result = subprocess.run(
        ["bash", "-euxo", "pipefail", "-c", script], cwd=work, env=env,
        stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=900,
    )
    assert result.returncode == 0, (
        f"README quick start failed (exit {result.returncode}):\n{script}\n"
        f"--- stdout\n{result.stdout[-4000:]}\n--- stderr\n{result.stderr[-6000:]}"
    )

    # The command the quick start installed runs on Debian's python, not in some other one.
    console = home / ".local" / "bin" / "docker-cghistory"
    assert console.exists(), f"no {console} after the quick start: {result.stderr[-2000:]}"
    shebang = console.read_text(encoding="utf-8", errors="replace").splitlines()[0]
    interpreter = shebang.removeprefix("#!").split()[0]
    base = subprocess.run(
        [interpreter, "-c", "import sys; print(sys.base_prefix, sys.prefix != sys.base_prefix)"],
        env=env, capture_output=True, text=True, check=True,
    ).stdout.split()
    assert base == [str(SYSTEM_PYTHON.parent.parent), "True"], (interpreter, base)

    version = re.search(r'^version = "([^"]+)"', (ROOT / "pyproject.toml").read_text(), re.M)
    assert version is not None
    metadata = subprocess.run([str(console), "docker-cli-plugin-metadata"], env=env,
                              capture_output=True, text=True, timeout=60)
    assert metadata.returncode == 0, metadata.stderr
    assert json.loads(metadata.stdout)["Version"] == version.group(1)

    # The real docker CLI finds the plugin in the fresh home's ~/.docker/cli-plugins.
    assert (home / ".docker" / "cli-plugins" / "docker-cghistory").exists()
    docker_env = {**env, "DOCKER_CONFIG": str(home / ".docker")}

    def run_docker(*args: str) -> str:
        done = subprocess.run([docker, *args], env=docker_env, cwd=tmp_path,
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, f"docker {' '.join(args)}: {done.stdout}{done.stderr}"
        return done.stdout

    usage = run_docker("cghistory", "--help")
    listed = re.findall(r"^\s+(\w+)\s{2,}\S", usage, re.M)
    assert set(COMMANDS) <= set(listed), usage
    assert re.search(r"^\s+cghistory\*?\s", run_docker("--help"), re.M)
    assert version.group(1) in run_docker("cghistory", "--version")
