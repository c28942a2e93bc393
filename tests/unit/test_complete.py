"""The completion engine over ``spec``, its cache, and both wire protocols, without a network.

Registry answers come from fake fetchers; the cache lives in the test's tmp dir. Subprocess
tests run the real entry point to check what no in-process test can: stderr stays silent,
and a cached answer imports nothing heavy.
"""

from __future__ import annotations

import io
import multiprocessing
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from docker_cghistory import cache, dockerconfig, spec
from docker_cghistory.complete import argcomplete_adapter, core, store
from docker_cghistory.complete import cobra as cobra_adapter
from docker_cghistory.complete import sources as source_module
from docker_cghistory.complete.core import DEFAULT, FILTER_DIRS, KEEP_ORDER, NO_FILES, Answer
from docker_cghistory.complete.sources import Sources
from docker_cghistory.settings import Settings
from tests.support.services import unavailable

ROOT = Path(__file__).resolve().parents[2]
NOW = int(time.time())
DIGESTS = [f"sha256:{i:x}{'0' * 63}"[:71] for i in range(10, 15)]  # 5 distinct digests
PULL_HELP = "Pull a historical build through the Docker engine"


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private cache and docker config; no background refresh, no CGHISTORY_* leaking in."""
    for name in list(os.environ):
        if name.startswith(("CGHISTORY_", "_ARGCOMPLETE", "COMP_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "docker"))
    monkeypatch.setenv("CGHISTORY_NO_BACKGROUND", "1")
    (tmp_path / "docker").mkdir()
    dockerconfig.load.cache_clear()
    return tmp_path


class FakeFetcher:
    """Registry answers by (host, repository[, tag]); records calls; may sleep or fail."""

    def __init__(self, tags: dict | None = None, builds: dict | None = None,
                 delay: float = 0.0, error: Exception | None = None) -> None:
        self.tag_lists = tags or {}
        self.build_lists = builds or {}
        self.delay = delay
        self.error = error
        self.calls: list[tuple] = []

    def tags(self, host: str, repository: str, timeout: float) -> list[str]:
        self.calls.append(("tags", host, repository))
        time.sleep(self.delay)
        if self.error:
            raise self.error
        return self.tag_lists.get((host, repository), [])

    def builds(self, host: str, repository: str, tag: str, timeout: float) -> list:
        self.calls.append(("builds", host, repository, tag))
        time.sleep(self.delay)
        if self.error:
            raise self.error
        return self.build_lists.get((host, repository, tag), [])


def oldest_first_builds() -> list[tuple[int, str]]:
    """Five builds a day apart, oldest first (the order is the engine's job)."""
    return [(NOW - 86400 * (5 - i), digest) for i, digest in enumerate(DIGESTS)]


def sources(**kwargs) -> Sources:
    fetcher = kwargs.pop("fetcher", None) or FakeFetcher(
        tags={("cgr.dev", "chainguard/python"): ["latest", "3.12", "3.11", "latest-dev"]},
        builds={("cgr.dev", "chainguard/python", "latest"): oldest_first_builds()},
    )
    return Sources(Settings(config=kwargs.pop("settings", {})), fetcher=fetcher,
                   background=False, **kwargs)


def values(answer: Answer) -> list[str]:
    return [value for value, _ in answer.candidates]


def run(line: str, src: Sources | None = None, **kwargs) -> Answer:
    """Complete the last word of ``line`` (a trailing space means an empty current word)."""
    words = line.split(" ")
    return core.complete(words[:-1], words[-1], src or sources(), **kwargs)


# --- the engine over spec ---------------------------------------------------------------------


def test_first_position_offers_subcommands_and_images() -> None:
    store.remember_reference("python:3.12")
    answer = run("")
    names = ["list", "pull", "pin", "bisect", "diff", "install", "uninstall", "completion"]
    assert values(answer)[: len(names)] == names
    assert "python:3.12" in values(answer)
    assert answer.directive == NO_FILES
    descriptions = dict(answer.candidates)
    assert descriptions["pull"] == PULL_HELP
    assert descriptions["python:3.12"] == "recently used"


def test_subcommand_prefix_filters_and_images_join_in() -> None:
    store.remember_reference("pip-tools")
    assert values(run("pi")) == ["pin", "pip-tools"]
    assert values(run("bis")) == ["bisect"]


def test_argcomplete_style_offers_long_flags_of_the_default_command_up_front() -> None:
    answer = run("", options_on_empty=True)
    assert "list" in values(answer)
    assert "--since" in values(answer) and "--registry" in values(answer)
    assert "-q" not in values(answer)
    assert "--digest" not in values(answer)  # a pull flag, not list's


def test_flags_after_a_subcommand_with_descriptions() -> None:
    answer = run("pull -")
    got = values(answer)
    own = [flag for opt in spec.PULL.opts for flag in opt.flags]
    assert {"--digest", "--index", "--previous", "--at", "--cooldown", "--tag", "--retag",
            "--platform", "-q", "--quiet"} <= set(own)
    assert got == [*own, "--registry", "--org", "--insecure-registry", "--timeout", "--debug",
                   "--help", "-h"]
    assert dict(answer.candidates)["--digest"] == (
        "a build by digest or unique prefix (6+ hex characters)")
    assert "--version" not in got and "--help" in got
    assert answer.directive == NO_FILES


def test_double_dash_offers_long_flags_only_and_drops_used_ones() -> None:
    got = values(run("pull python --digest abc123 --"))
    assert "-q" not in got and "--quiet" in got
    assert "--digest" not in got
    repeatable = values(run("--insecure-registry a --insecure-registry b pull --insec"))
    assert repeatable == ["--insecure-registry"]


def test_flags_of_the_default_command_include_version() -> None:
    got = values(run("--"))
    assert "--since" in got and "--version" in got


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("list --format ", ["table", "json", "{{.Digest}}", "table {{.Index}}\\t{{.Digest}}"]),
        ("--format j", ["json"]),
        ("pull --platform linux/a", ["linux/amd64", "linux/arm64", "linux/arm/v7"]),
        ("bisect --format ", ["text", "json"]),
        ("completion ", ["bash", "zsh", "fish"]),
        ("completion z", ["zsh"]),
    ],
)
def test_values_after_flags_and_fixed_positionals(line: str, expected: list[str]) -> None:
    assert values(run(line)) == expected


