"""``install`` writes a launcher that answers the metadata itself, runs Python isolated (so the
current folder cannot inject modules) and still finds a copy installed outside the isolated
``sys.path`` (``pip install --user``), and precompiles the package."""

from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import types
from pathlib import Path

import pytest

import docker_cghistory
from docker_cghistory.commands import install
from tests.unit.terminal import Captured

PACKAGE = Path(docker_cghistory.__file__).resolve().parent
TRAPS = ("json", "re", "base64", "argparse", "sitecustomize", "usercustomize")


def test_the_launcher_answers_metadata_without_python(tmp_path: Path) -> None:
    path, changed = install.install(str(tmp_path))
    assert changed and os.access(path, os.X_OK)
    env = {"PATH": "/usr/bin:/bin"}  # no python needed for this answer
    answer = subprocess.run([path, "docker-cli-plugin-metadata"], env=env,
                            capture_output=True, text=True, check=True)
    assert '"SchemaVersion":"0.1.0"' in answer.stdout
    assert install.install(str(tmp_path)) == (path, False)  # idempotent


def test_install_precompiles_the_package(tmp_path: Path) -> None:
    # A copy, so the test never deletes anything inside the checkout.
    copy = tmp_path / "docker_cghistory"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    compiled = Path(importlib.util.cache_from_source(str(copy / "complete" / "core.py")))
    assert not compiled.exists()
    install.precompile(str(tmp_path))
    assert compiled.exists()


def hostile_folder(base: Path) -> Path:
    """A folder whose modules write ``MARK-<name>`` when imported."""
    folder = base / "hostile"
    (folder / "docker_cghistory").mkdir(parents=True)
    for name in (*TRAPS, "docker_cghistory/__init__", "docker_cghistory/__main__"):
        marker = folder / f"MARK-{name.replace('/', '.')}"
        (folder / f"{name}.py").write_text(f"open({str(marker)!r}, 'w').close()\n")
    return folder


def marks(folder: Path) -> list[str]:
    return sorted(path.name for path in folder.glob("MARK-*"))


def test_the_launcher_runs_python_isolated_from_the_current_folder(tmp_path: Path) -> None:
    path, _ = install.install(str(tmp_path / "plugins"))
    text = Path(path).read_text()
    assert f"{sys.executable} -I -c " in text and " -m " not in text
    folder = hostile_folder(tmp_path)
    env = {**os.environ, "PYTHONPATH": str(folder), "PYTHONSTARTUP": str(folder / "json.py"),
           "PYTHONINSPECT": "1", "PYTHONUSERBASE": str(folder)}
    for words in (["--version"], ["__complete", "cghistory", ""]):
        result = subprocess.run([path, *words], cwd=folder, env=env, stdin=subprocess.DEVNULL,
                                capture_output=True, text=True, timeout=60, check=False)
        assert result.returncode == 0, result.stderr
        assert "Traceback" not in result.stderr
    assert result.stdout.splitlines()[0].startswith("list\t")  # argv[0] '-c' is not a word
    assert marks(folder) == []


def copied_site(base: Path, version: str) -> Path:
    """A site folder off the default ``sys.path`` holding a copy of the package and a ``.pth``
    whose ``import`` line leaves ``pth-ran`` behind when the folder is processed as a site."""
    site = base / "site"
    shutil.copytree(PACKAGE, site / "docker_cghistory",
                    ignore=shutil.ignore_patterns("__pycache__"))
    init = site / "docker_cghistory" / "__init__.py"
    init.write_text(init.read_text().replace('__version__ = "', f'__version__ = "{version}+'))
    ran = base / "pth-ran"
    (site / "cgh-probe.pth").write_text(
        f"import pathlib; pathlib.Path({str(ran)!r}).touch()\n")
    return site


def run_bootstrap(package: Path, roots: list[Path], *words: str,
                  cwd: Path) -> subprocess.CompletedProcess[str]:
    code = install.BOOTSTRAP.format(package=str(package.resolve()),
                                    roots=[str(root) for root in roots])
    return subprocess.run([sys.executable, "-I", "-c", code, *words], cwd=cwd,
                          capture_output=True, text=True, timeout=60, check=False)


def test_the_bootstrap_adds_a_site_folder_missing_from_the_isolated_path(
        tmp_path: Path) -> None:
    """What ``pip install --user`` needs: ``-I`` drops the user site, the bootstrap puts the
    folder back (``.pth`` files processed) and the installed copy is the one that runs."""
    site = copied_site(tmp_path, "7.7.7")
    folder = hostile_folder(tmp_path)
    result = run_bootstrap(site / "docker_cghistory" / "__init__.py", [site], "--version",
                           cwd=folder)
    assert result.returncode == 0, result.stderr
    assert "7.7.7+" in result.stdout
    assert (tmp_path / "pth-ran").exists()
    assert marks(folder) == []


