"""HTTP to a registry (``transport.py``, ``failures.py``): retries as the policy says, the size
cap, redirects, TLS trust the way docker builds it, proxies, DNS, and failures no retry fixes.
"""

from __future__ import annotations

import base64
import json
import re
import time
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from pathlib import Path

import pytest
import requests
import trustme
import urllib3.util.connection

from docker_cghistory import log, tls, transport
from docker_cghistory.errors import RegistryError
from docker_cghistory.reference import parse_cli
from docker_cghistory.registry import RegistryClient
from docker_cghistory.transport import parse_retry_after

from .conftest import (
    PASSWORD,
    FakeCgr,
    entries,
)
from .registryhelpers import (
    BASIC,
    HISTORY_URL,
    Sleeps,
    assert_clean,
    client,
    digests,
    expected,
    respond_in_turn,
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


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


# --- retries ------------------------------------------------------------------------------------


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


def test_429_retry_after_is_honoured(cgr: FakeCgr, requests_mock, sleeps: Sleeps) -> None:
    respond_in_turn(cgr, requests_mock, HISTORY_URL,
                     {"status": 429, "headers": {"Retry-After": "3"}})
    builds = client(sleep=sleeps).history(parse_cli("python"))
    assert digests(builds) == expected(cgr, "chainguard/python")
    assert len(sleeps) == 1 and 3.0 <= sleeps[0] <= 3.5


def test_retry_after_as_a_date(cgr: FakeCgr, requests_mock, sleeps: Sleeps) -> None:
    when = format_datetime(datetime.now(timezone.utc) + timedelta(seconds=10), usegmt=True)
    respond_in_turn(cgr, requests_mock, HISTORY_URL,
                     {"status": 503, "headers": {"Retry-After": when}})
    client(sleep=sleeps).history(parse_cli("python"))
    assert len(sleeps) == 1 and 7.0 <= sleeps[0] <= 11.5


def test_503_is_retried_with_growing_delays(cgr: FakeCgr, requests_mock, sleeps: Sleeps) -> None:
    respond_in_turn(cgr, requests_mock, HISTORY_URL,
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
    monkeypatch.setattr(transport, "MAX_BODY", 100_000)
    body = json.dumps({"history": entries(2000)}).encode()
    assert len(body) > 100_000
    headers = {"Content-Length": str(len(body))} if declare_length else {}

    def big(request, context):
        context.headers.update(headers)
        return body

    respond_in_turn(cgr, requests_mock, HISTORY_URL)
    client().history(parse_cli("python"))  # get a token first
    requests_mock.get(HISTORY_URL, content=big)
    with pytest.raises(RegistryError, match="refusing") as caught:
        client().history(parse_cli("python"))
    assert_clean(str(caught.value))
    # Declared: refused before reading; streamed: refused once the limit is crossed.
    assert (f"body of {len(body)} bytes" in str(caught.value)) is declare_length


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


def tls_client(server: TLSRegistry, sleep: Sleeps | None = None, **options) -> RegistryClient:
    return RegistryClient(server.name, use_disk_cache=False,
                          sleep=sleep if sleep is not None else Sleeps(), **options)


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
    sleeps = Sleeps()
    with pytest.raises(RegistryError) as caught:
        tls_client(server, sleep=sleeps).tags("chainguard/python")
    message = str(caught.value)
    assert_clean(message)
    assert message == (f"registry {server.name}: certificate not trusted {why}; to trust a "
                       f"private CA, put it in /etc/docker/certs.d/{server.name}/ca.crt")
    assert server.connections == 1 and server.handshakes == 0
    assert sleeps == []


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
    client.transport.session().verify = False  # even a session told not to verify does
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


# --- streamed bodies (layers) -------------------------------------------------------------------


def _blob_transport() -> transport.Transport:
    return transport.Transport("reg.example", "https://reg.example",
                               timeout=(5.0, 5.0), policy=transport.RetryPolicy(attempts=2),
                               sleep=lambda _: None)


def test_a_streamed_body_goes_to_the_sink_and_is_not_kept(requests_mock) -> None:
    blob = bytes(range(256)) * 1000
    requests_mock.get("https://reg.example/v2/r/blobs/x", content=blob)
    seen: list[int] = []

    def sink(chunks) -> int:
        total = 0
        for chunk in chunks:
            seen.append(len(chunk))
            total += len(chunk)
        return total

    answer = _blob_transport().send("GET", "https://reg.example/v2/r/blobs/x", what="layer",
                                    body=transport.Body(limit=len(blob), sink=sink))
    assert answer.status == 200
    assert answer.value == len(blob)
    assert answer.body == b""
    assert sum(seen) == len(blob)


def test_a_streamed_body_over_its_limit_is_refused_midway(requests_mock) -> None:
    requests_mock.get("https://reg.example/v2/r/blobs/x", content=b"x" * 300_000)
    taken: list[int] = []

    def sink(chunks) -> None:
        for chunk in chunks:
            taken.append(len(chunk))

    with pytest.raises(RegistryError, match="sent more than 100000 bytes"):
        _blob_transport().send("GET", "https://reg.example/v2/r/blobs/x", what="layer",
                               body=transport.Body(limit=100_000, sink=sink))
    assert 0 < sum(taken) <= 100_000


def test_an_error_answer_is_kept_not_streamed(requests_mock) -> None:
    requests_mock.get("https://reg.example/v2/r/blobs/x", status_code=404,
                      content=b'{"errors":[{"code":"BLOB_UNKNOWN"}]}')
    called: list[bool] = []
    answer = _blob_transport().send(
        "GET", "https://reg.example/v2/r/blobs/x", what="layer",
        body=transport.Body(sink=lambda chunks: called.append(True)))
    assert answer.status == 404
    assert b"BLOB_UNKNOWN" in answer.body
    assert called == []


def test_a_spare_connection_does_not_borrow_the_idle_one() -> None:
    """Prewarming opens connections beside the idle one: the token request that follows the
    first answer keeps the warm connection instead of paying for a new handshake."""
    from tests.support.front import Front

    front = Front(None, {"repos": {}}).start()
    try:
        sender = transport.Transport(front.host, front.url, timeout=(5.0, 5.0),
                                     policy=transport.RetryPolicy(attempts=1))
        assert sender.send("GET", front.url + "/v2/", what="ping").status in (200, 401)
        assert front.connection_count == 1
        sender.open_spare_connection(front.url + "/v2/")
        sender.open_spare_connection(front.url + "/v2/")
        assert front.connection_count == 3
        session = sender.session()
        pool = session.get_adapter(front.url).get_connection_with_tls_context(
            session.prepare_request(requests.Request("GET", front.url + "/v2/")), True,
            proxies={}, cert=None)
        idle = [conn for conn in pool.pool.queue if conn is not None]
        assert len(idle) == 3  # the first one is still there, and both spares joined it
        for _ in range(3):
            sender.send("GET", front.url + "/v2/", what="ping")
        assert front.connection_count == 3  # every later request found a warm connection
        sender.close()
    finally:
        front.stop()