def test_flag_equals_value_keeps_the_flag_as_a_prefix() -> None:
    answer = run("list --format=js")
    assert values(answer) == ["json"]
    assert answer.prefix == "--format="
    assert values(run("pull --nonsense=x")) == []


def test_bisect_format_offers_its_choices_with_descriptions() -> None:
    answer = run("bisect python --format ")
    assert answer.candidates == [("text", "one line per step and the result (default)"),
                                 ("json", "the result as one JSON object")]
    assert answer.directive == NO_FILES | KEEP_ORDER
    equals = run("bisect --format=j")
    assert (values(equals), equals.prefix) == (["json"], "--format=")
    assert values(run("bisect --format t")) == ["text"]
    assert cobra("__complete", "cghistory", "bisect", "--format", "j") == [
        "json\tthe result as one JSON object", ":36"]
    # list's --format is a suggestion list, not bisect's choices.
    assert values(run("list --format j")) == ["json"]
    assert "text" not in values(run("list --format "))


def test_values_of_flags_without_a_completer_are_empty_and_not_files() -> None:
    answer = run("list --since ")
    assert answer.candidates == [] and answer.directive == NO_FILES


def test_files_for_pin_and_folders_for_install() -> None:
    pin = run("pin ")
    assert pin.directive == DEFAULT and pin.files == "paths"
    assert run("pin Dockerfile ").files == "paths"  # PATH is repeatable
    install = run("install --dir ")
    assert install.directive == FILTER_DIRS and install.files == "dirs"


def test_bisect_offers_the_double_dash_then_leaves_the_command_to_the_shell() -> None:
    assert values(run("bisect python ")) == ["--"]
    after = run("bisect python -- ")
    assert after.candidates == [] and after.directive == DEFAULT


def test_positional_image_after_flags_of_the_subcommand() -> None:
    store.remember_reference("cgr.dev/chainguard/node:20")
    assert values(run("pull --platform linux/amd64 cgr")) == ["cgr.dev/chainguard/node:20"]
    assert values(run("pull python ")) == []  # only one IMAGE


def test_image_colon_completes_tags_of_that_repository() -> None:
    answer = run("pull python:")
    assert values(answer) == ["python:3.11", "python:3.12", "python:latest",
                              "python:latest-dev"]
    assert answer.directive == NO_FILES
    assert values(run("python:3.1")) == ["python:3.11", "python:3.12"]
    assert values(run("cgr.dev/chainguard/python:la")) == ["cgr.dev/chainguard/python:latest",
                                                            "cgr.dev/chainguard/python:latest-dev"]


