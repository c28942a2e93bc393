"""Tab completion end to end: the real docker CLI, bash, zsh and fish, the front and registry.

Each TAB is simulated the way the shell does it (``COMP_WORDS``/``COMP_CWORD``/``COMP_LINE``/
``COMP_POINT``, then the completion function, then ``COMPREPLY``), with the scripts users
install: docker's own (``docker completion bash``), which reaches the plugin through
``docker __complete``, and argcomplete's for ``docker-cghistory``. fish completes for real
with ``complete -C``. Tags come from the real registry behind the front; histories from the
front.
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
import time
import urllib.request
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

import pytest

from tests.support.front import Front, make_history
from tests.support.services import (
    PRIVATE_PASSWORD,
    PRIVATE_USER,
    CredHelper,
    DockerConfig,
    Registry,
    free_port,
    install_stderr,
    require_binary,
    require_file,
)

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
COMPLETIONS = ROOT / "completions"
T0 = datetime(2024, 3, 1, tzinfo=timezone.utc)
TAGS = ["latest", "latest-dev", "1.36", "1.36.1", "1.37"]
BASH_COMPLETION = Path("/usr/share/bash-completion/bash_completion")


# Completion gives the registry 1 s and answers nothing when that runs out: the contract, but a
# loaded CI machine can spend that second before the request reaches the front. Tests that
# need candidates from the registry give it more (the setting users on slow networks have);
# tests of the budget itself use the real one (``real_budget``).
TEST_BUDGET = "60"
# A ceiling against hangs, far below what the tests make wait (a 30 s helper, a read that
# never ends): finishing under it shows the budget cut the wait short; never a speed target.
HANG_CEILING = 20.0


@pytest.fixture(autouse=True)
def _completion_budget(request: pytest.FixtureRequest) -> None:
    if "plugin_env" in request.fixturenames:
        env: DockerConfig = request.getfixturevalue("plugin_env")
        env.env["CGHISTORY_COMPLETION_TIMEOUT"] = TEST_BUDGET


def real_budget(env: DockerConfig) -> None:
    """The product's own budget (1 s), for the tests that check it is kept."""
    env.env.pop("CGHISTORY_COMPLETION_TIMEOUT", None)


