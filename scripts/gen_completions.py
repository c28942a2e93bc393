#!/usr/bin/env python3
"""Regenerate completions/ from ``docker-cghistory completion SHELL``.

The scripts are argcomplete's shell code with a header; they change only when argcomplete
does, so CI can run ``--check`` to catch a stale copy.

Usage: python3 scripts/gen_completions.py [--check]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from docker_cghistory.commands.completion import PROGRAM, script  # noqa: E402

FILES = {
    "bash": f"{PROGRAM}.bash",
    "zsh": f"_{PROGRAM}",
    "fish": f"{PROGRAM}.fish",
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help="change nothing; exit 1 if a file is missing or differs")
    options = parser.parse_args()
    folder = ROOT / "completions"
    stale = []
    for shell, name in FILES.items():
        path = folder / name
        text = script(shell)
        current = path.read_text() if path.exists() else None
        if current == text:
            continue
        stale.append(name)
        if not options.check:
            folder.mkdir(exist_ok=True)
            path.write_text(text)
            print(f"wrote {path.relative_to(ROOT)}")
    if options.check and stale:
        print(f"stale: {', '.join(stale)}; run scripts/gen_completions.py", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
