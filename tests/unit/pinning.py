"""What the rewrite tests share: a stand-in registry and the pattern a pin adds."""

from __future__ import annotations

import hashlib
import re

# A pin adds a digest, and ":latest" where neither tag nor digest was written (pinned_text);
# taking every such piece out of a file and of its pinned version must give the same bytes.
ADDED_BY_PIN = re.compile(r":latest(?![\w.-])|@sha256:[0-9a-f]{64}")


def fake_digest(written: str) -> str:
    """A stand-in registry: the digest depends on the written name and tag, never on a digest.

    Hashing the text as written (not the parsed reference) keeps the corpus independent of how
    references are normalised; ``name`` and ``name:latest`` are one tag, as in a registry.
    """
    name = written.partition("@")[0].strip()
    if name.endswith(":latest"):
        name = name[: -len(":latest")]
    return "sha256:" + hashlib.sha256(name.encode()).hexdigest()
