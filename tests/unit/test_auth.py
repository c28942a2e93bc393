"""Registry authentication (``auth.py``): challenges, the token exchange, the token cache,
realm checks, and the one probe that learns the realm while concurrent requests wait.
"""

from __future__ import annotations

import base64
import contextlib
import json
import re
import threading
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from docker_cghistory import cache
from docker_cghistory.auth import Challenge, RealmDiscovery, parse_challenge
from docker_cghistory.credentials import Credential
from docker_cghistory.errors import AuthError, RegistryError
from docker_cghistory.history import Window
from docker_cghistory.reference import parse_cli
from docker_cghistory.transport import Answer

from .conftest import (
    CHALLENGE,
    HELPER_SECRET,
    IDENTITY,
    PASSWORD,
    TOKEN_PREFIX,
    FakeCgr,
    entries,
)
from .registryhelpers import (
    BASIC,
    HELPER,
    HISTORY_URL,
    IDENTITY_CREDENTIAL,
    assert_clean,
    client,
    digests,
    expected,
)

# --- parsing ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "challenge"),
    [
        (CHALLENGE, Challenge("bearer", "https://cgr.dev/token", "cgr.dev")),
        ('bearer realm="https://a/t", service="s", scope="repository:x:pull"',
         Challenge("bearer", "https://a/t", "s")),
        ("Bearer realm=https://a/t,service=s", Challenge("bearer", "https://a/t", "s")),
        ('Bearer service="s",REALM="https://a/t"', Challenge("bearer", "https://a/t", "s")),
        ('Basic realm="Registry Realm"', Challenge("basic", "Registry Realm", "")),
        ("Basic", Challenge("basic", "", "")),
        ('Bearer realm="https://a/t?x=1,2",service="s"',
         Challenge("bearer", "https://a/t?x=1,2", "s")),
    ],
)
def test_parse_challenge(header: str, challenge: Challenge) -> None:
    assert parse_challenge(header) == challenge


def test_parse_challenge_absent() -> None:
    assert parse_challenge("") is None
    assert parse_challenge("   ") is None


# --- token flows --------------------------------------------------------------------------------


def test_anonymous_token_flow(cgr: FakeCgr) -> None:
    builds = client().history(parse_cli("python"))
    assert digests(builds) == expected(cgr, "chainguard/python")
    (token_call,) = cgr.token_calls
    assert "Authorization" not in token_call.headers
    query = parse_qs(urlsplit(token_call.url).query)
    assert query == {"scope": ["repository:chainguard/python:pull"], "service": ["cgr.dev"]}
    history_calls = cgr.calls("/v2/chainguard/python/_chainguard/history/latest")
    assert history_calls[0].headers.get("Authorization") is None
    assert history_calls[-1].headers["Authorization"].startswith(f"Bearer {TOKEN_PREFIX}")


def test_basic_flow(cgr: FakeCgr) -> None:
    builds = client(BASIC).history(parse_cli("cgr.dev/acme.com/private"))
    assert digests(builds) == expected(cgr, "acme.com/private")
    (token_call,) = cgr.token_calls
    sent = token_call.headers["Authorization"]
    assert sent == "Basic " + base64.b64encode(f"puller:{PASSWORD}".encode()).decode()
    # The password goes only to the token endpoint, never to the registry API.
    for call in cgr.calls("/v2/"):
        assert not call.headers.get("Authorization", "").startswith("Basic")


def test_identity_token_posts_the_refresh_form(cgr: FakeCgr) -> None:
    builds = client(IDENTITY_CREDENTIAL).history(parse_cli("cgr.dev/acme.com/private"))
    assert digests(builds) == expected(cgr, "acme.com/private")
    (token_call,) = cgr.token_calls
    assert token_call.method == "POST"
    form = {k: v[0] for k, v in parse_qs(token_call.text).items()}
    assert form["grant_type"] == "refresh_token"
    assert form["refresh_token"] == IDENTITY
    assert form["scope"] == "repository:acme.com/private:pull"
    assert form["service"] == "cgr.dev"
    assert form["client_id"]
    assert IDENTITY not in token_call.url


def test_helper_credential_falls_back_to_the_bearer_exchange(cgr: FakeCgr) -> None:
    builds = client(HELPER).history(parse_cli("cgr.dev/acme.com/private"))
    assert digests(builds) == expected(cgr, "acme.com/private")
    basic, bearer = cgr.token_calls
    assert basic.headers["Authorization"].startswith("Basic ")
    assert bearer.headers["Authorization"] == f"Bearer {HELPER_SECRET}"


