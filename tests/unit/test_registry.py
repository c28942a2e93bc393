"""Edge cases of the registry adapter against a requests-mock fake of cgr.dev.

``FakeCgr`` plays the Chainguard registry: the 401 challenge, the token endpoint (anonymous,
Basic, the Bearer exchange and the OAuth2 refresh-token POST), tokens valid for one repository,
the public catalog (``latest``/``latest-dev`` only), the history API with ``start``/``end`` and
its 1000-record cap, and manifest HEADs. Every test can inspect the requests it received.
"""

from __future__ import annotations

import base64
import contextlib
import json
import re
import time
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import trustme
import urllib3.util.connection

from docker_cghistory import cache, log, registry, tls
from docker_cghistory.credentials import ANONYMOUS, Credential
from docker_cghistory.errors import AuthError, NotFoundError, RegistryError
from docker_cghistory.history import Window
from docker_cghistory.reference import parse_cli
from docker_cghistory.registry import (
    Challenge,
    RegistryClient,
    parse_challenge,
    parse_retry_after,
)

from .conftest import (
    CHALLENGE,
    HELPER_SECRET,
    IDENTITY,
    PASSWORD,
    TOKEN_PREFIX,
    FakeCgr,
    entries,
)
from .tlsfixtures import (
    REGISTRY_NAME,
    ConnectProxy,
    FakeDNS,
    TLSRegistry,
    ca_files,
    clear_trust_env,
    client_files,
    closed_port,
    etc_certs_d,
    install_fake_dns,
)

RAW_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
SECRETS = (PASSWORD, HELPER_SECRET, IDENTITY, TOKEN_PREFIX,
           base64.b64encode(f"puller:{PASSWORD}".encode()).decode())


class Sleeps(list):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


def client(credential: Credential = ANONYMOUS, sleep=None, **options) -> RegistryClient:
    return RegistryClient("cgr.dev", credential=credential,
                          sleep=sleep if sleep is not None else Sleeps(), **options)


BASIC = Credential("auths['cgr.dev']", "puller", PASSWORD)
HELPER = Credential("credHelpers (docker-credential-cgr)", "helper-user", HELPER_SECRET,
                    from_helper=True)
IDENTITY_CREDENTIAL = Credential("identity", None, None, identity_token=IDENTITY)


def digests(builds) -> list[str]:
    return [b.digest for b in builds]


def expected(fake: FakeCgr, repository: str, tag: str = "latest") -> list[str]:
    return [e["digest"] for e in reversed(fake.histories[(repository, tag)])]


def assert_clean(message: str) -> None:
    assert "\n" not in message and not RAW_CONTROL.search(message), repr(message)
    for secret in SECRETS:
        assert secret not in message, (secret, message)


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


def test_parse_retry_after() -> None:
    assert parse_retry_after("5") == 5.0
    assert parse_retry_after(" 0 ") == 0.0
    assert parse_retry_after("") is None
    assert parse_retry_after("soon") is None
    assert parse_retry_after("-3") is None
    now = time.time()
    later = format_datetime(datetime.fromtimestamp(now + 20, timezone.utc), usegmt=True)
    assert 18 <= parse_retry_after(later, now=now) <= 21
    earlier = format_datetime(datetime.fromtimestamp(now - 20, timezone.utc), usegmt=True)
    assert parse_retry_after(earlier, now=now) == 0.0


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


# --- retries ------------------------------------------------------------------------------------


def _respond_in_turn(cgr: FakeCgr, requests_mock, url: str, *responses: dict) -> None:
    """Answer ``url`` with ``responses`` in turn, then hand over to the fake registry."""
    pending = list(responses)

    def answer(request, context):
        if pending:
            spec = pending.pop(0)
            context.status_code = spec.get("status", 200)
            context.headers.update(spec.get("headers", {}))
            return spec.get("body", b"")
        return cgr.handle(request, context)

    requests_mock.get(url, content=answer)


HISTORY_URL = "https://cgr.dev/v2/chainguard/python/_chainguard/history/latest"


