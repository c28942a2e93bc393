"""Proxy choice (``docker_cghistory.proxy``) against the semantics of docker's Go code.

The tables follow golang.org/x/net/http/httpproxy (proxy_test.go: ``UseProxyTests`` with its
``noProxy`` value, and ``proxyForURLTests``), which the docker CLI and dockerd use. The one
deliberate difference, from curl and Python: ``.example.com`` also matches ``example.com``.
Each row notes where requests' own ``should_bypass_proxies`` decides otherwise.
"""

from __future__ import annotations

import pytest

from docker_cghistory.proxy import Proxy, bypass, proxy_for, redact, select

GO_NO_PROXY = ("foobar.com, .barbaz.net, *.wildcard.io, 192.168.1.1, 192.168.1.2:81, "
               "192.168.1.3:80, 10.0.0.0/30, 2001:db8::52:0:1, [2001:db8::52:0:2]:443, "
               "[2001:db8::52:0:3]:80, 2002:db8:a::45/64")

# (host, uses the proxy) for "http://HOST:80" under GO_NO_PROXY: Go's UseProxyTests.
GO_USE_PROXY = [
    ("localhost", False), ("127.0.0.1", False), ("127.0.0.2", False), ("[::1]", False),
    ("[::2]", True),
    ("192.168.1.1", False), ("192.168.1.2", True), ("192.168.1.3", False),
    ("192.168.1.4", True), ("10.0.0.2", False), ("[2001:db8::52:0:1]", False),
    ("[2001:db8::52:0:2]", True), ("[2001:db8::52:0:3]", False), ("[2002:db8:a::123]", False),
    ("[fe80::424b:c8be:1643:a1b6]", True),
    ("www.barbaz.net", False), ("foobar.com", False), ("www.foobar.com", False),
    ("foofoobar.com", True), ("baz.com", True), ("localhost.net", True),
    ("local.localhost", True), ("barbarbaz.net", True), ("wildcard.io", True),
    ("nested.wildcard.io", False), ("awildcard.io", True),
    # the curl rule (Go: True): a leading dot matches the domain itself
    ("barbaz.net", False),
]


@pytest.mark.parametrize(("host", "proxied"), GO_USE_PROXY)
def test_go_use_proxy_table(host: str, proxied: bool) -> None:
    environ = {"HTTP_PROXY": "http://proxy:3128", "NO_PROXY": GO_NO_PROXY}
    assert (proxy_for(f"http://{host}:80/v2/", environ) is not None) is proxied


@pytest.mark.parametrize(("host", "_"), GO_USE_PROXY)
def test_star_means_no_proxy_at_all(host: str, _: bool) -> None:
    assert proxy_for(f"http://{host}:80/", {"HTTP_PROXY": "proxy", "NO_PROXY": "*"}) is None


