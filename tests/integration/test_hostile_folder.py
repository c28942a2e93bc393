"""The installed plugin run from a folder full of traps imports nothing from it.

A checkout can hold ``json.py``, ``re.py`` or a ``docker_cghistory/`` package of its own; a
launcher running ``python -m`` would import them (the current folder comes first on
``sys.path``) and so run them on every ``docker cghistory`` and every TAB in that folder.
The environment is hostile too: ``PYTHONPATH`` names the folder, ``PYTHONUSERBASE`` a user site
with a ``usercustomize``, ``PYTHONSTARTUP``/``PYTHONINSPECT`` are set. Each trap writes a
``MARK-*`` file when imported; after driving the real launcher (directly, through its
argcomplete and cobra completion protocols, and through the real docker CLI) there must be none.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.services import DockerConfig, require_binary

pytestmark = pytest.mark.integration

# Modules the plugin, the interpreter's start-up or the standard library import early.
MODULES = ("json", "re", "base64", "os", "io", "abc", "codecs", "argparse", "signal", "socket",
           "time", "typing", "subprocess", "threading", "sitecustomize", "usercustomize",
           "requests", "docker")


@pytest.fixture
def hostile(tmp_path: Path) -> Path:
    folder = tmp_path / "hostile checkout"
    package = folder / "docker_cghistory"
    package.mkdir(parents=True)
    user_site = folder / "userbase" / "lib" / f"python{sys.version_info[0]}.{sys.version_info[1]}"
    (user_site / "site-packages").mkdir(parents=True)

    def trap(path: Path, name: str) -> None:
        marker = folder / f"MARK-{name}"
        path.write_text(f"open({str(marker)!r}, 'w').close()\n")

    for module in MODULES:
        trap(folder / f"{module}.py", module)
    trap(package / "__init__.py", "package")
    trap(package / "__main__.py", "package-main")
    trap(user_site / "site-packages" / "usercustomize.py", "user-site")
    trap(folder / "startup.py", "startup")
    (folder / "Dockerfile").write_text("FROM scratch\n")
    return folder


def hostile_env(config: DockerConfig, folder: Path) -> dict[str, str]:
    return {**config.env, "PYTHONPATH": str(folder), "PYTHONSTARTUP": str(folder / "startup.py"),
            "PYTHONINSPECT": "1", "PYTHONUSERBASE": str(folder / "userbase"),
            "CGHISTORY_NO_BACKGROUND": "1"}


def run(argv: list[str], folder: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(argv, cwd=folder, env=env, stdin=subprocess.DEVNULL,
                            capture_output=True, text=True, timeout=60, check=False)
    assert "Traceback" not in result.stderr, result.stderr
    return result


def marks(folder: Path) -> list[str]:
    return sorted(path.name for path in folder.glob("MARK-*"))


def test_the_launcher_imports_nothing_from_the_current_folder(
        plugin_env: DockerConfig, hostile: Path) -> None:
    launcher = str(plugin_env.plugins_dir / "docker-cghistory")
    env = hostile_env(plugin_env, hostile)

    version = run([launcher, "--version"], hostile, env)
    assert version.returncode == 0 and "docker-cghistory 0.1.0" in version.stdout
    usage = run([launcher, "--help"], hostile, env)
    assert usage.returncode == 0 and "usage: docker-cghistory" in usage.stdout
    metadata = run([launcher, "docker-cli-plugin-metadata"], hostile, env)
    assert '"SchemaVersion":"0.1.0"' in metadata.stdout
    run([launcher, "pin", "--check"], hostile, env)  # passing or failing: only the traps count
    for verb in ("__complete", "__completeNoDesc"):
        answer = run([launcher, verb, "cghistory", ""], hostile, env)
        assert answer.returncode == 0 and answer.stdout.splitlines()[0].startswith("list")
        assert answer.stdout.splitlines()[-1] == ":4"

    # argcomplete's protocol, as its bash script runs the program: answers on fd 8.
    argcomplete = run(["sh", "-c", '"$0" 8>&1 9>&2 1>/dev/null 2>&1 </dev/null', launcher],
                      hostile, {**env, "_ARGCOMPLETE": "1", "COMP_LINE": "docker-cghistory ",
                                "COMP_POINT": "17", "_ARGCOMPLETE_IFS": "\n"})
    assert argcomplete.returncode == 0
    assert {"list", "pull", "pin"} <= set(argcomplete.stdout.split())
    assert marks(hostile) == []


def test_the_docker_cli_runs_the_plugin_without_importing_from_the_folder(
        plugin_env: DockerConfig, hostile: Path) -> None:
    docker = require_binary("docker")
    env = hostile_env(plugin_env, hostile)
    usage = run([docker, "cghistory", "--help"], hostile, env)
    assert usage.returncode == 0 and "docker cghistory" in usage.stdout
    lines = run([docker, "__complete", "cghistory", ""], hostile, env).stdout.splitlines()
    assert lines[0].startswith("list\t") and lines[-1] == ":4"
    assert marks(hostile) == []


def test_the_traps_do_fire_for_python_run_in_the_folder(
        plugin_env: DockerConfig, hostile: Path) -> None:
    """The control: what the launcher used to do (``python -m``) is caught by the traps."""
    result = subprocess.run([sys.executable, "-m", "docker_cghistory", "--version"],
                            cwd=hostile, env=hostile_env(plugin_env, hostile),
                            stdin=subprocess.DEVNULL, capture_output=True, timeout=60,
                            check=False)
    assert marks(hostile), result.stderr
    assert os.access(plugin_env.plugins_dir / "docker-cghistory", os.X_OK)