def test_429_retry_after_is_honoured(cgr: FakeCgr, requests_mock, sleeps: Sleeps) -> None:
    _respond_in_turn(cgr, requests_mock, HISTORY_URL,
                     {"status": 429, "headers": {"Retry-After": "3"}})
    builds = client(sleep=sleeps).history(parse_cli("python"))
    assert digests(builds) == expected(cgr, "chainguard/python")
    assert len(sleeps) == 1 and 3.0 <= sleeps[0] <= 3.5


def test_retry_after_as_a_date(cgr: FakeCgr, requests_mock, sleeps: Sleeps) -> None:
    when = format_datetime(datetime.now(timezone.utc) + timedelta(seconds=10), usegmt=True)
    _respond_in_turn(cgr, requests_mock, HISTORY_URL,
                     {"status": 503, "headers": {"Retry-After": when}})
    client(sleep=sleeps).history(parse_cli("python"))
    assert len(sleeps) == 1 and 7.0 <= sleeps[0] <= 11.5


def test_503_is_retried_with_growing_delays(cgr: FakeCgr, requests_mock, sleeps: Sleeps) -> None:
    _respond_in_turn(cgr, requests_mock, HISTORY_URL,
                     {"status": 503}, {"status": 502}, {"status": 504})
    builds = client(sleep=sleeps).history(parse_cli("python"))
    assert digests(builds) == expected(cgr, "chainguard/python")
    assert len(sleeps) == 3
    assert sleeps[0] > 0 and sleeps[0] < sleeps[1] < sleeps[2] <= 8.0 * 1.1


def test_retries_are_bounded(cgr: FakeCgr, requests_mock, sleeps: Sleeps) -> None:
    requests_mock.get(HISTORY_URL, status_code=503)
    with pytest.raises(RegistryError, match="503") as caught:
        client(sleep=sleeps, attempts=3).history(parse_cli("python"))
    assert_clean(str(caught.value))
    assert len(sleeps) == 2
    assert len([r for r in requests_mock.request_history if r.url.startswith(HISTORY_URL)]) == 3


def test_connection_failures_are_retried_then_one_line(requests_mock, sleeps: Sleeps) -> None:
    requests_mock.get(re.compile("https://cgr.dev/"), exc=requests.exceptions.ConnectionError(
        f"boom {PASSWORD}\n\x1b[2J"))
    with pytest.raises(RegistryError) as caught:
        client(BASIC, sleep=sleeps, attempts=4).history(parse_cli("python"))
    message = str(caught.value)
    assert_clean(message)
    assert "unreachable" in message and "4 attempts" in message and "boom" not in message
    assert len(sleeps) == 3


def test_timeouts_are_retried(cgr: FakeCgr, requests_mock, sleeps: Sleeps) -> None:
    calls = []

    def flaky(request, context):
        calls.append(1)
        if len(calls) == 1:
            raise requests.exceptions.ReadTimeout("slow")
        return cgr.handle(request, context)

    requests_mock.get(HISTORY_URL, content=flaky)
    assert client(sleep=sleeps).history(parse_cli("python"))
    assert len(sleeps) == 1


@pytest.mark.parametrize("value", ["120", "31"])
def test_retry_after_too_large_is_one_line(cgr: FakeCgr, requests_mock, sleeps: Sleeps,
                                           value: str) -> None:
    requests_mock.get(HISTORY_URL, status_code=429, headers={"Retry-After": value})
    with pytest.raises(RegistryError) as caught:
        client(sleep=sleeps).history(parse_cli("python"))
    message = str(caught.value)
    assert_clean(message)
    assert "throttling" in message and value in message
    assert sleeps == []


# --- untrusted bodies ---------------------------------------------------------------------------


