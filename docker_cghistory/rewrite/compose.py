"""Find the ``image:`` values of a compose file, as character spans of its source text.

PyYAML's node graph (``yaml.compose``) is used instead of loading, because nodes keep their
source marks and aliases stay the very node they refer to: an image written once behind an
anchor is one site, however many services merge it in. Marks index the decoded ``str``
(BOM and ``\\r`` included), which is exactly the text the span is applied to.
"""

from __future__ import annotations

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from ..errors import InvalidReference
from ..reference import parse_docker
from .pins import KIND_COMPOSE, ParseFailure, Site, Skip, line_of

_MERGE_TAG = "tag:yaml.org,2002:merge"
_STR_TAG = "tag:yaml.org,2002:str"
_NULL_TAG = "tag:yaml.org,2002:null"


def find_compose_sites(path: str, text: str) -> tuple[list[Site], list[Skip]]:
    """The ``image:`` values that the services of this compose file use.

    Only values in effect for some service count: a service's own ``image:`` wins over one it
    merges in (``<<: *base``), and an anchor that no service uses is left alone. Values with
    ``${VAR}`` interpolation, escapes, line folding or block style are reported, not rewritten.
    """
    documents = _compose(path, text)
    images: dict[int, Node] = {}
    for document in documents:
        if not isinstance(document, MappingNode):
            continue
        services = _effective(path, text, document).get("services")
        if not isinstance(services, MappingNode):
            continue
        for service in _effective(path, text, services).values():
            if not isinstance(service, MappingNode):
                continue
            image = _effective(path, text, service).get("image")
            if image is not None:
                images.setdefault(id(image), image)
    sites: list[Site] = []
    skips: list[Skip] = []
    for node in sorted(images.values(), key=lambda node: node.end_mark.index):
        item = _read_image(path, text, node)
        if isinstance(item, Site):
            sites.append(item)
        elif item is not None:
            skips.append(item)
    return sites, skips


def _compose(path: str, text: str) -> list[Node]:
    try:
        return [node for node in yaml.compose_all(text, Loader=yaml.SafeLoader) if node]
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line = line_of(text, mark.index) if mark is not None else None
        problem = error.problem or error.context or "invalid YAML"
        raise ParseFailure(path, line, f"cannot parse YAML: {problem}") from None
    except yaml.YAMLError as error:
        raise ParseFailure(path, None, f"cannot parse YAML: {error}") from None


def _effective(
    path: str, text: str, mapping: MappingNode, seen: frozenset[int] = frozenset()
) -> dict[str, Node]:
    """The mapping's keys as a loader sees them: its own keys over those merged in with ``<<``.

    Compose (go-yaml) rejects a key written twice, so a repeat is a parse failure here rather
    than a guess at which value the user meant.
    """
    own: dict[str, Node] = {}
    merged: dict[str, Node] = {}
    seen = seen | {id(mapping)}
    for key, value in mapping.value:
        if key.tag == _MERGE_TAG:
            sources = value.value if isinstance(value, SequenceNode) else [value]
            for source in sources:
                if isinstance(source, MappingNode) and id(source) not in seen:
                    for name, node in _effective(path, text, source, seen).items():
                        merged.setdefault(name, node)
        elif isinstance(key, ScalarNode):
            if key.value in own:
                line = line_of(text, key.start_mark.index)
                raise ParseFailure(path, line, f"mapping key {key.value!r} already defined")
            own[key.value] = value
    return {**merged, **own}


def _read_image(path: str, text: str, node: Node) -> Site | Skip | None:
    """A site for the value's characters between its quotes, or the reason there is none."""
    end = node.end_mark.index
    if not isinstance(node, ScalarNode):
        return Skip(path, line_of(text, node.start_mark.index), "", "image is not a string")
    if node.tag == _NULL_TAG:
        return None
    value = node.value
    line = line_of(text, node.start_mark.index)
    if node.tag != _STR_TAG:
        return Skip(path, line, value, "image is not a string")
    if node.style in ("|", ">"):
        return Skip(path, line, value, "block scalars are not rewritten")
    if node.style in ("'", '"'):
        if text[end - 1 : end] != node.style:
            return Skip(path, line, value, "escapes or line folding in the quoted value")
        end -= 1
    start = end - len(value)
    quoted_ok = node.style is None or text[start - 1 : start] == node.style
    if start < 0 or text[start:end] != value or not quoted_ok:
        return Skip(path, line, value, "escapes or line folding in the value")
    line = line_of(text, start)
    if "$" in value:
        return Skip(path, line, value, "uses variable interpolation")
    try:
        reference = parse_docker(value)
    except InvalidReference as error:
        return Skip(path, line, value, str(error))
    if value != value.strip():
        return Skip(path, line, value, "surrounding whitespace in the quoted value")
    return Site(path, line, start, end, value, reference, KIND_COMPOSE)
