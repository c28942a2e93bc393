"""The registry API (``registry.py``) against a requests-mock fake of cgr.dev.

``FakeCgr`` (``conftest``) plays the Chainguard registry: the 401 challenge, the token endpoint,
tokens valid for one repository, the public catalog (``latest``/``latest-dev`` only), the
history API with ``start``/``end`` and its 1000-record cap, and manifest HEADs. Here: history
paging, missing tags and refusals, ``tags/list`` paging, prewarming. Tokens are in
``test_auth``, retries, TLS and proxies in ``test_transport``.
"""

from __future__ import annotations

import base64
import contextlib
import re
from datetime import datetime, timedelta, timezone
from urllib.parse import parse_qs, urlsplit

import pytest

from docker_cghistory import log, registry, transport
from docker_cghistory.credentials import Credential
from docker_cghistory.errors import (
    AuthError,
    NoHistoryAPI,
    NotFoundError,
    RegistryError,
    RepositoryNotFound,
    TagNotFound,
)
from docker_cghistory.history import Window
from docker_cghistory.reference import parse_cli
from docker_cghistory.registry import RegistryClient

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
    SECRETS,
    assert_clean,
    client,
    digests,
    expected,
)

# --- untrusted bodies ---------------------------------------------------------------------------


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
    assert isinstance(caught.value, NoHistoryAPI)  # pin falls back on the type, not the words
    assert not isinstance(caught.value, NotFoundError)
    assert "no tag history API" in str(caught.value)
    assert cgr.calls("/v2/chainguard/python/manifests/latest", method="HEAD")


def test_404_with_manifest_without_digest_header(cgr: FakeCgr) -> None:
    cgr.no_history_api = True
    cgr.manifest_digest_header = False
    with pytest.raises(NoHistoryAPI, match="no tag history API"):
        client().history(parse_cli("python"))


def _tags_answer(requests_mock, repository: str, status: int = 200,
                 tags: list[str] | None = None) -> None:
    body = ({"name": repository, "tags": tags or []} if status == 200
            else {"errors": [{"code": "NAME_UNKNOWN" if status == 404 else "DENIED"}]})
    requests_mock.get(f"https://cgr.dev/v2/{repository}/tags/list", json=body,
                      status_code=status)


def test_a_missing_tag_offers_the_nearest_tags(cgr: FakeCgr, requests_mock) -> None:
    _tags_answer(requests_mock, "chainguard/python",
                 tags=["latest", "latest-dev", "3.12", "3.11", "3.13-dev", "zzz"])
    with pytest.raises(TagNotFound) as caught:
        client(BASIC).history(parse_cli("python:latst"))
    assert str(caught.value) == ("not found: cgr.dev/chainguard/python:latst (chainguard/python "
                                 "has no tag latst; did you mean latest?)")
    with pytest.raises(TagNotFound, match=r"did you mean 3\.11, 3\.12 or 3\.13-dev\?"):
        client(BASIC).history(parse_cli("python:3.13"))
    with pytest.raises(TagNotFound, match=r"has no tag qqqqqqqq; no tag of it is close\)$"):
        client(BASIC).history(parse_cli("python:qqqqqqqq"))


def test_a_missing_repository_is_named_as_such(cgr: FakeCgr, requests_mock) -> None:
    _tags_answer(requests_mock, "chainguard/pythn", status=404)
    with pytest.raises(RepositoryNotFound) as caught:
        client(BASIC).history(parse_cli("pythn"))
    assert str(caught.value) == ("not found: cgr.dev/chainguard/pythn:latest (the registry has "
                                 "no repository chainguard/pythn)")
    assert "did you mean" not in str(caught.value)


