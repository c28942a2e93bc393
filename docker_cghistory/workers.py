"""Registry reads side by side: history windows, index manifests, build facts, pin's moves.

One way to run them, so every caller behaves the same when one read fails or the user presses
Ctrl-C: the first failure is the caller's, and requests still in flight are not waited for
(their threads end with their own timeouts). Import-light: ``concurrent.futures`` is imported
only when there is more than one item.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


def parallel(function: Callable[[T], R], items: Sequence[T], workers: int,
             name: str = "worker") -> list[R]:
    """``function`` over ``items`` in up to ``workers`` threads, results in ``items`` order."""
    if len(items) <= 1:
        return [function(item) for item in items]
    from concurrent.futures import ThreadPoolExecutor

    pool = ThreadPoolExecutor(max_workers=max(1, min(workers, len(items))),
                              thread_name_prefix=name)
    try:
        return list(pool.map(function, items))
    except BaseException:
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    finally:
        pool.shutdown(wait=False)


def both(first: Callable[[], T], second: Callable[[], T], name: str = "worker") -> list[T]:
    """Two reads at once (the two builds of a diff)."""
    return parallel(lambda call: call(), [first, second], 2, name)
