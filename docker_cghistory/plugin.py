"""The Docker CLI plugin protocol: metadata, the plugin socket, the command name.

Only the standard library, and nothing at import time: ``docker`` asks for the metadata before
every plugin invocation and for ``docker --help``.
"""

from __future__ import annotations

import os

from . import __version__

NAME = "cghistory"
METADATA_COMMAND = "docker-cli-plugin-metadata"
SOCKET_ENV = "DOCKER_CLI_PLUGIN_SOCKET"
ORIGINAL_COMMAND_ENV = "DOCKER_CLI_PLUGIN_ORIGINAL_CLI_COMMAND"
URL = "https://github.com/docker-cghistory/docker-cghistory"
SHORT_DESCRIPTION = "Chainguard tag history: list, pull, pin and bisect builds"


def metadata_json() -> str:
    """The answer to ``docker-cli-plugin-metadata``; the installed launcher embeds it too."""
    # Written out by hand: importing json would double the cost of this answer.
    return (
        '{"SchemaVersion":"0.1.0","Vendor":"docker-cghistory",'
        f'"Version":"{__version__}","ShortDescription":"{SHORT_DESCRIPTION}",'
        f'"URL":"{URL}"}}'
    )


def program_name(invoked_by_docker: bool) -> str:
    return f"docker {NAME}" if invoked_by_docker else f"docker-{NAME}"


def watch_socket() -> None:
    """Stop when the docker CLI closes the plugin socket (it does so after Ctrl-C).

    The CLI listens on an abstract unix socket named in ``DOCKER_CLI_PLUGIN_SOCKET``; we connect
    and read until EOF in a daemon thread, then interrupt the main thread, which unwinds
    through the normal Ctrl-C handling (cleanup, one line, exit 130).
    """
    address = os.environ.get(SOCKET_ENV)
    if not address:
        return
    import socket
    import threading

    target = "\0" + address[1:] if address.startswith("@") else address
    try:
        connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        connection.connect(target)
    except OSError:
        return

    def wait_for_close() -> None:
        import _thread

        try:
            while connection.recv(1):
                pass
        except OSError:
            pass
        _thread.interrupt_main()

    threading.Thread(target=wait_for_close, name="plugin-socket", daemon=True).start()
