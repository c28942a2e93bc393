"""The test front itself, against the real registry and dockerd, with plain ``requests``.

Every other integration test trusts the front to behave like cgr.dev; these tests are what
earns that trust, so they speak the protocol by hand rather than through the project's code.
"""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import requests

from tests.support.front import Front, RemoteFront, make_history, parse_timestamp
from tests.support.services import Builds, DockerConfig, Dockerd

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
T0 = datetime(2022, 1, 1, tzinfo=timezone.utc)
MANIFEST_ACCEPT = ", ".join(
    [
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    ]
)


def parse_challenge(header: str) -> dict[str, str]:
    scheme, _, params = header.partition(" ")
    assert scheme == "Bearer"
    return dict(re.findall(r'(\w+)="([^"]*)"', params))


def token(
    front: Front,
    repo: str | None,
    auth: tuple[str, str] | None = None,
    headers: dict[str, str] | None = None,
) -> str:
    params = {"service": front.service}
    if repo:
        params["scope"] = f"repository:{repo}:pull"
    r = requests.get(f"{front.url}/token", params=params, auth=auth, headers=headers, timeout=5)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["token"] == body["access_token"]
    assert body["expires_in"] > 0
    parse_timestamp(body["issued_at"])
    return body["token"]


def history(front: Front, repo: str, tag: str, tok: str, **params: str) -> requests.Response:
    return requests.get(
        f"{front.url}/v2/{repo}/_chainguard/history/{tag}",
        params=params,
        headers={"Authorization": f"Bearer {tok}"},
        timeout=5,
    )


# --------------------------------------------------------------------------- token flow
def test_challenge_token_history_window_and_cap(front: Front) -> None:
    repo = "foo.com/chainguard-base"
    entries = make_history(2500, T0, timedelta(hours=6), seed="cap", fractional="mixed")
    front.set_repo(repo, {"public": True, "history": {"latest": entries}})

    base = requests.get(f"{front.url}/v2/", timeout=5)
    assert base.status_code == 401
    assert base.json()["errors"][0]["code"] == "UNAUTHORIZED"
    challenge = parse_challenge(base.headers["WWW-Authenticate"])
    assert challenge == {"realm": f"{front.url}/token", "service": "cghistory-front"}

    probe = requests.get(f"{front.url}/v2/{repo}/_chainguard/history/latest", timeout=5)
    assert probe.status_code == 401
    assert parse_challenge(probe.headers["WWW-Authenticate"])["scope"] == (
        f"repository:{repo}:pull"
    )

    tok = token(front, repo)
    ok = requests.get(f"{front.url}/v2/", headers={"Authorization": f"Bearer {tok}"}, timeout=5)
    assert (ok.status_code, ok.json()) == (200, {})

    page = history(front, repo, "latest", tok).json()["history"]
    assert len(page) == 1000
    assert [(e["updateTimestamp"], e["digest"]) for e in page] == [tuple(e) for e in entries[:1000]]

    # Inclusive bounds, accepted with and without fractional seconds.
    start, end = entries[1500][0], entries[1503][0]
    assert "." in entries[1501][0] and "." not in entries[1500][0]
    window = history(front, repo, "latest", tok, start=start, end=end).json()["history"]
    assert [e["digest"] for e in window] == [e[1] for e in entries[1500:1504]]
    tail = history(front, repo, "latest", tok, start="2023-09-01T00:00:00Z").json()["history"]
    assert tail and all(
        parse_timestamp(e["updateTimestamp"]) >= parse_timestamp("2023-09-01T00:00:00Z")
        for e in tail
    )
    assert len(tail) == len([e for e in entries if e[0] >= "2023-09-01"])

    front.configure(page_cap=10)
    assert len(history(front, repo, "latest", tok).json()["history"]) == 10

    bad = history(front, repo, "latest", tok, start="yesterday")
    assert bad.status_code == 400
    missing = history(front, repo, "latest-dev", tok)  # public tag, no builds
    assert missing.status_code == 404
    assert missing.json()["errors"][0]["code"] == "MANIFEST_UNKNOWN"
    other = token(front, "chainguard/unknown")
    unknown = history(front, "chainguard/unknown", "latest", other)
    assert unknown.status_code == 404
    assert unknown.json()["errors"][0]["code"] == "NAME_UNKNOWN"
    # A token is good for its own repository only.
    assert history(front, "chainguard/unknown", "latest", tok).status_code == 401


