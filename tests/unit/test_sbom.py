"""SBOM attestations: DSSE envelopes, Sigstore bundles and bare statements, SPDX and CycloneDX."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from docker_cghistory.errors import CghistoryError
from docker_cghistory.packages import Package
from docker_cghistory.sbom import (
    BUNDLE_ARTIFACT,
    CYCLONEDX,
    SPDX,
    SbomError,
    SbomSubjectMismatch,
    UnsupportedPredicate,
    attestation_layers,
    choose,
    cosign_tag,
    predicate_rank,
    read_sbom,
    read_statement,
    sbom_referrers,
)

DATA = Path(__file__).resolve().parent.parent / "data" / "sbom"
SUBJECT = "sha256:4f2a1b6c8d0e9f7a3b5c1d2e4f6a8b0c9d7e5f3a1b2c4d6e8f0a9b7c5d3e1f2a"
OTHER = "sha256:" + "9" * 64


def spdx_doc() -> dict:
    return json.loads((DATA / "chainguard-python.spdx.json").read_text())


def cdx_doc() -> dict:
    return json.loads((DATA / "debian-app.cdx.json").read_text())


def statement(predicate, predicate_type=SPDX, digest=SUBJECT) -> dict:
    return {
        "_type": "https://in-toto.io/Statement/v0.1",
        "predicateType": predicate_type,
        "subject": [{"name": "cgr.dev/chainguard/python", "digest": {"sha256": digest[7:]}}],
        "predicate": predicate,
    }


def envelope(body: dict, urlsafe: bool = False) -> dict:
    raw = json.dumps(body).encode()
    encoded = (base64.urlsafe_b64encode(raw) if urlsafe else base64.b64encode(raw)).decode()
    return {"payloadType": "application/vnd.in-toto+json", "payload": encoded,
            "signatures": [{"keyid": "", "sig": "MEUCIQDx...=="}]}


def bundle(body: dict) -> dict:
    return {
        "mediaType": BUNDLE_ARTIFACT,
        "verificationMaterial": {
            "certificate": {"rawBytes": "MIIC1jCCAlygAwIBAgIU..."},
            "tlogEntries": [{"logIndex": "153415338", "kindVersion": {"kind": "dsse",
                                                                        "version": "0.0.1"}}],
        },
        "dsseEnvelope": envelope(body),
    }


def _versions(sbom):
    return {(p.type, p.name): p.version for p in sbom.packages}


CHAINGUARD = {
    ("apk", "ca-certificates-bundle"): "20241121-r1", ("apk", "glibc"): "2.40-r3",
    ("apk", "libssl3"): "3.4.0-r2", ("apk", "python-3.12"): "3.12.8-r0",
    ("apk", "wolfi-baselayout"): "20230201-r16", ("pypi", "pip"): "24.3.1",
}


def test_a_chainguard_spdx_envelope_lists_packages_but_not_the_image_or_the_os():
    sbom = read_sbom(json.dumps(envelope(statement(spdx_doc()))).encode(), SUBJECT)
    assert sbom.format == "spdx"
    assert _versions(sbom) == CHAINGUARD


@pytest.mark.parametrize("wrap", [
    lambda s: json.dumps(bundle(s)).encode(),
    lambda s: json.dumps(envelope(s, urlsafe=True)).encode(),
    lambda s: json.dumps(s).encode(),
    lambda s: envelope(s),
])
def test_every_wrapping_gives_the_same_packages(wrap):
    assert _versions(read_sbom(wrap(statement(spdx_doc())), SUBJECT)) == CHAINGUARD


def test_an_attestation_for_another_image_is_refused():
    with pytest.raises(SbomSubjectMismatch) as caught:
        read_sbom(envelope(statement(spdx_doc(), digest=OTHER)), SUBJECT)
    assert "sha256:9999" in str(caught.value)


def test_an_attestation_naming_several_subjects_counts_if_one_is_ours():
    body = statement(spdx_doc(), digest=OTHER)
    body["subject"].append({"name": "x", "digest": {"sha256": SUBJECT[7:]}})
    assert _versions(read_sbom(envelope(body), SUBJECT)) == CHAINGUARD


def test_cyclonedx_components_are_read_with_their_nested_components():
    sbom = read_sbom(bundle(statement(cdx_doc(), CYCLONEDX + "/v1.5")), SUBJECT)
    assert sbom.format == "cyclonedx"
    assert _versions(sbom) == {("deb", "libc6"): "2.36-9+deb12u9",
                               ("deb", "libssl3"): "3.0.15-1~deb12u1",
                               ("npm", "express"): "4.21.1", ("npm", "@types/node"): "22.10.1"}


def test_an_older_cosign_predicate_with_the_document_as_a_string_is_read():
    predicate = {"Data": json.dumps(spdx_doc()), "Timestamp": "2023-01-01T00:00:00Z"}
    assert _versions(read_sbom(envelope(statement(predicate)), SUBJECT)) == CHAINGUARD


def test_a_provenance_attestation_is_not_an_sbom():
    with pytest.raises(UnsupportedPredicate):
        read_sbom(envelope(statement({}, "https://slsa.dev/provenance/v1")), SUBJECT)


def test_spdx_is_preferred_over_cyclonedx_and_others_are_dropped():
    assert predicate_rank(SPDX) == 0 and predicate_rank(SPDX + "/v2.3") == 0
    assert predicate_rank(CYCLONEDX) == 1
    assert predicate_rank("https://spdx.dev/DocumentX") is None
    assert predicate_rank(None) is None
    assert choose([("https://slsa.dev/provenance/v1", "p"), (CYCLONEDX, "c"),
                   (SPDX, "s1"), (SPDX, "s2")]) == ["s1", "s2", "c"]


def test_a_package_without_purl_is_generic_and_the_described_root_is_not_a_package():
    doc = spdx_doc()
    doc["packages"][1].pop("externalRefs")
    doc["packages"][1].pop("primaryPackagePurpose")
    doc["packages"].append({"SPDXID": "SPDXRef-x", "name": "vendored-thing", "versionInfo": "1"})
    found = _versions(read_sbom(envelope(statement(doc)), SUBJECT))
    assert found[("generic", "vendored-thing")] == "1"
    assert not any(name.startswith("sha256:") for _, name in found)


def test_the_os_entry_is_left_out_by_purpose_even_with_a_purl():
    doc = spdx_doc()
    doc["packages"][0]["externalRefs"] = [{"referenceCategory": "PACKAGE-MANAGER",
                                           "referenceType": "purl",
                                           "referenceLocator": "pkg:generic/wolfi@20230201"}]
    assert ("generic", "wolfi") not in _versions(read_sbom(envelope(statement(doc)), SUBJECT))


def _error(data, subject=SUBJECT, **caps):
    with pytest.raises(CghistoryError) as caught:
        read_sbom(data, subject, **caps)
    message = str(caught.value)
    assert "\n" not in message and len(message) < 300
    return message


def test_a_huge_document_is_refused_before_parsing():
    big = json.dumps(envelope(statement(spdx_doc()))).encode()
    assert "larger than 1 MB" in _error(big + b" " * (1024 * 1024), max_bytes=1024 * 1024)


def test_a_deeply_nested_document_is_one_line():
    deep = {"_type": "https://in-toto.io/Statement/v1", "x": json.loads("[" * 500 + "]" * 500)}
    assert "nested" in _error(json.dumps(deep).encode())


def test_nesting_deeper_than_python_recursion_is_one_line():
    assert "nested" in _error(b'{"a":' * 200_000 + b"1" + b"}" * 200_000, max_bytes=10**7)


def test_nested_payload_inside_an_envelope_is_one_line():
    raw = base64.b64encode(b"[" * 100_000 + b"]" * 100_000).decode()
    body = {"payloadType": "application/vnd.in-toto+json", "payload": raw}
    assert "nested" in _error(body)


@pytest.mark.parametrize(("data", "words"), [
    (b"\xff\xfe\xfa", "not UTF-8"),
    (b"{\"payloadType\": \"application/vnd.in-toto+json\", \"payload\": \"%%%\"}", "base64"),
    (b"{\"payloadType\": \"text/plain\", \"payload\": \"\"}", "payloadType"),
    (b"{\"a\": NaN}", "not valid JSON"),
    (b"[1, 2]", "not a JSON object"),
    (b"{}", "neither"),
    (b"\x1b[31m{", "not valid JSON"),
])
def test_bad_encodings_are_one_line(data, words):
    assert words in _error(data)


def test_a_statement_without_subject_or_with_wrong_type_is_refused():
    body = statement(spdx_doc())
    body["subject"] = []
    assert "no subject" in _error(envelope(body))
    body = statement(spdx_doc())
    body["_type"] = "https://example.com/\x1b[2J"
    assert "\x1b" not in _error(envelope(body))


@pytest.mark.parametrize("mutate", [
    lambda d: d.pop("spdxVersion"),
    lambda d: d.__setitem__("packages", {"a": 1}),
    lambda d: d["packages"].append("not an object"),
    lambda d: d["packages"].append({"versionInfo": "1"}),
])
def test_malformed_spdx_is_an_sbom_error(mutate):
    doc = spdx_doc()
    mutate(doc)
    with pytest.raises(SbomError):
        read_sbom(envelope(statement(doc)), SUBJECT)


def test_read_statement_exposes_the_subjects_and_the_predicate_type():
    found = read_statement(bundle(statement(spdx_doc())))
    assert found.predicate_type == SPDX
    assert found.subject_digests == (SUBJECT,)


def test_two_types_with_one_name_stay_two_packages():
    doc = spdx_doc()
    doc["packages"].append({"SPDXID": "SPDXRef-y", "name": "pip", "versionInfo": "24.3.1-r0",
                            "externalRefs": [{"referenceType": "purl",
                                              "referenceLocator": "pkg:apk/wolfi/pip@24.3.1-r0"}]})
    packages = read_sbom(envelope(statement(doc)), SUBJECT).packages
    assert Package("apk", "pip", "24.3.1-r0") in packages
    assert Package("pypi", "pip", "24.3.1") in packages


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
        st.sampled_from(["_type", "subject", "predicateType", "predicate", "packages", "name",
                         "externalRefs", "payload", "payloadType", "dsseEnvelope", "digest",
                         "sha256", "spdxVersion", "components", "bomFormat"]), inner, max_size=5),
    max_leaves=30)


@settings(max_examples=200, deadline=None)
@given(json_values)
def test_arbitrary_json_gives_an_sbom_or_one_typed_error(value):
    for data in (json.dumps(value).encode(), json.dumps(envelope(statement(value))).encode()):
        try:
            read_sbom(data, SUBJECT)
        except CghistoryError as exc:
            assert "\n" not in str(exc)


def _digest(c: str) -> str:
    return "sha256:" + c * 64


def test_referrers_are_filtered_to_sbom_bundles_spdx_first():
    referrers = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                 "manifests": [
                     {"mediaType": "application/vnd.oci.image.manifest.v1+json",
                      "artifactType": BUNDLE_ARTIFACT, "digest": _digest("1"), "size": 900,
                      "annotations": {"dev.sigstore.bundle.predicateType":
                                      "https://slsa.dev/provenance/v1"}},
                     {"mediaType": "application/vnd.oci.image.manifest.v1+json",
                      "artifactType": BUNDLE_ARTIFACT, "digest": _digest("2"), "size": 900,
                      "annotations": {"dev.sigstore.bundle.predicateType": CYCLONEDX}},
                     {"mediaType": "application/vnd.oci.image.manifest.v1+json",
                      "artifactType": BUNDLE_ARTIFACT, "digest": _digest("3"), "size": 900,
                      "annotations": {"dev.sigstore.bundle.predicateType": SPDX}},
                     {"mediaType": "application/vnd.oci.image.manifest.v1+json",
                      "artifactType": "application/vnd.example.sig", "digest": "bogus",
                      "size": 1},
                 ]}
    assert [d.digest for d in sbom_referrers(json.dumps(referrers))] == [_digest("3"),
                                                                       _digest("2")]
    referrers["manifests"][2]["digest"] = "sha256:../x"
    with pytest.raises(CghistoryError, match="referrer 2"):
        sbom_referrers(referrers)


def test_cosign_att_layers_and_the_tag_that_holds_them():
    assert cosign_tag(SUBJECT) == "sha256-" + SUBJECT[7:] + ".att"
    manifest = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                           "digest": _digest("0"), "size": 233},
                "layers": [
                    {"mediaType": "application/vnd.dsse.envelope.v1+json",
                     "digest": _digest("a"), "size": 5000,
                     "annotations": {"predicateType": "https://slsa.dev/provenance/v0.2"}},
                    {"mediaType": "application/vnd.dsse.envelope.v1+json",
                     "digest": _digest("b"), "size": 90000,
                     "annotations": {"predicateType": SPDX}},
                ]}
    assert [d.digest for d in attestation_layers(manifest)] == [_digest("b")]


def test_a_bundle_referrer_manifest_may_carry_its_predicate_type_on_the_manifest_only():
    manifest = {"mediaType": "application/vnd.oci.image.manifest.v1+json",
                "artifactType": BUNDLE_ARTIFACT,
                "annotations": {"dev.sigstore.bundle.predicateType": SPDX},
                "layers": [{"mediaType": BUNDLE_ARTIFACT, "digest": _digest("c"), "size": 1}]}
    assert [d.digest for d in attestation_layers(manifest)] == [_digest("c")]


def test_apkos_own_shape_underscore_purpose_and_a_nameless_image_entry():
    """As apko writes it (pkg/sbom/generator/spdx/testdata/expected_image_sboms): the image
    entry has an empty name and a pkg:oci purl, the OS entry says OPERATING_SYSTEM."""
    doc = {
        "SPDXID": "SPDXRef-DOCUMENT", "spdxVersion": "SPDX-2.3",
        "documentDescribes": ["SPDXRef-Package-"],
        "packages": [
            {"SPDXID": "SPDXRef-Package-", "name": "", "versionInfo": "3.0",
             "externalRefs": [{"referenceCategory": "PACKAGE-MANAGER", "referenceType": "purl",
                               "referenceLocator": "pkg:oci/image?mediaType=&os=linux"}]},
            {"SPDXID": "SPDXRef-OperatingSystem-apko-images", "name": "apko-images",
             "versionInfo": "3.0", "primaryPackagePurpose": "OPERATING_SYSTEM"},
            {"SPDXID": "SPDXRef-OperatingSystem", "name": "wolfi", "versionInfo": "20230201"},
            {"SPDXID": "SPDXRef-Package-libattr1-2.5.1-r2", "name": "libattr1",
             "versionInfo": "2.5.1-r2",
             "externalRefs": [{"referenceCategory": "PACKAGE_MANAGER", "referenceType": "purl",
                               "referenceLocator": "pkg:apk/wolfi/libattr1@2.5.1-r2?arch=x86_64"}]},
        ],
    }
    sbom = read_sbom(envelope(statement(doc)), SUBJECT)
    assert _versions(sbom) == {("apk", "libattr1"): "2.5.1-r2"}
