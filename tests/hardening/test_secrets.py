"""No secret ever leaves the credential store: not to stdout, stderr, the cache or any file.

ONE test drives every command and error path with ``--debug`` (which logs every request)
against the front, whose credentials and issued tokens all carry a marker string: anonymous
and private listings with each kind of credential docker knows (``auths`` user/password and
identity token, ``credHelpers``, ``credsStore``), pull, pin, completion (docker's protocol and
argcomplete's), bisect, the plugin path through the docker CLI, a wrong password, an expired
token, and token endpoints that fail or echo the secret back. Afterwards no marker (nor the
base64 that carries it in a Basic header) may appear in any output or in any file the tool
wrote (the cache and the working tree); the docker config must be byte for byte unchanged by
every command but ``install``, which writes only into ``cli-plugins``; every cache file is
0600 and every cache folder 0700.
"""

from __future__ import annotations

import base64
import hashlib
import json
import stat
import sys
from pathlib import Path

import pytest

from tests.support.front import Front
from tests.support.services import Builds, Dockerd, Registry, make_cred_helper

from .helpers import (
    Run,
    add_repo,
    assert_clean,
    assert_one_line_error,
    cache_dirs,
    cache_files,
    hard_config,
    run_tool,
)

pytestmark = pytest.mark.integration

MARK = "S3CR3T"
USER = f"u-{MARK}-user"
PASSWORD = f"pw-{MARK}-7f3a91"
WRONG = f"wrong-{MARK}-1b2c"
BEARER = f"bearer-{MARK}-c0de55"
IDENTITY = f"idtok-{MARK}-9e9e01"
TOKEN_PREFIX = f"tok-{MARK}-"
PRIVATE = "secret.corp/app"
PUBLIC = "secretpub/app"


def _forms(*secrets: str) -> list[bytes]:
    """Every spelling a secret could leak in: raw, and inside a Basic header."""
    forms = {MARK.encode()}
    for secret in secrets:
        forms.add(secret.encode())
        for user in (USER, "<token>", ""):
            forms.add(base64.b64encode(f"{user}:{secret}".encode()))
            forms.add(base64.b64encode(f"{user}:{secret}".encode()).rstrip(b"="))
    return sorted(forms)


FORBIDDEN = _forms(PASSWORD, WRONG, BEARER, IDENTITY)


def _tree_hash(folder: Path, skip: str | None = None) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()
            and (skip is None or skip not in p.relative_to(folder).parts)}


def _leaks(data: bytes) -> list[bytes]:
    return [form for form in FORBIDDEN if form in data]


