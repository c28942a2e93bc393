"""``docker-cghistory install``: put the plugin where the docker CLI looks for it.

The plugin is a small shell launcher rather than a copy of the console script: it answers
``docker-cli-plugin-metadata`` itself (the docker CLI asks before every invocation, so this
must not start Python) and otherwise runs the interpreter this package is installed in.

That interpreter runs isolated (``-I``): ``python -m`` would put the current folder first on
``sys.path``, so a ``json.py`` or a ``docker_cghistory/`` in whatever folder the user runs
``docker cghistory`` from would be imported and run, and ``PYTHONPATH``/``PYTHONSTARTUP`` would
be honoured too. Isolation also drops the user site folder, which ``pip install --user`` (and a
``--user`` editable install's ``.pth`` finder) relies on, so a tiny bootstrap adds back, with
``site.addsitedir``, the folders this package and its dependencies were found in at install
time, and only when the isolated interpreter cannot find this very package by itself.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shlex
import site
import sys
import tempfile
from typing import TYPE_CHECKING

from .. import atomic, dockerconfig
from ..errors import CghistoryError
from ..plugin import METADATA_COMMAND, NAME, metadata_json

if TYPE_CHECKING:
    from ..context import Context
    from ..streams import Streams

MARKER = "# docker-cghistory launcher"


def plugin_dir(chosen: str | None) -> str:
    return chosen or os.path.join(dockerconfig.config_dir(), "cli-plugins")


# Run by ``python -I -c``; ``sys.argv`` is then ``['-c', ARGS...]``. Folders added by the
# bootstrap go before the interpreter's own site-packages, where a user site normally sits, so
# the copy that was installed wins over another one there, as it would without ``-I``.
BOOTSTRAP = """\
import sys
def _start(package, roots):
    import importlib.util, os, site
    spec = importlib.util.find_spec("docker_cghistory")
    if spec is None or not spec.origin or os.path.realpath(spec.origin) != package:
        before = list(sys.path)
        for root in roots:
            if root not in sys.path:
                site.addsitedir(root)
        added = [entry for entry in sys.path if entry not in before]
        sites = set(site.getsitepackages())
        at = next((i for i, entry in enumerate(before) if entry in sites), len(before))
        sys.path[:] = before[:at] + added + before[at:]
    from docker_cghistory.__main__ import main
    sys.exit(main(sys.argv[1:]))
_start({package!r}, {roots!r})
"""


def package_file() -> str:
    """The ``__init__.py`` the launcher must end up importing (symlinks resolved)."""
    import docker_cghistory

    return os.path.realpath(docker_cghistory.__file__)


def import_roots(package: str | None = None) -> list[str]:
    """Folders an isolated interpreter may lack to import this package and its dependencies.

    The folder holding the package (a user site, a ``--target`` folder, a checkout) and the
    user site when it is in use: ``--user`` installs keep dependencies and editable finders
    there. Never the current folder as such: only where this package actually lives.
    """
    package = package or package_file()
    roots = [os.path.dirname(os.path.dirname(package))]
    user_site = site.getusersitepackages() if site.ENABLE_USER_SITE else None
    if isinstance(user_site, str) and user_site in sys.path and os.path.isdir(user_site):
        roots.append(user_site)
    return list(dict.fromkeys(roots))


def launcher_text(python: str | None = None) -> str:
    """The shell launcher: metadata without Python, everything else through ``BOOTSTRAP``."""
    package = package_file()
    bootstrap = BOOTSTRAP.format(package=package, roots=import_roots(package))
    return (
        "#!/bin/sh\n"
        f"{MARKER}: written by 'docker-cghistory install'; reinstall after moving Python.\n"
        f'if [ "$1" = {METADATA_COMMAND} ]; then\n'
        f"  printf '%s\\n' {shlex.quote(metadata_json())}\n"
        "  exit 0\n"
        "fi\n"
        f"exec {shlex.quote(python or sys.executable)} -I -c {shlex.quote(bootstrap)} \"$@\"\n"
    )


def transient_reason(python: str) -> str | None:
    """Why ``python`` will probably vanish (a temporary or build folder), or None.

    A launcher written from pip's isolated build environment or a throw-away venv in /tmp
    stops working when that folder is cleaned up, long after the install looked fine.
    """
    path = os.path.abspath(python)
    real = os.path.realpath(python)
    for folder in {tempfile.gettempdir(), "/tmp", "/var/tmp"}:
        for candidate in (path, real):
            if os.path.commonpath([candidate, os.path.abspath(folder)]) == \
                    os.path.abspath(folder):
                return f"it is under the temporary folder {folder}"
    for candidate in (path, real):
        if "pip-build-env" in candidate:
            return "it is in pip's build environment"
        if "/build/" in candidate:
            return "it is in a build folder"
    return None


def _write(path: str, text: str) -> None:
    """Replace the launcher whole (``atomic.write``): docker may run it at any moment."""
    try:
        atomic.write(path, text.encode("utf-8"), mode=0o755)
    except OSError as error:
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


def precompile(package: str | None = None) -> None:
    """Byte-compile the package, as pip does for regular installs but not editable ones.

    The docker CLI starts the plugin for every completion and listing; compiling a module costs
    more than running it, and Python reads .pyc files even where it may not write them.
    ``package`` (default: this package's folder) lets tests compile a copy instead.
    """
    import compileall
    import io

    package = package or os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    with contextlib.redirect_stdout(io.StringIO()):
        compileall.compile_dir(package, quiet=1, force=False)


def run(args: argparse.Namespace, context: Context, streams: Streams) -> int:
    """Install; only ``context.program`` is used, so no setting (and no docker config) is read:
    install must work whatever config.json holds."""
    path, changed = install(plugin_dir(args.dir))
    precompile()
    state = "installed" if changed else "already installed"
    out = streams.stdout
    out.write(f"{state}: {path}\n")
    out.write(f"python: {sys.executable}\n")
    reason = transient_reason(sys.executable)
    if reason:
        out.flush()
        streams.stderr.write(f"{context.program}: warning: the plugin runs {sys.executable} and "
                             f"{reason}: it stops working when that folder is removed; run "
                             "install again from a lasting Python\n")
    if changed:
        out.write(f"try: docker {NAME} --help\n")
    return 0
