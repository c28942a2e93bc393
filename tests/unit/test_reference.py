"""Image references: the command line's Chainguard reading and docker's own reading."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from docker_cghistory.errors import InvalidReference
from docker_cghistory.reference import (
    Reference,
    familiar,
    host_name,
    is_loopback,
    parse_cli,
    parse_docker,
)

DIGEST = "sha256:" + "0123456789abcdef" * 4
RAW_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def _one_clean_line(message: str) -> None:
    assert "\n" not in message
    assert not RAW_CONTROL.search(message), repr(message)


# --- parse_cli: short forms ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("python", ("cgr.dev", "chainguard/python", "latest")),
        ("python:3.12", ("cgr.dev", "chainguard/python", "3.12")),
        ("  python:3.12-dev  ", ("cgr.dev", "chainguard/python", "3.12-dev")),
        ("chainguard/python", ("cgr.dev", "chainguard/python", "latest")),
        ("acme/python:latest-dev", ("cgr.dev", "acme/python", "latest-dev")),
        ("cgr.dev/chainguard/python", ("cgr.dev", "chainguard/python", "latest")),
        ("cgr.dev/foo.com/chainguard-base:latest",
         ("cgr.dev", "foo.com/chainguard-base", "latest")),
        ("cgr.dev/private-registry.com/apko", ("cgr.dev", "private-registry.com/apko", "latest")),
        ("localhost/a", ("localhost", "a", "latest")),
        ("localhost:5000/a/b", ("localhost:5000", "a/b", "latest")),
        ("127.0.0.1:5000/a/b:v1", ("127.0.0.1:5000", "a/b", "v1")),
        ("[::1]:5000/a:b", ("[::1]:5000", "a", "b")),
        ("registry.example.com/x/y/z:1_2", ("registry.example.com", "x/y/z", "1_2")),
        ("example.com:443/a__b/c--d:T.1", ("example.com:443", "a__b/c--d", "T.1")),
    ],
)
def test_parse_cli_forms(text: str, expected: tuple[str, str, str]) -> None:
    ref = parse_cli(text)
    assert (ref.registry, ref.repository, ref.tag_or_latest) == expected
    assert ref.digest is None
    # ``tag`` is what was written: a defaulted ``latest`` is only ``tag_or_latest``.
    assert ref.tag == (expected[2] if ":" in text.strip().rsplit("/", 1)[-1] else None)
    assert ref.tagged == f"{expected[0]}/{expected[1]}:{expected[2]}"
    assert str(ref) == (ref.tagged if ref.tag else ref.name)
    assert ref.name == f"{expected[0]}/{expected[1]}"


def test_both_parsers_leave_an_unwritten_tag_unset() -> None:
    for ref in (parse_cli("python"), parse_docker("python")):
        assert ref.tag is None
        assert ref.tag_or_latest == "latest"
    assert parse_cli("python:latest").tag == "latest"


def test_parse_cli_custom_defaults() -> None:
    assert parse_cli("python", registry="localhost:5000", org="acme").tagged == (
        "localhost:5000/acme/python:latest"
    )
    assert str(parse_cli("python:3", registry="reg.example", org="foo.com")) == (
        "reg.example/foo.com/python:3"
    )
    # Two components: the org is given, only the registry is added.
    assert parse_cli("other/python", registry="reg.example", org="acme").tagged == (
        "reg.example/other/python:latest"
    )
    # No org: a one-word name lives at the registry's top level.
    assert parse_cli("python", registry="reg.example", org="").tagged == (
        "reg.example/python:latest"
    )
    # An explicit host ignores the defaults.
    assert parse_cli("cgr.dev/chainguard/go", registry="reg.example", org="acme").tagged == (
        "cgr.dev/chainguard/go:latest"
    )


def test_parse_cli_refuses_digest_with_a_tag_suggestion() -> None:
    with pytest.raises(InvalidReference) as caught:
        parse_cli(f"python@{DIGEST}")
    message = str(caught.value)
    assert "digest" in message
    assert "cgr.dev/chainguard/python:latest" in message
    with pytest.raises(InvalidReference) as caught:
        parse_cli(f"cgr.dev/acme/go:1.22@{DIGEST}")
    assert "cgr.dev/acme/go:1.22" in str(caught.value)


def test_parse_cli_digest_allowed_on_request() -> None:
    ref = parse_cli(f"python@{DIGEST}", allow_digest=True)
    assert ref == Reference("cgr.dev", "chainguard/python", None, DIGEST)
    assert str(ref) == f"cgr.dev/chainguard/python@{DIGEST}"
    both = parse_cli(f"python:3.12@{DIGEST}", allow_digest=True)
    assert (both.tag, both.digest) == ("3.12", DIGEST)
    assert str(both) == f"cgr.dev/chainguard/python:3.12@{DIGEST}"


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("Python", "lowercase"),
        ("cgr.dev/Chainguard/python", "lowercase"),
        ("py thon", "repository"),
        ("python:", "empty tag"),
        ("python@", "empty digest"),
        ("python:bad tag", "tag"),
        ("python:" + "a" * 129, "tag"),
        ("python:-lead", "tag"),
        ("python:é", "tag"),
        ("-bad.com/x/y", "host"),
        ("bad_host.com/x/y", "host"),
        ("cgr.dev:port/x", "host"),
        ("cgr.dev/" + "a" * 250, "longer"),
        ("python@sha256:abc", "digest"),
        (f"python@{DIGEST.upper()}", "digest"),
        (f"python@sha512:{'a' * 128}", "digest"),
        ("cgr.dev//python", "repository"),
        ("chainguard/python/", "repository"),
        ("a..b", "repository"),
        ("python\x1b[31m", "repository"),
        ("python\n:latest", "repository"),
        ("cgr.dev\n/chainguard/python", "host"),
        ("python:lat\x00est", "tag"),
        (f"python@{DIGEST}\x00", "digest"),
    ],
)
def test_parse_cli_malformed(text: str, words: str) -> None:
    with pytest.raises(InvalidReference) as caught:
        parse_cli(text, allow_digest=True)
    message = str(caught.value)
    assert words in message
    _one_clean_line(message)


def test_name_length_limit_is_255() -> None:
    path = "a" * (255 - len("cgr.dev/"))
    assert parse_cli(f"cgr.dev/{path}").repository == path
    with pytest.raises(InvalidReference, match="longer than 255"):
        parse_cli(f"cgr.dev/{path}a")


def test_control_characters_are_escaped_in_messages() -> None:
    with pytest.raises(InvalidReference) as caught:
        parse_cli("evil\x1b]0;pwned\x07\x9b2J:tag")
    message = str(caught.value)
    _one_clean_line(message)
    assert "x1b" in message  # shown escaped, not dropped silently


# --- parse_docker ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("python", Reference("docker.io", "library/python")),
        ("python:3.12", Reference("docker.io", "library/python", "3.12")),
        ("bitnami/redis:7", Reference("docker.io", "bitnami/redis", "7")),
        ("docker.io/python:3", Reference("docker.io", "library/python", "3")),
        ("docker.io/library/python", Reference("docker.io", "library/python")),
        ("index.docker.io/library/python", Reference("docker.io", "library/python")),
        ("index.docker.io/python", Reference("docker.io", "library/python")),
        ("registry-1.docker.io/foo/bar:x", Reference("docker.io", "foo/bar", "x")),
        ("cgr.dev/chainguard/python", Reference("cgr.dev", "chainguard/python")),
        (f"python@{DIGEST}", Reference("docker.io", "library/python", None, DIGEST)),
        (f"cgr.dev/chainguard/go:1@{DIGEST}", Reference("cgr.dev", "chainguard/go", "1", DIGEST)),
        ("localhost:5000/app", Reference("localhost:5000", "app")),
    ],
)
def test_parse_docker(text: str, expected: Reference) -> None:
    assert parse_docker(text) == expected


def test_parse_docker_keeps_tag_unset() -> None:
    # A Dockerfile's "FROM python" has no tag: a rewriter must know it was not written.
    ref = parse_docker("python")
    assert ref.tag is None
    assert ref.tagged == "docker.io/library/python:latest"


@pytest.mark.parametrize("text", ["", "Python", "python:", "a b", f"python@{DIGEST[:-1]}"])
def test_parse_docker_malformed(text: str) -> None:
    with pytest.raises(InvalidReference):
        parse_docker(text)


@pytest.mark.parametrize(
    ("ref", "short"),
    [
        (Reference("docker.io", "library/python", "3.12"), "python:3.12"),
        (Reference("docker.io", "library/python"), "python"),
        (Reference("docker.io", "bitnami/redis", "7"), "bitnami/redis:7"),
        (Reference("docker.io", "library/a/b", "1"), "library/a/b:1"),
        (Reference("docker.io", "library/python", None, DIGEST), f"python@{DIGEST}"),
        (Reference("cgr.dev", "chainguard/python", "latest"), "cgr.dev/chainguard/python:latest"),
    ],
)
def test_familiar(ref: Reference, short: str) -> None:
    assert familiar(ref) == short
    assert parse_docker(short) == ref


def test_with_digest_and_tag() -> None:
    ref = parse_cli("python:3.12")
    assert str(ref.with_digest(DIGEST)) == f"cgr.dev/chainguard/python@{DIGEST}"
    assert str(ref.with_digest(DIGEST, keep_tag=True)) == (
        f"cgr.dev/chainguard/python:3.12@{DIGEST}"
    )
    assert str(ref.with_digest(DIGEST).with_tag("dev")) == "cgr.dev/chainguard/python:dev"


# --- hosts -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "name", "loopback"),
    [
        ("localhost", "localhost", True),
        ("localhost:5000", "localhost", True),
        ("LOCALHOST:5000", "LOCALHOST", True),
        ("127.0.0.1", "127.0.0.1", True),
        ("127.0.0.1:5000", "127.0.0.1", True),
        ("127.12.0.9:80", "127.12.0.9", True),
        ("[::1]:5000", "::1", True),
        ("[::1]", "::1", True),
        ("::1", "::1", True),
        ("cgr.dev", "cgr.dev", False),
        ("cgr.dev:443", "cgr.dev", False),
        ("10.0.0.1:5000", "10.0.0.1", False),
        ("[2001:db8::1]:5000", "2001:db8::1", False),
        ("localhost.example.com", "localhost.example.com", False),
        # A DNS name that merely starts like a loopback address is somebody else's host:
        # plain HTTP (and tokens sent over it) must not follow.
        ("127.example.com:5000", "127.example.com", False),
        ("127.0.0.1.nip.io", "127.0.0.1.nip.io", False),
    ],
)
def test_host_name_and_loopback(host: str, name: str, loopback: bool) -> None:
    assert host_name(host) == name
    assert is_loopback(host) is loopback


# --- properties ---------------------------------------------------------------------------------

_LOWER = "abcdefghijklmnopqrstuvwxyz0123456789"
_alnum = st.text(_LOWER, min_size=1, max_size=8)
_component = st.builds(
    lambda words, seps: "".join(w + s for w, s in zip(words, seps, strict=False)) + words[-1],
    st.lists(_alnum, min_size=1, max_size=3),
    st.lists(st.sampled_from([".", "_", "__", "-", "--", "---"]), min_size=2, max_size=2),
)
_label = st.builds(lambda a, b: a + b, _alnum,
                   st.text(_LOWER + "-", max_size=6).map(lambda t: t and t + "x"))
_hosts = st.one_of(
    st.sampled_from(["cgr.dev", "localhost", "localhost:5000", "[::1]:5000", "127.0.0.1:5000"]),
    st.builds(lambda a, b, port: f"{a}.{b}{port}", _label, _label,
              st.sampled_from(["", ":443", ":5000"])),
)
_TAG_CHARS = "ABCXYZabcxyz0189_"
_tags = st.builds(lambda first, rest: first + rest, st.sampled_from(_TAG_CHARS),
                  st.text(_TAG_CHARS + ".-", max_size=20))
_digests = st.binary(min_size=32, max_size=32).map(lambda b: "sha256:" + b.hex())


@st.composite
def _references(draw: st.DrawFn) -> Reference:
    host = draw(_hosts)
    path = "/".join(draw(st.lists(_component, min_size=1, max_size=4)))
    tag = draw(_tags)
    return Reference(host, path, tag)


@settings(max_examples=300, deadline=None)
@given(_references())
def test_parse_cli_round_trips(ref: Reference) -> None:
    assert parse_cli(str(ref)) == ref
    assert parse_docker(str(ref)) == ref


@settings(max_examples=150, deadline=None)
@given(_references(), _digests)
def test_parse_with_digest_round_trips(ref: Reference, digest: str) -> None:
    pinned = ref.with_digest(digest, keep_tag=True)
    assert parse_cli(str(pinned), allow_digest=True) == pinned
    assert parse_docker(str(pinned)) == pinned


@settings(max_examples=500, deadline=None)
@given(st.text(max_size=80))
def test_arbitrary_text_only_raises_invalid_reference(text: str) -> None:
    for parser in (parse_cli, parse_docker):
        try:
            ref = parser(text)
        except InvalidReference as error:
            _one_clean_line(str(error))
        else:
            # Whatever is accepted prints back as plain, re-parsable text.
            assert not RAW_CONTROL.search(str(ref))
            assert parser(str(ref)) == ref


@pytest.mark.parametrize("text", ["docker.io/0.0/0", "docker.io/a.b/c:1", "docker.io/localhost/x"])
def test_familiar_keeps_docker_io_when_the_path_would_read_as_a_host(text: str) -> None:
    """Found by the hypothesis property test: ``0.0/0`` would name registry ``0.0``."""
    from docker_cghistory.reference import familiar, parse_docker

    ref = parse_docker(text)
    assert familiar(ref) == text
    assert parse_docker(familiar(ref)) == ref