@pytest.mark.parametrize(("environ", "url", "expected"), [
    ({"HTTP_PROXY": "127.0.0.1:8080"}, "http://example.com", "http://127.0.0.1:8080"),
    ({"HTTP_PROXY": "cache.corp.example.com:1234"}, "http://example.com",
     "http://cache.corp.example.com:1234"),
    ({"HTTP_PROXY": "https://cache.corp.example.com"}, "http://example.com",
     "https://cache.corp.example.com"),
    ({"HTTP_PROXY": "socks5://127.0.0.1"}, "http://example.com", "socks5://127.0.0.1"),
    ({"HTTP_PROXY": "http.proxy.tld", "HTTPS_PROXY": "secure.proxy.tld"},
     "http://insecure.tld/", "http://http.proxy.tld"),
    ({"HTTP_PROXY": "http.proxy.tld", "HTTPS_PROXY": "secure.proxy.tld"},
     "https://secure.tld/", "http://secure.proxy.tld"),
    ({"HTTP_PROXY": "http.proxy.tld"}, "https://secure.tld/", None),
    ({"HTTP_PROXY": "http.proxy.tld"}, "ftp://insecure.tld/", None),
    ({}, "http://example.com", None),
    ({"NO_PROXY": "example.com", "HTTP_PROXY": "proxy"}, "http://example.com/", None),
    ({"NO_PROXY": "ample.com", "HTTP_PROXY": "proxy"}, "http://example.com/",
     "http://proxy"),  # requests: bypassed (a bare suffix test)
    ({"NO_PROXY": "example.com", "HTTP_PROXY": "proxy"}, "http://foo.example.com/", None),
    ({"NO_PROXY": ".foo.com", "HTTP_PROXY": "proxy"}, "http://example.com/", "http://proxy"),
    ({"NO_PROXY": ".示例.com", "HTTP_PROXY": "proxy"}, "http://www.示例.com", None),
    ({"NO_PROXY": "xn--fsq092h.com", "HTTP_PROXY": "proxy"}, "http://www.示例.com", None),
    ({"NO_PROXY": "示例.com", "HTTP_PROXY": "proxy"}, "http://www.xn--fsq092h.com", None),
    # ports: "host:5000" bypasses that port only; the default port counts (Go canonicalAddr)
    ({"NO_PROXY": "reg.corp:5000", "HTTPS_PROXY": "p"}, "https://reg.corp:5000/", None),
    ({"NO_PROXY": "reg.corp:5000", "HTTPS_PROXY": "p"}, "https://reg.corp/", "http://p"),
    ({"NO_PROXY": "cgr.dev:443", "HTTPS_PROXY": "p"}, "https://cgr.dev/", None),
    # the registry of the brief: .example.com covers sub-domains and the domain (curl)
    ({"NO_PROXY": ".example.com", "HTTPS_PROXY": "p"}, "https://sub.example.com/", None),
    ({"NO_PROXY": ".example.com", "HTTPS_PROXY": "p"}, "https://example.com/", None),
    # upper case first, empty values skipped (Go's getEnvAny); requests: lower case first
    ({"HTTPS_PROXY": "http://upper:1", "https_proxy": "http://lower:1"}, "https://x.io/",
     "http://upper:1"),
    ({"HTTPS_PROXY": "", "https_proxy": "http://lower:1"}, "https://x.io/", "http://lower:1"),
    ({"NO_PROXY": "x.io", "no_proxy": "", "HTTPS_PROXY": "p"}, "https://x.io/", None),
    # loopback never goes through a proxy (requests: it does)
    ({"HTTPS_PROXY": "p"}, "https://127.0.0.1:5000/", None),
    ({"HTTP_PROXY": "p"}, "http://localhost:5000/", None),
    # ALL_PROXY is curl's fallback; a per-scheme variable wins over it
    ({"ALL_PROXY": "http://all:1"}, "https://x.io/", "http://all:1"),
    ({"ALL_PROXY": "http://all:1", "HTTPS_PROXY": "http://s:1"}, "https://x.io/",
     "http://s:1"),
    # malformed entries are ignored, never fatal (Go's TestInvalidNoProxy)
    ({"NO_PROXY": ":1, [::1, 1.2.3.4/99", "HTTPS_PROXY": "p"}, "https://x.io/", "http://p"),
    # IP entries match IP hosts only, with an optional port
    ({"NO_PROXY": "10.1.2.3", "HTTPS_PROXY": "p"}, "https://10.1.2.3:5000/", None),
    ({"NO_PROXY": "10.1.2.3:443", "HTTPS_PROXY": "p"}, "https://10.1.2.3:5000/", "http://p"),
])
def test_proxy_for(environ: dict[str, str], url: str, expected: str | None) -> None:
    assert proxy_for(url, environ) == expected


def test_select_names_the_variable() -> None:
    chosen = select("https://cgr.dev/v2/", {"https_proxy": "http://u:secret@proxy:3128"})
    assert chosen == Proxy("http://u:secret@proxy:3128", "https_proxy")
    assert chosen.shown == "http://proxy:3128"
    assert chosen.host_with_port == "proxy:3128"


@pytest.mark.parametrize(("url", "shown"), [
    ("http://user:pass@127.0.0.1:3128", "http://127.0.0.1:3128"),
    ("http://user:pass@proxy", "http://proxy:80"),
    ("https://proxy", "https://proxy:443"),
    ("http://[::1]:3128", "http://[::1]:3128"),
    ("http://user:pass@", "(an invalid proxy address)"),
])
def test_redact_never_shows_user_info(url: str, shown: str) -> None:
    assert redact(url) == shown


def test_bypass_is_case_insensitive() -> None:
    assert bypass("Registry.Corp.Example", 443, "CORP.example")
