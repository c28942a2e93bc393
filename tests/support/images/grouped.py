"""A series for bisect ``--platform`` and its benchmark: nightly multi-platform builds whose
linux/amd64 image changes only now and then.

``push_grouped_series(registry, sizes=(4, 3, 3, 3, 3))`` pushes ``sum(sizes)`` builds, oldest
first; group ``g`` is ``sizes[g]`` consecutive builds sharing ONE linux/amd64 manifest (byte
for byte), while every build has a linux/arm64 image of its own, so every index digest is
new (what cgr.dev serves on nights when only arm64 changed). The amd64 images differ by
``openssl`` (``3.3.<g>-r0``) and carry an SPDX SBOM through the referrers API; each image's
``/build`` reads ``fixtures/grouped:latest image <g> amd64`` (runs in the private dockerd).
``amd64_groups(series)`` gives each build's group back, from what was pushed.
"""

from __future__ import annotations

from datetime import datetime

from .catalog import APK_B0, APK_STALE, python_config
from .model import Attestation, PlatformImage, Series
from .oci import HasUrl
from .series import (
    Spec,
    _Builder,
    apk_base_layer,
    apk_packages_layer,
    app_layer,
    busybox_layer,
    created,
)

SIZES = (4, 3, 3, 3, 3)  # 16 builds, 5 distinct linux/amd64 images


def _packages(version: int) -> dict[str, str]:
    ssl = f"3.3.{version}-r0"
    return {**APK_B0, "libcrypto3": ssl, "libssl3": ssl, "openssl": ssl}


def _image(b: _Builder, repo: str, tag: str, arch: str, label: str, version: int,
           when: str, attestation: Attestation | None) -> PlatformImage:
    marker = f"{repo}:{tag} {label} {arch}"
    packages = _packages(version)
    layers = [busybox_layer(), apk_base_layer(arch, APK_STALE),
              apk_packages_layer(arch, packages), app_layer(marker, 1024)]
    return b.platform(Spec(arch, python_config("3.12.4"), layers, "apk", packages, APK_STALE,
                           attestation, False, marker), when)


def push_grouped_series(registry: HasUrl, repo: str = "fixtures/grouped", tag: str = "latest",
                        sizes: tuple[int, ...] = SIZES, end: datetime | None = None) -> Series:
    """``sum(sizes)`` builds in ``len(sizes)`` runs of one amd64 image (module docstring)."""
    b = _Builder(registry, repo, tag)
    position = 0
    for group, size in enumerate(sizes):
        amd = _image(b, repo, tag, "amd64", f"image {group}", group, created(position),
                     "referrers")
        for _ in range(size):
            arm = _image(b, repo, tag, "arm64", f"build {position}", position,
                         created(position), None)
            b.add_index([amd, arm], f"amd64 image {group}, arm64 build {position}")
            position += 1
    return b.finish(end)


def amd64_groups(series: Series) -> list[int]:
    """Each build's run of one amd64 image (0, 0, 0, 0, 1, …), oldest first."""
    out: list[int] = []
    previous = None
    for build in series.builds:
        digest = build.platforms["linux/amd64"].digest
        out.append(out[-1] + (digest != previous) if out else 0)
        previous = digest
    return out
