"""A long multi-platform series for the listing's platform columns and their benchmarks:
``count`` nightly builds of linux/amd64 and linux/arm64 apk images, each platform image with
an SPDX SBOM through the referrers API (as cgr.dev serves them).

Every build bumps ``openssl`` (and its libraries) on arm64; amd64 changes too, except on every
``arm_only_every``-th build, where its manifest is the previous build's, byte for byte (the
"only arm64 changed" nights). Every fifth build also adds a package, so summaries vary.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from .catalog import APK_B0, APK_STALE, python_config
from .model import PlatformImage, Series
from .oci import HasUrl
from .series import (
    Spec,
    _Builder,
    apk_base_layer,
    apk_packages_layer,
    app_layer,
    busybox_layer,
)

_FIRST = datetime(2024, 5, 1, tzinfo=timezone.utc)


def _packages(position: int) -> dict[str, str]:
    ssl = f"3.3.{position}-r0"
    packages = {**APK_B0, "libcrypto3": ssl, "libssl3": ssl, "openssl": ssl}
    for extra in range(position // 5):
        packages[f"extra-{extra}"] = f"1.{extra}.0-r0"
    return packages


def push_many_series(registry: HasUrl, repo: str = "fixtures/many", tag: str = "latest",
                     count: int = 31, arm_only_every: int = 3,
                     end: datetime | None = None) -> Series:
    """``count`` builds, oldest first (see the module docstring)."""
    b = _Builder(registry, repo, tag)
    config = python_config("3.12.4")
    previous_amd: PlatformImage | None = None
    for position in range(count):
        created = (_FIRST + timedelta(days=position)).strftime("%Y-%m-%dT%H:%M:%SZ")
        images = []
        for arch in ("amd64", "arm64"):
            if (arch == "amd64" and previous_amd is not None
                    and position % arm_only_every == arm_only_every - 1):
                images.append(previous_amd)
                continue
            packages = _packages(position)
            marker = f"{repo}:{tag} build {position} {arch}"
            layers = [busybox_layer(), apk_base_layer(arch, APK_STALE),
                      apk_packages_layer(arch, packages), app_layer(marker, 1024)]
            image = b.platform(Spec(arch, config, layers, "apk", packages, APK_STALE,
                                    "referrers", False, marker), created)
            images.append(image)
            if arch == "amd64":
                previous_amd = image
        only_arm = position > 0 and position % arm_only_every == arm_only_every - 1
        b.add_index(images, f"build {position}" + ("; only arm64 changed" if only_arm else ""))
    return b.finish(end)
