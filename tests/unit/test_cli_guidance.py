"""A CLI that guides: typo suggestions, ``help [COMMAND]``, grouped help with examples, and
one exit-code rule (2 for a command line that cannot be used, 1 for everything else).

The commands are listed here literally, not read from ``spec``: a command that loses its
examples or its help must fail here, not silently drop out of the loop.
"""

from __future__ import annotations

import re
import shlex

import pytest

from docker_cghistory import cli, spec, suggest
from docker_cghistory.errors import UsageError

from .conftest import Env, FakeCgr, entries

COMMANDS = ("list", "pull", "pin", "bisect", "diff", "install", "uninstall", "completion",
            "help")
REGISTRY_COMMANDS = ("list", "pull", "pin", "bisect", "diff")
LOCAL_COMMANDS = ("install", "uninstall", "completion", "help")
REGISTRY_FLAGS = ("--registry", "--org", "--insecure-registry", "--timeout")
RAW_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


@pytest.fixture(autouse=True)
def no_engine(monkeypatch: pytest.MonkeyPatch, isolated_env: Env) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{isolated_env.home}/no-docker.sock")
    monkeypatch.delenv("DOCKER_CONTEXT", raising=False)
    monkeypatch.setenv("COLUMNS", "100")


def invoke(capsys: pytest.CaptureFixture, *words: str) -> tuple[int, str, str]:
    try:
        code = cli.run(list(words))
    except SystemExit as stop:  # argparse's --help and --version
        code = stop.code if isinstance(stop.code, int) else 0
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def error_line(err: str, prog: str = "docker-cghistory") -> str:
    """The message of a one-line error, checked to be one clean line."""
    assert err.endswith("\n") and err.count("\n") == 1, repr(err)
    assert not RAW_CONTROL.search(err[:-1]), repr(err)
    assert err.startswith(f"{prog}: "), repr(err)
    return err[len(prog) + 2 : -1]


def sections(text: str) -> dict[str, list[str]]:
    """Help text by heading (``Options``, ``Global Options``, ``Examples``...): its lines."""
    found: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in text.splitlines():
        heading = re.fullmatch(r"([A-Z][A-Za-z ]*):", line)
        if heading:
            current = found.setdefault(heading.group(1), [])
        elif current is not None:
            current.append(line)
    return found


def flags_in(lines: list[str]) -> set[str]:
    """Flags an option block lists (``-q, --quiet``), not the words of their help."""
    out: set[str] = set()
    for line in lines:
        match = re.match(r"^  (-[^ ].*?)(?:  |$)", line)
        if match:
            out |= {word.rstrip(",") for word in match.group(1).split() if word.startswith("-")}
    return out


# --- suggestions ----------------------------------------------------------------------------


@pytest.mark.parametrize(("word", "candidates", "expected"), [
    ("pul", COMMANDS, "pull"),
    ("lsit", COMMANDS, "list"),  # a swap is one edit
    ("bisct", COMMANDS, "bisect"),
    ("instal", COMMANDS, "install"),
    ("PULL", COMMANDS, "pull"),
    ("uninst", COMMANDS, "uninstall"),  # a prefix
    ("--previos", ("--digest", "--previous", "--platform"), "--previous"),
    ("--forma", ("--format", "--force"), "--format"),
    ("--hlep", ("--help", "-h"), "--help"),
    ("frobnicate", COMMANDS, None),
    ("p", COMMANDS, None),  # too short to mean one command
    ("pull", COMMANDS, None),  # not a typo
    ("-x", ("--index", "-q"), None),
])
def test_nearest(word: str, candidates: tuple[str, ...], expected: str | None) -> None:
    assert suggest.nearest(word, candidates) == expected


@pytest.mark.parametrize(("a", "b", "edits"), [
    ("", "", 0), ("pull", "pull", 0), ("pul", "pull", 1), ("lsit", "list", 1),
    ("kitten", "sitting", 3), ("", "abc", 3), ("ab", "ba", 1),
])
def test_distance(a: str, b: str, edits: int) -> None:
    assert suggest.distance(a, b) == edits == suggest.distance(b, a)