@pytest.mark.parametrize("declare_length", [True, False])
def test_body_over_the_limit_is_refused(cgr: FakeCgr, requests_mock, monkeypatch,
                                        declare_length: bool) -> None:
    monkeypatch.setattr(registry, "MAX_BODY", 100_000)
    body = json.dumps({"history": entries(2000)}).encode()
    assert len(body) > 100_000
    headers = {"Content-Length": str(len(body))} if declare_length else {}

    def big(request, context):
        context.headers.update(headers)
        return body

    _respond_in_turn(cgr, requests_mock, HISTORY_URL)
    client().history(parse_cli("python"))  # get a token first
    requests_mock.get(HISTORY_URL, content=big)
    with pytest.raises(RegistryError, match="refusing") as caught:
        client().history(parse_cli("python"))
    assert_clean(str(caught.value))
    # Declared: refused before reading; streamed: refused once the limit is crossed.
    assert (f"body of {len(body)} bytes" in str(caught.value)) is declare_length


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (b"<!DOCTYPE html><HTML><title>Gateway \x1b[2J secret-page</title></HTML>", "HTML page"),
        (b"not json at all \x1b]0;x\x07", "something"),
        (b"\xff\xfe\xfd", "something"),
        (b"", "something"),
    ],
)
def test_non_json_bodies_are_named_not_echoed(cgr: FakeCgr, requests_mock, body: bytes,
                                              words: str) -> None:
    client().history(parse_cli("python"))
    requests_mock.get(HISTORY_URL, content=body, status_code=200)
    with pytest.raises(RegistryError) as caught:
        client().history(parse_cli("python"))
    message = str(caught.value)
    assert_clean(message)
    assert words in message and "instead of JSON" in message
    assert "secret-page" not in message and "Gateway" not in message


def test_invalid_history_is_a_registry_error(cgr: FakeCgr, requests_mock) -> None:
    client().history(parse_cli("python"))
    requests_mock.get(HISTORY_URL, json={"history": [{"digest": "sha256:$(reboot)",
                                                      "updateTimestamp": "2024-01-01T00:00:00Z"}]})
    with pytest.raises(RegistryError, match="invalid digest") as caught:
        client().history(parse_cli("python"))
    assert "reboot" not in str(caught.value)


# --- missing tags and refusals ------------------------------------------------------------------


def test_404_with_manifest_means_no_history_api(cgr: FakeCgr) -> None:
    cgr.no_history_api = True
    with pytest.raises(RegistryError) as caught:
        client().history(parse_cli("python"))
    assert not isinstance(caught.value, NotFoundError)
    assert "no tag history API" in str(caught.value)
    assert cgr.calls("/v2/chainguard/python/manifests/latest", method="HEAD")


def test_404_with_manifest_without_digest_header(cgr: FakeCgr) -> None:
    cgr.no_history_api = True
    cgr.manifest_digest_header = False
    with pytest.raises(RegistryError, match="no tag history API"):
        client().history(parse_cli("python"))


def test_404_without_manifest_is_not_found(cgr: FakeCgr) -> None:
    with pytest.raises(NotFoundError, match=r"tag not found: cgr.dev/chainguard/python:nope"):
        client(BASIC).history(parse_cli("python:nope"))


def test_non_latest_public_tag_mentions_entitlement(cgr: FakeCgr) -> None:
    with pytest.raises(AuthError) as caught:
        client().history(parse_cli("python:3.12"))
    message = str(caught.value)
    assert_clean(message)
    assert "403" in message and "entitlement" in message
    assert "chainctl auth configure-docker" in message and "anonymous" in message


def test_private_org_refusal_has_no_entitlement_note(cgr: FakeCgr) -> None:
    with pytest.raises(AuthError) as caught:
        client().history(parse_cli("cgr.dev/acme.com/private"))
    assert "entitlement" not in str(caught.value)
    assert "cgr.dev/acme.com/private:latest" in str(caught.value)


def test_latest_dev_of_public_catalog_is_anonymous(cgr: FakeCgr) -> None:
    cgr.add("chainguard/python", "latest-dev", entries(2, seed="dev"))
    assert len(client().history(parse_cli("python:latest-dev"))) == 2


def test_other_status_is_one_line(cgr: FakeCgr, requests_mock) -> None:
    client().history(parse_cli("python"))
    requests_mock.get(HISTORY_URL, status_code=418, text="\x1b[31mteapot")
    with pytest.raises(RegistryError, match="HTTP 418") as caught:
        client().history(parse_cli("python"))
    assert_clean(str(caught.value))
    assert "teapot" not in str(caught.value)


# --- paging through the client ------------------------------------------------------------------