def test_registry_and_org_flags_decide_where_tags_come_from() -> None:
    fetcher = FakeFetcher(tags={("registry.local:5000", "acme/python"): ["v1"]})
    answer = run("--registry registry.local:5000 --org acme python:", sources(fetcher=fetcher))
    assert values(answer) == ["python:v1"]
    assert fetcher.calls == [("tags", "registry.local:5000", "acme/python")]


def test_a_host_being_typed_is_not_an_image_with_a_tag() -> None:
    fetcher = FakeFetcher()
    assert values(run("127.0.0.1:50", sources(fetcher=fetcher))) == []
    assert fetcher.calls == []


def test_digest_lists_builds_newest_first_with_time_and_age() -> None:
    answer = run("pull python --digest ")
    assert values(answer) == list(reversed(DIGESTS))
    assert answer.directive == NO_FILES | KEEP_ORDER == 36
    first = dict(answer.candidates)[DIGESTS[-1]]
    assert first.startswith("#0, ") and "1 day ago" in first
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(NOW - 86400))
    assert stamp in first


def test_digest_prefixes_with_and_without_sha256() -> None:
    assert values(run("pull python --digest sha256:e")) == [DIGESTS[4]]
    assert values(run("pull --platform linux/amd64 python --digest sha")) == list(
        reversed(DIGESTS))
    assert values(run("pull python --digest e")) == [DIGESTS[4][7:]]
    assert values(run("pull --digest ")) == []  # no image yet: nothing to list


def test_index_lists_numbers_in_order_with_descriptions() -> None:
    answer = run("pull python --index ")
    assert values(answer) == ["0", "1", "2", "3", "4"]
    assert answer.directive == 36
    assert dict(answer.candidates)["4"].endswith(DIGESTS[0][7:19])


def test_bisect_good_and_bad_complete_builds_of_the_image() -> None:
    assert values(run("bisect python --good ")) == list(reversed(DIGESTS))
    assert values(run("bisect --bad sha256:d python --good sha256:c")) == [DIGESTS[2]]


def test_every_completer_kind_in_spec_is_handled() -> None:
    kinds = {opt.complete for command in spec.COMMANDS for opt in command.opts}
    kinds |= {arg.complete for command in spec.COMMANDS for arg in command.args}
    kinds |= {opt.complete for opt in spec.GLOBAL}
    kinds.discard(None)
    known = {spec.IMAGE, spec.TAG_REF, spec.DIGEST, spec.INDEX, spec.FORMAT, spec.PLATFORM,
             spec.PATHS, spec.DIR, spec.SHELL, spec.COMMAND}
    assert kinds <= known
    for kind in (spec.FORMAT, spec.PLATFORM, spec.SHELL, spec.COMMAND):
        assert values(core.values_for(kind, "", None, sources()))


# --- cobra protocol ---------------------------------------------------------------------------


def cobra(*args: str, src: Sources | None = None) -> list[str]:
    out = io.StringIO()
    assert cobra_adapter.cobra_complete(list(args), stream=out, silence=False,
                                        sources=src or sources()) == 0
    return out.getvalue().splitlines()


def test_cobra_answer_with_and_without_descriptions() -> None:
    lines = cobra("__complete", "cghistory", "pu")
    assert lines == [f"pull\t{PULL_HELP}", ":4"]
    assert cobra("__completeNoDesc", "cghistory", "pu") == ["pull", ":4"]


def test_cobra_accepts_words_without_the_plugin_name() -> None:
    # docker 20.10's hand-written bash script calls `docker-cghistory __completeNoDesc pull -`.
    assert cobra("__completeNoDesc", "pull", "--pla") == ["--platform", ":4"]
    assert cobra("__complete") == cobra("__complete", "cghistory", "")


def test_cobra_lines_escape_tabs_and_drop_broken_candidates() -> None:
    answer = Answer([("table {{.A}}\t{{.B}}", "two\tcolumns\nhere"), ("bad\nvalue", ""),
                     ("", "empty")], 36)
    assert cobra_adapter.cobra_lines(answer, True) == [
        "table {{.A}}\\t{{.B}}\ttwo columns here", ":36"]


def test_cobra_digest_answer_keeps_order() -> None:
    lines = cobra("__complete", "cghistory", "pull", "python", "--digest", "")
    assert [line.split("\t")[0] for line in lines[:-1]] == list(reversed(DIGESTS))
    assert lines[-1] == ":36"


