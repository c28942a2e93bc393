"""The nearest of a few known words to a mistyped one: "did you mean …?".

Pure and import-free. The rule is cobra's (what ``docker`` itself uses): a candidate within
two edits (an adjacent swap counts as one, as typos go), or one that starts with what was
typed. A one- or two-letter word is too short to be a typo of anything in particular, so it
only gets a suggestion when it is a prefix.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable

MAX_EDITS = 2


def distance(a: str, b: str) -> int:
    """Edits (insert, delete, substitute, swap two neighbours) that turn ``a`` into ``b``."""
    previous2: list[int] = []
    previous = list(range(len(b) + 1))
    for i, char_a in enumerate(a, 1):
        current = [i] + [0] * len(b)
        for j, char_b in enumerate(b, 1):
            current[j] = min(previous[j] + 1, current[j - 1] + 1,
                             previous[j - 1] + (char_a != char_b))
            if i > 1 and j > 1 and char_a == b[j - 2] and a[i - 2] == char_b:
                current[j] = min(current[j], previous2[j - 2] + 1)
        previous2, previous = previous, current
    return previous[-1]


def nearest(word: str, candidates: Iterable[str]) -> str | None:
    """The closest candidate worth suggesting for ``word``, or ``None``.

    Ties go to the earlier candidate, so callers list the likelier ones first. Case is
    ignored for the comparison (``PULL`` is ``pull`` mistyped), and leading dashes for the
    prefix rule (``--prev`` → ``--previous``, but not ``-p`` → ``--platform``).
    """
    typed = word.lower()
    stem = typed.lstrip("-")
    best: tuple[int, str] | None = None
    for candidate in candidates:
        if candidate == word:
            continue
        lowered = candidate.lower()
        if len(stem) >= 2 and lowered.lstrip("-").startswith(stem) and (
                lowered.startswith("--") == typed.startswith("--")):
            edits = 0  # a prefix: the user stopped typing early
        elif len(stem) > 2:
            edits = distance(typed, lowered)
            if edits > MAX_EDITS:
                continue
        else:
            continue
        if best is None or edits < best[0]:
            best = (edits, candidate)
    return best[1] if best else None

