"""Push the fixture images to a registry and print the front's ``repos`` configuration.

Usage: ``python -m tests.support.images http://127.0.0.1:PORT [--end RFC3339]`` from the
checkout. demo.sh merges the printed object into the front's config file under ``"repos"``.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass

from ..front import parse_timestamp
from . import push_all, repo_configs


@dataclass(frozen=True)
class _Url:
    url: str


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("registry", help="base URL of the registry, e.g. http://127.0.0.1:5000")
    parser.add_argument("--end", help="the newest build's time (RFC 3339); default: now")
    parser.add_argument("--referrers", default="on", choices=("on", "off", "ignore_filter"))
    args = parser.parse_args(argv)
    end = parse_timestamp(args.end) if args.end else None
    series = push_all(_Url(args.registry.rstrip("/")), end=end)
    json.dump(repo_configs(series.values(), args.referrers), sys.stdout, indent=1)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