def test_failure_gives_an_empty_answer_and_no_output_on_stderr(
        capfd: pytest.CaptureFixture[str]) -> None:
    failing = sources(fetcher=FakeFetcher(error=RuntimeError("registry exploded")))
    assert cobra("__complete", "cghistory", "pull", "python", "--digest", "",
                 src=failing) == [":36"]
    assert cobra("__complete", "cghistory", "python:", src=failing) == [":4"]
    captured = capfd.readouterr()
    assert captured.err == ""


def test_an_engine_bug_is_an_error_directive_not_a_traceback(
        monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]) -> None:
    def broken(*args, **kwargs):
        raise ZeroDivisionError

    monkeypatch.setattr(core, "complete", broken)
    assert cobra("__complete", "cghistory", "") == [":1"]
    assert capfd.readouterr().err == ""


# --- argcomplete protocol ---------------------------------------------------------------------

WORDBREAKS = " \t\n\"'><=;|&(:"


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("docker-cghistory ", (["docker-cghistory"], "", "", None)),
        ("docker-cghistory pu", (["docker-cghistory"], "pu", "", None)),
        ("a  'b c' d\\ e \"f", (["a", "b c", "d e"], "f", '"', None)),
        ("a python:3", (["a"], "python:3", "", 6)),
        ("a --format=js", (["a"], "--format=js", "", 8)),
        ("a 'py:3", (["a"], "py:3", "'", None)),
        ("a x\\:y", (["a"], "x:y", "", None)),
    ],
)
def test_split_line_like_argcomplete(line: str, expected: tuple) -> None:
    assert argcomplete_adapter.split_line(line, WORDBREAKS) == expected


def ac(line: str, shell: str = "bash", src: Sources | None = None, **extra: str) -> list[str]:
    env = {"COMP_LINE": line, "COMP_POINT": str(len(line)), "_ARGCOMPLETE": "1",
           "_ARGCOMPLETE_SHELL": shell, "_ARGCOMPLETE_SUPPRESS_SPACE": "1", **extra}
    if shell == "bash":
        env.setdefault("_ARGCOMPLETE_COMP_WORDBREAKS", WORDBREAKS)
    if shell == "fish":
        env.update(_ARGCOMPLETE_IFS="\n", _ARGCOMPLETE_DFS="\t")
    out = io.StringIO()
    assert argcomplete_adapter.argcomplete_complete(env, out, silence=False,
                                                    sources=src or sources()) == 0
    text = out.getvalue()
    return text.split(env.get("_ARGCOMPLETE_IFS", "\013")) if text else []


def test_argcomplete_bash_first_position_and_flags() -> None:
    got = ac("docker-cghistory ")
    assert got[:8] == ["list", "pull", "pin", "bisect", "diff", "install", "uninstall",
                       "completion"]
    assert "--since" in got
    assert ac("docker-cghistory pull --pla") == ["--platform"]


def test_argcomplete_bash_trims_at_the_last_wordbreak() -> None:
    assert ac("docker-cghistory python:3.1") == ["3.11", "3.12"]
    assert ac("docker-cghistory --format=j") == ["json"]


def test_argcomplete_bash_escapes_and_adds_a_space_when_asked() -> None:
    assert ac("docker-cghistory list --format {") == ["\\{\\{.Digest\\}\\}"]
    assert ac("docker-cghistory pu", _ARGCOMPLETE_SUPPRESS_SPACE="0") == ["pull "]
    assert ac("docker-cghistory list --format 'table ") == ["table {{.Index}}\\t{{.Digest}}"]


def test_argcomplete_zsh_and_fish_carry_descriptions() -> None:
    assert ac("docker-cghistory pu", "zsh") == [f"pull:{PULL_HELP}"]
    assert ac("docker-cghistory python:3.11", "zsh") == ["python\\:3.11:"]
    assert ac("docker-cghistory pu", "fish") == [f"pull\t{PULL_HELP}"]
    assert ac("docker-cghistory python:3.11", "fish") == ["python:3.11\t"]


def test_argcomplete_lists_files_for_pin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    work = tmp_path / "work"
    (work / "proj" / "sub").mkdir(parents=True)
    (work / "proj" / "Dockerfile").write_text("FROM python\n")
    (work / "proj" / "compose.yaml").write_text("")
    (work / "proj" / ".hidden").write_text("")
    (work / "notes.txt").write_text("")
    monkeypatch.chdir(work)
    assert ac("docker-cghistory pin proj/", "fish") == ["proj/Dockerfile\t",
                                                         "proj/compose.yaml\t", "proj/sub/\t"]
    assert ac("docker-cghistory pin pr") == ["proj/"]
    assert ac("docker-cghistory pin ") == ["notes.txt", "proj/"]
    assert ac("docker-cghistory install --dir proj/") == ["proj/sub/"]