def test_the_bootstrap_adds_nothing_when_the_package_is_found_already(tmp_path: Path) -> None:
    site = copied_site(tmp_path, "7.7.7")
    result = run_bootstrap(Path(install.package_file()), [site], "--version", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "7.7.7" not in result.stdout
    assert not (tmp_path / "pth-ran").exists()


def test_roots_are_where_the_package_is_and_the_user_site_in_use(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    user_site = tmp_path / "user-site"
    user_site.mkdir()
    monkeypatch.setattr(install.site, "ENABLE_USER_SITE", True)
    monkeypatch.setattr(install.site, "getusersitepackages", lambda: str(user_site))
    package = str(tmp_path / "lib" / "docker_cghistory" / "__init__.py")
    assert install.import_roots(package) == [str(tmp_path / "lib")]  # user site not in use
    monkeypatch.setattr(sys, "path", [*sys.path, str(user_site)])
    assert install.import_roots(package) == [str(tmp_path / "lib"), str(user_site)]
    monkeypatch.setattr(install.site, "ENABLE_USER_SITE", False)
    assert install.import_roots(package) == [str(tmp_path / "lib")]


@pytest.mark.parametrize(("python", "transient"), [
    ("/usr/bin/python3", False),
    ("/root/.pyenv/versions/3.11.7/bin/python3", False),
    ("/tmp/venv/bin/python", True),
    (os.path.join(tempfile.gettempdir(), "x", "bin", "python"), True),
    ("/home/u/pip-build-env-abc123/overlay/bin/python", True),
    ("/home/u/project/build/venv/bin/python", True),
])
def test_a_transient_interpreter_is_recognised(python: str, transient: bool) -> None:
    assert (install.transient_reason(python) is not None) == transient


def test_install_prints_the_interpreter_and_warns_when_it_is_transient(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(install, "precompile", lambda package=None: None)
    # A lasting interpreter, whatever folder the checkout under test (and its .venv) is in.
    monkeypatch.setattr(sys, "executable", "/opt/lasting/bin/python3")
    context = types.SimpleNamespace(program="docker-cghistory")
    args = argparse.Namespace(dir=str(tmp_path / "a"))
    streams = Captured()
    assert install.run(args, context, streams) == 0  # type: ignore[arg-type]
    out, err = streams.out, streams.err
    assert out.splitlines() == [f"installed: {tmp_path / 'a' / 'docker-cghistory'}",
                                f"python: {sys.executable}", "try: docker cghistory --help"]
    assert err == ""

    monkeypatch.setattr(sys, "executable", "/tmp/pip-build-env-x/bin/python3")
    args = argparse.Namespace(dir=str(tmp_path / "b"))
    streams = Captured()
    assert install.run(args, context, streams) == 0  # type: ignore[arg-type]
    out, err = streams.out, streams.err
    assert "python: /tmp/pip-build-env-x/bin/python3" in out.splitlines()
    assert err.count("\n") == 1 and err.startswith("docker-cghistory: warning: ")
    assert "/tmp/pip-build-env-x/bin/python3" in err
    launcher = (tmp_path / "b" / "docker-cghistory").read_text()
    assert "exec /tmp/pip-build-env-x/bin/python3 -I -c " in launcher


def test_install_again_and_uninstall_say_what_they_did(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run with injected streams: each command's lines, read back without capturing stdout."""
    from docker_cghistory.commands import uninstall

    monkeypatch.setattr(install, "precompile", lambda package=None: None)
    context = types.SimpleNamespace(program="docker-cghistory")
    args = argparse.Namespace(dir=str(tmp_path / "plugins"))
    path = tmp_path / "plugins" / "docker-cghistory"
    mask = os.umask(0o077)  # the launcher is 0755 whatever the umask: docker must run it
    try:
        assert install.run(args, context, Captured()) == 0  # type: ignore[arg-type]
    finally:
        os.umask(mask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o755
    again = Captured()
    assert install.run(args, context, again) == 0  # type: ignore[arg-type]
    assert again.out.splitlines()[0] == f"already installed: {path}"
    assert not any(line.startswith("try:") for line in again.out.splitlines())
    removed, absent = Captured(), Captured()
    assert uninstall.run(args, context, removed) == 0  # type: ignore[arg-type]
    assert uninstall.run(args, context, absent) == 0  # type: ignore[arg-type]
    assert (removed.out, absent.out) == (f"removed: {path}\n", f"not installed: {path}\n")
    assert removed.err == absent.err == "" and os.listdir(path.parent) == []
