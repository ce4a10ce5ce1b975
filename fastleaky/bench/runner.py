"""The sweep behind ``fastleaky bench``: every implementation, size and dtype.

Timing, per (dtype, size): each implementation is set up on the same input,
its output checked against the reference once, then warmed up (this is where
Numba compiles) while finding how many calls make one repeat last at least
``min_repeat_s``.  The repeats then go round the implementations in turn,
starting one further along each round, so drift (frequency, other jobs on
the machine) hits all of them alike.  Reported: the median time per call,
and every repeat's time (``samples``) for the spread.  GPU work is
synchronized before each clock reading.

Around the timed repeats of each (dtype, size) the machine's CPU time and
this process's are read (``activity``): the record of every cell measured
then says how many CPUs other work kept busy meanwhile (``machine``) and
whether that was enough to disturb it (``disturbed``).
"""

from __future__ import annotations

import fnmatch
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .. import cases
from ..info import available_memory
from . import activity
from . import impls as impls_mod
from .impls import Data, Impl, Unsupported, Work
from .schema import ImplRecord, Measured, Result, Skipped

#: ``progress(description, done)``: ``done`` steps advance the bar, the others name the work.
Progress = Callable[[str, bool], None]

# Bytes of memory a case needs per input byte: x, out, the reference result
# and its temporary for the check, and one allocating implementation's result.
_BYTES_PER_INPUT_BYTE = 6


@dataclass
class Settings:
    """What to measure and how long: sizes, dtypes, alpha, repeats per cell."""

    sizes: tuple[int, ...] = cases.BENCH_SIZES_QUICK
    dtypes: tuple[str, ...] = cases.BENCH_DTYPES
    alpha: float = 0.01
    repeats: int = 5
    min_repeat_s: float = 2e-3


def select(patterns: list[str] | None = None, backends: list[str] | None = None) -> list[Impl]:
    """The implementations to run: all, or those matching ``patterns`` (names or
    globs such as ``"torch:*"``) and, for fastleaky's own, ``backends``.

    The copies (family "limit") and the NumPy baseline are always kept:
    every ratio in the report is relative to them.
    """
    from .. import registry

    available = impls_mod.registry()
    if backends:
        for name in backends:
            registry.check_name(name)  # ValueError naming the valid ones
            if name != "auto" and not registry.availability(name)[0]:
                raise ValueError(f"backend {name!r} is unavailable here: "
                                 f"{registry.availability(name)[1]}")
    if patterns:
        for pattern in patterns:
            if not fnmatch.filter(available, pattern):
                raise ValueError(f"no implementation matches {pattern!r}; "
                                 f"known: {', '.join(available)}")
    keep = {n for n, i in available.items() if i.family == "limit"} | {impls_mod.BASELINE}
    chosen: list[Impl] = []
    for name, impl in available.items():
        wanted = True
        if patterns:
            wanted = any(fnmatch.fnmatchcase(name, p) for p in patterns)
        if backends and impl.family == "fastleaky":
            wanted = wanted and name.split(":", 1)[1] in backends
        elif backends and not patterns:
            wanted = False  # --backends alone: fastleaky's backends against the baselines
        if wanted or name in keep:
            chosen.append(impl)
    return chosen


def time_loops(fn: Work, loops: int, sync: Callable[[], None] | None = None) -> float:
    """Seconds for ``loops`` calls of ``fn`` (GPU work synchronized by ``sync``)."""
    calls = range(loops)
    if sync is not None:
        sync()
    start = time.perf_counter()
    for _ in calls:
        fn()
    if sync is not None:
        sync()
    return time.perf_counter() - start


def calibrate(fn: Work, sync: Callable[[], None] | None, min_repeat_s: float) -> int:
    """Calls per repeat so that a repeat lasts at least ``min_repeat_s`` (warms up too)."""
    time_loops(fn, 1, sync)
    loops = 1
    while True:
        elapsed = time_loops(fn, loops, sync)
        if elapsed >= min_repeat_s or loops >= 1 << 30:
            return loops
        grow = math.ceil(1.2 * loops * min_repeat_s / max(elapsed, 1e-9))
        loops = min(max(2 * loops, grow), 1 << 30)