@pytest.mark.parametrize(("words", "prog", "message"), [
    (("pul", "python"), "docker-cghistory",
     'unknown command "pul" for "docker-cghistory" (did you mean "pull"?). '
     "See 'docker-cghistory --help'"),
    (("cghistory", "pul", "python"), "docker cghistory",
     'unknown command "pul" for "docker cghistory" (did you mean "pull"?). '
     "See 'docker cghistory --help'"),
    (("--org", "acme.com", "instal", "--dir", "x"), "docker-cghistory",
     'unknown command "instal" for "docker-cghistory" (did you mean "install"?). '
     "See 'docker-cghistory --help'"),
    (("bisct", "python", "--good", "1", "--", "true"), "docker-cghistory",
     'unknown command "bisct" for "docker-cghistory" (did you mean "bisect"?). '
     "See 'docker-cghistory --help'"),
])
def test_a_mistyped_command_gets_a_suggestion(capsys, words, prog, message) -> None:
    code, out, err = invoke(capsys, *words)
    assert (code, out) == (2, "")
    assert error_line(err, prog) == message


def test_a_word_near_a_command_is_still_an_image_when_it_lists(cgr: FakeCgr, capsys) -> None:
    """``pulp`` parses as ``list pulp``: only a reading that fails turns into a suggestion."""
    cgr.add("chainguard/pulp", "latest", entries(2, seed="pulp"), public=True)
    code, out, err = invoke(capsys, "pulp", "-q")
    assert (code, err) == (0, "")
    assert len(out.split()) == 2


def test_an_image_named_help_is_reachable_through_list(cgr: FakeCgr, capsys) -> None:
    cgr.add("chainguard/help", "latest", entries(3, seed="help"), public=True)
    code, out, err = invoke(capsys, "list", "help", "-q")
    assert (code, err) == (0, "")
    assert len(out.split()) == 3


@pytest.mark.parametrize(("words", "message"), [
    (("pull", "python", "--previos"),
     "unknown flag: --previos (did you mean --previous?). See 'docker-cghistory pull --help'"),
    (("pull", "--previos"),  # reported before the missing IMAGE
     "unknown flag: --previos (did you mean --previous?). See 'docker-cghistory pull --help'"),
    (("python", "--forma=json"),
     "unknown flag: --forma (did you mean --format?). See 'docker-cghistory --help'"),
    (("list", "python", "--sinec", "7d"),
     "unknown flag: --sinec (did you mean --since?). See 'docker-cghistory list --help'"),
    (("python", "--previous"),
     "unknown flag: --previous (an option of pull and pin, not of list). "
     "See 'docker-cghistory --help'"),
    (("install", "--registry", "example.com"),
     "unknown flag: --registry (an option of list, pull, pin, bisect and diff, not of "
     "install). "
     "See 'docker-cghistory install --help'"),
    (("python", "--previos"),  # a typo of another command's flag
     "unknown flag: --previos (did you mean --previous? it is an option of pull and pin, "
     "not of list). See 'docker-cghistory --help'"),
    (("pull", "python", "--zzzzzz"),
     "unknown flag: --zzzzzz. See 'docker-cghistory pull --help'"),
    (("--versoin",),
     "unknown flag: --versoin (did you mean --version?). See 'docker-cghistory --help'"),
])
def test_an_unknown_flag_gets_the_nearest_flag_of_its_command(capsys, words, message) -> None:
    code, out, err = invoke(capsys, *words)
    assert (code, out) == (2, "")
    assert error_line(err) == message


def test_an_unknown_flag_is_shown_safely(capsys) -> None:
    code, _, err = invoke(capsys, "pull", "python", "--\x1b[2Jprevious")
    assert code == 2
    assert "\\x1b" in error_line(err)


def test_stray_words_are_still_named(capsys) -> None:
    code, _, err = invoke(capsys, "python", "extra")
    assert code == 2
    assert error_line(err) == "unrecognized arguments: extra. See 'docker-cghistory --help'"


def test_nothing_at_all_names_command_and_image(capsys) -> None:
    code, out, err = invoke(capsys)
    assert (code, out) == (2, "")
    assert error_line(err) == "give a COMMAND or an IMAGE[:TAG]. See 'docker-cghistory --help'"


# --- help [COMMAND] -------------------------------------------------------------------------


def test_help_alone_is_the_top_help(capsys) -> None:
    code, out, err = invoke(capsys, "help")
    assert (code, err) == (0, "")
    assert invoke(capsys, "--help") == (0, out, "")
    assert out.startswith("usage: docker-cghistory [OPTIONS] COMMAND")
    listed = re.findall(r"^  (\w+) {2,}\S", "\n".join(sections(out)["Commands"]), re.M)
    assert listed == list(COMMANDS)


