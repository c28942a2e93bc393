"""``python -m docker_cghistory``, with completion's registry budget raised: a test knob.

Completion gives the registry 1 s (``complete.sources.BUDGET``) and answers nothing when that
runs out. That is the contract, but on a loaded CI machine the second can run out before the
request even reaches the front, and a test that injected a fault there has then checked
nothing ("the fault never fired"). Tests that need completion to *meet* the registry run it
through this file, which sets the budget ``Sources`` takes by default (its ``budget=`` keyword,
the one the unit tests pass) to ``HARDENING_COMPLETION_BUDGET`` seconds, then runs the real
entry point. Completion still makes one attempt; only its deadline moves.

Usage: ``HARDENING_COMPLETION_BUDGET=15 python tests/hardening/complete_budget.py ARGS...``
"""

from __future__ import annotations

import os
import runpy
import sys

# Run as a script, this folder comes first on sys.path: the tool must not import from it.
if sys.path and os.path.abspath(sys.path[0] or ".") == os.path.dirname(os.path.abspath(__file__)):
    del sys.path[0]

from docker_cghistory.complete.sources import Sources

defaults = Sources.__init__.__kwdefaults__
if not defaults or "budget" not in defaults:
    raise SystemExit("complete_budget.py: Sources(budget=...) is gone; update this launcher")
defaults["budget"] = float(os.environ["HARDENING_COMPLETION_BUDGET"])
sys.argv[0] = "docker_cghistory"
runpy.run_module("docker_cghistory", run_name="__main__", alter_sys=True)
