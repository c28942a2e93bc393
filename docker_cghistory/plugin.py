"""The Docker CLI plugin protocol: metadata, the plugin socket, the command name.

Only the standard library, and nothing at import time: ``docker`` asks for the metadata before
every plugin invocation and for ``docker --help``.
"""

from __future__ import annotations

import os

from . import __version__
from .settings import PLUGIN_NAME as NAME

METADATA_COMMAND = "docker-cli-plugin-metadata"
SOCKET_ENV = "DOCKER_CLI_PLUGIN_SOCKET"
ORIGINAL_COMMAND_ENV = "DOCKER_CLI_PLUGIN_ORIGINAL_CLI_COMMAND"
URL = "https://github.com/docker-cghistory/docker-cghistory"
SHORT_DESCRIPTION = "Chainguard tag history: list, pull, pin, bisect and diff builds"


def metadata_json() -> str:
    """The answer to ``docker-cli-plugin-metadata``; the installed launcher embeds it too."""
    # Written out by hand: importing json would double the cost of this answer.
    return (
        '{"SchemaVersion":"0.1.0","Vendor":"docker-cghistory",'
        f'"Version":"{__version__}","ShortDescription":"{SHORT_DESCRIPTION}",'
        f'"URL":"{URL}"}}'
    )


# The docker CLI's global flags, which it passes on before the plugin's name
# (``docker -H X cghistory ...`` runs ``docker-cghistory -H X cghistory ...``), and the
# environment variable each one stands for.
_GLOBAL_VALUE_FLAGS = {
    "--config": "DOCKER_CONFIG", "-c": "DOCKER_CONTEXT", "--context": "DOCKER_CONTEXT",
    "-H": "DOCKER_HOST", "--host": "DOCKER_HOST", "-l": None, "--log-level": None,
    "--tlscacert": "tlscacert", "--tlscert": "tlscert", "--tlskey": "tlskey",
}
_GLOBAL_SWITCHES = {"-D": "debug", "--debug": "debug", "--tls": "tls", "--tlsverify": "tls"}


def split_docker_invocation(words: list[str]) -> tuple[list[str], dict[str, str], bool] | None:
    """``[docker globals...] cghistory ARGS`` → (ARGS, settings, debug); ``None`` otherwise.

    ``docker help cghistory [COMMAND]`` arrives as ``[docker globals...] help cghistory
    [COMMAND]`` (docker passes its whole command line) and becomes ``help [COMMAND]``.

    Settings map environment variables to values (``DOCKER_HOST`` for ``-H``, ...), so the
    engine and config code read them the way they read the user's own environment.
    """
    settings: dict[str, str] = {}
    debug = False
    position = 0
    while position < len(words):
        word = words[position]
        if word == NAME:
            return words[position + 1 :], settings, debug
        if word == "help" and words[position + 1 : position + 2] == [NAME]:
            # ``docker help cghistory [COMMAND]``: docker runs the plugin with its own argv.
            return ["help", *words[position + 2 :]], settings, debug
        flag, equals, value = word.partition("=")
        if flag in _GLOBAL_VALUE_FLAGS:
            if not equals:
                position += 1
                if position >= len(words):
                    return None
                value = words[position]
            target = _GLOBAL_VALUE_FLAGS[flag]
            if target:
                settings[target] = value
        elif word in _GLOBAL_SWITCHES:
            debug = debug or _GLOBAL_SWITCHES[word] == "debug"
            if _GLOBAL_SWITCHES[word] == "tls":
                settings["DOCKER_TLS_VERIFY"] = "1"
        else:
            return None
        position += 1
    return None


def apply_docker_settings(settings: dict[str, str]) -> None:
    """Make docker's global flags visible the way docker's own environment variables are."""
    certs = {settings.pop(key) for key in ("tlscacert", "tlscert", "tlskey") if key in settings}
    if certs:
        # docker-py reads a folder holding ca.pem, cert.pem and key.pem, as DOCKER_CERT_PATH.
        os.environ["DOCKER_CERT_PATH"] = os.path.dirname(sorted(certs)[0])
    if "DOCKER_HOST" in settings:
        os.environ.pop("DOCKER_CONTEXT", None)
    os.environ.update(settings)


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
        try:
            while connection.recv(1):
                pass
        except OSError:
            pass
        # A real SIGINT, not interrupt_main(): that only sets a flag, which a main thread
        # blocked in a socket read would not see until the read timed out.
        import signal

        signal.pthread_kill(threading.main_thread().ident or 0, signal.SIGINT)

    threading.Thread(target=wait_for_close, name="plugin-socket", daemon=True).start()