@pytest.mark.parametrize("name", COMMANDS)
def test_help_command_is_the_commands_help(capsys, name: str) -> None:
    code, out, err = invoke(capsys, "help", name)
    assert (code, err) == (0, "")
    assert out.startswith(f"usage: docker-cghistory {name} ")
    assert invoke(capsys, name, "--help") == (0, out, "")


def test_help_of_an_alias(capsys) -> None:
    code, out, _ = invoke(capsys, "help", "ls")
    assert code == 0 and out.startswith("usage: docker-cghistory list ")
    assert "docker-cghistory list, docker-cghistory ls" in out


@pytest.mark.parametrize(("topic", "message"), [
    ("nosuch", 'unknown command "nosuch" for "docker-cghistory help". '
               "See 'docker-cghistory --help'"),
    ("pul", 'unknown command "pul" for "docker-cghistory help" (did you mean "pull"?). '
            "See 'docker-cghistory --help'"),
])
def test_help_of_an_unknown_command(capsys, topic: str, message: str) -> None:
    code, out, err = invoke(capsys, "help", topic)
    assert (code, out) == (2, "")
    assert error_line(err) == message


@pytest.mark.parametrize(("words", "usage"), [
    (("help", "cghistory"), "usage: docker cghistory [OPTIONS] COMMAND"),
    (("help", "cghistory", "pull"), "usage: docker cghistory pull [OPTIONS] IMAGE[:TAG]"),
    (("--debug", "help", "cghistory", "pin"), "usage: docker cghistory pin [OPTIONS]"),
    (("cghistory", "help", "bisect"), "usage: docker cghistory bisect [OPTIONS]"),
])
def test_docker_help_cghistory(capsys, words: tuple[str, ...], usage: str) -> None:
    """``docker help cghistory [COMMAND]`` runs the plugin with docker's own argv."""
    code, out, err = invoke(capsys, *words)
    assert (code, err) == (0, "")
    assert out.startswith(usage + " ") or out.startswith(usage + "\n")


# --- --help: usage, two groups, examples ------------------------------------------------------


def test_top_usage_mentions_command_and_image(capsys) -> None:
    _, out, _ = invoke(capsys, "--help")
    assert out.splitlines()[:2] == ["usage: docker-cghistory [OPTIONS] COMMAND [ARG...]",
                                    "       docker-cghistory [OPTIONS] IMAGE[:TAG]"]
    groups = sections(out)
    assert {"--since", "--last", "--format"} <= flags_in(groups["List Options"])
    assert {*REGISTRY_FLAGS, "--debug", "--help", "--version"} <= flags_in(
        groups["Global Options"])


@pytest.mark.parametrize("name", COMMANDS)
def test_options_come_in_two_groups(capsys, name: str) -> None:
    _, out, _ = invoke(capsys, name, "--help")
    groups = sections(out)
    command = spec.command_named(name)
    assert command is not None
    own = flags_in(groups.get("Options", []))
    shared = flags_in(groups["Global Options"])
    assert own == {flag for opt in command.opts for flag in opt.flags}
    assert not own & shared
    assert {"--debug", "--help", "-h"} <= shared
    if name in REGISTRY_COMMANDS:
        assert set(REGISTRY_FLAGS) <= shared
    else:
        assert not set(REGISTRY_FLAGS) & shared
        assert not any(flag in out for flag in REGISTRY_FLAGS)


@pytest.mark.parametrize("name", LOCAL_COMMANDS)
def test_local_commands_refuse_registry_flags(capsys, name: str) -> None:
    code, out, err = invoke(capsys, name, "--org", "acme.com")
    assert (code, out) == (2, "")
    assert error_line(err).startswith("unknown flag: --org (")


@pytest.mark.parametrize("name", COMMANDS)
def test_every_command_has_examples_that_parse(capsys, name: str) -> None:
    _, out, _ = invoke(capsys, name, "--help")
    lines = [line.strip() for line in sections(out).get("Examples", []) if line.strip()]
    comments = [line for line in lines if line.startswith("# ")]
    commands = [line for line in lines if not line.startswith("# ")]
    assert commands and len(comments) == len(commands), out
    for line in commands:
        words = shlex.split(line)
        assert words[0] == "docker-cghistory", line
        for end, word in enumerate(words):  # a shell redirection is no argument of ours
            if word in (">", "|"):
                words = words[:end]
                break
        command, _ = cli.parse(words[1:], "docker-cghistory")
        assert command.name == name or (name == "list" and words[1] != "list"), line