def test_helper_credential_accepted_as_basic_needs_one_request(cgr: FakeCgr) -> None:
    cgr.users["helper-user"] = HELPER_SECRET
    client(HELPER).history(parse_cli("cgr.dev/acme.com/private"))
    assert len(cgr.token_calls) == 1


def test_refused_basic_without_helper_is_an_auth_error(cgr: FakeCgr) -> None:
    wrong = Credential("auths['cgr.dev'] in config.json", "puller", PASSWORD + "-wrong")
    with pytest.raises(AuthError) as caught:
        client(wrong).history(parse_cli("cgr.dev/acme.com/private"))
    message = str(caught.value)
    assert_clean(message)
    assert "wrong" not in message
    assert "auths['cgr.dev']" in message and "chainctl auth configure-docker" in message
    assert len(cgr.token_calls) == 1  # no bearer retry for a docker login password


def test_refused_helper_credential_is_an_auth_error(cgr: FakeCgr) -> None:
    cgr.bearer_secrets.clear()
    with pytest.raises(AuthError) as caught:
        client(HELPER).history(parse_cli("cgr.dev/acme.com/private"))
    assert_clean(str(caught.value))
    assert "docker-credential-cgr" in str(caught.value)
    assert len(cgr.token_calls) == 2


def test_token_endpoint_without_a_token(cgr: FakeCgr, requests_mock) -> None:
    requests_mock.get("https://cgr.dev/token", json={"nothing": "here"})
    with pytest.raises(RegistryError, match="sent no token"):
        client().history(parse_cli("python"))
    requests_mock.get("https://cgr.dev/token", json={"token": "has spaces\r\ninside"})
    with pytest.raises(RegistryError, match="sent no token"):
        client().history(parse_cli("python"))


@pytest.mark.parametrize("realm", ["http://auth.example.com/token", "ftp://cgr.dev/token",
                                   "not a url", "http://127.example.com/token"])
def test_unsafe_realm_is_refused(cgr: FakeCgr, requests_mock, realm: str) -> None:
    requests_mock.get("https://cgr.dev/v2/chainguard/python/_chainguard/history/latest",
                      status_code=401, headers={"WWW-Authenticate": f'Bearer realm="{realm}"'})
    with pytest.raises(AuthError, match="realm") as caught:
        client(BASIC).history(parse_cli("python"))
    assert_clean(str(caught.value))
    assert not [r for r in requests_mock.request_history if "token" in urlsplit(r.url).path]


def test_malformed_realm_is_a_registry_error(cgr: FakeCgr, requests_mock) -> None:
    requests_mock.get("https://cgr.dev/v2/chainguard/python/_chainguard/history/latest",
                      status_code=401, headers={"WWW-Authenticate": 'Bearer realm="http://[::1/t"'})
    with pytest.raises(RegistryError):
        client().history(parse_cli("python"))


def test_netrc_does_not_replace_the_token(cgr: FakeCgr, isolated_env) -> None:
    netrc = isolated_env.home / ".netrc"
    netrc.write_text("machine cgr.dev login someone password netrc-password\n")
    netrc.chmod(0o600)
    builds = client().history(parse_cli("python"))
    assert digests(builds) == expected(cgr, "chainguard/python")
    assert "Authorization" not in cgr.token_calls[0].headers


# --- the token cache ----------------------------------------------------------------------------


def test_token_cache_is_shared_across_clients(cgr: FakeCgr) -> None:
    first = client(BASIC).history(parse_cli("cgr.dev/acme.com/private"))
    assert len(cgr.token_calls) == 1
    second = client(BASIC).history(parse_cli("cgr.dev/acme.com/private"))
    assert second == first
    assert len(cgr.token_calls) == 1, "the second client fetched a token again"


def test_token_cache_never_holds_the_token_in_clear(cgr: FakeCgr) -> None:
    client(BASIC).history(parse_cli("cgr.dev/acme.com/private"))
    (token,) = cgr.tokens
    for path in Path(cache.cache_dir()).rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert token.encode() not in data and PASSWORD.encode() not in data


def test_token_cache_is_keyed_by_credential(cgr: FakeCgr) -> None:
    cgr.users["other"] = "other-password"
    client(BASIC).history(parse_cli("cgr.dev/acme.com/private"))
    other = Credential("auths", "other", "other-password")
    client(other).history(parse_cli("cgr.dev/acme.com/private"))
    assert len(cgr.token_calls) == 2
    assert cgr.token_calls[1].headers["Authorization"] == (
        "Basic " + base64.b64encode(b"other:other-password").decode())
    client().history(parse_cli("python"))
    assert len(cgr.token_calls) == 3