def test_history_pages_past_the_cap(cgr: FakeCgr) -> None:
    cgr.add("chainguard/nightly", "latest", entries(2600, step=timedelta(hours=9), seed="n"),
            public=True)
    c = client()
    assert digests(c.history(parse_cli("nightly"))) == expected(cgr, "chainguard/nightly")
    newest = c.history(parse_cli("nightly"), last=3)
    assert digests(newest) == expected(cgr, "chainguard/nightly")[:3]
    # A second full read may use remembered window plans; it must still be exact.
    assert digests(client().history(parse_cli("nightly"))) == expected(cgr, "chainguard/nightly")


def test_history_window_query_parameters(cgr: FakeCgr) -> None:
    start = datetime(2024, 1, 2, 3, 4, 5, 678901, tzinfo=timezone.utc)
    end = datetime(2024, 1, 3, 0, 0, 0, 1, tzinfo=timezone.utc)
    client().history_page(parse_cli("python"), Window(start, end))
    last = cgr.calls("/v2/chainguard/python/_chainguard/history/latest")[-1]
    query = {k: v[0] for k, v in parse_qs(urlsplit(last.url).query).items()}
    assert query == {"start": "2024-01-02T03:04:05.678Z", "end": "2024-01-03T00:00:00.001Z"}


def test_tag_is_url_quoted(cgr: FakeCgr) -> None:
    cgr.add("chainguard/python", "3.12_rc-1.x", entries(1, seed="q"), public=False)
    client(BASIC).history(parse_cli("python:3.12_rc-1.x"))
    assert cgr.calls("/v2/chainguard/python/_chainguard/history/3.12_rc-1.x")


# --- redirects ----------------------------------------------------------------------------------


def test_authorization_does_not_follow_a_redirect_to_another_host(cgr: FakeCgr,
                                                                  requests_mock) -> None:
    client(BASIC).history(parse_cli("cgr.dev/acme.com/private"))  # a token in the cache
    cdn = "https://cdn.example.net/history/acme.json"
    requests_mock.get("https://cgr.dev/v2/acme.com/private/_chainguard/history/latest",
                      status_code=307, headers={"Location": cdn})
    requests_mock.get(cdn, json={"history": cgr.histories[("acme.com/private", "latest")]})
    builds = client(BASIC).history(parse_cli("cgr.dev/acme.com/private"))
    assert digests(builds) == expected(cgr, "acme.com/private")
    to_cdn = [r for r in requests_mock.request_history if r.url.startswith(cdn)]
    assert to_cdn and all("Authorization" not in r.headers for r in to_cdn)
    to_cgr = [r for r in requests_mock.request_history
              if "/v2/acme.com/private/_chainguard" in r.url]
    assert to_cgr[-1].headers["Authorization"].startswith("Bearer ")


def test_authorization_does_not_follow_a_downgrade_to_http(cgr: FakeCgr, requests_mock) -> None:
    client().history(parse_cli("python"))
    plain = "http://cgr.dev/v2/chainguard/python/_chainguard/history/latest?plain=1"
    requests_mock.get(HISTORY_URL, status_code=302, headers={"Location": plain})
    requests_mock.get(plain, json={"history": []})
    client().history(parse_cli("python"))
    (downgraded,) = [r for r in requests_mock.request_history if r.url.startswith("http://")]
    assert "Authorization" not in downgraded.headers


# --- plain HTTP ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("host", "scheme"), [
    ("localhost:5000", "http"), ("127.0.0.1:5000", "http"), ("[::1]:5000", "http"),
    ("cgr.dev", "https"), ("127.example.com:5000", "https"),
])
def test_plain_http_only_for_loopback(host: str, scheme: str) -> None:
    assert RegistryClient(host).base == f"{scheme}://{host}"
    assert RegistryClient(host, insecure=True).base == f"http://{host}"


# --- secrets never leak -------------------------------------------------------------------------


