"""Find the ``image:`` values of a compose file, as character spans of its source text.

PyYAML's node graph (``yaml.compose``) is used instead of loading, because nodes keep their
source marks and aliases stay the very node they refer to: an image written once behind an
anchor is one site, however many services merge it in. Marks index the decoded ``str``
(BOM and ``\\r`` included), which is exactly the text the span is applied to.
"""

from __future__ import annotations

import re

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from ..errors import InvalidReference
from ..reference import parse_docker
from .pins import KIND_COMPOSE, ParseFailure, Site, Skip, line_of

# A whole value that is one variable with a default (compose's ``${VAR:-default}``, used when
# VAR is unset or empty, and ``${VAR-default}``, used when it is unset). Group 1 is the default;
# it may not hold another ``$`` or ``}`` (nested interpolation is left alone).
_DEFAULT = re.compile(r"\$\{[A-Za-z_][A-Za-z0-9_]*:?-([^$}]*)\}")
_VARIABLE = re.compile(r"\$(?:\{[A-Za-z_][A-Za-z0-9_]*(?::?[-?][^$}]*)?\}|[A-Za-z_][A-Za-z0-9_]*)")
_MERGE_TAG = "tag:yaml.org,2002:merge"
_STR_TAG = "tag:yaml.org,2002:str"
_NULL_TAG = "tag:yaml.org,2002:null"

# Work allowed to resolve merge keys, one unit per key a mapping receives (its own or merged
# in). Aliases make the node graph a DAG, so each mapping is resolved once; even so a file can
# ask for many keys times many merges. Real compose files need thousands at most.
MAX_MERGE_WORK = 1_000_000
# PyYAML quotes what it found in its messages: alias and anchor names, tags, characters. Only
# a single character (or a token name such as '<stream end>') is kept; anything longer is
# file content, which must not reach a CI log (the file may be a secret behind a symlink).
_QUOTED = re.compile(r"'(?:[^'\\]|\\.)*'" r'|"(?:[^"\\]|\\.)*"')
_HARMLESS = re.compile(r"""(['"])(?:<[a-z ]+>|\\?.|\\x[0-9a-f]{2}|\\u[0-9a-f]{4})\1\Z""")


def find_compose_sites(path: str, text: str) -> tuple[list[Site], list[Skip]]:
    """The ``image:`` values that the services of this compose file use.

    Only values in effect for some service count: a service's own ``image:`` wins over one it
    merges in (``<<: *base``), and an anchor that no service uses is left alone. A value that
    is exactly ``${VAR:-IMAGE}`` (or ``${VAR-IMAGE}``) is the site of its default IMAGE. Other
    ``${VAR}`` interpolation, escapes, line folding or block style are reported, not rewritten.
    """
    documents = _compose(path, text)
    merges = _Merges(path, text)
    images: dict[int, Node] = {}
    try:
        for document in documents:
            if not isinstance(document, MappingNode):
                continue
            services = merges.effective(document).get("services")
            if not isinstance(services, MappingNode):
                continue
            for service in merges.effective(services).values():
                if not isinstance(service, MappingNode):
                    continue
                image = merges.effective(service).get("image")
                if image is not None:
                    images.setdefault(id(image), image)
    except RecursionError:
        raise ParseFailure(path, None, "merge keys nested too deeply") from None
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
    """The node graphs of the documents; errors name the line and the problem, never the text."""
    try:
        return [node for node in yaml.compose_all(text, Loader=yaml.SafeLoader) if node]
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line = line_of(text, mark.index) if mark is not None else None
        if error.context and error.context.startswith("found duplicate anchor"):
            problem = "found duplicate anchor"
        else:
            problem = _without_content(error.problem or error.context or "") or "invalid YAML"
        raise ParseFailure(path, line, f"cannot parse YAML: {problem}") from None
    except yaml.reader.ReaderError as error:
        line = line_of(text, error.position)
        character = error.character
        code = f" #x{character:04x}" if isinstance(character, int) else ""
        raise ParseFailure(
            path, line, f"cannot parse YAML: control character{code} is not allowed"
        ) from None
    except yaml.YAMLError:
        raise ParseFailure(path, None, "cannot parse YAML") from None
    except RecursionError:
        # PyYAML's composer recurses once per nesting level: ``[[[[…`` would be a traceback.
        raise ParseFailure(path, None, "cannot parse YAML: nested too deeply") from None


