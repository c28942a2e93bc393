"""A CLI that guides, through the real docker CLI: typo suggestions, ``docker help
cghistory``, ``help COMMAND``, grouped help with examples, exit codes that docker passes on.

What docker runs is docker's business: ``docker help cghistory pull`` runs the plugin with
docker's own argv (``help cghistory pull``), which is why these go through ``docker`` rather
than the module.
"""

from __future__ import annotations

import re
import subprocess
from datetime import datetime, timedelta, timezone

import pytest

from tests.support.front import Front, make_history
from tests.support.services import DockerConfig

pytestmark = pytest.mark.integration

PROG = "docker cghistory"


def docker(env: DockerConfig, *args: str) -> subprocess.CompletedProcess[str]:
    return env.run("docker", *args, timeout=60)


def one_line_error(result: subprocess.CompletedProcess[str], status: int) -> str:
    assert result.returncode == status, (result.returncode, result.stdout, result.stderr)
    assert result.stdout == "" and "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"{PROG}: "), lines[0]
    return lines[0][len(PROG) + 2 :]


def headings(text: str) -> list[str]:
    return re.findall(r"^([A-Z][A-Za-z ]*):$", text, re.M)


def test_a_mistyped_command(plugin_env: DockerConfig) -> None:
    result = docker(plugin_env, "cghistory", "pul", "python")
    assert one_line_error(result, 2) == (
        'unknown command "pul" for "docker cghistory" (did you mean "pull"?). '
        "See 'docker cghistory --help'")


def test_a_mistyped_command_alone_names_the_command_once_the_image_is_missing(
        plugin_env: DockerConfig, front: Front) -> None:
    """``docker cghistory pul`` is a valid listing of an image called pul; when the registry
    has no such repository, the error also names the command that was probably meant."""
    result = docker(plugin_env, "cghistory", "--registry", front.host, "pul")
    line = one_line_error(result, 1)
    assert line.startswith(f"not found: {front.host}/chainguard/pul:latest"), line
    assert line.endswith("; did you mean the command 'docker cghistory pull'?"), line


def test_a_mistyped_flag(plugin_env: DockerConfig) -> None:
    result = docker(plugin_env, "cghistory", "pull", "python", "--previos")
    assert one_line_error(result, 2) == (
        "unknown flag: --previos (did you mean --previous?). "
        "See 'docker cghistory pull --help'")


@pytest.mark.parametrize("args", [("help", "cghistory"), ("cghistory", "help"),
                                  ("cghistory", "--help")])
def test_the_top_help(plugin_env: DockerConfig, args: tuple[str, ...]) -> None:
    result = docker(plugin_env, *args)
    assert (result.returncode, result.stderr) == (0, ""), result.stderr
    out = result.stdout
    assert out.startswith(f"usage: {PROG} [OPTIONS] COMMAND [ARG...]\n"
                          f"       {PROG} [OPTIONS] IMAGE[:TAG]\n")
    listed = re.findall(r"^  (\w+) {2,}\S", out, re.M)
    for name in ("list", "pull", "pin", "bisect", "install", "uninstall", "completion", "help"):
        assert name in listed, name
    assert headings(out) == ["Commands", "Arguments", "List Options", "Global Options",
                             "Examples"]


@pytest.mark.parametrize("args", [("help", "cghistory", "pull"), ("cghistory", "help", "pull"),
                                  ("cghistory", "pull", "--help")])
def test_pull_help(plugin_env: DockerConfig, args: tuple[str, ...]) -> None:
    result = docker(plugin_env, *args)
    assert (result.returncode, result.stderr) == (0, ""), result.stderr
    out = result.stdout
    assert out.startswith(f"usage: {PROG} pull [OPTIONS] IMAGE[:TAG]\n")
    assert headings(out) == ["Arguments", "Options", "Global Options", "Examples"]
    own, rest = out.split("\nOptions:\n")[1].split("\nGlobal Options:\n")
    shared = rest.split("\nExamples:\n")[0]
    assert "--previous" in own and "--registry" not in own
    assert "--registry" in shared and "--previous" not in shared
    assert f"  {PROG} pull python --previous --retag\n" in out


def test_install_help_offers_no_registry_flags(plugin_env: DockerConfig) -> None:
    result = docker(plugin_env, "cghistory", "install", "--help")
    assert result.returncode == 0, result.stderr
    assert "--debug" in result.stdout and "--registry" not in result.stdout
    refused = docker(plugin_env, "cghistory", "install", "--registry", "example.com")
    assert one_line_error(refused, 2).startswith("unknown flag: --registry (")


def test_help_of_an_unknown_command(plugin_env: DockerConfig) -> None:
    result = docker(plugin_env, "cghistory", "help", "pul")
    assert one_line_error(result, 2) == (
        'unknown command "pul" for "docker cghistory help" (did you mean "pull"?). '
        "See 'docker cghistory --help'")


def test_an_image_named_help_is_listed_with_list(plugin_env: DockerConfig,
                                                 front: Front) -> None:
    entries = make_history(3, datetime(2024, 3, 1, tzinfo=timezone.utc), timedelta(hours=5),
                           seed="guidance-help")
    front.set_repo("chainguard/help", {"public": True, "public_tags": ["latest"],
                                       "history": {"latest": entries}})
    result = docker(plugin_env, "cghistory", "--registry", front.host, "list", "help", "-q")
    assert (result.returncode, result.stderr) == (0, ""), result.stderr
    assert result.stdout.split() == [digest for _, digest in reversed(entries)]


@pytest.mark.parametrize(("args", "status"), [
    (("pull", "python", "--digest", "xyz"), 2),
    (("pull", "python", "--at", "someday"), 2),
    (("bisect", "python", "--good", "someday", "--", "true"), 2),
    (("pin", "--at", "someday"), 2),
    (("completion", "tcsh"), 2),
    (("pull", "python", "--previous"), 1),  # no engine behind DOCKER_HOST
])
def test_exit_codes_pass_through_docker(plugin_env: DockerConfig, args: tuple[str, ...],
                                        status: int) -> None:
    one_line_error(docker(plugin_env, "cghistory", *args), status)