def test_no_secret_in_debug_log_or_errors(cgr: FakeCgr, requests_mock, capsys) -> None:
    log.enable(True)
    messages = []
    client(BASIC).history(parse_cli("cgr.dev/acme.com/private"))
    client(HELPER).history(parse_cli("cgr.dev/acme.com/private"))
    client(IDENTITY_CREDENTIAL).history(parse_cli("cgr.dev/acme.com/private"))
    cgr.tokens.clear()
    client(BASIC).history(parse_cli("cgr.dev/acme.com/private"), last=2)
    for credential, text in [
        (Credential("x", "puller", PASSWORD + "!"), "cgr.dev/acme.com/private"),
        (HELPER, "python:nope"),
        (Credential("x", None, None, identity_token=IDENTITY + "!"), "cgr.dev/acme.com/private"),
    ]:
        with pytest.raises(RegistryError) as caught:
            client(credential).history(parse_cli(text))
        messages.append(str(caught.value))
    cgr.refuse_all_tokens = True
    with pytest.raises(AuthError) as caught:
        client(HELPER).history(parse_cli("cgr.dev/acme.com/private"))
    messages.append(str(caught.value))
    log.enable(False)
    captured = capsys.readouterr()
    assert "debug" in captured.err and "token" in captured.err
    issued = list(cgr.tokens) or [f"{TOKEN_PREFIX}1"]
    for text in [captured.err, captured.out, *messages]:
        for secret in (*SECRETS, *issued,
                       base64.b64encode(f"helper-user:{HELPER_SECRET}".encode()).decode()):
            assert secret not in text, secret
    for message in messages:
        assert_clean(message)


def test_engine_auth(cgr: FakeCgr) -> None:
    assert client().engine_auth() is None
    assert client(BASIC).engine_auth() == {"username": "puller", "password": PASSWORD}
    assert client(IDENTITY_CREDENTIAL).engine_auth() == {"identitytoken": IDENTITY}


def test_credential_resolved_lazily_once() -> None:
    calls = []

    def resolver() -> Credential:
        calls.append(1)
        return BASIC

    c = RegistryClient("cgr.dev", credential=resolver)
    assert calls == []
    assert c.credential is BASIC and c.credential is BASIC
    assert calls == [1]


# --- TLS trust the way docker builds it (real TLS servers; see tests/unit/tlsfixtures.py) -------
#
# The registry is "registry.cghistory.test:PORT", resolved to 127.0.0.1 by a fake DNS: a
# loopback name would be spoken to in plain HTTP. Connections are counted by the server.


@pytest.fixture
def user_machine(monkeypatch: pytest.MonkeyPatch) -> FakeDNS:
    """No CA variables (this machine exports four), the fake DNS, no cached TLS context."""
    clear_trust_env(monkeypatch)
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    return install_fake_dns(monkeypatch)


@pytest.fixture
def certs_d():
    with etc_certs_d() as install:
        yield install


@pytest.fixture(scope="module")
def private_ca() -> trustme.CA:
    return trustme.CA()


def tls_client(server: TLSRegistry, **options) -> RegistryClient:
    return RegistryClient(server.name, use_disk_cache=False, sleep=Sleeps(), **options)


@pytest.mark.parametrize("variables", ["unset", "set as on this machine"])
def test_certs_d_ca_is_trusted(user_machine, certs_d, private_ca: trustme.CA,
                               monkeypatch: pytest.MonkeyPatch, variables: str) -> None:
    if variables != "unset":
        for name in tls.TRUST_VARIABLES:
            monkeypatch.setenv(name, "/etc/ssl/certs" if name == "SSL_CERT_DIR"
                               else "/etc/ssl/certs/ca-certificates.crt")
    server = TLSRegistry(private_ca.issue_cert(REGISTRY_NAME), tags=["3.12", "latest"])
    certs_d(server.name, ca_files(private_ca))
    assert tls_client(server).tags("chainguard/python") == ["3.12", "latest"]
    assert server.connections == 1


def _expired(ca: trustme.CA):
    now = datetime.now(timezone.utc)
    return ca.issue_cert(REGISTRY_NAME, not_before=now - timedelta(days=3),
                         not_after=now - timedelta(days=1))