def test_argcomplete_honours_the_start_word_and_the_cursor() -> None:
    line = "python -m docker_cghistory pu"
    assert ac(line, _ARGCOMPLETE="3") == ["pull"]
    env_line = "docker-cghistory pu --debug"
    got = ac(env_line, COMP_POINT=str(len("docker-cghistory pu")))
    assert got == ["pull"]


# --- settings (resolved in docker_cghistory.settings: tests/unit/test_settings.py) ----------


def test_configured_images_come_from_the_docker_config(_isolated: Path) -> None:
    (_isolated / "docker" / "config.json").write_text(
        '{"plugins": {"cghistory": {"images": "python, node:20"}}}')
    answer = run("", Sources(background=False, fetcher=FakeFetcher()))
    assert ("python", "configured image") in answer.candidates
    assert ("node:20", "configured image") in answer.candidates


def test_a_broken_docker_config_is_no_settings_not_a_failed_tab(_isolated: Path) -> None:
    (_isolated / "docker" / "config.json").write_text('{"plugins": {"cghistory": ')
    src = Sources(background=False, fetcher=FakeFetcher())
    assert src.settings.config == {}
    assert "list" in values(run("", src))


def test_flags_on_the_line_win_over_settings() -> None:
    src = sources(settings={"registry": "settings.example"})
    run("--registry flag.example python:", src)
    assert src.settings.registry == "flag.example"


def test_split_reference_agrees_with_the_parser() -> None:
    from docker_cghistory.reference import parse_cli

    for text in ("python", "python:3.12", "chainguard/python", "foo.com/chainguard-base:1",
                 "localhost:5000/a/b:c", "cgr.dev/chainguard/python", "127.0.0.1:5000/x"):
        ref = parse_cli(text)
        host, repository, tag = core.split_reference(text, "cgr.dev", "chainguard")
        assert (host, repository, tag) == (ref.registry, ref.repository, ref.tag)
    assert core.split_reference("Python", "cgr.dev", "chainguard") is None
    assert core.split_reference("python@sha256:abc", "cgr.dev", "chainguard") is None


# --- the cache --------------------------------------------------------------------------------


def test_completion_cache_lives_under_the_cache_folder() -> None:
    assert store.cache_folder() == os.path.join(cache.cache_dir(), "complete")


def test_entry_round_trip_and_key_check() -> None:
    store.write_entry("tags", "cgr.dev/chainguard/python", ["a", "b"])
    lines, age = store.read_entry("tags", "cgr.dev/chainguard/python")
    assert lines == ["a", "b"] and 0 <= age < 5
    assert store.read_entry("tags", "cgr.dev/chainguard/node") is None
    path = Path(store.entry_path("tags", "cgr.dev/chainguard/python"))
    assert path.stat().st_mode & 0o777 == 0o600
    assert Path(store.cache_folder()).stat().st_mode & 0o777 == 0o700
    path.write_text("cghistory-completion 1\tsomething/else\na\n")  # a name collision
    assert store.read_entry("tags", "cgr.dev/chainguard/python") is None
    path.write_text("cghistory-completion 1\tcgr.dev/chainguard/python\na")  # cut short
    assert store.read_entry("tags", "cgr.dev/chainguard/python") is None


def test_file_names_are_bounded_and_distinct() -> None:
    long_a, long_b = "h/" + "a" * 400 + "x", "h/" + "a" * 400 + "y"
    assert store._file_name(long_a) != store._file_name(long_b)
    assert len(store._file_name(long_a)) < 120


def test_fresh_cache_answers_without_the_registry() -> None:
    store.write_entry("tags", "cgr.dev/chainguard/python", ["cached"])
    fetcher = FakeFetcher(tags={("cgr.dev", "chainguard/python"): ["fresh"]})
    assert values(run("python:", sources(fetcher=fetcher))) == ["python:cached"]
    assert fetcher.calls == []


def test_expired_cache_is_refreshed_and_kept_when_the_registry_fails() -> None:
    store.write_entry("tags", "cgr.dev/chainguard/python", ["old"])
    path = store.entry_path("tags", "cgr.dev/chainguard/python")
    os.utime(path, (time.time() - source_module.TTL - 10,) * 2)
    failing = FakeFetcher(error=OSError("down"))
    assert values(run("python:", sources(fetcher=failing))) == ["python:old"]
    fetcher = FakeFetcher(tags={("cgr.dev", "chainguard/python"): ["new"]})
    assert values(run("python:", sources(fetcher=fetcher))) == ["python:new"]
    assert store.read_entry("tags", "cgr.dev/chainguard/python")[0] == ["new"]


