#!/usr/bin/env python3
"""Fuzz the parsers that take untrusted bytes: ``scripts/fuzz.py --seconds 300``.

Targets live in ``tests/hardening/fuzz_targets.py`` (history JSON, Dockerfile and compose
rewriting, references, time values); a ``CghistoryError`` is the only exception they may
raise. Each target runs in a process of its own, so a crash (or atheris ending the process)
never stops the others. Engines:

- ``atheris`` (``pip install atheris``): coverage-guided libFuzzer over the instrumented
  package, seeded with the pin corpus and sample history pages; a crashing input is saved
  under ``--artifacts`` as ``crash-*``, to replay with
  ``python scripts/fuzz.py --target NAME --replay FILE``;
- ``hypothesis``: random and mutated-seed inputs for the same time budget, when atheris is
  not installed (``--engine auto``, the default, picks atheris if it imports).

The summary line per target gives the engine, the inputs tried, the time and the verdict;
the exit status is 1 if any target failed.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import subprocess
import sys
import tempfile
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def _atheris_available() -> bool:
    try:
        import atheris  # noqa: F401
    except ImportError:
        return False
    return True


# --------------------------------------------------------------------------- workers
def _work_atheris(name: str, seconds: float, runs: int, artifacts: Path,
                  corpus: Path | None) -> int:
    import atheris

    with atheris.instrument_imports(include=["docker_cghistory", "yaml"]):
        from tests.hardening import fuzz_targets
    assert set(fuzz_targets.TARGETS) == set(TARGET_NAMES)
    target = fuzz_targets.TARGETS[name]
    seeds_dir = corpus or Path(tempfile.mkdtemp(prefix=f"fuzz-{name}-"))
    if corpus is None:
        for index, seed in enumerate(fuzz_targets.seeds(name)):
            (seeds_dir / f"seed{index}").write_bytes(seed)
    artifacts.mkdir(parents=True, exist_ok=True)
    argv = [sys.argv[0], f"-max_total_time={max(1, int(seconds))}",
            f"-artifact_prefix={artifacts}/{name}-", "-rss_limit_mb=2048", "-timeout=20",
            "-print_final_stats=1", "-max_len=65536", str(seeds_dir)]
    if runs:
        argv.insert(1, f"-runs={runs}")
    atheris.Setup(argv, target)
    atheris.Fuzz()  # exits the process: 0 when the budget is spent, non-zero on a crash
    return 0


def _work_hypothesis(name: str, seconds: float, runs: int, artifacts: Path) -> int:
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis import strategies as st

    from tests.hardening import fuzz_targets

    target = fuzz_targets.TARGETS[name]
    seeds = fuzz_targets.seeds(name)

    def splice(seed: bytes) -> st.SearchStrategy[bytes]:
        return st.tuples(st.integers(0, len(seed)), st.integers(0, len(seed)),
                         st.binary(max_size=64)).map(
            lambda cut: seed[: min(cut[0], cut[1])] + cut[2] + seed[max(cut[0], cut[1]):])

    inputs = st.one_of(st.binary(max_size=2048), st.sampled_from(seeds).flatmap(splice),
                       st.text(max_size=300).map(str.encode))
    count = [0]
    failing: list[bytes] = []

    @settings(max_examples=200, database=None, deadline=None, derandomize=False,
              phases=[Phase.generate], suppress_health_check=list(HealthCheck))
    @given(inputs)
    def batch(data: bytes) -> None:
        count[0] += 1
        try:
            target(data)
        except Exception:
            failing.append(data)
            raise

    deadline = time.monotonic() + seconds
    started = time.monotonic()
    while time.monotonic() < deadline and (not runs or count[0] < runs):
        try:
            batch()
        except Exception:
            artifacts.mkdir(parents=True, exist_ok=True)
            crash = artifacts / f"{name}-crash-{int(time.time())}"
            crash.write_bytes(failing[-1] if failing else b"")
            traceback.print_exc()
            print(f"crash input saved to {crash}", file=sys.stderr)
            print(f"RUNS {count[0]} IN {time.monotonic() - started:.1f}", file=sys.stderr)
            return 1
    print(f"RUNS {count[0]} IN {time.monotonic() - started:.1f}", file=sys.stderr)
    return 0


def _replay(name: str, path: Path) -> int:
    from tests.hardening import fuzz_targets

    fuzz_targets.TARGETS[name](path.read_bytes())
    print(f"{path}: no failure")
    return 0


# --------------------------------------------------------------------------- driver
_RUNS = re.compile(r"stat::number_of_executed_units:\s*(\d+)|Done (\d+) runs|RUNS (\d+)")


def _drive(name: str, engine: str, seconds: float, runs: int, artifacts: Path,
           corpus: Path | None) -> tuple[str, int, int, float, str]:
    command = [sys.executable, __file__, "--worker", name, "--engine", engine,
               "--seconds", str(seconds), "--runs", str(runs), "--artifacts", str(artifacts)]
    if corpus is not None:
        command += ["--corpus", str(corpus / name)]
        (corpus / name).mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
    try:
        result = subprocess.run(command, capture_output=True, text=True, env=env,
                                timeout=seconds * 3 + 120, check=False)
        output, code = result.stdout + result.stderr, result.returncode
    except subprocess.TimeoutExpired as error:
        output = str(error.stdout or "") + str(error.stderr or "")
        code = -9
    elapsed = time.monotonic() - started
    counts = [int(next(g for g in m.groups() if g)) for m in _RUNS.finditer(output)]
    return name, code, max(counts, default=0), elapsed, output


# The target names, without importing the targets: an atheris worker must import the package
# inside its instrumentation block, which does nothing for modules already imported.
TARGET_NAMES = ("history_json", "dockerfile_rewrite", "compose_rewrite", "reference_text",
                "time_text")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--target", default="all",
                        help=f"all, or one of {', '.join(TARGET_NAMES)}")
    parser.add_argument("--seconds", type=float, default=60.0, help="time budget per target")
    parser.add_argument("--runs", type=int, default=0, help="stop after this many inputs (0: no)")
    parser.add_argument("--engine", choices=("auto", "atheris", "hypothesis"), default="auto")
    parser.add_argument("--jobs", type=int, default=max(1, (os.cpu_count() or 2)))
    parser.add_argument("--artifacts", type=Path, default=ROOT / ".fuzz" / "artifacts")
    parser.add_argument("--corpus", type=Path, help="keep the growing corpus here (atheris)")
    parser.add_argument("--replay", type=Path, help="run one saved input through --target")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    engine = args.engine
    if engine == "auto":
        engine = "atheris" if _atheris_available() else "hypothesis"
    if args.replay:
        return _replay(args.target, args.replay)
    if args.worker:
        if engine == "atheris":
            return _work_atheris(args.worker, args.seconds, args.runs, args.artifacts,
                                 args.corpus)
        return _work_hypothesis(args.worker, args.seconds, args.runs, args.artifacts)
    names = list(TARGET_NAMES) if args.target == "all" else args.target.split(",")
    unknown = [name for name in names if name not in TARGET_NAMES]
    if unknown:
        parser.error(f"unknown target(s) {', '.join(unknown)}; one of {', '.join(TARGET_NAMES)}")
    print(f"fuzz: {len(names)} target(s), {args.seconds:g} s each, engine {engine}, "
          f"{args.jobs} at a time", flush=True)
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        results = list(pool.map(
            lambda name: _drive(name, engine, args.seconds, args.runs, args.artifacts,
                                args.corpus), names))
    failed = False
    for name, code, inputs, elapsed, output in results:
        verdict = "ok" if code == 0 else f"FAILED (exit {code})"
        rate = inputs / elapsed if elapsed else 0.0
        print(f"{name:20} {engine:10} {inputs:>9} inputs {elapsed:6.1f} s "
              f"{rate:>8.0f}/s  {verdict}", flush=True)
        if code != 0:
            failed = True
            with contextlib.suppress(Exception):
                sys.stdout.write("\n".join(output.splitlines()[-40:]) + "\n")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