def memory_needed(dtype: str, size: int) -> int:
    """Bytes of memory measuring one (dtype, size) case needs."""
    return size * np.dtype(dtype).itemsize * _BYTES_PER_INPUT_BYTE


def too_big(settings: Settings) -> list[str]:
    """The cases that cannot fit in the memory available now, each with why."""
    mem = available_memory()
    if mem is None:
        return []
    return [f"{size:,} {dtype} elements need about {memory_needed(dtype, size) / 2**30:,.1f} "
            f"GiB, {mem / 2**30:.1f} GiB available"
            for dtype in settings.dtypes for size in settings.sizes
            if memory_needed(dtype, size) > mem]


def run(chosen: list[Impl], settings: Settings, progress: Progress | None = None) -> Measured:
    """Measure; returns ``{"results": [...], "skipped": [...]}`` (one record per cell)."""
    results: list[Result] = []
    skipped: list[Skipped] = []
    mem = available_memory()
    for dtype in settings.dtypes:
        for size in settings.sizes:
            if mem is not None and memory_needed(dtype, size) > mem:
                reason = (f"needs about {memory_needed(dtype, size) / 2**30:.1f} GiB, "
                          f"{mem / 2**30:.1f} GiB available")
                skipped += [_skip(i, dtype, size, reason) for i in chosen]
                for impl in chosen:
                    _step(progress, impl, dtype, size)
                continue
            results += _run_case(chosen, dtype, size, settings, skipped, progress)
    return {"results": results, "skipped": skipped}


def _skip(impl: Impl, dtype: str, size: int, reason: str) -> Skipped:
    return {"impl": impl.name, "dtype": dtype, "size": size, "reason": reason}


def _step(progress: Progress | None, impl: Impl, dtype: str, size: int,
          done: bool = True) -> None:
    """Report progress: ``done`` steps advance the bar, the others name the work."""
    if progress is not None:
        progress(f"{dtype} n={size:,} {impl.name}", done)


def _run_case(chosen: list[Impl], dtype: str, size: int, settings: Settings,
              skipped: list[Skipped], progress: Progress | None) -> list[Result]:
    data = Data(cases.sample(dtype, size, signalling=False), settings.alpha)
    ready: list[tuple[Impl, Work, int, str]] = []  # (impl, fn, loops, check)
    try:
        for impl in chosen:
            _step(progress, impl, dtype, size, done=False)
            if impl.valid_alpha is not None and not impl.valid_alpha(settings.alpha):
                skipped.append(_skip(impl, dtype, size, f"wrong for alpha={settings.alpha}"))
                continue
            try:
                fn = impl.setup(data)
                status = impls_mod.check(impl, data, fn)
            except Unsupported as exc:
                skipped.append(_skip(impl, dtype, size, str(exc)))
                continue
            except Exception as exc:  # a peer that fails here is reported, not fatal
                skipped.append(_skip(impl, dtype, size, f"{type(exc).__name__}: {exc}"))
                continue
            loops = calibrate(fn, impl.sync, settings.min_repeat_s)
            ready.append((impl, fn, loops, status))
        per_call: dict[str, list[float]] = {impl.name: [] for impl, *_ in ready}
        before = activity.read()
        for r in range(settings.repeats):
            shift = r % max(len(ready), 1)
            for impl, fn, loops, _ in ready[shift:] + ready[:shift]:
                per_call[impl.name].append(time_loops(fn, loops, impl.sync) / loops)
        window = activity.between(before, activity.read())
        for impl in chosen:
            _step(progress, impl, dtype, size)
    finally:
        data.release()
    nbytes = size * np.dtype(dtype).itemsize
    return [
        {"impl": impl.name, "family": impl.family, "device": impl.device, "dtype": dtype,
         "size": size, "nbytes": nbytes, "seconds": float(np.median(per_call[impl.name])),
         "samples": per_call[impl.name], "repeats": settings.repeats, "loops": loops,
         "check": status, "machine": window, "disturbed": activity.busy(window)}
        for impl, fn, loops, status in ready
    ]


def describe(chosen: list[Impl]) -> dict[str, ImplRecord]:
    """What each implementation is, for the report."""
    return {i.name: {"family": i.family, "device": i.device, "description": i.description,
                     "note": i.note} for i in chosen}
