"""Edge cases of the registry adapter against a requests-mock fake of cgr.dev.

``FakeCgr`` plays the Chainguard registry: the 401 challenge, the token endpoint (anonymous,
Basic, the Bearer exchange and the OAuth2 refresh-token POST), tokens valid for one repository,
the public catalog (``latest``/``latest-dev`` only), the history API with ``start``/``end`` and
its 1000-record cap, and manifest HEADs. Every test can inspect the requests it received.
"""

from __future__ import annotations

import base64
import json
import re
import time
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from docker_cghistory import cache, log, registry
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