def test_a_slow_registry_is_abandoned_within_the_budget() -> None:
    """The fetcher would take 60 s; the answer comes back empty and the worker abandoned.

    The bound is a ceiling against a hang, far from both the budget and the fetcher's delay,
    so a loaded machine cannot fail it."""
    slow = sources(fetcher=FakeFetcher(delay=60.0), budget=0.3)
    started = time.monotonic()
    answer = run("pull python --digest ", slow)
    assert time.monotonic() - started < 30.0
    assert answer.candidates == [] and slow.abandoned


def test_builds_from_the_cache_are_sorted_and_validated() -> None:
    store.write_entry("builds", "cgr.dev/chainguard/python:latest",
                      [f"{NOW - 100} {DIGESTS[0]}", "garbage", f"{NOW} {DIGESTS[1]}"])
    src = sources(fetcher=FakeFetcher(error=OSError()))
    assert values(run("pull python --digest ", src)) == [DIGESTS[1], DIGESTS[0]]


def _hammer(folder: str, worker: int, rounds: int) -> None:
    os.environ["XDG_CACHE_HOME"] = folder
    for round_ in range(rounds):
        store.write_entry("tags", "shared", [f"w{worker}-r{round_}-{i}" for i in range(300)])
        store.remember_reference(f"image-{worker}-{round_}")


def test_concurrent_writers_never_tear_a_file(_isolated: Path) -> None:
    folder = str(_isolated / "cache")
    context = multiprocessing.get_context("fork" if hasattr(os, "fork") else "spawn")
    workers = [context.Process(target=_hammer, args=(folder, n, 60)) for n in range(4)]
    for worker in workers:
        worker.start()
    seen = 0
    while any(worker.is_alive() for worker in workers):
        found = store.read_entry("tags", "shared")
        if found is not None:
            lines = found[0]
            assert len(lines) == 300
            prefix = lines[0].rsplit("-", 1)[0]
            assert all(line.startswith(prefix + "-") for line in lines)
            seen += 1
        recent = store.read_entry("lists", "recent")
        if recent is not None:
            assert all(line.startswith("image-") for line in recent[0])
    for worker in workers:
        worker.join()
        assert worker.exitcode == 0
    assert store.read_entry("tags", "shared") is not None
    assert seen > 0
    leftovers = [p for p in Path(store.cache_folder()).rglob("*.tmp")]
    assert leftovers == []


# --- remembered references, local images ------------------------------------------------------


def test_remember_reference_keeps_the_newest_first_without_repeats() -> None:
    for text in ("python", "node:20", "python", " go ", "x@sha256:abc", "bad name", ""):
        store.remember_reference(text)
    assert store.read_entry("lists", "recent")[0] == ["go", "python", "node:20"]
    for number in range(store.RECENT_MAX + 10):
        store.remember_reference(f"image{number}")
    recent = store.read_entry("lists", "recent")[0]
    assert len(recent) == store.RECENT_MAX and recent[0] == f"image{store.RECENT_MAX + 9}"


def test_remember_reference_never_raises(_isolated: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = _isolated / "file"
    blocker.write_text("")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))  # a file where a folder should be
    store.remember_reference("python")
    store.remember_builds("cgr.dev", "chainguard/python", "latest", [object()])


def test_remember_builds_seeds_digest_completion() -> None:
    from docker_cghistory.history import Build
    from docker_cghistory.timespec import parse_timestamp

    builds = [Build(parse_timestamp("2024-06-02T00:00:00Z"), DIGESTS[1]),
              Build(parse_timestamp("2024-06-01T00:00:00Z"), DIGESTS[0])]
    store.remember_builds("cgr.dev", "chainguard/python", "latest", builds)
    src = sources(fetcher=FakeFetcher(error=OSError()))
    answer = run("pull python --digest ", src)
    assert values(answer) == [DIGESTS[1], DIGESTS[0]]
    assert "2024-06-02T00:00:00.000Z" in answer.candidates[0][1]


