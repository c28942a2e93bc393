"""Compose sites: only effective ``services.*.image`` values, spans inside the quotes."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from docker_cghistory.rewrite import ParseFailure, Site, find_compose_sites, pinned_text, rewrite
from docker_cghistory.rewrite import compose as compose_module
from tests.unit.pinning import ADDED_BY_PIN, fake_digest

DIGEST = ADDED_BY_PIN




def pin_unpinned(site: Site) -> str | None:
    return None if site.pinned else pinned_text(site.text, fake_digest(site.text))


def pin_all(site: Site) -> str:
    return pinned_text(site.text, fake_digest(site.text))


def found(text: str) -> list[tuple[int, str]]:
    sites, _ = find_compose_sites("compose.yaml", text)
    for site in sites:
        assert text[site.start : site.end] == site.text
    return [(site.line, site.text) for site in sites]


def test_styles_and_layouts() -> None:
    text = (
        "services:\n"
        "  a:\n    image: redis:7  # c\n"
        "  b:\n    image: 'nginx:1'\n"
        '  c:\n    image: "ghcr.io/x/y:2"\n'
        "  d: {image: memcached, ports: [1]}\n"
        "  e:\n    image: !!str busybox\n"
        "  f:\n    image: &img httpd:2\n"
        "  g:\n    image: *img\n"
    )
    assert found(text) == [
        (3, "redis:7"),
        (5, "nginx:1"),
        (7, "ghcr.io/x/y:2"),
        (8, "memcached"),
        (10, "busybox"),
        (12, "httpd:2"),
    ]


def test_merge_keys_anchor_is_one_site_and_own_key_wins() -> None:
    text = (
        "x-a: &a\n  image: python:3\nx-b: &b {image: unused:1}\nx-c: &c {image: node:20}\n"
        "services:\n"
        "  one:\n    <<: *a\n"
        "  two:\n    <<: [*a, *b]\n"
        "  three:\n    <<: *b\n    image: own:1\n"
        "  four:\n    <<: [*c, *a]\n"
    )
    assert found(text) == [(2, "python:3"), (4, "node:20"), (12, "own:1")]


def test_only_services_images_count() -> None:
    text = "image: top:1\nx-thing:\n  image: nope:1\nservices:\n  a:\n    labels: {image: no:1}\n"
    assert found(text) == []


def test_non_mapping_shapes_are_ignored() -> None:
    assert found("") == []
    assert found("# only a comment\n") == []
    assert found("- a\n- b\n") == []
    assert found("services:\n") == []
    assert found("services: [a]\n") == []
    assert found("services:\n  a: null\n  b: [1]\n") == []


def test_skips() -> None:
    text = (
        "services:\n"
        "  a:\n    image: ${REG}/app:1\n"
        '  b:\n    image: "py\\x74hon"\n'
        "  c:\n    image: 'it''s'\n"
        "  d:\n    image: |\n      python\n"
        "  e:\n    image: Bad\n"
        "  f:\n    image: [x]\n"
        "  g:\n    image: 12\n"
        "  h:\n    image:\n"
        "  i:\n    image: long\n      folded\n"
    )
    sites, skips = find_compose_sites("compose.yaml", text)
    assert sites == []
    assert [(s.line, s.text, s.reason.split(":")[0]) for s in skips] == [
        (3, "${REG}/app:1", "uses variable interpolation"),
        (5, "python", "escapes or line folding in the value"),
        (7, "it's", "escapes or line folding in the value"),
        (9, "python\n", "block scalars are not rewritten"),
        (12, "Bad", "invalid reference 'Bad'"),
        (14, "", "image is not a string"),
        (16, "12", "image is not a string"),
        (20, "long folded", "escapes or line folding in the value"),
    ]


def test_bom_and_crlf() -> None:
    text = "\ufeffservices:\r\n  a:\r\n    image: 'redis:7'\r\n"
    assert found(text) == [(3, "redis:7")]
    out, _, _ = rewrite("compose.yaml", text.encode(), pin_all)
    assert out.startswith(b"\xef\xbb\xbfservices:\r\n  a:\r\n    image: 'redis:7@sha256:")
    assert out.endswith(b"'\r\n")


def test_multiple_documents() -> None:
    text = "services:\n  a:\n    image: one\n---\nservices:\n  b:\n    image: two\n"
    assert found(text) == [(3, "one"), (7, "two")]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("services:\n  a: [\n", r"compose.yaml:3: cannot parse YAML"),
        ("services:\n  a:\n    image: x\n    image: y\n",
         "^compose.yaml:4: mapping key already defined$"),
        ("services:\n  a:\n\timage: x\n", "compose.yaml:3: cannot parse YAML"),
        ("a: *missing\n", "cannot parse YAML: found undefined alias"),
    ],
)
def test_parse_failures_are_one_line(text: str, message: str) -> None:
    with pytest.raises(ParseFailure, match=message) as caught:
        find_compose_sites("compose.yaml", text)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(
    "text",
    [
        "a: *AKIAIOSFODNN7EXAMPLE\n",
        "a: &AKIAIOSFODNN7EXAMPLE x\nb: &AKIAIOSFODNN7EXAMPLE y\n",
        "a: !AKIAIOSFODNN7EXAMPLE!x y\n",
        'a: "AKIAIOSFODNN7EXAMPLE\\q"\n',
        "a: 'AKIAIOSFODNN7EXAMPLE\n",
        "AKIAIOSFODNN7EXAMPLE: [\n",
        "services:\n  AKIAIOSFODNN7EXAMPLE: 1\n  AKIAIOSFODNN7EXAMPLE: 2\n",
        "aws_secret = AKIAIOSFODNN7EXAMPLE\x07\n",
        "a: !<AKIAIOSFODNN7EXAMPLE x\n",
    ],
)
def test_parse_failures_never_quote_the_file(text: str) -> None:
    """A secret reached by mistake (a symlink to credentials) must not land in a CI log."""
    with pytest.raises(ParseFailure) as caught:
        find_compose_sites("compose.yaml", text)
    message = str(caught.value)
    assert message.startswith("compose.yaml")
    assert "AKIA" not in message and "\n" not in message


def test_a_character_yaml_points_at_is_still_named() -> None:
    with pytest.raises(ParseFailure, match=r"^compose.yaml:3: .*found character '\\t'"):
        find_compose_sites("compose.yaml", "services:\n  a:\n\timage: x\n")


def test_nesting_too_deep_is_a_parse_failure() -> None:
    with pytest.raises(ParseFailure, match=r"^compose.yaml: cannot parse YAML: nested too deeply"):
        find_compose_sites("compose.yaml", "[" * 5000)
    chain = "".join(f"m{i}: &m{i} {{<<: *m{i - 1}}}\n" for i in range(1, 3000))
    text = "m0: &m0 {image: redis}\n" + chain + "services: {s: {<<: *m2999}}\n"
    with pytest.raises(ParseFailure, match=r"^compose.yaml: merge keys nested too deeply$"):
        find_compose_sites("compose.yaml", text)


def test_a_mapping_merging_itself_is_refused() -> None:
    text = "x: &a {image: redis, <<: *a}\nservices: {s: {<<: *a}}\n"
    with pytest.raises(ParseFailure, match=r"^compose.yaml:1: merge key refers to a mapping"):
        find_compose_sites("compose.yaml", text)


class _Work:
    """Counts the mapping entries the reader goes through: its work, measured from outside."""

    limit = 100_000

    def __init__(self) -> None:
        self.entries = 0


def _count_work(monkeypatch: pytest.MonkeyPatch) -> _Work:
    work = _Work()

    class Entries(list):  # type: ignore[type-arg]
        def __iter__(self) -> Any:
            work.entries += len(self)
            if work.entries > work.limit:
                raise AssertionError(f"more than {work.limit} mapping entries read")
            return super().__iter__()

    real = yaml.compose_all

    def compose_all(*args: Any, **kwargs: Any) -> Any:
        for document in real(*args, **kwargs):
            stack, seen = [document], set()
            while stack:
                node = stack.pop()
                if id(node) in seen:
                    continue
                seen.add(id(node))
                if isinstance(node, yaml.MappingNode):
                    node.value = Entries(node.value)
                    stack.extend(item for pair in node.value for item in pair)
                elif isinstance(node, yaml.SequenceNode):
                    stack.extend(node.value)
            work.entries = 0
            yield document

    monkeypatch.setattr(yaml, "compose_all", compose_all)
    return work


def _merge_bomb(depth: int, width: int = 10) -> str:
    lines = ['x0: &l0 {image: "redis:7", restart: always}']
    for level in range(1, depth):
        aliases = ", ".join([f"*l{level - 1}"] * width)
        lines.append(f"x{level}: &l{level} {{<<: [{aliases}]}}")
    lines.append(f"services:\n  web:\n    <<: [{', '.join([f'*l{depth - 1}'] * width)}]")
    return "\n".join(lines) + "\n"


def test_a_merge_key_bomb_is_resolved_once_per_mapping(monkeypatch: pytest.MonkeyPatch) -> None:
    """Ten levels of ``<<:`` merging ten aliases of the level below: 10**10 merges if each
    alias is expanded; one resolution per mapping is a few hundred entries."""
    text = _merge_bomb(10)
    assert len(text) < 800
    work = _count_work(monkeypatch)
    assert found(text) == [(1, "redis:7")]
    assert work.entries < 1_000


def test_a_plain_alias_bomb_is_never_expanded(monkeypatch: pytest.MonkeyPatch) -> None:
    """"Billion laughs": aliases are never expanded, only services and images are read."""
    lines = ["x0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    lines += [f"x{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 10)}]" for i in range(1, 10)]
    lines += ["y0: &m0 {a: *l9, b: *l9}"]
    lines += [f"y{i}: &m{i} {{a: *m{i - 1}, b: *m{i - 1}, c: *l9}}" for i in range(1, 10)]
    lines += ["services:", "  web: {image: nginx, labels: *l9, x-extra: *m9}", "  db: *m9"]
    text = "\n".join(lines) + "\n"
    work = _count_work(monkeypatch)
    assert found(text) == [(22, "nginx")]
    assert work.entries < 100
    out, _, _ = rewrite("compose.yaml", text.encode(), pin_unpinned)
    assert out == text.replace("nginx", pin_all_text("nginx")).encode()


def pin_all_text(text: str) -> str:
    return pinned_text(text, fake_digest(text))


def test_merge_work_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(compose_module, "MAX_MERGE_WORK", 50)
    with pytest.raises(ParseFailure, match=r"^compose.yaml:\d+: too many aliases and merge keys"):
        find_compose_sites("compose.yaml", _merge_bomb(10))
    assert found(_merge_bomb(2, width=2)) == [(1, "redis:7")]


# --- Generated compose files -----------------------------------------------------------------

_COMPONENT = st.from_regex(r"[a-z0-9]{1,6}(?:[._-][a-z0-9]{1,4})?", fullmatch=True)
_HOSTS = st.sampled_from(["", "cgr.dev/", "docker.io/", "ghcr.io/", "localhost:5000/"])
_TAGS = st.none() | st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,10}", fullmatch=True)
_DIGESTS = st.none() | st.binary(min_size=4, max_size=4).map(
    lambda b: "sha256:" + hashlib.sha256(b).hexdigest()
)
_COMMENTS = st.sampled_from(["", "  # note", " # image: fake:1", "   #"])


@st.composite
def references(draw: st.DrawFn) -> str:
    text = draw(_HOSTS) + "/".join(draw(st.lists(_COMPONENT, min_size=1, max_size=3)))
    tag, digest = draw(_TAGS), draw(_DIGESTS)
    text += f":{tag}" if tag else ""
    text += f"@{digest}" if digest else ""
    # Plain scalars YAML 1.1 would read as something other than a string stay quoted-only.
    if not isinstance(yaml.safe_load(text), str) or text.startswith(("@", "-", ".")):
        text = "x" + text
    return text


@dataclass
class Generated:
    """A compose file built from pieces, and the images a reader must find, in order."""

    newline: str
    bom: bool
    lines: list[str] = field(default_factory=list)
    expected: list[str] = field(default_factory=list)

    @property
    def text(self) -> str:
        return ("\ufeff" if self.bom else "") + self.newline.join(self.lines) + self.newline


def scalar(draw: st.DrawFn, value: str) -> str:
    quote = draw(st.sampled_from(["", "'", '"']))
    return f"{quote}{value}{quote}"


@st.composite
def compose_files(draw: st.DrawFn) -> Generated:
    gen = Generated(draw(st.sampled_from(["\n", "\r\n"])), draw(st.booleans()))
    gen.lines.append(draw(st.sampled_from(["# compose", 'name: "demo"', "version: '3'"])))
    anchors: list[str] = []
    for index in range(draw(st.integers(0, 2))):
        image = draw(references())
        gen.lines += [f"x-base{index}: &base{index}", f"  image: {scalar(draw, image)}"]
        gen.lines[-1] += draw(_COMMENTS)
        anchors.append(image)
    gen.lines.append("services:" + draw(_COMMENTS))
    used: dict[int, bool] = {}
    body_expected: list[tuple[int, str]] = []
    for index in range(draw(st.integers(1, 6))):
        shape = draw(
            st.sampled_from(["block", "block", "flow", "merge", "override", "build", "env"])
        )
        if shape in ("merge", "override") and not anchors:
            shape = "block"
        name = f"svc{index}"
        if shape == "block":
            image = draw(references())
            gen.lines += [f"  {name}:", f"    image: {scalar(draw, image)}{draw(_COMMENTS)}"]
            body_expected.append((len(gen.lines), image))
        elif shape == "flow":
            image = draw(references())
            gen.lines.append(f"  {name}: {{image: {scalar(draw, image)}, restart: always}}")
            body_expected.append((len(gen.lines), image))
        elif shape == "merge":
            anchor = draw(st.integers(0, len(anchors) - 1))
            used[anchor] = True
            gen.lines += [f"  {name}:", f"    <<: *base{anchor}", "    command: [run]"]
        elif shape == "override":
            anchor = draw(st.integers(0, len(anchors) - 1))
            image = draw(references())
            gen.lines += [f"  {name}:", f"    <<: *base{anchor}", f"    image: {image}"]
            body_expected.append((len(gen.lines), image))
        elif shape == "build":
            gen.lines += [f"  {name}:", "    build: .", "    # image: not-this:1"]
        else:
            gen.lines += [f"  {name}:", "    image: ${REGISTRY:-docker.io}/app"]
        gen.lines.extend(draw(st.lists(st.sampled_from(["", "  # between"]), max_size=1)))
    gen.expected = [image for index, image in enumerate(anchors) if used.get(index)]
    gen.expected += [image for _, image in body_expected]
    return gen


def outside(text: str, sites: list[Site]) -> list[str]:
    pieces, previous = [], 0
    for site in sites:
        pieces.append(text[previous : site.start])
        previous = site.end
    pieces.append(text[previous:])
    return pieces


def services_with_images(data: Any, new: dict[str, str]) -> Any:
    services = {}
    for name, service in data["services"].items():
        if "image" in service:
            service = {**service, "image": new.get(service["image"], service["image"])}
        services[name] = service
    return services


_SETTINGS = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@_SETTINGS
@given(compose_files())
def test_generated_spans_point_at_exactly_the_images(gen: Generated) -> None:
    sites, skips = find_compose_sites("compose.yaml", gen.text)
    assert [site.text for site in sites] == gen.expected
    assert all(gen.text[site.start : site.end] == site.text for site in sites)
    assert all(skip.reason == "uses variable interpolation" for skip in skips)


@_SETTINGS
@given(compose_files(), st.booleans())
def test_generated_rewrite_touches_only_the_spans_and_is_idempotent(
    gen: Generated, update: bool
) -> None:
    choose = pin_all if update else pin_unpinned
    once, sites, _ = rewrite("compose.yaml", gen.text.encode(), choose)
    text = once.decode()
    again, _ = find_compose_sites("compose.yaml", text)
    assert outside(gen.text, sites) == outside(text, again)
    assert DIGEST.sub("", text) == DIGEST.sub("", gen.text)
    assert all(site.pinned for site in again)
    assert rewrite("compose.yaml", once, choose)[0] == once
    # YAML reads the same document, with only the images changed.
    new = {site.text: choose(site) or site.text for site in sites}
    before = yaml.safe_load(gen.text.lstrip("\ufeff"))
    after = yaml.safe_load(text.lstrip("\ufeff"))
    assert after["services"] == services_with_images(before, new)


_PIECES = st.lists(
    st.sampled_from(
        [
            "services:",
            "  a:",
            "    image: redis",
            "    <<: *x",
            "x: &x {image: b}",
            "  - c",
            "    image: 'q",
            '"',
            "\t",
            "---",
            "  b: {image: [1]}",
            "    image: &y z",
            "  c: *y",
        ]
    )
    | st.text(max_size=10),
    max_size=10,
)


@_SETTINGS
@given(_PIECES)
def test_any_text_gives_sites_or_a_parse_failure(lines: list[str]) -> None:
    text = "\n".join(lines)
    try:
        sites, _ = find_compose_sites("compose.yaml", text)
    except ParseFailure as error:
        assert "\n" not in str(error)
        return
    for site in sites:
        assert text[site.start : site.end] == site.text