def test_anonymous_public_tags_legacy_keys_and_order(front: Front) -> None:
    entries = make_history(20, T0, seed="legacy")
    front.set_repo(
        "chainguard/python",
        {
            "public": True,
            "legacy_keys": True,
            "order": "shuffled",
            "history": {"latest": entries, "3.12": entries},
        },
    )
    tok = token(front, "chainguard/python")
    r = history(front, "chainguard/python", "latest", tok)
    page = r.json()["history"]
    assert set(page[0]) == {"UpdateTimestamp", "Digest"}
    assert sorted((e["UpdateTimestamp"], e["Digest"]) for e in page) == [tuple(e) for e in entries]
    assert [e["Digest"] for e in page] != [e[1] for e in entries]

    denied = history(front, "chainguard/python", "3.12", tok)
    assert denied.status_code == 403
    assert denied.json()["errors"][0]["code"] == "DENIED"

    front.update_repo("chainguard/python", history_api=False, legacy_keys=False, order="desc")
    assert history(front, "chainguard/python", "latest", tok).status_code == 404
    front.update_repo("chainguard/python", history_api=True)
    page = history(front, "chainguard/python", "latest", tok).json()["history"]
    assert [e["digest"] for e in page] == [e[1] for e in reversed(entries)]


def test_private_repo_credentials(front: Front) -> None:
    repo = "private-registry.com/apko"
    entries = make_history(3, T0, seed="private")
    front.set_repo(
        repo,
        {
            "users": {
                "alice": {"password": "s3cret"},
                "helper": {"password": "hs", "basic_refused": True},
            },
            "bearer_secrets": ["hs"],
            "identity_tokens": {"refresh-me": "alice"},
            "history": {"latest": entries, "1.0": entries},
        },
    )
    front.configure(token_prefix="MARK-")
    anon = token(front, repo)
    assert anon.startswith("MARK-")
    r = history(front, repo, "latest", anon)
    assert r.status_code == 401
    assert parse_challenge(r.headers["WWW-Authenticate"])["error"] == "insufficient_scope"

    basic = token(front, repo, auth=("alice", "s3cret"))
    assert history(front, repo, "1.0", basic).json()["history"][0]["digest"] == entries[0][1]

    params = {"service": "cghistory-front", "scope": f"repository:{repo}:pull"}
    wrong = requests.get(f"{front.url}/token", params=params, auth=("alice", "nope"), timeout=5)
    assert wrong.status_code == 401
    refused = requests.get(f"{front.url}/token", params=params, auth=("helper", "hs"), timeout=5)
    assert refused.status_code == 401
    bearer = token(front, repo, headers={"Authorization": "Bearer hs"})
    assert history(front, repo, "latest", bearer).status_code == 200

    oauth = requests.post(
        f"{front.url}/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": "refresh-me",
            "service": "cghistory-front",
            "scope": f"repository:{repo}:pull",
            "client_id": "docker",
        },
        timeout=5,
    )
    assert oauth.status_code == 200, oauth.text
    assert history(front, repo, "latest", oauth.json()["access_token"]).status_code == 200
    bad_oauth = requests.post(
        f"{front.url}/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": "stolen",
            "scope": f"repository:{repo}:pull",
        },
        timeout=5,
    )
    assert bad_oauth.status_code == 401

    front.expire_tokens()
    expired = history(front, repo, "latest", basic)
    assert expired.status_code == 401
    assert parse_challenge(expired.headers["WWW-Authenticate"])["error"] == "invalid_token"

    log = front.requests
    kinds = [r.auth for r in log if r.path == "/token"]
    assert kinds == ["none", "basic", "basic", "basic", "bearer", "refresh", "refresh"]
    dumped = json.dumps([r._asdict() for r in log])
    for secret in ("s3cret", "refresh-me", "stolen", basic):
        assert secret not in dumped