def test_token_cache_is_keyed_by_repository(cgr: FakeCgr) -> None:
    cgr.add("chainguard/go", "latest", entries(2, seed="go"), public=True)
    client().history(parse_cli("python"))
    client().history(parse_cli("go"))
    assert [parse_qs(urlsplit(c.url).query)["scope"] for c in cgr.token_calls] == [
        ["repository:chainguard/python:pull"], ["repository:chainguard/go:pull"]]


def _token_files() -> list[Path]:
    return [p for p in (Path(cache.cache_dir()) / "tokens").iterdir()]


@pytest.mark.parametrize("remaining", [-100, 10])  # expired, or inside the safety margin
def test_expired_cached_token_is_not_used(cgr: FakeCgr, remaining: int) -> None:
    client(BASIC).history(parse_cli("cgr.dev/acme.com/private"))
    (path,) = _token_files()
    entry = json.loads(path.read_text())
    entry["expires"] = time.time() + remaining
    path.write_text(json.dumps(entry))
    client(BASIC).history(parse_cli("cgr.dev/acme.com/private"))
    assert len(cgr.token_calls) == 2
    sent = cgr.calls("/v2/acme.com/private/_chainguard")
    assert not any(c.headers.get("Authorization") == f"Bearer {TOKEN_PREFIX}1-user-puller"
                   for c in sent[2:])


def test_short_lived_tokens_are_not_stored(cgr: FakeCgr) -> None:
    cgr.expires_in = 20
    client().history(parse_cli("python"))
    client().history(parse_cli("python"))
    assert len(cgr.token_calls) == 2


def test_refused_cached_token_is_dropped_and_fetched_once(cgr: FakeCgr) -> None:
    client(BASIC).history(parse_cli("cgr.dev/acme.com/private"))
    cgr.tokens.clear()  # the registry forgets (revokes) every token
    builds = client(BASIC).history(parse_cli("cgr.dev/acme.com/private"))
    assert digests(builds) == expected(cgr, "acme.com/private")
    assert len(cgr.token_calls) == 2
    # The new token replaced the refused one in the cache.
    client(BASIC).history(parse_cli("cgr.dev/acme.com/private"))
    assert len(cgr.token_calls) == 2


def test_token_refused_again_is_denied_without_looping(cgr: FakeCgr) -> None:
    cgr.refuse_all_tokens = True
    with pytest.raises(AuthError, match="denied") as caught:
        client(BASIC).history(parse_cli("cgr.dev/acme.com/private"))
    assert_clean(str(caught.value))
    assert len(cgr.token_calls) == 1
    assert len(cgr.calls("/v2/acme.com/private/_chainguard")) == 2


def test_cached_token_is_not_sent_to_another_repository(cgr: FakeCgr) -> None:
    c = client(BASIC)
    c.history(parse_cli("cgr.dev/acme.com/private"))
    (token,) = cgr.tokens
    c.history(parse_cli("python"))
    for call in cgr.calls("/v2/chainguard/python/"):
        assert call.headers.get("Authorization") != f"Bearer {token}"


# --- token realm: decided on the parsed host ----------------------------------------------------


@pytest.mark.parametrize("realm", ["http://localhost:1@evil.example/token",
                                   "http://[::1]@evil.example/token",
                                   "https://user@evil.example/token"])
def test_realm_with_user_info_is_refused(cgr: FakeCgr, requests_mock, realm: str) -> None:
    evil = requests_mock.get(re.compile(r"https?://evil\.example/"), json={"token": "t"})
    requests_mock.get(HISTORY_URL, status_code=401,
                      headers={"WWW-Authenticate": f'Bearer realm="{realm}",service="x"'})
    with pytest.raises(AuthError, match="user-info") as caught:
        client(BASIC).history(parse_cli("python"))
    assert_clean(str(caught.value))
    assert evil.call_count == 0
    assert not [r for r in requests_mock.request_history if "evil" in r.url]


def test_plain_http_realm_on_loopback_is_still_allowed(cgr: FakeCgr, requests_mock) -> None:
    requests_mock.get(HISTORY_URL, status_code=401,
                      headers={"WWW-Authenticate": 'Bearer realm="http://127.0.0.1:9/token"'})
    local = requests_mock.get("http://127.0.0.1:9/token", status_code=503)
    with pytest.raises(RegistryError, match="token"):
        client(BASIC, attempts=1).history(parse_cli("python"))
    assert local.call_count == 1


# --- one probe at a time: concurrent first requests learn the realm once -------------------------

THREADS = 6
# Only a bound for a broken implementation (the probe waits for the others to be waiting, which
# they never would): a correct one never comes near it. Nothing here measures time.
STUCK = 30.0


