"""``pull`` against the real dockerd, through the front and the real docker CLI.

What earns trust here is the content: after pulling an older build, running it prints that
build's marker file, not the newest one's.
"""

from __future__ import annotations

import base64
import json
import shlex
import time
from datetime import datetime, timedelta, timezone

import pexpect
import pytest

from docker_cghistory.notfound import looks_like_digest
from tests.support.front import Front
from tests.support.services import Builds, CredHelper, DockerConfig, Dockerd

pytestmark = pytest.mark.integration


def ref(front: Front, builds: Builds, repo: str | None = None, tag: str | None = None) -> str:
    return f"{front.host}/{repo or builds.repo}:{tag or builds.tag}"


def name(front: Front, builds: Builds, repo: str | None = None) -> str:
    return f"{front.host}/{repo or builds.repo}"


def newest_first(builds: Builds, index: int) -> tuple[str, str]:
    """(digest, marker) of the build numbered ``index`` in the listing (0 = newest)."""
    position = len(builds.digests) - 1 - index
    return builds.digests[position], builds.markers[position]


def run_image(env: DockerConfig, image: str) -> str:
    result = env.run("docker", "run", "--rm", "--network", "none", image, "cat", "/build",
                     timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def images(env: DockerConfig) -> dict[str, str]:
    """``REPO:TAG`` → image id, as ``docker image ls`` shows them."""
    result = env.run("docker", "image", "ls", "--no-trunc", "--format",
                     "{{.Repository}}:{{.Tag}} {{.ID}}")
    assert result.returncode == 0, result.stderr
    return dict(line.split(" ", 1) for line in result.stdout.splitlines())


def test_pull_older_build_through_the_docker_cli(
    plugin_env: DockerConfig, dockerd: Dockerd, front: Front, builds: Builds
) -> None:
    digest, marker = newest_first(builds, 2)
    result = plugin_env.run("docker", "cghistory", "pull", ref(front, builds), "--index", "2")
    assert result.returncode == 0, result.stderr
    pulled = f"{name(front, builds)}@{digest}"
    assert result.stdout.splitlines()[-1] == pulled
    assert result.stderr == ""  # not a terminal: quiet but for the result
    assert run_image(plugin_env, pulled) == marker
    assert marker != builds.markers[-1]


@pytest.mark.parametrize("how", ["cooldown", "at-exact", "at-between"])
def test_time_selectors(
    plugin_env: DockerConfig, dockerd: Dockerd, front: Front, builds: Builds, how: str
) -> None:
    """Builds are a day apart, the newest a few minutes old: 2d of cooldown is #2; a build's
    own timestamp is that build; a moment between two builds is the older one."""
    stamp_of_3 = builds.history[len(builds.digests) - 1 - 3][0]
    later = datetime.fromisoformat(stamp_of_3.replace("Z", "+00:00")) + timedelta(hours=5)
    arguments = {
        "cooldown": ["--cooldown", "2d"],
        "at-exact": ["--at", stamp_of_3],
        "at-between": ["--at", later.strftime("%Y-%m-%dT%H:%M:%SZ")],
    }[how]
    index = 2 if how == "cooldown" else 3
    digest, marker = newest_first(builds, index)
    result = plugin_env.cghistory("pull", ref(front, builds), *arguments)
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"{name(front, builds)}@{digest}\n"
    assert run_image(plugin_env, result.stdout.strip()) == marker


def test_tag_and_retag_roll_the_local_tag_back(
    plugin_env: DockerConfig, dockerd: Dockerd, front: Front, builds: Builds
) -> None:
    image = ref(front, builds)
    newest, newest_marker = newest_first(builds, 0)
    previous, previous_marker = newest_first(builds, 1)
    first = plugin_env.cghistory("pull", image, "--index", "0", "--retag")
    assert first.returncode == 0, first.stderr
    assert first.stderr.splitlines() == [
        f"{image} now points at {name(front, builds)}@{newest} (it did not exist before)",
        f"To undo: docker rmi {image}",
    ]
    assert run_image(plugin_env, image) == newest_marker

    second = plugin_env.cghistory("pull", image, "--previous", "--retag",
                                  "--tag", "rollback/busybox:before")
    assert second.returncode == 0, second.stderr
    assert second.stdout.splitlines()[-1] == f"{name(front, builds)}@{previous}"
    assert second.stderr.splitlines()[-2:] == [
        f"{image} now points at {name(front, builds)}@{previous} "
        f"(before: {name(front, builds)}@{newest})",
        f"To undo: docker tag {name(front, builds)}@{newest} {image}",
    ]
    listed = images(plugin_env)
    assert listed[image] == listed["rollback/busybox:before"]
    assert run_image(plugin_env, image) == previous_marker
    assert run_image(plugin_env, "rollback/busybox:before") == previous_marker


def local_marks(env: DockerConfig, image: str) -> list[str]:
    """The LOCAL cell of each row of the listing (``""`` when empty), through the docker CLI."""
    listing = env.run("docker", "cghistory", image)
    assert listing.returncode == 0, listing.stderr
    header, *rows = listing.stdout.splitlines()
    assert header.split() == ["#", "UPDATED", "AGE", "DIGEST", "LOCAL"]
    return [row.split()[-1] if row.split()[-1] in ("tag", "yes") else "" for row in rows]


def test_retag_marks_the_listing_and_its_undo_commands_really_undo(
    plugin_env: DockerConfig, dockerd: Dockerd, front: Front, builds: Builds
) -> None:
    """Issue 12 item 11: after ``--retag`` the listing tells the build IMAGE:TAG runs
    (``tag``) from builds merely present (``yes``), and each printed undo command, run with
    the docker CLI in reverse order, puts the engine's tag back as it was."""
    image, repo = ref(front, builds), name(front, builds)
    newest, newest_marker = newest_first(builds, 0)
    previous, _ = newest_first(builds, 1)
    first = plugin_env.cghistory("pull", image, "--index", "0", "--retag")
    assert first.returncode == 0, first.stderr
    undo_first = first.stderr.splitlines()[-1].removeprefix("To undo: ")
    assert local_marks(plugin_env, image)[:2] == ["tag", ""]

    second = plugin_env.run("docker", "cghistory", "pull", image, "--previous", "--retag",
                            "--format", "json")
    assert second.returncode == 0, second.stderr
    document = json.loads(second.stdout)
    assert document == {
        "Reference": f"{repo}@{previous}", "Digest": previous, "Index": 1,
        "Updated": document["Updated"], "Tag": None, "Retagged": image,
        "PreviousTarget": f"{repo}@{newest}", "Undo": f"docker tag {repo}@{newest} {image}",
    }
    rows = plugin_env.run("docker", "cghistory", image, "--format", "table")
    assert document["Updated"] == rows.stdout.splitlines()[2].split()[1]  # one time format
    assert local_marks(plugin_env, image)[:3] == ["yes", "tag", ""]
    listing = plugin_env.run("docker", "cghistory", image, "-n", "2", "--format", "json")
    assert [(r["Local"], r["LocalTag"]) for r in map(json.loads, listing.stdout.splitlines())
            ] == [(True, False), (True, True)]

    undone = plugin_env.run(*shlex.split(document["Undo"]))
    assert undone.returncode == 0, undone.stderr
    assert run_image(plugin_env, image) == newest_marker
    assert local_marks(plugin_env, image)[:2] == ["tag", "yes"]

    assert undo_first == f"docker rmi {image}"
    undone = plugin_env.run(*shlex.split(undo_first))
    assert undone.returncode == 0, undone.stderr
    assert image not in images(plugin_env)  # as before the first --retag: no such tag
    assert "tag" not in local_marks(plugin_env, image)


def test_pull_by_digest_needs_no_history(
    plugin_env: DockerConfig, dockerd: Dockerd, front: Front, builds: Builds
) -> None:
    """Issue 12 item 8: ``pull IMAGE@sha256:…`` was refused. The digest names the build, so
    it is pulled as it is, even one the history does not list."""
    repo = name(front, builds)
    digest, marker = newest_first(builds, 4)
    front.set_history(builds.repo, builds.tag,
                      [entry for entry in builds.history if entry[1] != digest])
    result = plugin_env.run("docker", "cghistory", "pull", f"{repo}@{digest}")
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"{repo}@{digest}\n"
    assert run_image(plugin_env, f"{repo}@{digest}") == marker
    assert not [r for r in front.requests if "/_chainguard/history/" in r.path]

    refused = plugin_env.run("docker", "cghistory", "pull", f"{repo}@{digest}", "--retag")
    assert refused.returncode == 2
    assert len(refused.stderr.splitlines()) == 1
    assert f"{repo}:latest@{digest}" in refused.stderr
    both = plugin_env.run("docker", "cghistory", "pull", f"{repo}@{digest}", "--previous")
    assert both.returncode == 2 and "drop --previous" in both.stderr

    tagged = plugin_env.run("docker", "cghistory", "pull", f"{repo}:latest@{digest}", "--retag")
    assert tagged.returncode == 0, tagged.stderr
    assert run_image(plugin_env, ref(front, builds)) == marker


def test_a_digest_typed_as_a_tag_gets_a_command_that_works(
    plugin_env: DockerConfig, dockerd: Dockerd, front: Front, builds: Builds
) -> None:
    """``pull python:c171a551fee2`` said "no build selected"; now it names the command, and
    that command, run as printed, pulls the build. A tag of digits alone (``20240607``) is
    read as a tag, so the build is one whose short digest has a letter and a digit: the
    builds' digests change with every run of the suite."""
    digest, marker = next(
        (digest, marker) for digest, marker in
        (newest_first(builds, index) for index in range(1, len(builds.digests)))
        if looks_like_digest(digest[7:19]))
    short = digest[7:19]
    result = plugin_env.run("docker", "cghistory", "pull", f"{name(front, builds)}:{short}")
    assert result.returncode == 2
    line = result.stderr.strip()
    assert len(result.stderr.splitlines()) == 1
    command = line.split("to pull that build: ", 1)[1]
    assert command == f"docker cghistory pull {name(front, builds)} --digest {short}"
    pulled = plugin_env.run(*shlex.split(command))
    assert pulled.returncode == 0, pulled.stderr
    assert pulled.stdout == f"{name(front, builds)}@{digest}\n"
    assert run_image(plugin_env, pulled.stdout.strip()) == marker


def test_private_repository_with_helper_credentials(
    plugin_env: DockerConfig, dockerd: Dockerd, front: Front, builds: Builds,
    cred_helper: object,
) -> None:
    helper: CredHelper = cred_helper(  # type: ignore[operator]
        "acme", {front.host: (builds.user, builds.password)})
    plugin_env.update(credHelpers={front.host: "acme"})
    image = ref(front, builds, repo=builds.private_repo)
    digest, marker = newest_first(builds, 3)
    result = plugin_env.run("docker", "cghistory", "pull", image, "--digest", digest[7:19])
    assert result.returncode == 0, result.stderr
    pulled = f"{name(front, builds, builds.private_repo)}@{digest}"
    assert result.stdout.splitlines()[-1] == pulled
    assert ("get", front.host) in helper.calls()
    assert run_image(plugin_env, pulled) == marker
    assert builds.password not in result.stdout + result.stderr


def test_private_repository_without_credentials_names_the_source(
    plugin_env: DockerConfig, dockerd: Dockerd, front: Front, builds: Builds
) -> None:
    """Refused for want of credentials: one line naming them, and nothing pulled."""
    result = plugin_env.cghistory("pull", ref(front, builds, repo=builds.private_repo),
                                  "--previous")
    assert result.returncode == 1
    assert len(result.stderr.splitlines()) == 1
    assert "anonymous" in result.stderr
    assert result.stdout == ""
    assert dockerd.image_ids() == []


def test_registry_policy_refusal_is_passed_through(
    plugin_env: DockerConfig, dockerd: Dockerd, front: Front, builds: Builds
) -> None:
    message = "pull denied by policy: cooldown (digest younger than 7 days)\x1b[31m"
    body = json.dumps({"errors": [{"code": "DENIED", "message": message}]})
    front.add_fault(r"/manifests/sha256:", "status", status=403, body=body, count=-1,
                    after_auth=True)
    result = plugin_env.cghistory("pull", ref(front, builds), "--index", "0")
    assert result.returncode == 1, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert "refused" in lines[0] and "pull denied by policy: cooldown" in lines[0]
    assert "\x1b" not in result.stderr
    assert result.stdout == ""
    assert dockerd.image_ids() == []  # refused: the engine holds nothing


def test_list_marks_local_builds(
    plugin_env: DockerConfig, dockerd: Dockerd, front: Front, builds: Builds
) -> None:
    digest, _ = newest_first(builds, 1)
    pulled = plugin_env.cghistory("pull", ref(front, builds), "--previous")
    assert pulled.returncode == 0, pulled.stderr
    listing = plugin_env.cghistory(ref(front, builds))
    assert listing.returncode == 0, listing.stderr
    header, *rows = listing.stdout.splitlines()
    assert header.split() == ["#", "UPDATED", "AGE", "DIGEST", "LOCAL"]
    marked = [row.split()[0] for row in rows if row.rstrip().endswith("yes")]
    assert marked == ["1"]  # present by digest; no local tag points at it
    assert digest[7:19] in rows[1]
    assert not any(row.rstrip().endswith("tag") for row in rows)


def test_list_without_an_engine_has_no_local_column(
    docker_config: DockerConfig, front: Front, builds: Builds
) -> None:
    # ``builds`` needs dockerd, which makes docker_config point at it: point elsewhere.
    docker_config.env["DOCKER_HOST"] = f"unix://{docker_config.home}/absent.sock"
    started = time.monotonic()
    listing = docker_config.cghistory(ref(front, builds))
    assert listing.returncode == 0, listing.stderr
    assert listing.stdout.splitlines()[0].split() == ["#", "UPDATED", "AGE", "DIGEST"]
    assert time.monotonic() - started < 60  # a ceiling against waiting on the engine, not speed


@pytest.mark.parametrize(
    ("extra", "status", "words"),
    [
        (["--index", "1", "--at", "2d"], 2, ["at most one of", "--index and --at"]),
        (["--previous", "--cooldown", "1d"], 2, ["--previous and --cooldown"]),
        (["--index", "99"], 1, ["out of range", "6 builds"]),
        (["--digest", "0123456789ab"], 1, ["no build of this tag"]),
        (["--digest", "xyz"], 2, ["invalid digest"]),  # a malformed value: usage error
        (["--cooldown", "30d"], 1, ["no build is old enough"]),
        (["--at", "2001-01-01"], 1, ["before the tag's first build"]),
        ([], 2, ["--digest", "--index", "--previous", "--at", "--cooldown"]),
        (["--index", "1", "--tag", "Bad:Name:x"], 2, ["invalid reference"]),
    ],
)
def test_selector_errors(
    plugin_env: DockerConfig, dockerd: Dockerd, front: Front, builds: Builds,
    extra: list[str], status: int, words: list[str],
) -> None:
    result = plugin_env.run("docker", "cghistory", "pull", ref(front, builds), *extra)
    assert result.returncode == status, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    for word in words:
        assert word in lines[0]
    assert result.stdout == ""
    assert dockerd.image_ids() == []


def test_absent_engine(docker_config: DockerConfig, front: Front, builds: Builds) -> None:
    socket = docker_config.home / "absent" / "docker.sock"
    docker_config.env["DOCKER_HOST"] = f"unix://{socket}"
    result = docker_config.cghistory("pull", ref(front, builds), "--previous")
    assert result.returncode == 1
    assert result.stderr == (
        f"docker-cghistory: cannot reach the Docker engine at unix://{socket}: "
        "No such file or directory\n"
    )


def spawn(env: DockerConfig, *args: str, stdout: str | None = None) -> pexpect.spawn:
    """``docker cghistory ARGS`` on a pseudo-terminal (stdout to a file when asked)."""
    command = " ".join(shlex.quote(a) for a in ("docker", "cghistory", *args))
    if stdout is not None:
        command += f" > {shlex.quote(stdout)}"
    return pexpect.spawn(
        "/bin/sh", ["-c", f"exec {command}"], env=env.env, cwd=str(env.home),
        encoding="utf-8", timeout=30, dimensions=(40, 160),
    )


def test_picker_filters_and_pulls(
    plugin_env: DockerConfig, dockerd: Dockerd, front: Front, builds: Builds
) -> None:
    """Typed hex filters the list; Enter pulls; stdout (a file here) gets only the reference."""
    digest, marker = newest_first(builds, 4)
    out = plugin_env.home / "out.txt"
    child = spawn(plugin_env, "pull", ref(front, builds), stdout=str(out))
    child.expect("Build of")
    child.expect("#5")
    child.send(digest[7:15])
    child.expect(digest[7:15])  # the picker has taken the filter before Enter arrives
    child.send("\r")
    child.expect("Pull complete")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0, child.before
    pulled = f"{name(front, builds)}@{digest}"
    assert out.read_text() == pulled + "\n"
    assert run_image(plugin_env, pulled) == marker


def test_picker_escape_cancels(
    plugin_env: DockerConfig, dockerd: Dockerd, front: Front, builds: Builds
) -> None:
    child = spawn(plugin_env, "pull", ref(front, builds))
    child.expect("Build of")
    child.send("\x1b")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 130
    assert "cancelled" in child.before
    assert dockerd.image_ids() == []


def test_progress_on_a_terminal(
    plugin_env: DockerConfig, dockerd: Dockerd, front: Front, builds: Builds
) -> None:
    digest, _ = newest_first(builds, 0)
    child = spawn(plugin_env, "pull", ref(front, builds), "--index", "0")
    child.expect("Pulling ")
    child.expect("Pull complete")
    child.expect_exact(f"{name(front, builds)}@{digest}")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0


def test_ctrl_c_during_a_pull_leaves_no_retag(
    plugin_env: DockerConfig, dockerd: Dockerd, front: Front, builds: Builds
) -> None:
    image = ref(front, builds)
    front.add_fault(r"/blobs/", "hang", count=-1)
    child = spawn(plugin_env, "pull", image, "--previous", "--retag")
    child.expect("Pulling ")
    time.sleep(1.0)
    child.sendintr()
    child.expect(pexpect.EOF, timeout=20)
    child.close()
    assert child.exitstatus == 130, child.before
    assert "interrupted" in child.before
    assert "now points at" not in child.before  # no retag was reported ...
    front.clear_faults()
    assert image not in images(plugin_env)  # ... nor made (the engine started empty)


@pytest.mark.parametrize("form", ["helper-token", "auths-basic", "auths-identity"])
def test_private_repository_credential_forms(
    plugin_env: DockerConfig, dockerd: Dockerd, front: Front, builds: Builds,
    cred_helper: object, form: str,
) -> None:
    """The engine pulls with the credential the history was read with, whatever its form."""
    if form == "helper-token":
        cred_helper("tok", {front.host: ("<token>", builds.identity_token)})  # type: ignore[operator]
        plugin_env.update(credHelpers={front.host: "tok"})
    elif form == "auths-basic":
        encoded = base64.b64encode(f"{builds.user}:{builds.password}".encode()).decode()
        plugin_env.update(auths={front.host: {"auth": encoded}})
    else:
        plugin_env.update(auths={front.host: {"identitytoken": builds.identity_token}})
    digest, marker = newest_first(builds, 1)
    result = plugin_env.cghistory("pull", ref(front, builds, repo=builds.private_repo),
                                  "--previous")
    assert result.returncode == 0, result.stderr
    pulled = f"{name(front, builds, builds.private_repo)}@{digest}"
    assert result.stdout == pulled + "\n"
    assert run_image(plugin_env, pulled) == marker


def test_platform_passes_through(
    plugin_env: DockerConfig, dockerd: Dockerd, front: Front, builds: Builds
) -> None:
    """The engine's own platform pulls (dockerd 20.10 does not refuse a single-platform image
    for another platform, so only the accepted path is checked here; the unit tests check the
    value reaches docker-py)."""
    server = plugin_env.run("docker", "version", "--format", "{{.Server.Os}}/{{.Server.Arch}}")
    platform = server.stdout.strip()
    result = plugin_env.cghistory("pull", ref(front, builds), "--previous",
                                  "--platform", platform)
    assert result.returncode == 0, result.stderr
    digest, marker = newest_first(builds, 1)
    assert result.stdout == f"{name(front, builds)}@{digest}\n"
    assert run_image(plugin_env, result.stdout.strip()) == marker


def test_no_secret_in_debug_output_or_errors(
    plugin_env: DockerConfig, dockerd: Dockerd, front: Front, builds: Builds,
    cred_helper: object,
) -> None:
    front.configure(token_prefix="REGISTRYTOKEN")
    cred_helper("acme", {front.host: (builds.user, builds.password)})  # type: ignore[operator]
    plugin_env.update(credHelpers={front.host: "acme"})
    image = ref(front, builds, repo=builds.private_repo)
    ok = plugin_env.cghistory("--debug", "pull", image, "--index", "1", "--tag", "x/y:z")
    assert ok.returncode == 0, ok.stderr
    # A refusal in the middle of the engine's pull, with the same credentials.
    front.add_fault(r"/manifests/sha256:", "status", status=401, count=-1, after_auth=True)
    refused = plugin_env.cghistory("--debug", "pull", image, "--index", "2")
    assert refused.returncode == 1
    assert "docker-credential-acme" in refused.stderr.splitlines()[-1]
    for output in (ok.stdout, ok.stderr, refused.stdout, refused.stderr):
        assert builds.password not in output
        assert "REGISTRYTOKEN" not in output


# --------------------------------------------------------------------------- issue 12: #, times
def _same_second_history(builds: Builds) -> list[list[str]]:
    """The real builds (oldest first) with #1, #2 and #3 in one second, as in issue 12:
    #1 at 09:07:00.971, #2 at 09:07:00.2, #3 at 09:07:00 (the registry wrote no fraction)."""
    second = (datetime.now(timezone.utc) - timedelta(days=3)).replace(
        hour=9, minute=7, second=0, microsecond=0)
    stamp = second.strftime("%Y-%m-%dT%H:%M:%S")
    newest_first_stamps = [
        (second + timedelta(hours=30)).strftime("%Y-%m-%dT%H:%M:%S") + ".5Z",
        stamp + ".971Z", stamp + ".2Z", stamp + "Z",
        (second - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        (second - timedelta(days=2)).strftime("%Y-%m-%dT%H:%M:%SZ"),
    ]
    assert len(newest_first_stamps) == len(builds.digests)
    return [[ts, digest] for ts, digest in zip(reversed(newest_first_stamps), builds.digests,
                                              strict=True)]


def _table(env: DockerConfig, *args: str) -> list[list[str]]:
    """Rows of ``docker cghistory ARGS`` (the table, through the docker CLI), header dropped."""
    result = env.run("docker", "cghistory", *args)
    assert result.returncode == 0, result.stderr
    return [line.split() for line in result.stdout.splitlines()[1:]]


def test_a_time_copied_from_the_table_pulls_that_build(
    plugin_env: DockerConfig, dockerd: Dockerd, front: Front, builds: Builds
) -> None:
    """Issue 12 item 3: the table printed 09:07:00Z for #1 (really 09:07:00.971Z) and
    ``pull --at`` with it pulled #2. Every printed time now pulls its own build, also #3,
    whose registry time has no fraction, in the same second as #1 and #2."""
    front.set_history(builds.repo, builds.tag, _same_second_history(builds))
    image = ref(front, builds)
    rows = _table(plugin_env, image)
    assert [row[0] for row in rows] == [str(i) for i in range(len(builds.digests))]
    for index in (1, 3):
        digest, marker = newest_first(builds, index)
        printed = rows[index][1]
        assert printed.endswith(".971Z" if index == 1 else ".000Z"), printed
        result = plugin_env.run("docker", "cghistory", "pull", image, "--at", printed)
        assert result.returncode == 0, result.stderr
        assert result.stdout.splitlines()[-1] == f"{name(front, builds)}@{digest}"
        assert run_image(plugin_env, result.stdout.splitlines()[-1]) == marker
    # Typed without the fraction, the time covers its second: the newest build in it, #1.
    bare = rows[1][1].split(".")[0] + "Z"
    result = plugin_env.run("docker", "cghistory", "pull", image, "--at", bare, "-q")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == f"{name(front, builds)}@{newest_first(builds, 1)[0]}"


def test_an_index_from_an_until_listing_pulls_that_build(
    plugin_env: DockerConfig, dockerd: Dockerd, front: Front, builds: Builds
) -> None:
    """Issue 12 item 2: ``--until`` once numbered its first row 0, and ``pull --index 0``
    pulled the newest build. Rows keep their full-listing ``#``."""
    front.set_history(builds.repo, builds.tag, _same_second_history(builds))
    image = ref(front, builds)
    full = _table(plugin_env, image, "--no-trunc")
    until = full[2][1]  # #2's own time: the window ends at #2
    window = _table(plugin_env, image, "--no-trunc", "--until", until, "-n", "2")
    # (#, UPDATED, DIGEST): AGE, in between, may tick between the runs.
    assert [(r[0], r[1], r[-1]) for r in window] == [(r[0], r[1], r[-1]) for r in full[2:4]]
    index, digest = window[0][0], window[0][-1]
    assert index == "2"
    result = plugin_env.run("docker", "cghistory", "pull", image, "--index", index)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == f"{name(front, builds)}@{digest}"
    assert run_image(plugin_env, result.stdout.splitlines()[-1]) == newest_first(builds, 2)[1]