# --------------------------------------------------------------------------- proxy + engine
def test_proxy_manifest_and_blob_by_digest(front: Front, builds: Builds) -> None:
    digest = builds.digests[2]
    tok = token(front, builds.repo)
    auth = {"Authorization": f"Bearer {tok}", "Accept": MANIFEST_ACCEPT}
    url = f"{front.url}/v2/{builds.repo}/manifests/{digest}"
    head = requests.head(url, headers=auth, timeout=5)
    assert head.status_code == 200
    assert head.headers["Docker-Content-Digest"] == digest
    r = requests.get(url, headers=auth, timeout=5)
    assert r.status_code == 200
    assert "sha256:" + hashlib.sha256(r.content).hexdigest() == digest
    assert r.headers["Content-Type"] == "application/vnd.docker.distribution.manifest.v2+json"
    layer = r.json()["layers"][0]["digest"]
    blob = requests.get(f"{front.url}/v2/{builds.repo}/blobs/{layer}", headers=auth, timeout=10)
    assert "sha256:" + hashlib.sha256(blob.content).hexdigest() == layer
    assert int(blob.headers["Content-Length"]) == len(blob.content) > 500_000

    tags = requests.get(f"{front.url}/v2/{builds.repo}/tags/list", headers=auth, timeout=5)
    assert tags.json()["tags"] == ["latest"]
    # Anonymous may read a non-public tag's manifest only by digest.
    by_tag = requests.get(f"{front.url}/v2/{builds.repo}/manifests/1.36", headers=auth, timeout=5)
    assert by_tag.status_code == 403
    missing = requests.get(url.replace(digest, "sha256:" + "0" * 64), headers=auth, timeout=5)
    assert missing.status_code == 404

    hist = history(front, builds.repo, builds.tag, tok).json()["history"]
    assert [e["digest"] for e in hist] == builds.digests
    newest = parse_timestamp(hist[-1]["updateTimestamp"])
    assert timedelta(0) < datetime.now(timezone.utc) - newest < timedelta(hours=1)


def test_docker_pull_through_front(
    front: Front, builds: Builds, dockerd: Dockerd, docker_config: DockerConfig
) -> None:
    ref = f"{front.host}/{builds.repo}@{builds.digests[1]}"
    pulled = docker_config.run("docker", "pull", ref)
    assert pulled.returncode == 0, pulled.stderr
    ran = docker_config.run("docker", "run", "--rm", "--network", "none", ref, "cat", "/build")
    assert ran.stdout == builds.markers[1]
    token_calls = [r for r in front.requests if r.path == "/token"]
    assert token_calls and all(r.auth == "none" for r in token_calls)
    assert any(r.path.endswith(f"/manifests/{builds.digests[1]}") for r in front.requests)

    # Private org repo: docker login (Basic at the token endpoint), then pull by tag.
    login = docker_config.run(
        "docker", "login", front.host, "-u", builds.user, "--password-stdin", input=builds.password
    )
    assert login.returncode == 0, login.stderr
    private = f"{front.host}/{builds.private_repo}:{builds.tag}"
    pulled = docker_config.run("docker", "pull", private)
    assert pulled.returncode == 0, pulled.stderr
    ran = docker_config.run("docker", "run", "--rm", "--network", "none", private, "cat", "/build")
    assert ran.stdout == builds.markers[-1]


# --------------------------------------------------------------------------- faults, latency
def test_faults_round_trip(front: Front) -> None:
    repo = "chainguard/faulty"
    front.set_repo(repo, {"public": True, "history": {"latest": make_history(3, T0)}})
    tok = token(front, repo)
    path = f"/v2/{repo}/_chainguard/history/latest"
    url = front.url + path
    auth = {"Authorization": f"Bearer {tok}"}

    fault = front.add_fault("/_chainguard/history/", "status", count=2, status=503, retry_after=7)
    for _ in range(2):
        r = requests.get(url, headers=auth, timeout=5)
        assert (r.status_code, r.headers["Retry-After"]) == (503, "7")
    assert requests.get(url, headers=auth, timeout=5).status_code == 200
    assert fault.hits == 2

    # Faults are taken before auth unless after_auth: an unauthenticated probe consumes it.
    front.add_fault("/_chainguard/history/", "status", status=500, after_auth=True)
    assert requests.get(url, timeout=5).status_code == 401
    assert requests.get(url, headers=auth, timeout=5).status_code == 500

    front.add_fault("history", "reset")
    with pytest.raises(requests.ConnectionError):
        requests.get(url, headers=auth, timeout=5)
    front.add_fault("history", "truncate", after_auth=True)
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        requests.get(url, headers=auth, timeout=5)
    front.add_fault("history", "truncate", body='{"history": [{"upd')
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        requests.get(url, headers=auth, timeout=5)
    front.add_fault("history", "html", status=502)
    r = requests.get(url, headers=auth, timeout=5)
    assert (r.status_code, r.headers["Content-Type"]) == (502, "text/html")
    front.add_fault("history", "nonjson")
    with pytest.raises(ValueError):
        requests.get(url, headers=auth, timeout=5).json()
    front.add_fault("history", "body", body='{"history": [{"digest": 7}]}')
    assert requests.get(url, headers=auth, timeout=5).json() == {"history": [{"digest": 7}]}
    front.add_fault("history", "redirect", location="http://example.invalid/elsewhere")
    r = requests.get(url, headers=auth, timeout=5, allow_redirects=False)
    assert (r.status_code, r.headers["Location"]) == (302, "http://example.invalid/elsewhere")
    front.token_fault("status", status=429, count=-1)
    for _ in range(3):
        assert requests.get(f"{front.url}/token", timeout=5).status_code == 429

    front.add_fault("history", "hang")
    with pytest.raises(requests.exceptions.ReadTimeout):  # the answer never came
        requests.get(url, headers=auth, timeout=(30, 0.5))
    front.clear_faults()
    assert requests.get(url, headers=auth, timeout=5).status_code == 200


