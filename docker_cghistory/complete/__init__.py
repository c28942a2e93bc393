"""Tab completion: docker's cobra ``__complete`` protocol and argcomplete, both from ``spec``.

Why it is built this way:
- One engine (``core.complete``) reads the argument table in ``spec`` and answers for both
  protocols, so subcommands, flags and value completers cannot drift between
  ``docker cghistory <TAB>`` and ``docker-cghistory <TAB>``.
- argcomplete's own finder is not used: it needs an argparse parser, and the CLI has an
  implicit default command (no subcommand means ``list IMAGE``), which argparse subparsers
  cannot express (the first word is a subcommand *or* an image). Driving our engine from
  ``COMP_LINE``/``COMP_POINT`` and writing argcomplete's wire format keeps the answers right and
  skips importing argparse and argcomplete (~10 ms) on every TAB.
- Every TAB starts a Python process, so a cache hit imports nothing heavy: no requests, docker,
  argparse, json or hashlib. Candidates live in small line-format files (``store``); a miss
  asks the registry within a hard budget (``sources``) and gives an empty answer on any
  failure.
- Completion never talks to the user: stdin and stderr point at /dev/null, a credential helper
  gets a short timeout, and the engine is never waited on (local images come from a list a
  forked child refreshes).

The modules, each importing only what its part of a TAB needs:
- ``core``: the engine; what the words before the cursor say, and which candidates follow.
- ``sources``: where candidates come from (configured, recent, local, the registry).
- ``store``: the cache files, through ``cache``'s trust checks.
- ``cobra``, ``argcomplete_adapter``: the two wire protocols.

This ``__init__`` imports nothing: ``from docker_cghistory.complete import cobra_complete``
loads only the modules that answer.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from .argcomplete_adapter import argcomplete_complete
    from .cobra import cobra_complete
    from .store import remember_builds, remember_reference

# The entry points other modules use, and the module each lives in (loaded on first use).
_EXPORTS = {
    "cobra_complete": "cobra",
    "argcomplete_complete": "argcomplete_adapter",
    "remember_reference": "store",
    "remember_builds": "store",
}
__all__ = ["argcomplete_complete", "cobra_complete", "remember_builds", "remember_reference"]


def __getattr__(name: str) -> object:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    # __import__, not importlib.import_module: importlib is one more import on every TAB.
    value = getattr(__import__(f"{__name__}.{module}", fromlist=[name]), name)
    globals()[name] = value
    return value