def test_index_candidates_are_lists_numbers_and_exact_times() -> None:
    """Two builds in one second: completion orders them as ``list`` does (an int second per
    build would order them by digest) and shows each exact time, which ``--at`` reads back."""
    from docker_cghistory import selection
    from docker_cghistory.history import Build, merge
    from docker_cghistory.timespec import parse_timestamp, parse_when

    builds = merge([[Build(parse_timestamp("2024-06-29T09:07:00.971Z"), DIGESTS[0]),
                     Build(parse_timestamp("2024-06-29T09:07:00.5Z"), DIGESTS[1]),
                     Build(parse_timestamp("2024-06-29T09:07:00Z"), DIGESTS[2])]])
    store.remember_builds("cgr.dev", "chainguard/python", "latest", builds)
    src = sources(fetcher=FakeFetcher(error=OSError()))
    answer = run("pull python --index ", src)
    assert values(answer) == ["0", "1", "2"]
    for (index, description), build in zip(answer.candidates, builds, strict=True):
        assert description.endswith(build.short)
        printed = description.split(", ")[0]
        at = selection.Selector("at", parse_when(printed, parse_timestamp("2025-01-01")), "--at")
        assert selection.choose(builds, at, parse_timestamp("2025-01-01")).index == int(index)


def test_local_images_of_history_registries_only_shortened_when_default() -> None:
    source_module.refresh_local_images(lambda: [
        "cgr.dev/chainguard/python:latest", "cgr.dev/acme/app:1", "python:3.12",
        "docker.io/library/redis:7", "registry.local:5000/team/tool:v1",
    ])
    store.remember_reference("registry.local:5000/team/other:v2")
    answer = run("")
    got = dict(answer.candidates)
    assert got["python:latest"] == "local image"
    assert got["cgr.dev/acme/app:1"] == "local image"
    assert got["registry.local:5000/team/tool:v1"] == "local image"
    assert "python:3.12" not in got and "docker.io/library/redis:7" not in got


def test_an_engine_that_does_not_answer_gives_an_empty_list() -> None:
    source_module.refresh_local_images(lambda: None)
    assert store.read_entry("lists", "local")[0] == []


def test_background_refresh_is_rate_limited(monkeypatch: pytest.MonkeyPatch) -> None:
    forks: list[int] = []
    monkeypatch.delenv("CGHISTORY_NO_BACKGROUND")
    monkeypatch.setattr(os, "fork", lambda: forks.append(1) or 1)  # pretend: the parent side
    source_module._maybe_refresh_local(time.time())
    source_module._maybe_refresh_local(time.time())
    assert forks == [1]
    source_module._maybe_refresh_local(time.time() + source_module.LOCAL_REFRESH + 1)
    assert forks == [1, 1]


def test_credential_helpers_get_half_the_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    import json
    import os

    from docker_cghistory import credentials, dockerconfig

    with open(os.path.join(os.environ["DOCKER_CONFIG"], "config.json"), "w") as handle:
        json.dump({"credHelpers": {"cgr.dev": "cgr"}}, handle)
    dockerconfig.load.cache_clear()
    seen: list[float] = []

    def helper(name: str, server: str, timeout: float = 30.0) -> tuple[str, str]:
        seen.append(timeout)
        return "user", "secret"

    monkeypatch.setattr(credentials, "call_helper", helper)
    client = source_module.Fetcher(Settings(config={}))._client("cgr.dev", 0.4)
    assert client.credential.username == "user"
    assert seen == [0.2]


def test_fetcher_reads_the_newest_builds_through_the_registry_client(
        cgr, monkeypatch: pytest.MonkeyPatch) -> None:
    from docker_cghistory import credentials

    monkeypatch.setattr(credentials, "call_helper", credentials.call_helper)  # restored after
    fetcher = source_module.Fetcher(Settings(config={}))
    builds = fetcher.builds("cgr.dev", "chainguard/python", "latest", 1.0)
    history = cgr.histories[("chainguard/python", "latest")]
    assert [digest for _, digest in builds] == [entry["digest"] for entry in reversed(history)]
    assert fetcher.builds("cgr.dev", "chainguard/python", "-bad", 1.0) == []


def test_a_cache_miss_fills_the_cache_through_the_registry(
        cgr, monkeypatch: pytest.MonkeyPatch) -> None:
    from docker_cghistory import credentials

    monkeypatch.setattr(credentials, "call_helper", credentials.call_helper)
    first = cobra("__complete", "cghistory", "pull", "python", "--index", "",
                  src=Sources(background=False))
    assert first[:-1] == [line for line in first[:-1] if line.split("\t")[0].isdigit()]
    assert len(first) == 6 and first[-1] == ":36"
    calls = len(cgr.mocker.request_history)
    assert cobra("__complete", "cghistory", "pull", "python", "--index", "",
                 src=Sources(background=False)) == first
    assert len(cgr.mocker.request_history) == calls


