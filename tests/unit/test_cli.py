"""The command line in process: argument handling, dispatch, and one-line errors.

What ``list`` shows (rows, table, json, templates, windows) is in ``test_list_command.py``.
"""

from __future__ import annotations

import base64
import os
import re
import subprocess
import sys

import pytest

from docker_cghistory import __version__, cli, spec
from docker_cghistory.commands import list as list_command
from tests.support.services import install_stderr

from .conftest import PASSWORD, TOKEN_PREFIX, Env, FakeCgr

RAW_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


@pytest.fixture(autouse=True)
def no_engine(monkeypatch: pytest.MonkeyPatch, isolated_env: Env) -> None:
    """The listing may ask the engine for local images: point it at nothing."""
    monkeypatch.setenv("DOCKER_HOST", f"unix://{isolated_env.home}/no-docker.sock")
    monkeypatch.delenv("DOCKER_CONTEXT", raising=False)


def invoke(capsys: pytest.CaptureFixture, *words: str) -> tuple[int, str, str]:
    try:
        code = cli.run(list(words))
    except SystemExit as stop:  # argparse's --version and --help
        code = stop.code if isinstance(stop.code, int) else 0
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def one_line_error(err: str, prog: str = "docker-cghistory") -> str:
    assert err.endswith("\n") and err.count("\n") == 1, repr(err)
    assert not RAW_CONTROL.search(err[:-1]), repr(err)
    assert err.startswith(f"{prog}: "), repr(err)
    return err[len(prog) + 2 : -1]


def newest_first(fake: FakeCgr, repository: str = "chainguard/python", tag: str = "latest"):
    return [e["digest"] for e in reversed(fake.histories[(repository, tag)])]


# --- dispatch and settings ------------------------------------------------------------------------


def test_list_alias_and_explicit_command(cgr: FakeCgr, capsys) -> None:
    expected = "".join(d + "\n" for d in newest_first(cgr))
    for words in (("list", "python", "-q"), ("ls", "-q", "python"), ("python", "--quiet")):
        code, out, err = invoke(capsys, *words)
        assert (code, out, err) == (0, expected, ""), words


def test_defaults_from_plugin_settings_and_credentials(cgr: FakeCgr, isolated_env: Env,
                                                       capsys) -> None:
    auth = base64.b64encode(f"puller:{PASSWORD}".encode()).decode()
    isolated_env.write_config({"plugins": {"cghistory": {"org": "acme.com"}},
                               "auths": {"https://cgr.dev": {"auth": auth}}})
    code, out, err = invoke(capsys, "private", "-q", "--debug")
    assert code == 0
    assert out.split() == newest_first(cgr, "acme.com/private")
    assert "debug" in err
    assert PASSWORD not in err and auth not in err and TOKEN_PREFIX not in err


def test_org_flag_and_environment(cgr: FakeCgr, monkeypatch, capsys) -> None:
    cgr.public.add("acme.com/private")
    assert invoke(capsys, "--org", "acme.com", "private", "-q")[0] == 0
    monkeypatch.setenv("CGHISTORY_ORG", "acme.com")
    assert invoke(capsys, "private", "-q")[0] == 0


# --- errors ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("words", "words_in_message"),
    [
        ((), "IMAGE"),
        (("python", "--bogus"), "--bogus"),
        (("list",), "IMAGE"),
        (("python", "extra"), "unrecognized"),
        (("python", "--last", "0"), "--last"),
        (("python", "--last", "-3"), "--last"),
        (("python", "--last", "many"), "invalid int"),
        (("python", "--since", "yesterday"), "invalid time"),
        (("python", "--until", "2024-02-30"), "invalid time"),
        (("python", "--since", "1d", "--until", "2d"), "--since is later than --until"),
        (("python", "--since", "\x1b[2Jevil"), "invalid time"),
        (("python", "--format", "{{.Nope}}"), "unknown field"),
        (("python", "--forma", "json"), "--forma"),
    ],
)
def test_usage_errors_are_one_line_exit_2(cgr: FakeCgr, capsys, words, words_in_message) -> None:
    code, out, err = invoke(capsys, *words)
    assert code == 2
    assert out == ""
    assert words_in_message in one_line_error(err)