def test_keep_alive_and_latency(front: Front) -> None:
    front.set_repo("chainguard/slow", {"public": True, "history": {"latest": make_history(2, T0)}})
    before = front.connection_count
    with requests.Session() as s:
        tok = s.get(
            f"{front.url}/token", params={"scope": "repository:chainguard/slow:pull"}, timeout=5
        ).json()["token"]
        front.set_latency(per_request_s=0.05, per_connection_s=0.1)
        url = f"{front.url}/v2/chainguard/slow/_chainguard/history/latest"
        timings = []
        for _ in range(3):
            t = time.monotonic()
            assert s.get(url, headers={"Authorization": f"Bearer {tok}"}, timeout=5).ok
            timings.append(time.monotonic() - t)
    # One connection for the three requests (counted, not timed: an upper bound on the time
    # fails on a loaded machine). Every request pays per_request; a new connection pays more.
    assert front.connection_count == before + 1
    assert all(t >= 0.05 for t in timings)
    t = time.monotonic()
    requests.get(f"{front.url}/v2/", timeout=5)
    assert time.monotonic() - t >= 0.15


def test_remote_control_and_script(front: Front, tmp_path: Path) -> None:
    remote = RemoteFront(front.url)
    remote.set_repo("chainguard/remote", {"public": True})
    remote.set_history("chainguard/remote", "latest", make_history(4, T0, seed="r"))
    assert "chainguard/remote" in remote.state()["repos"]
    remote.add_fault("history", "status", status=418)
    tok = token(front, "chainguard/remote")
    assert history(front, "chainguard/remote", "latest", tok).status_code == 418
    assert [r.path for r in remote.requests][
        -1
    ] == "/v2/chainguard/remote/_chainguard/history/latest"

    config = tmp_path / "front.json"
    config.write_text(
        json.dumps(
            {
                "repos": {
                    "chainguard/python": {
                        "public": True,
                        "history": {"latest": make_history(5, T0, seed="s")},
                    }
                }
            }
        )
    )
    proc = subprocess.Popen(
        [
            sys.executable,
            str(ROOT / "scripts" / "front.py"),
            "--port",
            "0",
            "--config",
            str(config),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:")
        standalone = RemoteFront(url)
        assert standalone.state()["repos"] == ["chainguard/python"]
        t = requests.get(
            f"{url}/token", params={"scope": "repository:chainguard/python:pull"}, timeout=5
        ).json()["token"]
        r = requests.get(
            f"{url}/v2/chainguard/python/_chainguard/history/latest",
            headers={"Authorization": f"Bearer {t}"},
            timeout=5,
        )
        assert len(r.json()["history"]) == 5
    finally:
        proc.terminate()
        assert proc.wait(timeout=5) == 0


def test_make_history_is_deterministic() -> None:
    a = make_history(6, T0, timedelta(minutes=1), seed=3, fractional="mixed")
    assert a == make_history(6, T0, timedelta(minutes=1), seed=3, fractional="mixed")
    assert ["." in ts for ts, _ in a] == [False, True] * 3
    assert all(re.fullmatch(r"sha256:[0-9a-f]{64}", d) for _, d in a)
    assert [parse_timestamp(ts) for ts, _ in a] == sorted(parse_timestamp(ts) for ts, _ in a)
