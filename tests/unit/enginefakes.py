"""What the engine adapter's tests and the pull command's tests share: a fake docker-py client.

``FakeAPI`` stands in for ``docker.APIClient`` below ``Engine``, so both the adapter and the
command recipe above it run their real code against canned engine answers.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any

import requests
from docker.errors import APIError, NotFound

from docker_cghistory.endpoint import Endpoint

NAME = "cgr.dev/chainguard/python"
D1 = "sha256:" + "1" * 64
D2 = "sha256:" + "2" * 64
D3 = "sha256:" + "3" * 64
SECRET = "s3cret-pull-token"
ENDPOINT = Endpoint("unix:///fake/docker.sock")

PULL_EVENTS = [
    {"status": "Pulling from chainguard/python", "id": D1},
    {"status": "Pulling fs layer", "progressDetail": {}, "id": "aaaa"},
    {"status": "Pulling fs layer", "progressDetail": {}, "id": "bbbb"},
    {"status": "Downloading", "progressDetail": {"current": 1, "total": 4},
     "progress": "[=>  ] 1B/4B", "id": "aaaa"},
    {"status": "Download complete", "progressDetail": {}, "id": "bbbb"},
    {"status": "Pull complete", "progressDetail": {}, "id": "aaaa"},
    {"status": f"Digest: {D1}"},
    {"status": f"Status: Downloaded newer image for {NAME}@{D1}"},
]


def api_error(status: int, explanation: str) -> APIError:
    """docker-py's error for an engine answer of ``status`` (``NotFound`` for 404)."""
    response = requests.Response()
    response.status_code = status
    response.url = "http+docker://localhost/v1.41/images/create"
    error_class = NotFound if status == 404 else APIError
    return error_class(f"{status} error", response=response, explanation=explanation)


def image(image_id: str, *repo_digests: str, tags: tuple[str, ...] = ()) -> dict:
    """An ``inspect``/``images/json`` record as the engine sends it."""
    return {"Id": image_id, "RepoDigests": list(repo_digests), "RepoTags": list(tags)}


class FakeAPI:
    """Stands in for ``docker.APIClient``: canned answers, every call recorded."""

    api_version = "1.41"
    base_url = "http+docker://localhost"
    timeout = 1.0
    listing_status = 200

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple, dict]] = []
        self.events: list[Any] = []
        self.pull_error: BaseException | None = None
        self.stream_error: BaseException | None = None
        self.remove_error: BaseException | None = None
        self.images_by_ref: dict[str, dict] = {}
        self.listing: list[dict] = []
        self.closed = False

    def pull(self, *args: Any, **kwargs: Any) -> Iterator[Any]:
        self.calls.append(("pull", args, kwargs))
        if self.pull_error is not None:
            raise self.pull_error

        def stream() -> Iterator[Any]:
            yield from self.events
            if self.stream_error is not None:
                raise self.stream_error

        return stream()

    def inspect_image(self, ref: str) -> dict:
        self.calls.append(("inspect_image", (ref,), {}))
        if ref not in self.images_by_ref:
            raise api_error(404, f"No such image: {ref}")
        return self.images_by_ref[ref]

    def tag(self, image: str, repository: str, tag: str | None = None,
            force: bool = False) -> bool:
        self.calls.append(("tag", (image, repository, tag), {"force": force}))
        return True

    def remove_image(self, image: str) -> None:
        self.calls.append(("remove_image", (image,), {}))
        if self.remove_error is not None:
            raise self.remove_error
        if self.images_by_ref.pop(image, None) is None:
            raise api_error(404, f"No such image: {image}")

    def get(self, url: str, **kwargs: Any) -> requests.Response:
        self.calls.append(("get", (url,), kwargs))
        response = requests.Response()
        response.status_code = self.listing_status
        response._content = json.dumps(self.listing).encode()
        response.raw = io.BytesIO(b"")
        return response

    def close(self) -> None:
        self.closed = True
