"""``docker-cghistory install``: put the plugin where the docker CLI looks for it.

The plugin is a small shell launcher rather than a copy of the console script: it answers
``docker-cli-plugin-metadata`` itself (the docker CLI asks before every invocation, so this
must not start Python) and otherwise runs the interpreter this package is installed in.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shlex
import sys

from .. import dockerconfig
from ..context import Context
from ..errors import CghistoryError
from ..plugin import METADATA_COMMAND, NAME, metadata_json

MARKER = "# docker-cghistory launcher"


def plugin_dir(chosen: str | None) -> str:
    return chosen or os.path.join(dockerconfig.config_dir(), "cli-plugins")


def launcher_text() -> str:
    python = shlex.quote(sys.executable)
    return (
        "#!/bin/sh\n"
        f"{MARKER}: written by 'docker-cghistory install'; reinstall after moving Python.\n"
        f'if [ "$1" = {METADATA_COMMAND} ]; then\n'
        f"  printf '%s\\n' {shlex.quote(metadata_json())}\n"
        "  exit 0\n"
        "fi\n"
        f"exec {python} -m docker_cghistory \"$@\"\n"
    )


def _write(path: str, text: str) -> None:
    folder = os.path.dirname(path)
    temporary = os.path.join(folder, f".{os.path.basename(path)}.{os.getpid()}.tmp")
    try:
        with open(temporary, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(temporary, 0o755)
        os.replace(temporary, path)
    except OSError as error:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise CghistoryError(f"cannot write {path}: {error.strerror}") from None


def _is_ours(path: str) -> bool:
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return MARKER in handle.read(4096)
    except OSError:
        return False


def install(folder: str) -> tuple[str, bool]:
    """Write the launcher; returns its path and whether anything changed."""
    path = os.path.join(folder, f"docker-{NAME}")
    text = launcher_text()
    try:
        with open(path, encoding="utf-8") as handle:
            if handle.read() == text and os.access(path, os.X_OK):
                return path, False
    except OSError:
        pass
    if os.path.lexists(path) and not _is_ours(path):
        raise CghistoryError(f"{path} exists and was not written by docker-cghistory; "
                             "remove it first")
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as error:
        raise CghistoryError(f"cannot create {folder}: {error.strerror}") from None
    _write(path, text)
    return path, True


def precompile() -> None:
    """Byte-compile the package, as pip does for regular installs but not editable ones.

    The docker CLI starts the plugin for every completion and listing; compiling a module costs
    more than running it, and Python reads .pyc files even where it may not write them.
    """
    import compileall
    import contextlib
    import io

    package = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    with contextlib.redirect_stdout(io.StringIO()):
        compileall.compile_dir(package, quiet=1, force=False)


def run(args: argparse.Namespace, context: Context) -> int:
    path, changed = install(plugin_dir(args.dir))
    precompile()
    state = "installed" if changed else "already installed"
    print(f"{state}: {path}")
    if changed:
        print(f"try: docker {NAME} --help")
    return 0