@pytest.mark.parametrize(("code", "error", "words"), [
    ("MANIFEST_UNKNOWN", TagNotFound, "(chainguard/python has no tag nope)"),
    ("NAME_UNKNOWN", RepositoryNotFound, "(the registry has no repository chainguard/python)"),
    ("", TagNotFound, "tag not found: cgr.dev/chainguard/python:nope"),
])
def test_an_unreadable_tags_list_leaves_the_error_code_to_decide(
        cgr: FakeCgr, requests_mock, code: str, error: type, words: str) -> None:
    """Tags are never guessed: without the list the line says nothing about them."""
    _tags_answer(requests_mock, "chainguard/python", status=403)
    requests_mock.get(re.compile(r"https://cgr\.dev/v2/chainguard/python/_chainguard/history/nope"),
                      status_code=404, json={"errors": [{"code": code}]} if code else {})
    with pytest.raises(error) as caught:
        client(BASIC).history(parse_cli("python:nope"))
    message = str(caught.value)
    assert words in message and "did you mean" not in message and "close" not in message
    assert_clean(message)


def test_the_tags_read_for_a_hint_are_capped(cgr: FakeCgr, requests_mock) -> None:
    pages = []

    def page(request, context):
        pages.append(request.url)
        context.headers["Link"] = f'</v2/chainguard/python/tags/list?last=t{len(pages)}>'
        return {"tags": [f"t{len(pages)}-{i}" for i in range(1000)]}

    requests_mock.get("https://cgr.dev/v2/chainguard/python/tags/list", json=page)
    with pytest.raises(TagNotFound):
        client(BASIC).history(parse_cli("python:nope"))
    assert len(pages) == registry.TAGS_FOR_HINTS // 1000


def test_a_refused_public_catalog_tag_near_a_free_one_says_so(cgr: FakeCgr) -> None:
    with pytest.raises(AuthError, match=r"\(did you mean latest\?\)$"):
        client().history(parse_cli("python:latst"))
    with pytest.raises(AuthError) as caught:
        client().history(parse_cli("python:3.12"))
    assert "did you mean" not in str(caught.value)


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


def test_credential_resolved_lazily_once() -> None:
    calls = []

    def resolver() -> Credential:
        calls.append(1)
        return BASIC

    c = RegistryClient("cgr.dev", credential=resolver)
    assert calls == []
    assert c.credential is BASIC and c.credential is BASIC
    assert calls == [1]


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


# --- prewarming -------------------------------------------------------------------------------


def test_parallel_reads_wait_for_the_warm_ups_under_way(monkeypatch) -> None:
    """A burst of reads starts on the connections prewarm is opening, not on new ones: it
    waits for pings in flight (bounded), and not at all when none were started."""
    import threading

    release = threading.Event()
    monkeypatch.setattr(transport.Transport, "open_spare_connection",
                        lambda self, url: release.wait(60))
    reader = client()
    reader.await_prewarm(at_most=60)  # nothing under way: returns at once
    reader._prewarm(2)  # the registry has not answered: only pending, nothing to wait for
    reader.await_prewarm(at_most=60)
    reader._registry_answered()  # both pings start, and block on ``release``
    waiter = threading.Thread(target=reader.await_prewarm, kwargs={"at_most": 60})
    waiter.start()
    waiter.join(timeout=0.2)
    assert waiter.is_alive()  # still waiting for the pings
    release.set()
    waiter.join(timeout=60)
    assert not waiter.is_alive()


def test_prewarming_starts_once_the_registry_answered(cgr: FakeCgr, monkeypatch) -> None:
    """Spare connections are opened only after the registry's first answer, one per window
    expected; they never borrow the idle connection (see test_transport)."""
    import threading

    opened: list[tuple[str, int]] = []

    def spare(self, url: str) -> None:
        opened.append((url, len(cgr.mocker.request_history)))

    monkeypatch.setattr(transport.Transport, "open_spare_connection", spare)
    client().history(parse_cli("python"))
    for thread in threading.enumerate():
        if thread.name == "prewarm":
            thread.join(timeout=60)
    assert [url for url, _ in opened] == ["https://cgr.dev/v2/"] * registry.PREWARM_UNKNOWN
    assert all(answered >= 1 for _, answered in opened)  # after the first answer
