"""argcomplete's wire protocol, for the scripts ``docker-cghistory completion SHELL`` prints.

argcomplete's shell code runs the program with ``_ARGCOMPLETE`` and ``COMP_LINE``/``COMP_POINT``
set and reads candidates from file descriptor 8. Answering that protocol here, from our own
engine, keeps argcomplete's scripts (the ones its users know) while skipping argcomplete and
argparse on every TAB; so this module also cuts the line into words the way argcomplete does.
Named ``argcomplete_adapter``, not ``argcomplete``, so that it can never be mistaken for the
library.
"""

from __future__ import annotations

import os

from . import core
from .core import MAX_CANDIDATES, Answer, Candidates
from .sources import Sources

TYPE_CHECKING = False
if TYPE_CHECKING:  # annotations only: typing costs a TAB ~5 ms to import
    from typing import Any


def split_line(line: str, wordbreaks: str = "") -> tuple[list[str], str, str, int | None]:
    """``(words, current, prequote, last_wordbreak)`` of a shell line cut at the cursor.

    The shell's quoting rules as argcomplete applies them: quotes and backslashes are removed
    from words; ``prequote`` is the quote still open at the cursor; ``last_wordbreak`` is the
    position in ``current`` of its last unquoted ``COMP_WORDBREAKS`` character (bash completes
    only what follows it, so ``python:3`` is completed as ``3``).
    """
    words: list[str] = []
    token: list[str] = []
    in_word = False
    quote = ""
    wordbreak: int | None = None
    index = 0
    while index < len(line):
        char = line[index]
        index += 1
        if quote == "'":
            if char == "'":
                quote = ""
            else:
                token.append(char)
        elif quote == '"':
            if char == '"':
                quote = ""
            elif char == "\\" and index < len(line) and line[index] in '"\\$`\n':
                token.append(line[index])
                index += 1
            else:
                token.append(char)
        elif char in " \t\n":
            if in_word:
                words.append("".join(token))
                token, in_word, wordbreak = [], False, None
        else:
            in_word = True
            if char in "'\"":
                quote = char
            elif char == "\\":
                if index < len(line):
                    token.append(line[index])
                    index += 1
            else:
                token.append(char)
                if char in wordbreaks:
                    wordbreak = len(token) - 1
    if not in_word:
        return words, "", "", None
    return words, "".join(token), quote, wordbreak


def _list_paths(current: str, dirs_only: bool) -> Candidates:
    """Files (or folders) for argcomplete shells: fish and zsh do not fall back to files."""
    head, slash, start = current.rpartition("/")
    shown = head + slash
    out: Candidates = []
    try:
        entries = sorted(os.scandir(os.path.expanduser(shown) if shown else "."),
                         key=lambda entry: entry.name)
    except OSError:
        return []
    for entry in entries:
        if not entry.name.startswith(start):
            continue
        if entry.name.startswith(".") and not start.startswith("."):
            continue
        try:
            is_dir = entry.is_dir()
        except OSError:
            continue
        if dirs_only and not is_dir:
            continue
        out.append((f"{shown}{entry.name}{'/' if is_dir else ''}", ""))
        if len(out) >= MAX_CANDIDATES:
            break
    return out


_SPECIAL = "\\();<>|&!`$*?[]{} \t\n\"'"


def argcomplete_words(answer: Answer, current: str, prequote: str, wordbreak: int | None,
                      env: dict[str, str] | Any) -> list[str]:
    """Candidates in argcomplete's wire form for the shell named in ``_ARGCOMPLETE_SHELL``."""
    shell = env.get("_ARGCOMPLETE_SHELL", "bash")
    candidates = list(answer.candidates)
    if answer.files:
        candidates += _list_paths(current[len(answer.prefix):], answer.files == "dirs")
    seen: set[str] = set()
    words: list[tuple[str, str]] = []
    for value, description in candidates:
        full = answer.prefix + value.replace("\t", "\\t")
        if full.startswith(current) and full not in seen and "\n" not in full:
            seen.add(full)
            words.append((full, core.clean(description)))
    if wordbreak is not None and not prequote:
        words = [(full[wordbreak + 1 :], description) for full, description in words]
    special = ""
    if shell not in ("fish", "tcsh"):
        special = {"": _SPECIAL, '"': '\\"`$!', "'": ""}.get(prequote, "")
        if shell == "zsh":
            special += ":"
    out = []
    for full, description in words:
        if prequote == "'" and shell not in ("fish", "tcsh"):
            full = full.replace("'", "'\\''")
        for char in special:
            full = full.replace(char, "\\" + char)
        out.append((full, description))
    if (len(out) == 1 and env.get("_ARGCOMPLETE_SUPPRESS_SPACE") != "1" and not prequote
            and out[0][0][-1:] not in ("=", "/", ":")):
        out[0] = (out[0][0] + " ", out[0][1])
    dfs = env.get("_ARGCOMPLETE_DFS")
    if shell == "zsh":
        return [f"{full}:{description}" for full, description in out]
    if dfs:
        return [f"{full}{dfs}{description}" for full, description in out]
    return [full for full, _ in out]


def argcomplete_complete(env: dict[str, str] | None = None, stream: Any = None, *,
                         silence: bool = True, sources: Sources | None = None) -> int:
    """Answer argcomplete's shell scripts: read ``COMP_LINE``/``COMP_POINT``, write to fd 8."""
    env = os.environ if env is None else env
    if silence:
        core.silence()
    sources = sources or Sources()
    ifs = env.get("_ARGCOMPLETE_IFS", "\013")
    try:
        if stream is None:
            target = env.get("_ARGCOMPLETE_STDOUT_FILENAME")
            stream = open(target, "w") if target else os.fdopen(8, "w")  # noqa: SIM115
    except OSError:
        return 1
    try:
        line = env.get("COMP_LINE", "")
        point = int(env.get("COMP_POINT", len(line)))
        words, current, prequote, wordbreak = split_line(
            line[:point], env.get("_ARGCOMPLETE_COMP_WORDBREAKS", ""))
        start = max(int(env.get("_ARGCOMPLETE", "1")), 1)
        answer = core.complete(words[start:], current, sources, options_on_empty=True)
        out = argcomplete_words(answer, current, prequote, wordbreak, env)
    except Exception:
        out = []
    core.finish(sources, stream, ifs.join(out))
    return 0
