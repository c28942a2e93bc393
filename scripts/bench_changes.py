#!/usr/bin/env python3
"""Speed of ``list -n 30 --changes`` as a ratio against ``list -n 30``, measured in one run
against the project's front over a real registry, made to behave like an HTTPS registry 50 ms
away (50 ms added to every request, 100 ms more on the first request of each new connection).

The tag is the 40-build multi-platform series of ``scripts/bench_platforms.py`` (each platform
image with an SPDX SBOM through the referrers API). ``--changes`` reads, for 31 builds (the 30
listed and the one before the oldest), the index, the platform's manifest, its referrers, the
Sigstore bundle manifest and the SBOM, in parallel; the platform is the default one (the
engine's, else this machine's), as a user who types no ``--platform`` gets. First run = empty
cache; cached = the cache of an earlier identical run (package lists per platform digest, so
no SBOM is read again). Targets (issue 13): first run at most 4x, cached at most 1.3x, each
against the plain listing in the same state.

Usage: python3 scripts/bench_changes.py [--rounds N] [--builds N]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_platforms import bench, measure, report

from docker_cghistory.platforms import local_platform


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--builds", type=int, default=40)
    options = parser.parse_args()
    with bench(options.builds) as b:
        plain = b.command("-n", "30")
        changes = b.command("-n", "30", "--changes")
        # Correct before timed: every row's changes are the pushed ones, none from layers.
        platform = str(local_platform())
        b.front.reset_log()
        rows = [json.loads(line) for line in
                b.output([*changes, "--format", "json"], "check").splitlines()]
        assert len(rows) == 30 and all(row["Changes"] is not None for row in rows)
        for row in rows:
            older, newer = b.series.by_index(row["Index"] + 1), b.series.by_index(row["Index"])
            expected = b.series.expected_diff(older, newer, platform).packages
            assert row["Changes"] == expected, (row["Index"], row["Changes"], expected)
        assert not [d for d in b.front.blob_downloads(b.series.repo) if d.kind == "layer"]
        medians = measure(b, {"list -n 30": plain, "list -n 30 --changes": changes},
                          options.rounds)
    report(f"{options.builds}-build multi-platform tag with SBOMs ({platform}), 50 ms per "
           f"request + 100 ms per new connection, median of {options.rounds} rounds",
           medians, "list -n 30", {"list -n 30 --changes": (4, 1.3)})


if __name__ == "__main__":
    main()