def _without_content(problem: str) -> str:
    """PyYAML's message with quoted file content dropped (single characters are kept)."""

    def keep(match: re.Match[str]) -> str:
        return match.group() if _HARMLESS.match(match.group()) else ""

    cleaned = " ".join(_QUOTED.sub(keep, problem).split())
    return cleaned.replace(" ,", ",").replace(" ;", ";")


class _Merges:
    """The keys of mappings as a loader sees them, each mapping resolved once.

    An alias is the very node it names, so ten copies of an alias merged at each of ten levels
    are one node per level here, not ten to the tenth (a 700-byte file would otherwise take
    hours). The total work is bounded as well, in ``MAX_MERGE_WORK`` units.
    """

    def __init__(self, path: str, text: str) -> None:
        self.path = path
        self.text = text
        self.work = 0
        self._done: dict[int, dict[str, Node]] = {}
        self._active: set[int] = set()

    def effective(self, mapping: MappingNode) -> dict[str, Node]:
        """Its own keys over those merged in with ``<<``.

        Compose (go-yaml) rejects a key written twice, so a repeat is a parse failure here
        rather than a guess at which value the user meant; it also rejects an anchor that
        contains itself, which is what a mapping merging itself would need.
        """
        known = self._done.get(id(mapping))
        if known is not None:
            return known
        self._active.add(id(mapping))
        own: dict[str, Node] = {}
        merged: dict[str, Node] = {}
        for key, value in mapping.value:
            if key.tag == _MERGE_TAG:
                sources = value.value if isinstance(value, SequenceNode) else [value]
                for source in sources:
                    if not isinstance(source, MappingNode):
                        continue
                    if id(source) in self._active:
                        line = line_of(self.text, key.start_mark.index)
                        raise ParseFailure(
                            self.path, line, "merge key refers to a mapping that contains it"
                        )
                    items = self.effective(source)
                    self._spend(len(items) + 1, key)
                    for name, node in items.items():
                        merged.setdefault(name, node)
            elif isinstance(key, ScalarNode):
                self._spend(1, key)
                if key.value in own:
                    line = line_of(self.text, key.start_mark.index)
                    raise ParseFailure(self.path, line, "mapping key already defined")
                own[key.value] = value
        self._active.discard(id(mapping))
        result = {**merged, **own}
        self._done[id(mapping)] = result
        return result

    def _spend(self, units: int, key: Node) -> None:
        self.work += units
        if self.work > MAX_MERGE_WORK:
            line = line_of(self.text, key.start_mark.index)
            raise ParseFailure(
                self.path, line, "too many aliases and merge keys to resolve; not a compose file"
            )


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
        default = _DEFAULT.fullmatch(value)
        if default is None or not default.group(1):
            reason = "uses variable interpolation"
            if _VARIABLE.fullmatch(value):
                reason += ": no default value to pin (write ${VAR:-IMAGE})"
            return Skip(path, line, value, reason)
        # ``${VAR:-IMAGE}``: the default is what runs when VAR is unset; pin it, keep the rest.
        start, end, value = start + default.start(1), start + default.end(1), default.group(1)
    try:
        reference = parse_docker(value)
    except InvalidReference as error:
        return Skip(path, line, value, str(error))
    if value != value.strip():
        return Skip(path, line, value, "surrounding whitespace in the quoted value")
    return Site(path, line, start, end, value, reference, KIND_COMPOSE)