@pytest.mark.parametrize(
    ("words", "message"),
    [
        (("pull", "python", "--index", "1", "--at", "2d"),
         "give at most one of --digest, --index, --previous, --at, --cooldown "
         "(got --index and --at)"),
        (("pull", "--previous", "python", "--index", "0"),  # --index 0 counts as given
         "give at most one of --digest, --index, --previous, --at, --cooldown "
         "(got --index and --previous)"),
        (("pull", "python", "--digest", "abcdef", "--cooldown", "1d", "--at", "1d"),
         "give at most one of --digest, --index, --previous, --at, --cooldown "
         "(got --digest and --at and --cooldown)"),
        (("pin", "--at", "2024-06-01", "--cooldown", "7d", "."),
         "give at most one of --digest, --index, --previous, --at, --cooldown "
         "(got --at and --cooldown)"),
    ],
)
def test_exclusive_options_are_one_line_exit_2(capsys, words, message) -> None:
    code, out, err = invoke(capsys, *words)
    assert (code, out) == (2, "")
    command = words[0]
    assert one_line_error(err) == f"{message}. See 'docker-cghistory {command} --help'"


@pytest.mark.parametrize(
    ("words", "dest", "value"),
    [
        (("pull", "python", "--digest", "abcdef"), "digest", "abcdef"),
        (("pull", "python", "--index", "0"), "index", 0),
        (("pull", "python", "--previous"), "previous", True),
        (("pull", "python", "--cooldown", "1d"), "cooldown", "1d"),
        (("pin", "--at", "1d"), "at", "1d"),
    ],
)
def test_one_option_of_a_group_is_fine(words, dest, value) -> None:
    _, args = cli.parse(list(words), "p")
    assert getattr(args, dest) == value


def test_spec_fields_are_consistent() -> None:
    """Groups name options of their own command; choices and rest sit where they can work."""
    for command in spec.COMMANDS:
        for group in command.exclusive:
            assert len(group) > 1 and all(opt in command.opts for opt in group), command.name
        for opt in (*command.opts, *spec.GLOBAL):
            assert not opt.choices or opt.action == "store", opt.flags
        rests = [arg for arg in command.args if arg.rest]
        assert len(rests) <= 1 and (not rests or command.args[-1] is rests[0]), command.name


@pytest.mark.parametrize("value", ["table", "\x1b[2Jjson"])
def test_bisect_format_choices_are_enforced(capsys, value: str) -> None:
    code, out, err = invoke(capsys, "bisect", "python", "--good", "1", "--format", value,
                            "--", "true")
    assert (code, out) == (2, "")
    message = one_line_error(err)
    assert message.startswith("argument --format: invalid choice: ")
    assert "text" in message and "json" in message
    assert message.endswith(". See 'docker-cghistory bisect --help'")


def test_bisect_help_shows_the_rest_argument(capsys) -> None:
    code, out, _ = invoke(capsys, "bisect", "--help")
    assert code == 0
    assert "usage: docker-cghistory bisect [OPTIONS] IMAGE[:TAG] -- COMMAND [ARG...]\n" in out
    assert "--format FORMAT" in out


def test_version(capsys) -> None:
    code, out, _ = invoke(capsys, "--version")
    assert code == 0 and out.strip() == f"docker-cghistory {__version__}"
    code, out, _ = invoke(capsys, "cghistory", "--version")
    assert code == 0 and out.strip() == f"docker cghistory {__version__}"


def test_help_names_the_commands(capsys) -> None:
    code, out, _ = invoke(capsys, "--help")
    assert code == 0
    for name in ("list", "pull", "pin", "bisect", "install"):
        assert name in out


def test_unknown_command_is_an_image_for_list(cgr: FakeCgr, capsys) -> None:
    code, out, err = invoke(capsys, "frobnicate")
    assert code == 1 and out == ""
    message = one_line_error(err)
    assert "not found" in message and "cgr.dev/chainguard/frobnicate" in message


def test_plugin_mode_strips_the_first_word(cgr: FakeCgr, capsys) -> None:
    code, out, err = invoke(capsys, "cghistory", "python", "-q")
    assert (code, err) == (0, "")
    assert out.split() == newest_first(cgr)
    code, _, err = invoke(capsys, "cghistory", "python", "--bogus")
    assert code == 2
    assert "--bogus" in one_line_error(err, prog="docker cghistory")
    code, _, err = invoke(capsys, "cghistory", "list", "nosuch")
    assert code == 1
    assert "not found" in one_line_error(err, prog="docker cghistory")


def test_digest_reference_is_refused(capsys) -> None:
    code, _, err = invoke(capsys, "python@sha256:" + "a" * 64)
    assert code == 2  # the IMAGE typed cannot be listed, whatever the registry holds
    assert "give a tag instead" in one_line_error(err)


def test_malformed_reference(capsys) -> None:
    code, _, err = invoke(capsys, "Python\x1b[31m")
    assert code == 2
    assert "invalid reference" in one_line_error(err)


