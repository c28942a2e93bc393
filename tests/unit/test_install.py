"""``install`` writes a launcher that answers the metadata itself and precompiles the package."""

from __future__ import annotations

import importlib.util
import os
import subprocess
from pathlib import Path

from docker_cghistory import complete
from docker_cghistory.commands import install


def test_the_launcher_answers_metadata_without_python(tmp_path: Path) -> None:
    path, changed = install.install(str(tmp_path))
    assert changed and os.access(path, os.X_OK)
    env = {"PATH": "/usr/bin:/bin"}  # no python needed for this answer
    answer = subprocess.run([path, "docker-cli-plugin-metadata"], env=env,
                            capture_output=True, text=True, check=True)
    assert '"SchemaVersion":"0.1.0"' in answer.stdout
    assert install.install(str(tmp_path)) == (path, False)  # idempotent


def test_install_precompiles_the_package() -> None:
    compiled = Path(importlib.util.cache_from_source(complete.__file__))
    if compiled.exists():
        compiled.unlink()
    install.precompile()
    assert compiled.exists()