# --- through the real entry point -------------------------------------------------------------


def entry(args: list[str], env: dict[str, str] | None = None,
          code: str | None = None) -> subprocess.CompletedProcess[str]:
    environment = dict(os.environ, **(env or {}))
    command = [sys.executable, "-m", "docker_cghistory", *args] if code is None else [
        sys.executable, "-c", code, *args]
    return subprocess.run(command, env=environment, capture_output=True, text=True,
                          timeout=30, check=False, cwd=str(ROOT))


def test_entry_point_is_silent_on_stderr_even_with_a_broken_config(_isolated: Path) -> None:
    (_isolated / "docker" / "config.json").write_text('{"plugins": {"cghistory": [')
    result = entry(["__complete", "cghistory", "pull", "python", "--digest", ""],
                   {"CGHISTORY_REGISTRY": "127.0.0.1:9"})
    assert result.returncode == 0 and result.stderr == ""
    assert result.stdout == ":36\n"


IMPORTS = """
import io, sys
before = set(sys.modules)
from docker_cghistory.__main__ import main
from docker_cghistory import complete
out = io.StringIO()
complete.cobra_complete(sys.argv[1:], stream=out, silence=False)
sys.stdout.write(out.getvalue() + "MODULES " + " ".join(sorted(set(sys.modules) - before)))
"""


@pytest.mark.parametrize("config", [None, '{"auths": {"cgr.dev": {"auth": "eDp5"}}}'],
                         ids=["no-config", "config-without-plugin-settings"])
def test_a_cached_answer_imports_nothing_heavy(_isolated: Path, config: str | None) -> None:
    if config is not None:  # the byte search must spare these users the json import
        (_isolated / "docker" / "config.json").write_text(config)
    store.write_entry("builds", "cgr.dev/chainguard/python:latest",
                      [f"{stamp} {digest}" for stamp, digest in oldest_first_builds()])
    result = entry(["__complete", "cghistory", "pull", "python", "--digest", ""], code=IMPORTS)
    answer, _, modules = result.stdout.partition("MODULES ")
    assert answer.splitlines()[0].startswith(DIGESTS[-1])
    imported = set(modules.split())
    heavy = {"requests", "docker", "argparse", "json", "hashlib", "argcomplete", "urllib3",
             "datetime", "typing", "dataclasses"}
    assert {name.split(".")[0] for name in imported} & heavy == set()
    # The settings were resolved (default registry and org) without the full path's modules.
    assert {"docker_cghistory.settings", "docker_cghistory.complete.store"} <= imported
    full_path = {"context", "reference", "registry", "credentials", "errors", "cli"}
    assert {f"docker_cghistory.{name}" for name in full_path} & imported == set()
    assert "docker_cghistory.complete.argcomplete_adapter" not in imported


def test_argcomplete_entry_point_writes_to_fd_8_only(tmp_path: Path) -> None:
    target = tmp_path / "out"
    env = {"_ARGCOMPLETE": "1", "COMP_LINE": "docker-cghistory pu", "COMP_POINT": "19",
           "_ARGCOMPLETE_SHELL": "bash", "_ARGCOMPLETE_STDOUT_FILENAME": str(target)}
    result = entry([], env)
    assert result.returncode == 0 and result.stdout == "" and result.stderr == ""
    assert target.read_text() == "pull "


# --- the completion scripts -------------------------------------------------------------------


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_completion_command_prints_argcomplete_code_with_a_header(shell: str) -> None:
    from docker_cghistory.commands.completion import script

    text = script(shell)
    assert "docker-cghistory completion " + shell in text
    if shell == "fish":
        assert "complete --command docker-cghistory" in text
    else:
        assert text.startswith("#compdef docker-cghistory\n")
        assert "_python_argcomplete" in text


def test_completion_command_rejects_other_shells() -> None:
    result = entry(["completion", "tcsh"])
    assert result.returncode == 2 and "unknown shell" in result.stderr


def test_committed_scripts_match_the_generator() -> None:
    from docker_cghistory.commands.completion import _argcomplete_version

    script = ROOT / "completions" / "docker-cghistory.bash"
    if f"argcomplete {_argcomplete_version()} " not in script.read_text().splitlines()[1]:
        unavailable("completions/ was generated with another argcomplete version: "
                    "run scripts/gen_completions.py")
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "gen_completions.py"),
                             "--check"], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