@pytest.mark.parametrize(("make", "installed", "why"), [
    (lambda ca: trustme.CA().issue_cert(REGISTRY_NAME), True, "(unknown authority)"),
    (lambda ca: ca.issue_cert(REGISTRY_NAME), False, "(unknown authority)"),
    (_expired, True, "(expired)"),
    (lambda ca: ca.issue_cert("other.cghistory.test"), True,
     "(wrong name: the certificate is not valid for registry.cghistory.test)"),
])
def test_untrusted_certificate_fails_at_once(user_machine, certs_d, private_ca: trustme.CA,
                                             make, installed: bool, why: str) -> None:
    server = TLSRegistry(make(private_ca))
    if installed:
        certs_d(server.name, ca_files(private_ca))
    client = tls_client(server)
    with pytest.raises(RegistryError) as caught:
        client.tags("chainguard/python")
    message = str(caught.value)
    assert_clean(message)
    assert message == (f"registry {server.name}: certificate not trusted {why}; to trust a "
                       f"private CA, put it in /etc/docker/certs.d/{server.name}/ca.crt")
    assert server.connections == 1 and server.handshakes == 0
    assert client._sleep == []


def test_client_certificate_from_certs_d(user_machine, certs_d, private_ca: trustme.CA) -> None:
    client_ca = trustme.CA()
    server = TLSRegistry(private_ca.issue_cert(REGISTRY_NAME), client_ca=client_ca)
    folder = certs_d(server.name, ca_files(private_ca))
    with pytest.raises(RegistryError) as caught:
        tls_client(server).tags("chainguard/python")
    assert str(caught.value).startswith(
        f"TLS handshake with {server.name} failed (the server requires a client certificate")
    assert server.connections == 1
    for name, content in client_files(client_ca.issue_cert("me.cghistory.test")).items():
        (folder / name).write_bytes(content)
    tls.clear_cache()
    assert tls_client(server).tags("chainguard/python")
    assert server.peer_certs[-1]["subjectAltName"] == (("DNS", "me.cghistory.test"),)


def test_ca_bundle_variable_wins_over_certifi(user_machine, monkeypatch: pytest.MonkeyPatch,
                                              tmp_path: Path) -> None:
    """requests' own verify=True would load certifi into the context: it must not."""
    import certifi

    theirs, mine = trustme.CA(), trustme.CA()
    bundle = tmp_path / "certifi.pem"
    bundle.write_bytes(theirs.cert_pem.bytes())
    monkeypatch.setattr(certifi, "where", lambda: str(bundle))
    monkeypatch.setattr(requests.utils, "DEFAULT_CA_BUNDLE_PATH", str(bundle))
    monkeypatch.setattr(requests.adapters, "DEFAULT_CA_BUNDLE_PATH", str(bundle))
    via_certifi = TLSRegistry(theirs.issue_cert(REGISTRY_NAME))
    assert tls_client(via_certifi).tags("chainguard/python")  # certifi is trusted by default
    ours = tmp_path / "mine.pem"
    ours.write_bytes(mine.cert_pem.bytes())
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(ours))
    tls.clear_cache()
    with pytest.raises(RegistryError, match="unknown authority"):
        tls_client(via_certifi).tags("chainguard/python")
    assert tls_client(TLSRegistry(mine.issue_cert(REGISTRY_NAME))).tags("chainguard/python")


def test_verification_is_never_turned_off(user_machine, private_ca: trustme.CA) -> None:
    server = TLSRegistry(private_ca.issue_cert(REGISTRY_NAME))
    client = tls_client(server)
    client._http().verify = False  # even a session told not to verify does
    with pytest.raises(RegistryError, match="unknown authority"):
        client.tags("chainguard/python")


# --- proxies ------------------------------------------------------------------------------------


@pytest.fixture
def connects(monkeypatch: pytest.MonkeyPatch) -> list:
    """Every TCP connection urllib3 opens, as (host, port)."""
    real = urllib3.util.connection.create_connection
    made: list = []

    def counting(address, *args, **kwargs):
        made.append(address)
        return real(address, *args, **kwargs)

    monkeypatch.setattr(urllib3.util.connection, "create_connection", counting)
    return made


