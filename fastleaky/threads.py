"""How many threads the parallel loops may use.

By default the parallel backends follow their runtimes: ``OMP_NUM_THREADS``
/ ``omp_set_num_threads`` for the Cython loops, ``NUMBA_NUM_THREADS`` /
``numba.set_num_threads`` for Numba.  ``FASTLEAKY_NUM_THREADS`` or the
``fastleaky.thread_limit(n)`` context manager caps both for fastleaky alone.
"""

from __future__ import annotations

import contextlib
import contextvars
import os

from . import config

_limit: contextvars.ContextVar[int | None] = contextvars.ContextVar(
    "fastleaky_thread_limit", default=None
)


def _env_limit() -> int | None:
    value = os.environ.get(config.ENV_THREADS)
    if not value:
        return None
    try:
        n = int(value)
    except ValueError:
        raise ValueError(f"{config.ENV_THREADS}={value!r} is not a whole number") from None
    if n < 1:
        raise ValueError(f"{config.ENV_THREADS} must be >= 1, got {n}")
    return n


def limit() -> int | None:
    """The cap in force (context, then environment), or None.

    Read on every call that may use threads (about 1 us, against >= 10 us of
    work at the sizes where threads are used), so a changed environment
    takes effect at once.
    """
    n = _limit.get()
    return n if n is not None else _env_limit()


def get(runtime_threads: int) -> int:
    """Threads to use, given what the runtime would use on its own."""
    cap = limit()
    return max(1, min(runtime_threads, cap) if cap else runtime_threads)


@contextlib.contextmanager
def thread_limit(n: int):
    """Run fastleaky's parallel loops on at most ``n`` threads in this context."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"thread_limit needs a whole number >= 1, got {n!r}")
    token = _limit.set(n)
    try:
        yield
    finally:
        _limit.reset(token)
