"""Entry point: ``docker-cghistory`` and ``python -m docker_cghistory``.

Routes the cheap requests (plugin metadata, shell completion) before anything heavy is
imported; everything else goes to ``cli.run``.
"""

from __future__ import annotations

import os
import sys


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else list(argv)
    if args[:1] == ["docker-cli-plugin-metadata"]:
        from .plugin import metadata_json

        sys.stdout.write(metadata_json() + "\n")
        return 0
    if args[:1] in (["__complete"], ["__completeNoDesc"]):
        from .complete import cobra_complete

        return cobra_complete(args)
    if "_ARGCOMPLETE" in os.environ and "COMP_LINE" in os.environ:
        from .complete import argcomplete_complete

        return argcomplete_complete()
    from .cli import run
    from .programs import drop_unsafe_path_entries

    drop_unsafe_path_entries()
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
