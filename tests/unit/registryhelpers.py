"""What the tests of the registry client share: a client for the fake cgr.dev of ``conftest``,
credentials of each kind, and checks that a message is one clean line without secrets.

``test_registry``, ``test_auth`` and ``test_transport`` mirror ``registry.py``, ``auth.py`` and
``transport.py``; they all drive a real ``RegistryClient`` against requests-mock.
"""

from __future__ import annotations

import base64
import re

from docker_cghistory.credentials import ANONYMOUS, Credential
from docker_cghistory.registry import RegistryClient

from .conftest import HELPER_SECRET, IDENTITY, PASSWORD, TOKEN_PREFIX, FakeCgr

RAW_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
SECRETS = (PASSWORD, HELPER_SECRET, IDENTITY, TOKEN_PREFIX,
           base64.b64encode(f"puller:{PASSWORD}".encode()).decode())


class Sleeps(list):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


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


def respond_in_turn(cgr: FakeCgr, requests_mock, url: str, *responses: dict) -> None:
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