def test_no_secret_appears_in_any_output_or_file(
    front: Front, registry: Registry, builds: Builds, dockerd: Dockerd, tmp_path: Path
) -> None:
    front.configure(token_prefix=TOKEN_PREFIX)
    host = front.host
    # One principal, known to both repositories (the front keeps credentials per repository;
    # cgr.dev knows users, whose credentials it accepts for any scope).
    principal = {"users": {USER: {"password": PASSWORD}}, "bearer_secrets": [BEARER],
                 "identity_tokens": {IDENTITY: USER}}
    public = add_repo(front, PUBLIC, builds.history, registry=registry, builds=builds,
                      **principal)
    private = add_repo(front, PRIVATE, builds.history, registry=registry, builds=builds,
                       public=False, **principal)
    newest_first = [digest for _, digest in reversed(builds.history)]
    config = hard_config(tmp_path / "client", dockerd)
    work = config.home / "project"
    work.mkdir()
    (work / "Dockerfile").write_text(f"FROM {private} AS base\nFROM {public}\n")
    make_cred_helper(config.bin_dir, "markhelper", {host: (USER, BEARER)})
    make_cred_helper(config.bin_dir, "markstore", {host: ("<token>", IDENTITY)})
    basic = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    configs = {
        "anonymous": {},
        "auths": {"auths": {host: {"auth": basic}}},
        "identity token": {"auths": {host: {"identitytoken": IDENTITY}}},
        "credHelpers": {"credHelpers": {host: "markhelper"}},
        "credsStore": {"credsStore": "markstore"},
        "wrong password": {"auths": {host: {"auth": base64.b64encode(
            f"{USER}:{WRONG}".encode()).decode()}}},
    }
    runs: list[tuple[str, Run]] = []

    def run(label: str, credentials: str, *args: str, cwd: Path = work,
            env: dict[str, str] | None = None) -> Run:
        config.write(configs[credentials])
        before = _tree_hash(config.dir)
        result = run_tool(env or config.env, *args, cwd=cwd, timeout=120)
        assert _tree_hash(config.dir) == before, f"{label}: the docker config was modified"
        runs.append((label, result))
        return result

    def ok(result: Run) -> Run:
        assert_clean(result)
        assert result.returncode == 0, result.describe()
        return result

    # -- listings with every kind of credential
    ok(run("list public", "anonymous", "list", "-q", public, "--debug"))
    for kind in ("auths", "identity token", "credHelpers", "credsStore"):
        listed = ok(run(f"list private ({kind})", kind, "list", private, "--no-trunc",
                        "--debug"))
        assert newest_first[0] in listed.stdout
    # -- commands
    pulled = ok(run("pull", "auths", "pull", private, "--index", "1", "--debug"))
    assert pulled.stdout.splitlines()[-1] == f"{host}/{PRIVATE}@{newest_first[1]}"
    ok(run("pin", "credHelpers", "pin", "--debug", str(work)))
    assert newest_first[0] in (work / "Dockerfile").read_text()
    good = newest_first[2]
    ok(run("bisect", "identity token", "bisect", private, "--good", "2", "--bad", "0",
           "--debug", "--", sys.executable, "-c",
           f"import sys; sys.exit(0 if sys.argv[1].endswith({good!r}) else 1)", "{}"))
    for label, words in (("builds", ["pull", private, "--digest", ""]),
                         ("tags", ["list", f"{host}/{PRIVATE}:"]),
                         ("images", ["list", ""])):
        answer = ok(run(f"completion ({label})", "credsStore", "__complete", "cghistory",
                        *words))
        if label == "builds":
            assert newest_first[0] in answer.stdout
    reply = work / "argcomplete.out"
    argcomplete_env = dict(config.env, _ARGCOMPLETE="1", _ARGCOMPLETE_SHELL="bash",
                           COMP_LINE=f"docker-cghistory pull {private} --index ",
                           _ARGCOMPLETE_STDOUT_FILENAME=str(reply))
    argcomplete_env["COMP_POINT"] = str(len(argcomplete_env["COMP_LINE"]))
    ok(run("argcomplete", "auths", env=argcomplete_env))
    assert reply.read_text().strip()
    # -- error paths
    assert_one_line_error(run("wrong password", "wrong password", "list", private), "refused")
    run("wrong password (debug)", "wrong password", "list", private, "--debug")
    front.expire_tokens()  # the cached tokens are now refused: refreshed mid-run
    ok(run("expired token", "auths", "list", "-q", private, "--debug"))
    # Below, the cached tokens are refused first, so every run meets the failing endpoint.
    front.expire_tokens()
    front.token_fault("status", count=-1, status=503)
    assert_one_line_error(run("token endpoint down", "identity token", "list", private),
                          "token", "503")
    run("token endpoint down (debug)", "identity token", "list", private, "--debug")
    front.clear_faults()
    echo = json.dumps({"errors": [{"code": "UNAUTHORIZED",
                                   "message": f"bad password {PASSWORD} for {USER} {IDENTITY}"}]})
    front.expire_tokens()
    front.token_fault("status", count=-1, status=401, body=echo)
    assert_one_line_error(run("token endpoint echoes the secret", "auths", "list", private),
                          "refused")
    run("token endpoint echoes the secret (debug)", "credHelpers", "list", private, "--debug")
    front.clear_faults()
    front.add_fault(f"^/v2/{PRIVATE}/_chainguard/history/", "status", count=-1, status=500,
                    body=echo, after_auth=True)
    assert_one_line_error(run("history error echoes the secret", "auths", "list", private),
                          "HTTP 500")
    run("history error echoes the secret (debug)", "auths", "list", private, "--debug")
    front.clear_faults()
    # -- the plugin path, through the docker CLI
    installed_before = _tree_hash(config.dir)
    ok(run_tool(config.env, "install", "--dir", str(config.plugins_dir), cwd=work))
    changed = {name for name, digest in _tree_hash(config.dir).items()
               if installed_before.get(name) != digest}
    assert changed == {"cli-plugins/docker-cghistory"}, changed
    config.write(configs["auths"])
    for words in (["cghistory", "--debug", private], ["-D", "cghistory", private]):
        before = _tree_hash(config.dir, skip="cli-plugins")
        result = config.run("docker", *words, timeout=120)
        assert result.returncode == 0, result.stderr
        runs.append((f"docker {' '.join(words[:2])}", Run(["docker", "", *words], 0,
                                                        result.stdout, result.stderr, 0, 0)))
        assert _tree_hash(config.dir, skip="cli-plugins") == before

    # -- the paths the secrets really took (so the test proves something)
    kinds = {request.auth for request in front.requests if request.path == "/token"}
    assert {"none", "basic", "bearer", "refresh"} <= kinds, kinds

    # -- nothing leaked, anywhere
    for label, result in runs:
        for stream in (result.stdout, result.stderr):
            leaked = _leaks(stream.encode())
            assert not leaked, f"{label}: {leaked} in output\n{result.describe()}"
    written = [p for p in config.home.rglob("*") if p.is_file()]
    written += [p for p in (config.cache, config.dir.parent / "config") for p in p.rglob("*")
                if p.is_file()]
    written += [p for p in config.dir.rglob("*") if p.is_file() and p.name != "config.json"]
    assert written
    for path in written:
        leaked = _leaks(path.read_bytes())
        assert not leaked, f"{leaked} in {path}"
    # -- the cache: private files in private folders
    files = cache_files(config.cache)
    assert any("tokens" in p.parts for p in files), files
    for path in files:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
        assert not path.name.endswith(".tmp"), path
    for folder in cache_dirs(config.cache):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700, folder