# --------------------------------------------------------------------------- helpers
def push_tags(registry: Registry, repository: str, tags: list[str]) -> None:
    """A tiny OCI image (a config blob, no layers) under each tag, straight into the registry."""
    config = json.dumps({"architecture": "amd64", "os": "linux",
                         "rootfs": {"type": "layers", "diff_ids": []}}).encode()
    digest = "sha256:" + hashlib.sha256(config).hexdigest()
    start = urllib.request.Request(f"{registry.url}/v2/{repository}/blobs/uploads/",
                                   method="POST", data=b"")
    with urllib.request.urlopen(start, timeout=10) as answer:
        location = answer.headers["Location"]
    if location.startswith("/"):
        location = registry.url + location
    separator = "&" if "?" in location else "?"
    upload = urllib.request.Request(f"{location}{separator}digest={digest}", method="PUT",
                                    data=config,
                                    headers={"Content-Type": "application/octet-stream"})
    urllib.request.urlopen(upload, timeout=10).close()
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": digest, "size": len(config)},
        "layers": [],
    }).encode()
    for tag in tags:
        put = urllib.request.Request(
            f"{registry.url}/v2/{repository}/manifests/{tag}", method="PUT", data=manifest,
            headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json"})
        urllib.request.urlopen(put, timeout=10).close()


def cobra(env: DockerConfig, *words: str, desc: bool = True) -> tuple[list[str], str]:
    """``docker __complete cghistory WORDS...``: candidate lines and the directive line."""
    verb = "__complete" if desc else "__completeNoDesc"
    result = env.run("docker", verb, "cghistory", *words, timeout=30)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines and lines[-1].startswith(":"), result.stdout
    return lines[:-1], lines[-1]


def plugin(env: DockerConfig, *words: str) -> tuple[float, str, str, int]:
    """The installed plugin itself, as docker runs it: seconds, stdout, stderr, status."""
    started = time.monotonic()
    result = env.run(str(env.plugins_dir / "docker-cghistory"), "__complete", "cghistory",
                     *words, timeout=30)
    return time.monotonic() - started, result.stdout, result.stderr, result.returncode


def bash_words(line: str, breaks: str = "=:") -> list[str]:
    """COMP_WORDS as bash builds them: whitespace splits, and runs of COMP_WORDBREAKS
    characters become words of their own (``python:`` is ``python``, ``:``)."""
    words: list[str] = []
    for chunk in line.split():
        words += re.findall(rf"[{re.escape(breaks)}]+|[^{re.escape(breaks)}]+", chunk)
    if line.endswith(" "):
        words.append("")
    return words


def bash_tab(env: DockerConfig, setup: str, function: str, line: str) -> list[str]:
    """Press TAB at the end of ``line`` in bash with ``setup`` sourced; COMPREPLY."""
    words = bash_words(line)
    quoted = " ".join("'" + word.replace("'", "'\\''") + "'" for word in words)
    script = f"""
{setup}
COMP_LINE='{line}'
COMP_POINT=${{#COMP_LINE}}
COMP_WORDS=({quoted})
COMP_CWORD=$(( ${{#COMP_WORDS[@]}} - 1 ))
COMPREPLY=()
{function} "${{COMP_WORDS[0]}}" "${{COMP_WORDS[COMP_CWORD]}}" "${{COMP_WORDS[COMP_CWORD-1]}}" \
    2>/dev/null
printf '%s\\n' "${{COMPREPLY[@]}}"
"""
    result = env.run("bash", "-c", script, timeout=60)
    assert result.returncode == 0, result.stderr
    return [line for line in result.stdout.splitlines() if line]


@pytest.fixture
def docker_bash(plugin_env: DockerConfig) -> Callable[[str], list[str]]:
    """TAB in bash with docker's own completion script (``docker completion bash``)."""
    require_file(BASH_COMPLETION, "bash-completion")
    script = plugin_env.home / "docker-completion.bash"
    generated = plugin_env.run("docker", "completion", "bash", timeout=30)
    assert generated.returncode == 0, generated.stderr
    script.write_text(generated.stdout)
    setup = f"source {BASH_COMPLETION}\nsource {script}"
    return lambda line: bash_tab(plugin_env, setup, "__start_docker", line)


@pytest.fixture
def direct_bash(plugin_env: DockerConfig) -> Callable[[str], list[str]]:
    """TAB in bash for ``docker-cghistory`` with the argcomplete script from completions/."""
    console = Path(sys.executable).parent / "docker-cghistory"
    if console.exists():  # the interpreter's own console script, ahead of any shim
        plugin_env.env["PATH"] = f"{console.parent}:{plugin_env.env['PATH']}"
    setup = f"source {COMPLETIONS / 'docker-cghistory.bash'}"
    return lambda line: bash_tab(plugin_env, setup, "_python_argcomplete", line)


@pytest.fixture
def public_repo(front: Front, registry: Registry) -> str:
    """A public repository on the front with real tags and a 12-build history of latest."""
    repository = "chainguard/cgh-complete"
    push_tags(registry, repository, TAGS)
    front.set_repo(repository, {"public": True,
                                "history": {"latest": make_history(12, T0, seed="c")}})
    return f"{front.host}/{repository}"


# --------------------------------------------------------------------------- docker CLI
def test_docker_forwards_complete_to_the_plugin(plugin_env: DockerConfig) -> None:
    lines, directive = cobra(plugin_env, "")
    assert [line.split("\t")[0] for line in lines][:4] == ["list", "pull", "pin", "bisect"]
    assert "pull\tPull a historical build through the Docker engine" in lines
    assert directive == ":4"
    flags, _ = cobra(plugin_env, "pull", "--pla")
    assert flags == ["--platform\tpull this platform of a multi-platform build"]
    formats, directive = cobra(plugin_env, "bisect", "--format", "")
    assert formats == ["text\tone line per step and the result (default)",
                       "json\tthe result as one JSON object"]
    assert directive == ":36"
    shells, _ = cobra(plugin_env, "completion", "", desc=False)
    assert [line.split("\t")[0] for line in shells] == ["bash", "zsh", "fish"]
    files, directive = cobra(plugin_env, "pin", "")
    assert files == [] and directive == ":0"


def test_docker_completes_the_plugin_name_itself(plugin_env: DockerConfig) -> None:
    result = plugin_env.run("docker", "__complete", "cgh", timeout=30)
    assert result.stdout.splitlines()[0].startswith("cghistory\t")


def test_tags_of_a_public_repository(plugin_env: DockerConfig, public_repo: str) -> None:
    lines, directive = cobra(plugin_env, f"{public_repo}:")
    assert [line.split("\t")[0] for line in lines] == sorted(f"{public_repo}:{t}" for t in TAGS)
    assert directive == ":4"
    narrowed, _ = cobra(plugin_env, "pull", f"{public_repo}:1.36")
    assert narrowed == [f"{public_repo}:1.36", f"{public_repo}:1.36.1"]


def test_tags_of_a_private_repository_need_the_credential_helper(
    plugin_env: DockerConfig, front: Front, registry: Registry,
    cred_helper: Callable[..., CredHelper],
) -> None:
    repository = "acme.dev/cgh-private"
    push_tags(registry, repository, ["v1", "v2"])
    front.set_repo(repository, {"public": False,
                                "users": {PRIVATE_USER: {"password": PRIVATE_PASSWORD}}})
    image = f"{front.host}/{repository}"
    assert cobra(plugin_env, f"{image}:") == ([], ":4")  # anonymous: refused, nothing

    helper = cred_helper("cgtest", {front.host: (PRIVATE_USER, PRIVATE_PASSWORD)})
    plugin_env.update(credHelpers={front.host: "cgtest"})
    _, out, err, status = plugin(plugin_env, f"{image}:")
    assert out.splitlines() == [f"{image}:v1", f"{image}:v2", ":4"]
    assert (status, err) == (0, "")
    assert ("get", front.host) in helper.calls()


def test_digests_and_indexes_of_a_tag_newest_first(
    plugin_env: DockerConfig, front: Front, public_repo: str,
) -> None:
    history = front.repo(public_repo.split("/", 1)[1])["history"]["latest"]
    newest_first = [digest for _, digest in reversed(history)]
    lines, directive = cobra(plugin_env, "pull", public_repo, "--digest", "")
    assert [line.split("\t")[0] for line in lines] == newest_first
    assert directive == ":36"
    # The exact time, as list prints it (the registry wrote no fraction: .000).
    assert lines[0].split("\t")[1].startswith("#0, 2024-03-12T00:00:00.000Z, ")
    assert "ago" in lines[0]
    indexes, directive = cobra(plugin_env, "pull", public_repo, "--index", "")
    assert [line.split("\t")[0] for line in indexes] == [str(i) for i in range(12)]
    assert indexes[-1].endswith(newest_first[-1][7:19]) and directive == ":36"
    prefix, _ = cobra(plugin_env, "bisect", public_repo, "--good", newest_first[3][:14])
    assert [line.split("\t")[0] for line in prefix] == [newest_first[3]]


def test_a_second_tab_is_answered_from_the_cache(
    plugin_env: DockerConfig, front: Front, public_repo: str,
) -> None:
    first = cobra(plugin_env, "pull", public_repo, "--digest", "")
    tags = cobra(plugin_env, f"{public_repo}:")
    front.reset_log()
    assert cobra(plugin_env, "pull", public_repo, "--digest", "") == first
    assert cobra(plugin_env, f"{public_repo}:") == tags
    assert front.requests == []


def test_remembered_references_are_offered(plugin_env: DockerConfig) -> None:
    code = ("from docker_cghistory.complete import remember_reference as r; "
            "r('cgr.dev/chainguard/python:3.12'); r('node:20')")
    assert plugin_env.run(sys.executable, "-c", code).returncode == 0
    plugin_env.update(plugins={"cghistory": {"images": "go, rust"}})
    lines, _ = cobra(plugin_env, "")
    values = [line.split("\t")[0] for line in lines]
    assert values[-4:] == ["go", "rust", "node:20", "cgr.dev/chainguard/python:3.12"]
    assert cobra(plugin_env, "pull", "no") == (["node:20\trecently used"], ":4")


@pytest.mark.parametrize("images", [["go", "rust"], '["go", "rust"]', "go rust"])
def test_configured_images_in_any_list_form(plugin_env: DockerConfig, images: object) -> None:
    plugin_env.update(plugins={"cghistory": {"images": images}})
    lines, _ = cobra(plugin_env, "")
    assert [line for line in lines if line.endswith("configured image")] == [
        "go\tconfigured image", "rust\tconfigured image"]


def test_a_broken_config_leaves_completion_and_install_working(plugin_env: DockerConfig) -> None:
    """Through the launcher and the docker CLI: none of these needs a setting."""
    plugin_env.config_file.write_text('{"plugins": {"cghistory": ')
    launcher = str(plugin_env.plugins_dir / "docker-cghistory")
    for argv in ([launcher, "completion", "bash"], ["docker", "cghistory", "completion", "zsh"]):
        script = plugin_env.run(*argv, timeout=60)
        assert script.returncode == 0 and "docker-cghistory:" not in script.stderr, argv
        assert "_python_argcomplete" in script.stdout
    tab = plugin_env.run(launcher, "__complete", "cghistory", "pu", timeout=30)
    assert (tab.returncode, tab.stderr, tab.stdout.splitlines()[-1]) == (0, "", ":4")
    reinstall = plugin_env.run(launcher, "install", timeout=60)  # into $DOCKER_CONFIG/cli-plugins
    assert (reinstall.returncode, install_stderr(reinstall.stderr)) == (0, "")
    assert reinstall.stdout.startswith("already installed: ")
    removed = plugin_env.run("docker", "cghistory", "uninstall", timeout=60)
    assert removed.returncode == 0 and "docker-cghistory:" not in removed.stderr
    assert not (plugin_env.plugins_dir / "docker-cghistory").exists()


# --------------------------------------------------------------------------- never hangs
def test_nothing_hangs_when_the_registry_is_down(plugin_env: DockerConfig) -> None:
    real_budget(plugin_env)
    dead = f"127.0.0.1:{free_port()}"
    for words in ([f"{dead}/chainguard/x:"], ["pull", f"{dead}/chainguard/x", "--digest", ""]):
        seconds, out, err, status = plugin(plugin_env, *words)
        assert (status, err) == (0, "")
        assert out in (":4\n", ":36\n")
        assert seconds < HANG_CEILING


@pytest.mark.parametrize(
    ("where", "words"),
    [
        (r"/tags/list$", ["{repo}:"]),
        (r"/_chainguard/history/", ["pull", "{repo}", "--digest", ""]),
        (r"^/token", ["{repo}:"]),
    ],
)
def test_nothing_hangs_when_the_registry_stops_answering(
    plugin_env: DockerConfig, front: Front, public_repo: str, where: str, words: list[str],
) -> None:
    front.add_fault(where, "hang", count=-1)
    real_budget(plugin_env)
    seconds, out, err, status = plugin(plugin_env, *(w.format(repo=public_repo) for w in words))
    assert (status, err) == (0, "")
    assert out.splitlines() in ([":4"], [":36"])
    assert seconds < HANG_CEILING
    front.clear_faults()
    # The abandoned request left nothing behind that breaks the next TAB.
    plugin_env.env["CGHISTORY_COMPLETION_TIMEOUT"] = TEST_BUDGET
    lines, _ = cobra(plugin_env, *(w.format(repo=public_repo) for w in words))
    assert lines


def test_a_credential_helper_that_waits_is_given_up_on(
    plugin_env: DockerConfig, front: Front, public_repo: str,
) -> None:
    helper = plugin_env.bin_dir / "docker-credential-slow"
    helper.write_text("#!/bin/sh\nread server\nexec sleep 30\n")
    helper.chmod(0o755)
    plugin_env.update(credHelpers={front.host: "slow"})
    real_budget(plugin_env)
    seconds, out, err, status = plugin(plugin_env, f"{public_repo}:")
    assert (status, err, out) == (0, "", ":4\n")
    assert seconds < HANG_CEILING  # the helper sleeps 30 s: it was given up on


# --------------------------------------------------------------------------- bash
def test_bash_with_dockers_script(docker_bash: Callable[[str], list[str]],
                                  public_repo: str) -> None:
    assert docker_bash("docker cghistory pu") == ["pull"]
    assert docker_bash("docker cghistory pull --pla") == ["--platform"]
    assert docker_bash("docker cghistory list --format j") == ["json"]
    assert docker_bash("docker cghistory bisect --format ") == ["text", "json"]
    assert docker_bash("docker cghistory completion ") == ["bash", "zsh", "fish"]
    # bash splits at ':' and docker's script trims what precedes it, as for `docker pull`.
    assert docker_bash(f"docker cghistory {public_repo}:1.3") == ["1.36", "1.36.1", "1.37"]
    digests = docker_bash(f"docker cghistory pull {public_repo} --digest sha256:")
    assert len(digests) == 12 and all(len(d) == 64 for d in digests)


def test_bash_with_debians_hand_written_docker_script(plugin_env: DockerConfig) -> None:
    """docker.io 20.10's contrib script runs ``docker-cghistory __completeNoDesc pull ...``,
    without the plugin's name; newer ones pass it. Both must work."""
    script = require_file(Path("/usr/share/bash-completion/completions/docker"),
                          "Debian's docker bash completion (docker.io)")
    require_file(BASH_COMPLETION, "bash-completion")
    setup = f"source {BASH_COMPLETION}\nsource {script}"
    assert bash_tab(plugin_env, setup, "_docker", "docker cghistory pu") == ["pull"]
    assert bash_tab(plugin_env, setup, "_docker", "docker cghistory pull --pl") == ["--platform"]


def test_bash_with_the_argcomplete_script(direct_bash: Callable[[str], list[str]],
                                          public_repo: str) -> None:
    first = direct_bash("docker-cghistory ")
    assert first[:3] == ["list", "pull", "pin"] and "--since" in first
    assert direct_bash("docker-cghistory pu") == ["pull "]
    assert direct_bash("docker-cghistory pull --digest") == ["--digest "]
    assert direct_bash("docker-cghistory --format=j") == ["json "]
    assert direct_bash("docker-cghistory bisect python --format=t") == ["text "]
    assert direct_bash(f"docker-cghistory {public_repo}:1.3") == ["1.36", "1.36.1", "1.37"]
    indexes = direct_bash(f"docker-cghistory pull {public_repo} --index 1")
    assert indexes == ["1", "10", "11"]


# --------------------------------------------------------------------------- zsh and fish
@pytest.mark.parametrize("name", ["_docker-cghistory", "docker-completion.zsh"])
def test_zsh_loads_the_scripts(plugin_env: DockerConfig, name: str) -> None:
    zsh = require_binary("zsh")
    path = COMPLETIONS / name
    if name == "docker-completion.zsh":
        path = plugin_env.home / name
        path.write_text(plugin_env.run("docker", "completion", "zsh").stdout)
    result = plugin_env.run(
        zsh, "-f", "-c",
        f"autoload -U compinit; compinit -u; source {path}; "
        "whence -w _python_argcomplete _docker 2>/dev/null | grep -c function",
        timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert int(result.stdout.strip()) >= 1


def test_fish_completes_docker_cghistory_for_real(plugin_env: DockerConfig,
                                                  public_repo: str) -> None:
    fish = require_binary("fish")
    console = Path(sys.executable).parent
    plugin_env.env["PATH"] = f"{console}:{plugin_env.env['PATH']}"
    script = COMPLETIONS / "docker-cghistory.fish"
    result = plugin_env.run(
        fish, "--no-config", "-c",
        f"source {script}; complete -C 'docker-cghistory pu'; "
        f"complete -C 'docker-cghistory {public_repo}:1.36.'",
        timeout=60)
    assert result.returncode == 0 and result.stderr == ""
    assert result.stdout.splitlines() == [
        "pull\tPull a historical build through the Docker engine",
        f"{public_repo}:1.36.1",
    ]


def test_fish_completes_docker_cghistory_through_dockers_script(
        plugin_env: DockerConfig) -> None:
    fish = require_binary("fish")
    script = plugin_env.home / "docker.fish"
    script.write_text(plugin_env.run("docker", "completion", "fish").stdout)
    result = plugin_env.run(
        fish, "--no-config", "-c",
        f"source {script}; complete -C 'docker cghistory pull --di'", timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "--digest\ta build by digest or unique prefix (6+ hex characters)"]


# --------------------------------------------------------------------------- local images
def test_local_images_are_listed_by_a_background_refresh(
    plugin_env: DockerConfig, dockerd, builds, front: Front,
) -> None:
    require_binary("docker")
    image = f"{front.host}/{builds.repo}:{builds.tag}"
    dockerd.docker("pull", image)
    plugin_env.use_engine(dockerd)
    plugin_env.env["CGHISTORY_REGISTRY"] = front.host
    local = plugin_env.cache / "docker-cghistory" / "complete" / "lists"
    lines, _ = cobra(plugin_env, "")  # starts the refresh; never waits for the engine
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not any(
            p.name.startswith("local-") for p in local.glob("*")):
        time.sleep(0.1)
    time.sleep(0.2)
    lines, _ = cobra(plugin_env, "")
    short = image.removeprefix(f"{front.host}/chainguard/")
    assert f"{short}\tlocal image" in lines

