"""Dockerfile sites: what is found, what is left alone, and that spans are exact."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import dockerfile as buildkit
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from docker_cghistory.rewrite import (
    ParseFailure,
    Site,
    find_dockerfile_sites,
    pinned_text,
    rewrite,
)
from tests.unit.pinning import ADDED_BY_PIN, fake_digest

DIGEST = ADDED_BY_PIN




def pin_unpinned(site: Site) -> str | None:
    return None if site.pinned else pinned_text(site.text, fake_digest(site.text))


def pin_all(site: Site) -> str:
    return pinned_text(site.text, fake_digest(site.text))


def texts(text: str) -> list[tuple[int, str, str]]:
    sites, _ = find_dockerfile_sites("Dockerfile", text)
    for site in sites:
        assert text[site.start : site.end] == site.text
    return [(site.line, site.kind, site.text) for site in sites]


def skips(text: str) -> list[tuple[int, str, str]]:
    _, found = find_dockerfile_sites("Dockerfile", text)
    return [(skip.line, skip.text, skip.reason) for skip in found]


def test_plain_from_with_platform_and_stage() -> None:
    text = "FROM --platform=$BUILDPLATFORM golang:1.22 AS build\nFROM build\n"
    assert texts(text) == [(1, "from", "golang:1.22")]


def test_stage_names_are_case_insensitive_and_only_earlier_ones_count() -> None:
    text = "FROM alpine AS Base\nFROM BASE\nFROM later\nFROM busybox AS later\n"
    assert texts(text) == [(1, "from", "alpine"), (3, "from", "later"), (4, "from", "busybox")]


def test_scratch_is_never_a_site() -> None:
    assert texts("FROM scratch\nFROM SCRATCH AS x\n") == []


def test_lowercase_instruction_and_as() -> None:
    assert texts("from python:3.12 as app\n") == [(1, "from", "python:3.12")]


def test_arg_default_is_the_site_and_keeps_its_quotes() -> None:
    text = "ARG A=\"python:3.12\"\nARG B='node:20'\nARG C=redis:7\nFROM ${A}\nFROM $B\nFROM ${C}\n"
    sites, _ = find_dockerfile_sites("Dockerfile", text)
    assert [(s.kind, s.text, s.used_by) for s in sites] == [
        ("arg", "python:3.12", (4,)),
        ("arg", "node:20", (5,)),
        ("arg", "redis:7", (6,)),
    ]
    assert [text[s.start - 1 : s.end + 1] for s in sites[:2]] == ['"python:3.12"', "'node:20'"]


def test_arg_used_twice_is_one_site() -> None:
    sites, _ = find_dockerfile_sites("Dockerfile", "ARG B=alpine\nFROM $B AS one\nFROM ${B}\n")
    assert [(s.line, s.used_by) for s in sites] == [(1, (2, 3))]


def test_arg_problems_are_reported() -> None:
    text = (
        "ARG NONE\nARG REG=cgr.dev\nARG BUILT=${REG}/x\nARG ESC=py\\thon\n"
        "FROM ${NONE}\nFROM $BUILT\nFROM ${REG}/chainguard/go\nFROM $MISSING\nFROM ${ESC}\n"
    )
    assert skips(text) == [
        (5, "${NONE}", "build argument NONE has no default value"),
        (6, "$BUILT", "default value of build argument BUILT uses other build arguments"),
        (7, "${REG}/chainguard/go", "reference is assembled from build arguments"),
        (8, "$MISSING", "build argument MISSING is not declared before the first FROM"),
        (9, "${ESC}", "quoting or escapes too complex to rewrite safely"),
    ]
    assert texts(text) == []


def test_arg_inside_a_stage_does_not_feed_from() -> None:
    text = "FROM alpine\nARG LATER=python\nFROM ${LATER}\n"
    assert texts(text) == [(1, "from", "alpine")]
    assert skips(text)[0][2] == "build argument LATER is not declared before the first FROM"


def test_last_global_declaration_wins() -> None:
    assert texts("ARG B=alpine\nARG B=busybox\nFROM $B\n") == [(2, "arg", "busybox")]
    assert skips("ARG B=alpine\nARG B\nFROM $B\n")[0][2] == "build argument B has no default value"


def test_arg_default_naming_scratch_or_a_stage_is_left_alone() -> None:
    assert texts("ARG B=scratch\nARG S=build\nFROM alpine AS build\nFROM $B\nFROM $S\n") == [
        (3, "from", "alpine")
    ]


def test_heredoc_bodies_are_not_instructions() -> None:
    text = "FROM a\nRUN <<EOF\nFROM b\nEOF\nCOPY <<-X /f\n\tFROM c\n\tX\nFROM d\n"
    assert texts(text) == [(1, "from", "a"), (8, "from", "d")]


def test_continuation_with_comments_and_empty_lines() -> None:
    text = "FROM \\\n  # comment\n\n  --platform=linux/arm64 \\\n   alpine:3 \\\n AS x\n"
    assert texts(text) == [(5, "from", "alpine:3")]


def test_backtick_escape_and_backslash_paths() -> None:
    text = "# escape=`\nFROM mcr.microsoft.com/windows:ltsc `\n  AS b\nCOPY x C:\\y\\\n"
    assert texts(text) == [(2, "from", "mcr.microsoft.com/windows:ltsc")]


def test_escaped_escape_is_not_a_continuation() -> None:
    # BuildKit: a final escape token preceded by another one is literal; the next line is new.
    with pytest.raises(ParseFailure, match="FROM requires"):
        texts("FROM a \\\\\nAS b\n")


def test_reference_split_by_continuation_is_skipped() -> None:
    assert skips("FROM pyth\\\non:3\n") == [
        (1, "python:3", "reference is split by a line continuation")
    ]


def test_crlf_and_bom_offsets() -> None:
    text = "\ufeffFROM alpine:3 AS a\r\nFROM \\\r\n  busybox\r\n"
    sites, _ = find_dockerfile_sites("Dockerfile", text)
    assert [(s.line, text[s.start : s.end]) for s in sites] == [(1, "alpine:3"), (3, "busybox")]


def test_quoted_from_is_rewritten_inside_the_quotes() -> None:
    text = 'FROM "alpine:3"\n'
    out, _, _ = rewrite("Dockerfile", text.encode(), pin_all)
    assert out.decode() == f'FROM "alpine:3@{fake_digest("alpine:3")}"\n'


def test_copy_from_and_mount_from() -> None:
    text = (
        "FROM golang AS build\n"
        "COPY --from=build /a /b\nCOPY --from=0 /a /b\nCOPY --from=$X /a /b\n"
        'COPY --link --from=alpine:3 /a /b\nCOPY --from="busybox" /a /b\n'
        "RUN --mount=type=cache,target=/c,from=build x\n"
        "RUN --mount=type=bind,FROM=redis:7,target=/r --network=none x\n"
    )
    assert texts(text) == [
        (1, "from", "golang"),
        (5, "copy-from", "alpine:3"),
        (8, "mount-from", "redis:7"),
    ]
    assert skips(text) == []


def test_onbuild_is_ignored() -> None:
    assert texts("FROM a\nONBUILD COPY --from=b /x /y\n") == [(1, "from", "a")]


def test_already_pinned_is_a_site_with_a_digest() -> None:
    digest = "sha256:" + "a" * 64
    sites, _ = find_dockerfile_sites("Dockerfile", f"FROM python:3.12@{digest}\n")
    assert sites[0].pinned
    assert sites[0].reference.digest == digest
    assert sites[0].reference.tag == "3.12"


def test_invalid_reference_is_a_skip() -> None:
    assert skips("FROM Python:3\n") == [
        (1, "Python:3", "invalid reference 'Python:3': repository names must be lowercase")
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "FROM a\nRUN <<EOF\nnever closed\n",
            "^Dockerfile: cannot parse Dockerfile: unterminated heredoc$",
        ),
        ("# escape=x\nFROM a\n", "invalid escape token"),
        ("FROM a b\n", "Dockerfile:1: FROM requires either one or three arguments"),
        ("FROM\n", "FROM requires"),
        ("FROM a\nFROBNICATE b\n", "^Dockerfile:2: unknown instruction$"),
        ("FROM a\nRUN x\x00y\n", "Dockerfile:2: contains a NUL character"),
    ],
)
def test_parse_failures_are_one_line(text: str, message: str) -> None:
    with pytest.raises(ParseFailure, match=message) as caught:
        find_dockerfile_sites("Dockerfile", text)
    assert "\n" not in str(caught.value)


SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"


@pytest.mark.parametrize(
    "text",
    [
        f"[default]\naws_access_key_id = AKIAIOSFODNN7EXAMPLE\naws_secret_access_key = {SECRET}\n",
        f"{SECRET}\n",
        f"FROM a\nENV A=1 {SECRET}\n",
        f"# escape={SECRET}\nFROM a\n",
        f"FROM a\nRUN <<{SECRET}\n",
        f"FROM a\nLABEL {SECRET}\n",
        f"FROM a\nFROM {SECRET} b\n",
        f'FROM a\nENV "{SECRET}\n',
    ],
)
def test_parse_failures_never_quote_the_file(text: str) -> None:
    """Errors name the file, the line where known and the problem, never the file's text: it
    may be a credentials file reached by mistake, and errors end up in CI logs."""
    with pytest.raises(ParseFailure) as caught:
        find_dockerfile_sites("Dockerfile", text)
    message = str(caught.value)
    assert message.startswith("Dockerfile")
    assert "AKIA" not in message and "wJalr" not in message and "default" not in message


def test_a_credentials_file_is_an_unknown_instruction_on_line_one() -> None:
    text = f"[default]\naws_secret_access_key = {SECRET}\n"
    with pytest.raises(ParseFailure, match=r"^Dockerfile:1: unknown instruction$"):
        find_dockerfile_sites("Dockerfile", text)


def test_comment_only_file_has_no_sites() -> None:
    assert find_dockerfile_sites("Dockerfile", "# nothing here\n\n") == ([], [])
    assert find_dockerfile_sites("Dockerfile", "") == ([], [])


# --- Generated Dockerfiles -------------------------------------------------------------------

_COMPONENT = st.from_regex(r"[a-z0-9]{1,6}(?:[._-][a-z0-9]{1,4})?", fullmatch=True)
_HOSTS = st.sampled_from(["", "cgr.dev/", "docker.io/", "ghcr.io/", "localhost:5000/", "r.io:443/"])
_TAGS = st.none() | st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,10}", fullmatch=True)
_DIGESTS = st.none() | st.binary(min_size=4, max_size=4).map(
    lambda b: "sha256:" + hashlib.sha256(b).hexdigest()
)
_WS = st.sampled_from([" ", "  ", "\t", " \t "])


@st.composite
def references(draw: st.DrawFn) -> str:
    text = draw(_HOSTS) + "/".join(draw(st.lists(_COMPONENT, min_size=1, max_size=3)))
    tag, digest = draw(_TAGS), draw(_DIGESTS)
    text += f":{tag}" if tag else ""
    text += f"@{digest}" if digest else ""
    if text.lower() == "scratch":
        text = "scratchy"
    return text


@dataclass
class Generated:
    """A Dockerfile built from pieces, and the references a reader must find in it."""

    escape: str
    newline: str
    lines: list[str] = field(default_factory=list)
    expected: list[str] = field(default_factory=list)
    stages: list[str] = field(default_factory=list)

    @property
    def text(self) -> str:
        return self.newline.join(self.lines) + self.newline


@st.composite
def separators(draw: st.DrawFn, escape: str, newline: str) -> str:
    """Whitespace between tokens, sometimes a continuation with comments and blank lines."""
    if not draw(st.booleans()):
        return draw(_WS)
    before = draw(st.sampled_from(["", " ", "\t"]))
    trailing = draw(st.sampled_from(["", " ", "\t "]))
    middle = draw(
        st.lists(st.sampled_from(["", "   ", "# FROM fake:1", "  # comment " + escape]), max_size=2)
    )
    after = draw(_WS) if not before else draw(st.sampled_from(["", "  "]))
    return before + escape + trailing + newline + "".join(m + newline for m in middle) + after


@st.composite
def dockerfiles(draw: st.DrawFn) -> Generated:
    escape = draw(st.sampled_from(["\\", "`"]))
    newline = draw(st.sampled_from(["\n", "\r\n"]))
    gen = Generated(escape, newline)
    bom = "\ufeff" if draw(st.booleans()) else ""
    if escape == "`":
        gen.lines.append(bom + "# escape=`")
    else:
        gen.lines.append(bom + draw(st.sampled_from(["# syntax=docker/dockerfile:1", "# hello"])))
    sep = separators(escape, newline)

    arg_names: list[str] = []
    for index in range(draw(st.integers(0, 3))):
        name = f"BASE{index}"
        value = draw(references())
        quote = draw(st.sampled_from(["", '"', "'"]))
        gen.lines.append(f"ARG {name}={quote}{value}{quote}")
        arg_names.append(name)
        gen.expected.append(value)
        gen.lines.extend(draw(st.lists(st.sampled_from(["", "# FROM commented:1"]), max_size=1)))
    used_args: set[str] = set()

    for index in range(draw(st.integers(1, 8))):
        choice = draw(st.sampled_from(["from", "from", "arg", "stage", "heredoc", "run", "copy"]))
        if index == 0 and choice not in ("from", "arg"):
            choice = "from"
        keyword = draw(st.sampled_from(["FROM", "from", "From"]))
        lead = draw(st.sampled_from(["", " ", "\t"]))
        tail = draw(st.sampled_from(["", " ", "\t"]))
        if choice == "arg" and not arg_names:
            choice = "from"
        if choice == "stage" and not gen.stages:
            choice = "from"
        if choice in ("from", "arg", "stage"):
            flags = draw(
                st.sampled_from(["", "--platform=$BUILDPLATFORM", "--platform=linux/amd64"])
            )
            if choice == "from":
                image = draw(references())
                gen.expected.append(image)
            elif choice == "arg":
                name = draw(st.sampled_from(arg_names))
                used_args.add(name)
                image = draw(st.sampled_from([f"${name}", f"${{{name}}}"]))
            else:
                image = draw(st.sampled_from(gen.stages))
                image = draw(st.sampled_from([image, image.upper()]))
            line = lead + keyword + draw(sep)
            if flags:
                line += flags + draw(sep)
            line += image
            if draw(st.booleans()):
                stage = f"build-stage-{index}"
                line += draw(sep) + draw(st.sampled_from(["AS", "as"])) + draw(sep) + stage
                gen.stages.append(stage)
            gen.lines.append(line + tail)
        elif choice == "heredoc":
            gen.lines += ["RUN <<EOF", "FROM not-an-instruction:1", "  FROM also-not", "EOF"]
        elif choice == "run":
            gen.lines.append(f"RUN echo FROM x{draw(sep)}&& echo done{tail}")
        else:
            image = draw(references())
            image = f"x{image}" if image.isdigit() else image  # digits name a stage by index
            gen.expected.append(image)
            gen.lines.append(f"COPY --from={image}{draw(sep)}/a /b{tail}")
        gen.lines.extend(draw(st.lists(st.sampled_from(["", "  ", "# FROM no:1"]), max_size=2)))
    # A global ARG no FROM uses is not a site.
    gen.expected = [
        value
        for position, value in enumerate(gen.expected)
        if position >= len(arg_names) or arg_names[position] in used_args
    ]
    return gen


def outside(text: str, sites: list[Site]) -> list[str]:
    """The text between the sites: what must survive a rewrite untouched."""
    pieces, previous = [], 0
    for site in sites:
        pieces.append(text[previous : site.start])
        previous = site.end
    pieces.append(text[previous:])
    return pieces


_SETTINGS = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@_SETTINGS
@given(dockerfiles())
def test_generated_spans_point_at_exactly_the_references(gen: Generated) -> None:
    text = gen.text
    sites, found_skips = find_dockerfile_sites("Dockerfile", text)
    assert found_skips == []
    assert [site.text for site in sites] == gen.expected
    for site in sites:
        assert text[site.start : site.end] == site.text
        assert site.line == text.count("\n", 0, site.start) + 1


@_SETTINGS
@given(dockerfiles(), st.booleans())
def test_generated_rewrite_touches_only_the_spans_and_is_idempotent(
    gen: Generated, update: bool
) -> None:
    data = gen.text.encode()
    choose = pin_all if update else pin_unpinned
    once, sites, _ = rewrite("Dockerfile", data, choose)
    again_sites, _ = find_dockerfile_sites("Dockerfile", once.decode())
    assert outside(gen.text, sites) == outside(once.decode(), again_sites)
    assert DIGEST.sub("", once.decode()) == DIGEST.sub("", gen.text)
    assert all(site.pinned for site in again_sites)
    twice, _, _ = rewrite("Dockerfile", once, choose)
    assert twice == once
    # BuildKit reads the same instructions, with only the references changed.
    assert instructions(once.decode()) == instructions(gen.text)


def instructions(text: str) -> list[tuple[object, ...]]:
    """What BuildKit's parser makes of a file, with digests taken out."""

    def plain(items: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(DIGEST.sub("", item) for item in items)

    return [
        (c.cmd, plain(c.flags), plain(c.value), c.start_line, c.end_line)
        for c in buildkit.parse_string(text)
    ]


_LINES = st.lists(
    st.sampled_from(
        [
            "FROM a",
            "from b:1 AS s",
            "FROM s",
            "ARG X=c",
            "FROM $X",
            "RUN <<EOF",
            "EOF",
            "\\",
            "# escape=`",
            "`",
            "  # c",
            "",
            "COPY --from=d /a /b",
            "FROM \\",
            "\r",
            "\t",
            "'",
            '"',
        ]
    )
    | st.text(max_size=12),
    max_size=12,
)


@_SETTINGS
@given(_LINES, st.sampled_from(["\n", "\r\n"]))
def test_any_text_gives_sites_or_a_parse_failure(lines: list[str], newline: str) -> None:
    text = newline.join(lines)
    try:
        sites, _ = find_dockerfile_sites("Dockerfile", text)
    except ParseFailure as error:
        assert "\n" not in str(error)
        return
    for site in sites:
        assert text[site.start : site.end] == site.text
