#!/usr/bin/env python3
"""Run the test suite's Chainguard-compatible front in the foreground.

Demos and benchmarks need the same front the tests use, as a separate process they can
start, drive over ``/_front/...`` (tests/support/front.py: RemoteFront) and kill. The module is
loaded by path so this works from any cwd without installing anything. The first line on
stdout is the front's URL, flushed at once, so a caller can wait for it.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import signal
import sys
from pathlib import Path
from types import FrameType, ModuleType

FRONT_PY = Path(__file__).resolve().parents[1] / "tests" / "support" / "front.py"


def load_front_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("cghistory_test_front", FRONT_PY)
    if spec is None or spec.loader is None:
        raise SystemExit(f"cannot load {FRONT_PY}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while being created
    spec.loader.exec_module(module)
    return module


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--upstream", help="registry to proxy manifests/blobs to (http://...)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--config", type=Path, help="front config JSON (see front.py docstring)")
    args = parser.parse_args(argv)

    config = json.loads(args.config.read_text()) if args.config else {}
    front = load_front_module().Front(args.upstream, config, host=args.host, port=args.port)

    def stop(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    # Bind before printing so the URL is usable the moment it appears.
    front.start()
    print(front.url, flush=True)
    try:
        signal.pause()
    except KeyboardInterrupt:
        pass
    finally:
        front.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
