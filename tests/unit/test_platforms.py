"""Platforms as docker names and matches them, and the index entries that are that platform's."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from docker_cghistory.errors import UsageError
from docker_cghistory.platforms import (
    InvalidPlatform,
    ManifestError,
    Platform,
    attestation_for,
    default_platform,
    is_index,
    layer_descriptors,
    local_platform,
    manifest_for,
    parse_platform,
    platform_digests,
    platform_of_config,
    platforms_of,
)

AMD = "sha256:" + "a" * 64
ARM = "sha256:" + "b" * 64
ARMV7 = "sha256:" + "c" * 64
ATT_AMD = "sha256:" + "d" * 64
ATT_ARM = "sha256:" + "e" * 64
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


def _entry(digest, os_name, arch, variant=None, annotations=None, media_type=OCI_MANIFEST):
    platform = {"architecture": arch, "os": os_name}
    if variant:
        platform["variant"] = variant
    entry = {"mediaType": media_type, "digest": digest, "size": 1234, "platform": platform}
    if annotations:
        entry["annotations"] = annotations
    return entry


def buildkit_index() -> dict:
    """The shape BuildKit pushes: platform manifests, then one attestation manifest each."""
    return {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [
            _entry(AMD, "linux", "amd64"),
            _entry(ARM, "linux", "arm64", "v8"),
            _entry(ARMV7, "linux", "arm", "v7"),
            _entry(ATT_AMD, "unknown", "unknown", annotations={
                "vnd.docker.reference.digest": AMD,
                "vnd.docker.reference.type": "attestation-manifest"}),
            _entry(ATT_ARM, "unknown", "unknown", annotations={
                "vnd.docker.reference.digest": ARM,
                "vnd.docker.reference.type": "attestation-manifest"}),
        ],
    }


@pytest.mark.parametrize(("text", "shown"), [
    ("linux/amd64", "linux/amd64"),
    ("linux/arm64/v8", "linux/arm64"),
    ("linux/aarch64", "linux/arm64"),
    ("linux/x86_64", "linux/amd64"),
    ("linux/x86-64/v1", "linux/amd64"),
    ("linux/amd64/v3", "linux/amd64/v3"),
    ("linux/armhf", "linux/arm/v7"),
    ("linux/armel", "linux/arm/v6"),
    ("linux/arm", "linux/arm/v7"),
    ("linux/arm/7", "linux/arm/v7"),
    ("linux/arm/6", "linux/arm/v6"),
    ("linux/i386", "linux/386"),
    ("Linux/ARM64", "linux/arm64"),
    ("macos/arm64", "darwin/arm64"),
    ("windows/amd64", "windows/amd64"),
])
def test_platforms_are_normalised_as_containerd_does(text, shown):
    assert str(parse_platform(text)) == shown
    assert parse_platform(text) == parse_platform(shown)


@pytest.mark.parametrize("text", ["", "linux", "amd64", "linux/", "/amd64", "linux/amd64/v8/x",
                                  "linux/am d64", "linux/amd64\x1b[2J", "a" * 200 + "/amd64"])
def test_a_bad_platform_is_a_usage_error_naming_the_form(text):
    with pytest.raises(InvalidPlatform) as caught:
        parse_platform(text)
    message = str(caught.value)
    assert isinstance(caught.value, UsageError)
    assert "OS/ARCH[/VARIANT]" in message
    assert "\n" not in message and "\x1b" not in message and len(message) < 200


@given(st.sampled_from(["linux", "windows"]),
       st.sampled_from(["amd64", "x86_64", "arm64", "aarch64", "arm", "armhf", "386", "s390x"]),
       st.sampled_from(["", "v6", "v7", "v8", "8", "v1"]))
def test_printing_then_parsing_gives_the_same_platform(os_name, arch, variant):
    platform = Platform(os_name, arch, variant)
    assert parse_platform(str(platform)) == platform


def test_platforms_of_skips_attestations_and_keeps_the_index_order():
    index = buildkit_index()
    assert [str(p) for p in platforms_of(index)] == ["linux/amd64", "linux/arm64", "linux/arm/v7"]
    assert platform_digests(index) == {"linux/amd64": AMD, "linux/arm64": ARM,
                                       "linux/arm/v7": ARMV7}


def test_an_attestation_without_unknown_platform_is_still_recognised_by_its_annotation():
    index = buildkit_index()
    index["manifests"][3]["platform"] = {"os": "linux", "architecture": "s390x"}
    assert "linux/s390x" not in platform_digests(index)


def test_manifest_for_matches_the_normalised_platform():
    index = buildkit_index()
    assert manifest_for(index, parse_platform("linux/arm64/v8")).digest == ARM
    assert manifest_for(index, parse_platform("linux/aarch64")).digest == ARM
    assert manifest_for(index, parse_platform("linux/arm")).digest == ARMV7
    assert manifest_for(index, parse_platform("linux/arm/v6")) is None
    assert manifest_for(index, parse_platform("linux/s390x")) is None


def test_the_index_can_be_given_as_bytes():
    raw = json.dumps(buildkit_index()).encode()
    assert is_index(raw)
    assert manifest_for(raw, Platform("linux", "amd64")).digest == AMD


def test_attestation_for_finds_buildkits_attestation_manifest():
    index = buildkit_index()
    assert attestation_for(index, ARM).digest == ATT_ARM
    assert attestation_for(index, ARMV7) is None


def test_docker_manifest_lists_work_like_oci_indexes():
    index = {"schemaVersion": 2,
             "mediaType": "application/vnd.docker.distribution.manifest.list.v2+json",
             "manifests": [_entry(AMD, "linux", "amd64",
                                  media_type="application/vnd.docker.distribution.manifest.v2+json")]}
    assert platform_digests(index) == {"linux/amd64": AMD}


def test_entries_of_unknown_media_types_are_skipped_not_fatal():
    index = buildkit_index()
    index["manifests"].append({"mediaType": "application/vnd.example.thing+json",
                               "digest": "not-a-digest", "size": -1})
    assert len(platforms_of(index)) == 3


@pytest.mark.parametrize(("field", "value", "words"), [
    ("digest", "sha256:XYZ", "invalid digest"),
    ("digest", "sha256:" + "a" * 63, "invalid digest"),
    ("digest", "md5:" + "a" * 32, "invalid digest"),
    ("size", -1, "invalid size"),
    ("size", "12", "invalid size"),
    ("size", True, "invalid size"),
    ("platform", {"os": "linux"}, "invalid platform"),
    ("platform", {"os": "linux", "architecture": "../../x"}, "invalid platform"),
    ("annotations", {"a": 1}, "invalid annotations"),
])
def test_a_malformed_entry_fails_the_index_in_one_line(field, value, words):
    index = buildkit_index()
    index["manifests"][1][field] = value
    with pytest.raises(ManifestError) as caught:
        platforms_of(index)
    assert words in str(caught.value)
    assert "entry 1" in str(caught.value)


@pytest.mark.parametrize("raw", [b"[]", b"{", b"\xff\xfe\x00", b"[" * 100_000 + b"]" * 100_000,
                                 b'{"manifests": 3}'])
def test_garbage_indexes_are_one_line_errors(raw):
    with pytest.raises(ManifestError) as caught:
        platforms_of(raw)
    assert "\n" not in str(caught.value)


def test_a_plain_manifest_is_not_an_index_and_its_platform_comes_from_its_config():
    manifest = {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": {}, "layers": []}
    assert not is_index(manifest)
    with pytest.raises(ManifestError):
        platforms_of(manifest)
    config = {"architecture": "arm64", "variant": "v8", "os": "linux", "config": {}}
    assert str(platform_of_config(json.dumps(config).encode())) == "linux/arm64"
    with pytest.raises(ManifestError):
        platform_of_config({"os": "linux"})


@pytest.mark.parametrize(("machine", "shown"), [
    ("x86_64", "linux/amd64"), ("AMD64", "linux/amd64"), ("aarch64", "linux/arm64"),
    ("arm64", "linux/arm64"), ("armv7l", "linux/arm/v7"), ("armv6l", "linux/arm/v6"),
    ("i686", "linux/386"), ("ppc64le", "linux/ppc64le"), ("riscv64", "linux/riscv64"),
])
def test_local_platform_maps_the_machine_name(machine, shown):
    assert str(local_platform(machine)) == shown


def test_local_platform_of_this_machine_is_a_linux_platform():
    assert local_platform().os == "linux"
    assert parse_platform(str(local_platform())) == local_platform()


def test_default_platform_prefers_the_engine_and_falls_back_on_the_machine():
    assert str(default_platform("linux/arm64/v8", machine="x86_64")) == "linux/arm64"
    assert str(default_platform(None, machine="aarch64")) == "linux/arm64"
    assert str(default_platform("", machine="x86_64")) == "linux/amd64"
    assert str(default_platform("garbage answer", machine="x86_64")) == "linux/amd64"


def test_layer_descriptors_are_validated_in_order():
    manifest = {"mediaType": OCI_MANIFEST, "layers": [
        {"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": AMD, "size": 10},
        {"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": ARM, "size": 20},
    ]}
    assert [d.digest for d in layer_descriptors(manifest)] == [AMD, ARM]
    manifest["layers"][1]["digest"] = "sha256:../../etc/passwd"
    with pytest.raises(ManifestError, match="layer 1"):
        layer_descriptors(manifest)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
        st.sampled_from(["mediaType", "manifests", "digest", "size", "platform", "os",
                         "architecture", "variant", "annotations", "layers"]), inner, max_size=5),
    max_leaves=30)


@settings(max_examples=200, deadline=None)
@given(json_values)
def test_arbitrary_json_gives_platforms_or_one_typed_error(value):
    for document in (value, {"mediaType": "application/vnd.oci.image.index.v1+json",
                             "manifests": [value]}):
        try:
            platforms_of(json.dumps(document).encode())
        except ManifestError as exc:
            assert "\n" not in str(exc)
        try:
            layer_descriptors(json.dumps({"layers": [value]}))
        except ManifestError as exc:
            assert "\n" not in str(exc)