class WaitCounter(threading.Condition):
    """A ``Condition`` that tells when ``expected`` callers are waiting on it."""

    def __init__(self, expected: int) -> None:
        super().__init__()
        self.waiting = 0
        self.all_waiting = threading.Event()
        self._expected = expected

    def wait(self, timeout: float | None = None) -> bool:
        self.waiting += 1  # the lock is held here
        if self.waiting >= self._expected:
            self.all_waiting.set()
        return super().wait(timeout)


def run_together(count: int, work) -> list:
    """``work()`` in ``count`` threads released at once; their results, or their exceptions."""
    start = threading.Barrier(count)
    results: list = [None] * count

    def run(index: int) -> None:
        start.wait()
        try:
            results[index] = work()
        except Exception as error:
            results[index] = error

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def test_concurrent_first_requests_send_exactly_one_probe(cgr: FakeCgr, requests_mock) -> None:
    """Parallel windows on a cold cache: one anonymous request learns the realm; the others
    wait for it (the probe is held until they all are waiting), then fetch their tokens."""
    shared = client(BASIC, use_disk_cache=False)
    waiters = WaitCounter(THREADS - 1)
    shared.auth.realms._changed = waiters
    probes = []

    def history(request, context):
        if "Authorization" not in request.headers:
            probes.append(request)
            waiters.all_waiting.wait(STUCK)
        return cgr.handle(request, context)

    requests_mock.get(HISTORY_URL, content=history)
    results = run_together(THREADS, lambda: shared.history_page(parse_cli("python"),
                                                               Window(None, None)))
    assert len(probes) == 1
    assert waiters.all_waiting.is_set()
    want = sorted(expected(cgr, "chainguard/python"))
    assert all(not isinstance(r, Exception) and sorted(digests(r)) == want for r in results), \
        results
    authorized = [r for r in cgr.calls("/v2/chainguard/python/_chainguard")
                  if r.headers.get("Authorization", "").startswith("Bearer ")]
    assert len(authorized) == THREADS


def test_realm_discovery_runs_one_probe_and_shares_what_it_learned() -> None:
    discovery = RealmDiscovery("cgr.dev", use_disk_cache=False)
    waiters = WaitCounter(THREADS - 1)
    discovery._changed = waiters
    probes = []

    def probe() -> Answer:
        probes.append(1)
        waiters.all_waiting.wait(STUCK)
        return Answer(401, {"www-authenticate": CHALLENGE}, b"", "https://cgr.dev/v2/x")

    results = run_together(THREADS, lambda: discovery.challenge(probe))
    learned = Challenge("bearer", "https://cgr.dev/token", "cgr.dev")
    assert probes == [1] and waiters.all_waiting.is_set()
    assert [challenge for challenge, _ in results] == [learned] * THREADS
    assert len([answer for _, answer in results if answer is not None]) == 1
    assert discovery.challenge(probe) == (learned, None)  # known now: no probe
    assert probes == [1]


@pytest.mark.parametrize("outcome", ["no challenge", "failed"])
def test_waiters_go_on_without_a_token_when_the_probe_learned_nothing(outcome: str) -> None:
    """An open registry (200) or a failed probe: the waiters are released and do not probe one
    after another; the next caller probes again."""
    discovery = RealmDiscovery("cgr.dev", use_disk_cache=False)
    waiters = WaitCounter(THREADS - 1)
    discovery._changed = waiters
    probes = []

    def probe() -> Answer:
        probes.append(1)
        waiters.all_waiting.wait(STUCK)
        if outcome == "failed":
            raise RegistryError("registry cgr.dev unreachable")
        return Answer(200, {}, b"{}", "https://cgr.dev/v2/x")

    results = run_together(THREADS, lambda: discovery.challenge(probe))
    assert probes == [1] and waiters.all_waiting.is_set()
    failed = [r for r in results if isinstance(r, Exception)]
    assert len(failed) == (1 if outcome == "failed" else 0)
    assert [r for r in results if not isinstance(r, Exception) and r[0] is not None] == []
    with contextlib.suppress(RegistryError):
        discovery.challenge(probe)
    assert probes == [1, 1]


def test_a_known_realm_is_never_probed(cgr: FakeCgr) -> None:
    discovery = RealmDiscovery("cgr.dev", use_disk_cache=True)
    learned = Challenge("bearer", "https://cgr.dev/token", "cgr.dev")
    discovery.remember(learned)
    fresh = RealmDiscovery("cgr.dev", use_disk_cache=True)  # a second run: from the disk

    def probe() -> Answer:
        raise AssertionError("probed a known realm")

    assert fresh.challenge(probe) == (learned, None)
