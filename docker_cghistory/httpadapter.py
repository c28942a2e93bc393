"""The ``requests`` adapter every registry request goes through.

Why it exists: ``requests`` would trust certifi and read proxies, ``REQUESTS_CA_BUNDLE`` and
``~/.netrc`` from the environment. docker does none of that, so this adapter applies
``tls.ssl_context_for`` (certs.d, the system store, the user's CA variables) and
``proxy.select`` (HTTPS_PROXY and NO_PROXY as Go reads them) itself, per hop, and can open a
spare kept-alive connection ahead of parallel reads (``open_spare``). Imported by
``transport.Transport.session`` only, when the first request is made: importing it imports
``requests``.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from requests.adapters import HTTPAdapter

from . import failures, proxy, tls


class DockerAdapter(HTTPAdapter):
    """docker's TLS trust and proxy rules on every request and every hop of a redirect."""

    def send(self, request: Any, stream: bool = False, timeout: Any = None,
             verify: Any = True, cert: Any = None, proxies: Any = None) -> Any:
        # Chosen here, per hop, so a redirect to another host gets its own decision.
        route = proxy.select(request.url or "")
        scheme = urlsplit(request.url or "").scheme.lower()
        return super().send(request, stream=stream, timeout=timeout, verify=True,
                            cert=None, proxies={scheme: route.url} if route else {})

    def build_connection_pool_key_attributes(
        self, request: Any, verify: Any, cert: Any = None,
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        host_params, pool_kwargs = super().build_connection_pool_key_attributes(
            request, True, None)
        if host_params.get("scheme") == "https":
            # One pool per host and context; no ca_certs, which urllib3 would load
            # into the shared context on every connection.
            name = failures.host_with_port(host_params["host"], host_params.get("port"))
            pool_kwargs = {"cert_reqs": "CERT_REQUIRED",
                           "ssl_context": tls.ssl_context_for(name)}
        return host_params, pool_kwargs

    def cert_verify(self, conn: Any, url: str, verify: Any, cert: Any) -> None:
        # requests points every pool at certifi (verify=True), which would put
        # certifi back into a context built to leave it out (REQUESTS_CA_BUNDLE...).
        if url.lower().startswith("https"):
            conn.cert_reqs = "CERT_REQUIRED"
            conn.ca_certs = None
            conn.ca_cert_dir = None

    def open_spare(self, request: Any) -> None:
        """One more kept-alive connection in the pool ``send`` would use, opened with
        ``request`` (the ping), without borrowing an idle connection: the request the
        command is about to send keeps the warm one it would have taken."""
        route = proxy.select(request.url or "")
        scheme = urlsplit(request.url or "").scheme.lower()
        pool = self.get_connection_with_tls_context(
            request, True, proxies={scheme: route.url} if route else {}, cert=None)
        self.cert_verify(pool, request.url, True, None)
        connection = pool._new_conn()  # urllib3: a fresh connection, not an idle one
        try:
            connection.request(request.method, request.path_url,
                               headers=dict(request.headers))
            connection.getresponse().read()
        except BaseException:
            connection.close()
            raise
        # The pool holds one slot per connection it may keep, a ``None`` until it is
        # used. Ours was made without taking a slot: fill an empty one, or close it.
        slots = pool.pool
        with slots.mutex:
            adopted = None in slots.queue
            if adopted:
                slots.queue.remove(None)
                slots.queue.append(connection)
                slots.not_empty.notify()
        if not adopted:
            connection.close()

    def proxy_manager_for(self, proxy_url: str, **proxy_kwargs: Any) -> Any:
        if proxy_url not in self.proxy_manager and proxy_url.lower().startswith(
                "https://"):
            name = proxy.Proxy(proxy_url, "").host_with_port
            proxy_kwargs["proxy_ssl_context"] = tls.ssl_context_for(name)
        return super().proxy_manager_for(proxy_url, **proxy_kwargs)