def test_pull_help_shows_the_rollback_example(capsys) -> None:
    _, out, _ = invoke(capsys, "cghistory", "pull", "--help")
    assert "  docker cghistory pull python --previous --retag\n" in out


# --- exit codes -----------------------------------------------------------------------------


@pytest.mark.parametrize(("words", "code"), [
    # list: a malformed value is a usage error; a tag the registry lacks is not.
    (("python", "--since", "bogus"), 2),
    (("list", "python", "--last", "x"), 2),
    (("python@sha256:" + "a" * 64,), 2),
    (("Bad:",), 2),
    (("nosuch",), 1),
    # pull: the selectors' and --tag's values are checked before anything is asked.
    (("pull", "python", "--digest", "xyz"), 2),
    (("pull", "python", "--at", "bogus"), 2),
    (("pull", "python", "--cooldown", "3x"), 2),
    (("pull", "python", "--index", "-1"), 2),
    (("pull", "python", "--index", "1", "--tag", "Bad:Name:x"), 2),
    (("pull", "python", "--index", "1", "--at", "1d"), 2),
    (("pull", "python", "--previous"), 1),  # no engine
    # pin
    (("pin", "--at", "bogus"), 2),
    (("pin", "no/such/folder"), 1),
    # bisect: a BUILD that cannot be read is a usage error even without an engine.
    (("bisect", "python", "--good", "bogus", "--", "true"), 2),
    (("bisect", "python", "--good", "1", "--bad", "sha256:xyz", "--", "true"), 2),
    (("bisect", "python", "--good", "1"), 2),
    (("bisect", "python", "--good", "1", "--", "true"), 1),  # no engine
    # local commands
    (("completion", "tcsh"), 2),
    (("completion",), 2),
    (("install", "--timeout", "3"), 2),
    (("help", "nosuch"), 2),
    (("help", "--registry", "x"), 2),
])
def test_exit_codes(cgr: FakeCgr, capsys, words: tuple[str, ...], code: int) -> None:
    got, out, err = invoke(capsys, *words)
    assert got == code, err
    assert out == ""
    error_line(err)


def test_failures_outside_the_command_line_are_exit_1(isolated_env: Env, capsys) -> None:
    afile = isolated_env.home / "a-file"
    afile.write_text("")
    assert invoke(capsys, "install", "--dir", str(afile))[0] == 1
    foreign = isolated_env.home / "plugins"
    foreign.mkdir()
    (foreign / "docker-cghistory").write_text("#!/bin/sh\n")
    code, _, err = invoke(capsys, "uninstall", "--dir", str(foreign))
    assert code == 1 and "not written by docker-cghistory" in error_line(err)


def test_usage_error_is_exit_2_and_the_rest_exit_1() -> None:
    """The classes carry the rule: a typed value that cannot be read is a usage error."""
    from docker_cghistory import errors

    assert UsageError("x").exit_code == 2
    for usage in (errors.InvalidReference, errors.TimeSpecError, errors.InvalidDigest):
        assert usage("x").exit_code == 2, usage
    assert issubclass(errors.InvalidDigest, errors.SelectionError)
    for other in (errors.CghistoryError, errors.RegistryError, errors.NotFoundError,
                  errors.SelectionError, errors.EngineError, errors.ConfigError):
        assert other("x").exit_code == 1, other


# --- completion agrees with the parser --------------------------------------------------------


def complete(line: str) -> list[str]:
    """Candidates for the last word of ``line``, with no registry behind them."""
    from docker_cghistory.complete import core
    from docker_cghistory.complete.sources import Sources
    from docker_cghistory.settings import Settings

    class NoRegistry:
        def tags(self, host: str, repository: str, timeout: float) -> list[str]:
            return []

        def builds(self, host: str, repository: str, tag: str, timeout: float) -> list:
            return []

    words = line.split(" ")
    sources = Sources(Settings(config={}), fetcher=NoRegistry(), background=False)
    return [value for value, _ in core.complete(words[:-1], words[-1], sources).candidates]


@pytest.mark.parametrize("name", COMMANDS)
def test_completion_offers_the_flags_the_parser_takes(capsys, name: str) -> None:
    offered = {flag for flag in complete(f"{name} -") if flag.startswith("-")}
    _, out, _ = invoke(capsys, name, "--help")
    groups = sections(out)
    assert offered == flags_in(groups.get("Options", [])) | flags_in(groups["Global Options"])


def test_completion_of_help_offers_commands() -> None:
    assert complete("help ") == list(COMMANDS)
    assert complete("help pu") == ["pull"]
    assert "help" in complete("")
