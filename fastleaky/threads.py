"""How many threads the parallel loops may use: the one thread policy.

By default the parallel backends follow their runtimes: ``OMP_NUM_THREADS``
/ ``omp_set_num_threads`` for the Cython loops, ``NUMBA_NUM_THREADS`` /
``numba.set_num_threads`` for Numba.  ``FASTLEAKY_NUM_THREADS`` or the
``fastleaky.thread_limit(n)`` context manager caps both for fastleaky alone.

``for_call`` is what a backend's kernel is told: 1 (serial), 0 (as many
threads as its runtime would use) or a cap ``k >= 2``.  Below the size from
which threads pay off (``config.parallel_min_for``) a call is serial.  The
Cython fast entry applies the same rules in C (``_cython_loop._thread_count``);
a test holds the two to the same answers.

What a call asks for is an upper bound: the Cython loops give a call only
the threads that other fastleaky calls in flight in the process leave free
(at least its own), so calls from several Python threads do not multiply
the team by the number of callers.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import re
from collections.abc import Iterator
from typing import Any

import numpy as np

from . import config

_limit: contextvars.ContextVar[int | None] = contextvars.ContextVar(
    "fastleaky_thread_limit", default=None
)


_WHOLE_NUMBER = re.compile(r"[ \t]*([0-9]+)[ \t]*\Z")  # ASCII digits only


def parse_env_threads(value: str) -> int | None:
    """``FASTLEAKY_NUM_THREADS``'s one rule: ASCII digits, spaces or tabs
    around them allowed; blank means no cap; anything else (``2.0``,
    ``1_000``, other scripts' digits, signs) and 0 are a ValueError.
    (The Cython fast entry reads the variable by the same rule.)"""
    if value.strip(" \t") == "":
        return None
    match = _WHOLE_NUMBER.match(value)
    if match is None:
        raise ValueError(f"{config.ENV_THREADS}={value!r} is not a whole number "
                         "(ASCII digits)")
    n = int(match.group(1))
    if n < 1:
        raise ValueError(f"{config.ENV_THREADS} must be >= 1, got {value!r}")
    return n


def _env_limit() -> int | None:
    value = os.environ.get(config.ENV_THREADS)
    return None if value is None else parse_env_threads(value)


def limit() -> int | None:
    """The cap in force (context, then environment), or None.

    Read on every call that may use threads (a small fraction of the work at
    the sizes where threads are used), so a changed environment takes
    effect at once.
    """
    n = _limit.get()
    return n if n is not None else _env_limit()


def get(runtime_threads: int) -> int:
    """Threads to use, given what the runtime would use on its own."""
    cap = limit()
    return max(1, min(runtime_threads, cap) if cap else runtime_threads)


SERIAL, RUNTIME_DEFAULT = 1, 0


def for_call(dtype: np.dtype[Any], size: int) -> int:
    """Threads for one call of a parallel backend on ``size`` elements of
    ``dtype``: ``SERIAL`` (1), ``RUNTIME_DEFAULT`` (0: the runtime's own
    count), or a cap ``k >= 2`` from ``thread_limit`` / the environment."""
    try:  # config's own cache, read directly: this runs on every plain call
        minimum = _thresholds[dtype]
    except KeyError:
        minimum = config.parallel_min_for(dtype)
    if size < minimum:
        return SERIAL
    cap = limit()
    return RUNTIME_DEFAULT if cap is None else cap


_thresholds = config.parallel_min_cache()


@contextlib.contextmanager
def thread_limit(n: int | np.integer[Any]) -> Iterator[None]:
    """Run fastleaky's parallel loops on at most ``n`` threads in this context.

    ``n`` is a whole number >= 1 (a Python or NumPy integer): ``TypeError``
    for anything else, ``ValueError`` for ``n < 1``.
    """
    if isinstance(n, (bool, np.bool_)) or not isinstance(n, (int, np.integer)):
        raise TypeError(f"thread_limit needs a whole number >= 1, got {type(n).__name__} {n!r}")
    n = int(n)
    if n < 1:
        raise ValueError(f"thread_limit needs a whole number >= 1, got {n!r}")
    token = _limit.set(n)
    try:
        yield
    finally:
        _limit.reset(token)