def test_denied_tag_mentions_entitlement(cgr: FakeCgr, capsys) -> None:
    code, _, err = invoke(capsys, "python:3.12")
    assert code == 1
    assert "entitlement" in one_line_error(err)


def test_broken_docker_config(isolated_env: Env, capsys) -> None:
    isolated_env.write_config('{"auths": {"cgr.dev": {"auth": "' + PASSWORD + '"')
    code, _, err = invoke(capsys, "python")
    assert code == 1
    message = one_line_error(err)
    assert "not valid JSON" in message and PASSWORD not in message


BROKEN_CONFIGS = {
    "not-json": '{"plugins": {"cghistory": ',
    "not-an-object": '["auths"]',
    "plugins-not-an-object": '{"plugins": {"cghistory": "acme"}}',
}


@pytest.mark.parametrize("config", BROKEN_CONFIGS)
def test_install_uninstall_and_completion_work_whatever_the_config_holds(
        isolated_env: Env, config: str) -> None:
    """They need no setting, so they never read config.json (the entry point, as users run it)."""
    isolated_env.write_config(BROKEN_CONFIGS[config])
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}

    def run(*words: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "docker_cghistory", *words], env=env,
                              capture_output=True, text=True, timeout=60, check=False)

    launcher = isolated_env.docker_config / "cli-plugins" / "docker-cghistory"
    installed = run("install")  # into $DOCKER_CONFIG/cli-plugins: the broken config's folder
    assert (installed.returncode, install_stderr(installed.stderr)) == (0, ""), installed.stderr
    assert launcher.exists()
    script = run("completion", "bash")
    assert (script.returncode, script.stderr) == (0, "") and "_python_argcomplete" in script.stdout
    removed = run("uninstall")
    assert (removed.returncode, removed.stderr) == (0, ""), removed.stderr
    assert not launcher.exists()
    listing = run("python")  # a command that needs settings still says what is wrong
    assert listing.returncode == 1 and "docker config" in listing.stderr


def test_registry_garbage_is_one_line(cgr: FakeCgr, requests_mock, capsys) -> None:
    requests_mock.get("https://cgr.dev/v2/chainguard/python/_chainguard/history/latest",
                      status_code=200, text="<html><body>\x1b[2Jproxy login</body></html>")
    code, _, err = invoke(capsys, "python")
    assert code == 1
    message = one_line_error(err)
    assert "HTML" in message and "proxy login" not in message


def test_unexpected_exception_is_one_line_without_debug(cgr: FakeCgr, monkeypatch,
                                                        capsys) -> None:
    def explode(args, context, streams):
        raise RuntimeError(f"boom\nsecond line \x1b[2J {PASSWORD}"[:24])

    monkeypatch.setattr(list_command, "run", explode)
    code, out, err = invoke(capsys, "python")
    assert code == 1 and out == ""
    message = one_line_error(err)
    assert message.startswith("unexpected error: RuntimeError: boom")
    assert "--debug" in message and "Traceback" not in err
    code, _, err = invoke(capsys, "python", "--debug")
    assert code == 1
    assert "Traceback" in err and "RuntimeError" in err
    assert err.splitlines()[-1].startswith("docker-cghistory: unexpected error: RuntimeError")


def test_keyboard_interrupt_exits_130(cgr: FakeCgr, monkeypatch, capsys) -> None:
    def interrupted(args, context, streams):
        raise KeyboardInterrupt

    monkeypatch.setattr(list_command, "run", interrupted)
    code, _, err = invoke(capsys, "python")
    assert code == 130
    assert one_line_error(err) == "interrupted"


def test_expected_errors_show_traceback_only_with_debug(capsys) -> None:
    code, _, err = invoke(capsys, "Bad:")
    assert code == 2 and "Traceback" not in err
    code, _, err = invoke(capsys, "Bad:", "--debug")
    assert code == 2 and "Traceback" in err
    assert err.splitlines()[-1].startswith("docker-cghistory: invalid reference")


# --- the streams a command is given --------------------------------------------------------------


def test_the_given_streams_get_the_listing_and_the_errors(cgr: FakeCgr,
                                                          capsys: pytest.CaptureFixture) -> None:
    """``cli.run`` hands its streams to the command and renders failures on them too."""
    from tests.unit.terminal import Captured

    listed, failed = Captured(), Captured()
    assert cli.run(["python", "-q", "--last", "2"], listed) == 0
    assert listed.out.splitlines() == newest_first(cgr)[:2] and listed.err == ""
    assert cli.run(["python", "--last", "0"], failed) == 2
    assert failed.out == "" and "--last takes a number of builds" in one_line_error(failed.err)
    assert capsys.readouterr() == ("", "")  # nothing went to the process's own streams
