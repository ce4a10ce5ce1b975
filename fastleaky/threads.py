"""How many threads the parallel loops may use.

By default the parallel backends follow their runtimes: ``OMP_NUM_THREADS``
/ ``omp_set_num_threads`` for the Cython loops, ``NUMBA_NUM_THREADS`` /
``numba.set_num_threads`` for Numba.  ``FASTLEAKY_NUM_THREADS`` or the
``fastleaky.thread_limit(n)`` context manager caps both for fastleaky alone
(the environment variable is read on first use).
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


_env_cache: list = []  # FASTLEAKY_NUM_THREADS, read once (per-call reads cost ~1 us)


def limit() -> int | None:
    """The cap in force (context, then environment), or None."""
    n = _limit.get()
    if n is not None:
        return n
    if not _env_cache:
        _env_cache.append(_env_limit())
    return _env_cache[0]


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