def test_refusing_proxy_is_named_without_its_password(user_machine, connects: list,
                                                      monkeypatch: pytest.MonkeyPatch,
                                                      capsys) -> None:
    port = closed_port()
    monkeypatch.setenv("HTTPS_PROXY", f"http://proxyuser:{PASSWORD}@127.0.0.1:{port}")
    log.enable(True)
    with pytest.raises(RegistryError) as caught:
        client(BASIC).tags("chainguard/python")
    log.enable(False)
    message = str(caught.value)
    assert message == (f"proxy http://127.0.0.1:{port} refused the connection to cgr.dev "
                       "(from HTTPS_PROXY)")
    assert 1 <= len(connects) <= 2 and all(a == ("127.0.0.1", port) for a in connects)
    for text in (message, capsys.readouterr().err):
        assert PASSWORD not in text and "proxyuser" not in text


def test_connect_proxy_is_used_and_no_proxy_honoured(user_machine, certs_d,
                                                     private_ca: trustme.CA,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    server = TLSRegistry(private_ca.issue_cert(REGISTRY_NAME))
    certs_d(server.name, ca_files(private_ca))
    proxy = ConnectProxy()
    monkeypatch.setenv("https_proxy", f"http://u:{PASSWORD}@127.0.0.1:{proxy.port}")
    assert tls_client(server).tags("chainguard/python")
    assert proxy.targets == [server.name]
    assert proxy.authorizations == ["Basic " + base64.b64encode(f"u:{PASSWORD}".encode()).decode()]
    monkeypatch.setenv("NO_PROXY", ".cghistory.test")
    assert tls_client(server).tags("chainguard/python")
    assert proxy.targets == [server.name] and server.connections == 2


@pytest.mark.parametrize(("status", "words"), [
    (407, "asks for credentials (HTTP 407)"), (403, "refused to reach"),
])
def test_proxy_refusing_the_tunnel_fails_at_once(user_machine, monkeypatch, status: int,
                                                 words: str) -> None:
    proxy = ConnectProxy(status=status)
    monkeypatch.setenv("HTTPS_PROXY", f"127.0.0.1:{proxy.port}")
    with pytest.raises(RegistryError) as caught:
        client().tags("chainguard/python")
    assert str(caught.value).startswith(f"proxy http://127.0.0.1:{proxy.port} {words}")
    assert str(caught.value).endswith("(from HTTPS_PROXY)")
    assert proxy.connections == 1


# --- DNS ----------------------------------------------------------------------------------------


def test_dns_failure_is_retried_once_and_names_the_host(user_machine: FakeDNS) -> None:
    user_machine.failing.add("cgr.dev")
    sleeps = Sleeps()
    with pytest.raises(RegistryError) as caught:
        client(sleep=sleeps).tags("chainguard/python")
    assert str(caught.value) == "cannot resolve registry host cgr.dev (DNS)"
    assert 1 <= user_machine.lookups.count("cgr.dev") <= 2
    assert len(sleeps) <= 1


def test_dns_failure_of_the_proxy_names_the_proxy(user_machine: FakeDNS, monkeypatch) -> None:
    user_machine.failing.add("proxy.corp.example")
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.corp.example:3128")
    with pytest.raises(RegistryError) as caught:
        client().tags("chainguard/python")
    assert str(caught.value) == ("cannot resolve proxy host proxy.corp.example (DNS) "
                                 "(from HTTPS_PROXY)")
    assert "cgr.dev" not in user_machine.lookups
    assert user_machine.lookups.count("proxy.corp.example") <= 2


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


# --- tags/list paging: Link stays on the registry ------------------------------------------------

TAGS_URL = "https://cgr.dev/v2/chainguard/python/tags/list"


def _tag_pages(cgr: FakeCgr, requests_mock, link: str) -> None:
    def page(request, context):
        if not request.headers.get("Authorization", "").startswith("Bearer "):
            context.status_code = 401
            context.headers["WWW-Authenticate"] = CHALLENGE
            return {}
        if "last" in request.qs:
            return {"name": "chainguard/python", "tags": ["c"]}
        context.headers["Link"] = f'<{link}>; rel="next"'
        return {"name": "chainguard/python", "tags": ["a", "b"]}

    requests_mock.get(TAGS_URL, json=page)


@pytest.mark.parametrize("link", [
    "https://evil.example/v2/chainguard/python/tags/list?last=b",
    "//evil.example/v2/chainguard/python/tags/list?last=b",
    "http://cgr.dev/v2/chainguard/python/tags/list?last=b",
    "https://cgr.dev:8443/v2/chainguard/python/tags/list?last=b",
    "https://cgr.dev@evil.example/v2/chainguard/python/tags/list?last=b",
])
def test_tag_link_to_another_host_is_refused(cgr: FakeCgr, requests_mock, link: str) -> None:
    others = requests_mock.get(re.compile(r"(https?://(evil\.example|cgr\.dev:8443)|http://cgr)"),
                               json={"tags": ["stolen"]})
    _tag_pages(cgr, requests_mock, link)
    with pytest.raises(RegistryError, match="another host") as caught:
        client().tags("chainguard/python")
    assert_clean(str(caught.value))
    assert others.call_count == 0


def test_tag_link_with_user_info_trick_never_reaches_the_other_host(cgr: FakeCgr,
                                                                     requests_mock) -> None:
    stolen = requests_mock.get(re.compile(r"https?://127\.0\.0\.2"), json={"tags": ["x"]})
    _tag_pages(cgr, requests_mock, "@127.0.0.2:18201/v2/chainguard/python/tags/list?last=b")
    with contextlib.suppress(RegistryError):  # resolved on cgr.dev, where that path is unknown
        client().tags("chainguard/python")
    assert stolen.call_count == 0
    assert all(urlsplit(r.url).hostname == "cgr.dev" for r in requests_mock.request_history)


def test_tag_link_on_the_registry_is_followed_with_the_token(cgr: FakeCgr,
                                                             requests_mock) -> None:
    _tag_pages(cgr, requests_mock, "/v2/chainguard/python/tags/list?n=2&last=b")
    assert client().tags("chainguard/python") == ["a", "b", "c"]
    second = [r for r in requests_mock.request_history if "last=b" in r.url]
    assert len(second) == 1 and second[0].headers["Authorization"].startswith("Bearer ")


def test_tag_link_loop_stops(cgr: FakeCgr, requests_mock) -> None:
    served = []

    def page(request, context):
        served.append(1)
        assert len(served) < 20, "the client follows a Link loop for ever"
        if not request.headers.get("Authorization"):
            context.status_code = 401
            context.headers["WWW-Authenticate"] = CHALLENGE
            return {}
        context.headers["Link"] = '</v2/chainguard/python/tags/list?last=a>; rel="next"'
        return {"tags": []}

    requests_mock.get(TAGS_URL, json=page)
    assert client().tags("chainguard/python") == []
    assert len([r for r in requests_mock.request_history if "tags/list" in r.url]) <= 4


# --- one connection for a failure no retry can fix ----------------------------------------------


def test_untrusted_registry_costs_one_connection_even_with_prewarming(
        user_machine, private_ca: trustme.CA, synchronous_background_threads) -> None:
    """list opens connections ahead for its parallel windows: not before the registry has
    answered once, or an untrusted certificate would be met three times."""
    server = TLSRegistry(private_ca.issue_cert(REGISTRY_NAME))
    with pytest.raises(RegistryError, match="certificate not trusted"):
        tls_client(server).history(parse_cli(f"{server.name}/chainguard/python"))
    assert server.connections == 1


def test_fatal_failure_is_given_again_without_a_connection(user_machine,
                                                           private_ca: trustme.CA) -> None:
    server = TLSRegistry(private_ca.issue_cert(REGISTRY_NAME))
    client = tls_client(server)
    messages = set()
    for _ in range(3):
        with pytest.raises(RegistryError) as caught:
            client.tags("chainguard/python")
        messages.add(str(caught.value))
    assert len(messages) == 1 and server.connections == 1


def test_prewarming_starts_once_the_registry_answered(cgr: FakeCgr) -> None:
    client().history(parse_cli("python"))
    pings = [r for r in cgr.mocker.request_history if urlsplit(r.url).path == "/v2/"]
    assert len(pings) == registry.PREWARM_UNKNOWN
    first = urlsplit(cgr.mocker.request_history[0].url).path
    assert first != "/v2/"  # the first request is the real one, the pings follow its answer
