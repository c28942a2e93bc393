"""The series themselves: package sets, configs and attestation way of every build.

Changing a version here changes the expected diffs with it (model.expected_diff); tests read
``Series`` and never repeat these numbers.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from .model import Series
from .oci import HasUrl
from .series import (
    PATH_ENV,
    PYTHON_LABELS,
    Spec,
    _Builder,
    apk_base_layer,
    apk_packages_layer,
    app_layer,
    busybox_layer,
    created,
    db_whiteout_layer,
    dpkg_layer,
    status_d_layer,
)

# The older database, in a lower layer of every apk image: a reader must not use it.
APK_STALE = {
    "wolfi-baselayout": "20230201-r7", "ca-certificates-bundle": "20240226-r0",
    "glibc": "2.38-r10", "libcrypto3": "3.2.1-r0", "libssl3": "3.2.1-r0",
    "ncurses": "6.4_p20231125-r0", "python-3.12": "3.12.1-r0", "busybox": "1.36.1-r2",
    "zlib": "1.3-r0", "stale-only-package": "0.1-r0",
}
APK_B0 = {
    "wolfi-baselayout": "20230201-r15", "ca-certificates-bundle": "20240315-r0",
    "glibc": "2.39-r1", "libcrypto3": "3.3.0-r0", "libssl3": "3.3.0-r0", "openssl": "3.3.0-r0",
    "ncurses": "6.4_p20231125-r1", "python-3.12": "3.12.3-r0", "busybox": "1.36.1-r6",
    "zlib": "1.3.1-r0",
}


def _ssl(packages: dict[str, str], version: str) -> dict[str, str]:
    return {**packages, "libcrypto3": version, "libssl3": version, "openssl": version}


def python_config(python: str, user: str = "65532", cmd: tuple[str, ...] = ("/usr/bin/python",),
                  labels: dict[str, str] | None = None) -> dict[str, Any]:
    return {"Env": [PATH_ENV, "SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt",
                    "LANG=C.UTF-8", f"PYTHON_VERSION={python}"],
            "User": user, "WorkingDir": "/home/nonroot", "Cmd": list(cmd),
            "Labels": {**PYTHON_LABELS, **(labels or {})}}


def push_build_series(registry: HasUrl, repo: str = "fixtures/python", tag: str = "latest",
                      end: datetime | None = None) -> Series:
    """Seven multi-platform apk builds of ``repo:tag`` (see the package docstring)."""
    b = _Builder(registry, repo, tag)
    arm_b1 = _ssl(APK_B0, "3.3.0-r1")
    b2 = {k: v for k, v in arm_b1.items() if k != "ncurses"}
    b2 |= {"python-3.12": "3.12.4-r0", "libexpat1": "2.6.2-r0"}
    b3 = _ssl(b2, "3.3.1-r0")
    b4 = {**b3, "zlib": "1.3.1-r1"}
    b5 = {**b4, "libffi": "3.4.6-r0"}
    b6 = {**b5, "busybox": "1.36.1-r7"}
    cfg_a = python_config("3.12.3")
    cfg_b = python_config("3.12.4")
    url = {"org.opencontainers.image.url":
           "https://images.chainguard.dev/directory/image/python/overview"}
    cfg_c = python_config("3.12.4", labels=url)
    cfg_d = python_config("3.12.4", user="0", labels=url)
    cfg_e = python_config("3.12.4", user="0", cmd=("/usr/bin/python", "-i"), labels=url)

    def spec(arch: str, position: int, packages: dict[str, str], config: dict[str, Any],
             attestation: Any, layout: str = "plain", app_size: int = 8192,
             extra_referrers: bool = False) -> Spec:
        marker = f"{repo}:{tag} build {position} {arch}"
        layers = [busybox_layer(), apk_base_layer(arch, APK_STALE),
                  apk_packages_layer(arch, packages, layout), app_layer(marker, app_size)]
        return Spec(arch, config, layers, "apk", packages, APK_STALE, attestation,
                    extra_referrers, marker)

    # 0: both platforms, SPDX through cosign's .att tag, buildkit attestation entries.
    amd0 = b.platform(spec("amd64", 0, APK_B0, cfg_a, "cosign"), created(0))
    arm0 = b.platform(spec("arm64", 0, APK_B0, cfg_a, "cosign"), created(0))
    b.add_index([amd0, arm0], "both platforms; SPDX via .att; buildkit attestation-manifest "
                "entries (unknown/unknown)", buildkit_attestations=True)
    # 1: only arm64 changed (openssl rebuild); amd64 is build 0's manifest, byte for byte.
    arm1 = b.platform(spec("arm64", 1, arm_b1, cfg_a, "referrers"), created(1))
    b.add_index([amd0, arm1], "only arm64 changed; arm64 SPDX via referrers")
    # 2: python 3.12.4 (Env), +libexpat1, -ncurses, bigger; referrers on both platforms,
    #    amd64 also with a provenance bundle and a non-bundle referrer.
    amd2 = b.platform(spec("amd64", 2, b2, cfg_b, "referrers", app_size=24576,
                           extra_referrers=True), created(2))
    arm2 = b.platform(spec("arm64", 2, b2, cfg_b, "referrers", app_size=24576), created(2))
    b.add_index([amd2, arm2], "python 3.12.4, +libexpat1, -ncurses, bigger; referrers")
    # 3: openssl 3.3.1, a label added, opaque lib/apk/db; .att with CycloneDX then SPDX.
    amd3 = b.platform(spec("amd64", 3, b3, cfg_c, "cosign-both", "opaque", 24576), created(3))
    arm3 = b.platform(spec("arm64", 3, b3, cfg_c, "cosign-both", "opaque", 24576), created(3))
    b.add_index([amd3, arm3], "openssl 3.3.1, label added, opaque db folder; "
                ".att holds CycloneDX and SPDX")
    # 4: zlib, User 0; CycloneDX only.
    amd4 = b.platform(spec("amd64", 4, b4, cfg_d, "cosign-cyclonedx", app_size=24576),
                      created(4))
    arm4 = b.platform(spec("arm64", 4, b4, cfg_d, "cosign-cyclonedx", app_size=24576),
                      created(4))
    b.add_index([amd4, arm4], "zlib -r1, User 0; CycloneDX only")
    # 5: no arm64; no attestation (layer fallback); +libffi.
    amd5 = b.platform(spec("amd64", 5, b5, cfg_d, None, app_size=40960), created(5))
    b.add_index([amd5], "lacks linux/arm64; no attestation; +libffi, bigger")
    # 6: busybox -r7, Cmd; amd64's SBOM names build 5's amd64 (must be refused); arm64 valid.
    amd6 = b.platform(spec("amd64", 6, b6, cfg_e, "wrong-subject", app_size=40960), created(6),
                      wrong_subject=amd5.digest)
    arm6 = b.platform(spec("arm64", 6, b6, cfg_e, "referrers", app_size=40960), created(6))
    b.add_index([amd6, arm6], "busybox -r7, Cmd changed; amd64 SBOM has the wrong subject, "
                "arm64 referrers")
    return b.finish(end)


SINGLE_0 = {"wolfi-baselayout": "20230201-r15", "busybox": "1.36.1-r6", "glibc": "2.39-r1"}
SINGLE_2 = {**SINGLE_0, "busybox": "1.36.1-r7", "libxcrypt": "4.4.36-r4"}


def push_single_platform_series(registry: HasUrl, repo: str = "fixtures/python",
                                tag: str = "single", end: datetime | None = None) -> Series:
    """Three plain (non-index) linux/amd64 manifests: an apk database; the database whited
    out (no package data); the database again, in a layer above the whiteout."""
    b = _Builder(registry, repo, tag)
    cfg = {"Env": [PATH_ENV], "Cmd": ["/bin/sh"]}
    base = [busybox_layer(), apk_base_layer("amd64", APK_STALE)]
    s0 = Spec("amd64", cfg, [*base, apk_packages_layer("amd64", SINGLE_0),
                             app_layer(f"{repo}:{tag} build 0", 4096)],
              "apk", SINGLE_0, APK_STALE, marker=f"{repo}:{tag} build 0")
    b.add_single(b.platform(s0, created(0)), "plain manifest; apk database")
    cfg1 = {**cfg, "Entrypoint": ["/bin/sh", "-c"]}
    s1 = Spec("amd64", cfg1, [*base, apk_packages_layer("amd64", SINGLE_0), db_whiteout_layer(),
                              app_layer(f"{repo}:{tag} build 1", 8192)],
              None, {}, APK_STALE, marker=f"{repo}:{tag} build 1")
    b.add_single(b.platform(s1, created(1)), "plain manifest; database whited out: no data")
    s2 = Spec("amd64", cfg1, [*base, db_whiteout_layer(), apk_packages_layer("amd64", SINGLE_2),
                              app_layer(f"{repo}:{tag} build 2", 8192)],
              "apk", SINGLE_2, APK_STALE, marker=f"{repo}:{tag} build 2")
    b.add_single(b.platform(s2, created(2)), "plain manifest; database above a whiteout")
    return b.finish(end)


DPKG_STALE = {"base-files": "12.4+deb12u4", "libc6": "2.36-9+deb12u3",
              "libssl3": "3.0.11-1~deb12u1", "openssl": "3.0.11-1~deb12u1",
              "tzdata": "2023c-5+deb12u1", "zlib1g": "1:1.2.13.dfsg-1"}
DPKG_0 = {"base-files": "12.4+deb12u5", "libc6": "2.36-9+deb12u4",
          "libssl3": "3.0.11-1~deb12u2", "openssl": "3.0.11-1~deb12u2",
          "tzdata": "2024a-0+deb12u1", "zlib1g": "1:1.2.13.dfsg-1"}
DPKG_1 = {**DPKG_0, "libssl3": "3.0.13-1~deb12u1", "openssl": "3.0.13-1~deb12u1",
          "tzdata": "2025b-0+deb12u1", "ca-certificates": "20230311"}


def push_dpkg_series(registry: HasUrl, repo: str = "fixtures/debian", tag: str = "dpkg",
                     end: datetime | None = None) -> Series:
    """Two plain linux/amd64 Debian-style builds with ``var/lib/dpkg/status`` (an older copy
    below, a ``deinstall ok config-files`` record that is not a package)."""
    b = _Builder(registry, repo, tag)
    for position, (packages, version) in enumerate(((DPKG_0, "12.5"), (DPKG_1, "12.6"))):
        cfg = {"Env": [PATH_ENV], "Cmd": ["/bin/sh"],
               "Labels": {"org.opencontainers.image.version": version}}
        layers = [busybox_layer(), dpkg_layer("amd64", DPKG_STALE),
                  dpkg_layer("amd64", packages, removed=("libfoo1",)),
                  app_layer(f"{repo}:{tag} build {position}", 4096 * (position + 1))]
        image = b.platform(Spec("amd64", cfg, layers, "dpkg", packages, DPKG_STALE,
                                marker=f"{repo}:{tag} build {position}"), created(position))
        b.add_single(image, f"dpkg status, build {position}")
    return b.finish(end)


DISTROLESS_LOW = {"base-files": "12.4+deb12u5", "libc6": "2.36-9+deb12u4",
                  "libssl3": "3.0.11-1~deb12u2", "netbase": "6.4", "tzdata": "2024a-0+deb12u1"}
DISTROLESS_0 = {"base-files": "12.4+deb12u5", "libc6": "2.36-9+deb12u4",
                "libssl3": "3.0.13-1~deb12u1", "tzdata": "2024a-0+deb12u1"}
DISTROLESS_1 = {"base-files": "12.4+deb12u5", "libc6": "2.36-9+deb12u7",
                "libssl3": "3.0.14-1~deb12u1", "ca-certificates": "20230311"}


def push_distroless_series(registry: HasUrl, repo: str = "fixtures/debian",
                           tag: str = "distroless", end: datetime | None = None) -> Series:
    """Two plain linux/amd64 distroless-style builds with ``var/lib/dpkg/status.d/<pkg>``:
    build 0's upper layer whites out ``netbase`` and replaces ``libssl3``; build 1's makes
    the folder opaque and lists its own set."""
    b = _Builder(registry, repo, tag)
    cfg = {"Env": [PATH_ENV], "User": "65532", "Entrypoint": ["/bin/sh"]}
    low = status_d_layer("amd64", DISTROLESS_LOW)
    upper0 = status_d_layer("amd64", {"libssl3": DISTROLESS_0["libssl3"]}, deleted=("netbase",))
    upper1 = status_d_layer("amd64", DISTROLESS_1, opaque_folder=True)
    for position, (upper, packages) in enumerate(((upper0, DISTROLESS_0),
                                                  (upper1, DISTROLESS_1))):
        marker = f"{repo}:{tag} build {position}"
        layers = [busybox_layer(), low, upper, app_layer(marker, 4096)]
        image = b.platform(Spec("amd64", cfg, layers, "dpkg-status.d", packages, DISTROLESS_LOW,
                                marker=marker), created(position))
        b.add_single(image, f"distroless status.d, build {position}")
    return b.finish(end)
