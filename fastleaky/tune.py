"""``fastleaky tune``: measure where the parallel loops start to pay off here.

For each dtype, times the Cython loop on one thread and on all threads at
sizes from 1,024 to 4M elements (doubling), interleaved, median of repeats,
and takes as threshold the smallest size from which the parallel loop wins
(median over three neighbouring sizes, robust to one noisy point).  The result goes to ``config.tune_file()``
(``FASTLEAKY_TUNE_FILE`` overrides) and is used by the dispatcher from then
on; ``fastleaky info`` shows the thresholds in force.

The target is checked before anything is measured (``check_target``), and
written atomically (``write_atomic``): a process reading the file while
``fastleaky tune`` runs sees the old file or the new one, never a part.
"""

from __future__ import annotations

import datetime
import json
import os
import secrets
import statistics
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TypedDict

import numpy as np

from . import config

#: ``progress(dtype_name, size)``, called after each size is timed.
Progress = Callable[[str, int], None]


class DtypeTiming(TypedDict):
    """One dtype's timings: seconds per call at each size, and the crossover."""

    threshold: int
    sizes: list[int]
    serial_s: list[float]
    parallel_s: list[float]


class Timings(TypedDict):
    """What :func:`measure` gives: the thread count and each dtype's timings."""

    threads: int
    dtypes: dict[str, DtypeTiming]


class _TuneFileKeys(TypedDict):
    parallel_min_elements: dict[str, int]
    threads: int
    measurements: dict[str, DtypeTiming]
    cpu: str
    date: str


class TuneFile(_TuneFileKeys, total=False):
    """The tune file's content; :func:`run` adds ``path``, where it was written."""

    path: str

SIZES = tuple(1024 << k for k in range(13))  # 1,024 .. 4,194,304


def _median_time(fn: Callable[[], object], min_seconds: float = 0.002,
                 repeats: int = 7) -> float:
    """Median seconds per call, each repeat looping ``fn`` for at least
    ``min_seconds`` (the bench's calibration, warm-up included)."""
    from .bench import runner

    loops = runner.calibrate(fn, None, min_seconds)
    return statistics.median(runner.time_loops(fn, loops) / loops for _ in range(repeats))


def _crossover(sizes: Sequence[int], serial: Sequence[float],
               parallel: Sequence[float]) -> int:
    """Smallest size where the parallel loop wins, there and over a window of three sizes
    (median speed-up > 1), so that one noisy point neither starts nor stops it."""
    speedup = [s / p for s, p in zip(serial, parallel)]
    for i, n in enumerate(sizes):
        if speedup[i] > 1.0 and statistics.median(speedup[i:i + 3]) > 1.0:
            return n
    return max(sizes) * 2  # parallel never won: effectively off


def measure(dtypes: Iterable[str] = config.DEFAULT_PARALLEL_MIN_ELEMENTS,
            sizes: Sequence[int] = SIZES, progress: Progress | None = None) -> Timings:
    """{dtype: {"threshold": n, "serial_s": [...], "parallel_s": [...]}}."""
    from . import ops, registry

    ok, reason = registry.availability("cython")
    if not ok:
        raise RuntimeError(f"cannot tune: {reason}")
    cython_backend = registry.load("cython")
    nthreads = cython_backend.max_threads()
    results: dict[str, DtypeTiming] = {}
    for name in dtypes:
        dtype = np.dtype(name)
        if dtype.type not in cython_backend.native_dtypes():
            continue
        x = np.random.default_rng(0).standard_normal(max(sizes)).astype(dtype)
        out = np.empty_like(x)
        a = dtype.type(0.01)
        serial: list[float] = []
        parallel: list[float] = []
        for n in sizes:
            xs, outs = x[:n], out[:n]
            serial.append(_median_time(lambda: cython_backend.run(ops.FORWARD, (xs,), a, outs, 1)))
            parallel.append(_median_time(
                lambda: cython_backend.run(ops.FORWARD, (xs,), a, outs, nthreads)))
            if progress:
                progress(name, n)
        threshold = _crossover(sizes, serial, parallel)
        results[name] = {"threshold": threshold, "sizes": list(sizes),
                         "serial_s": serial, "parallel_s": parallel}
    return {"threads": nthreads, "dtypes": results}


def check_target(path: str | os.PathLike[str]) -> Path:
    """The file ``run`` would write, checked before any measuring.

    Creates the folder if needed and proves it writable; the file itself
    may be missing, else it must be a writable regular file.

    Parameters
    ----------
    path : str or os.PathLike
        The tune file to write.

    Returns
    -------
    pathlib.Path
        ``path``, symbolic links resolved (the link stays, its target is
        replaced).

    Raises
    ------
    OSError
        ``cannot write the tune file PATH: WHY``.
    """
    target = Path(os.path.realpath(path))

    def fail(why: object) -> OSError:
        return OSError(f"cannot write the tune file {str(path)!r}: {why}")

    if target.is_dir():
        raise fail("it is a folder")
    if target.exists():
        if not target.is_file():
            raise fail("it is not a regular file")
        if not os.access(target, os.W_OK):
            raise fail("it is read-only")
    existing = next(p for p in target.parents if p.exists())
    if not existing.is_dir():
        raise fail(f"{str(existing)!r} is not a folder")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        probe = _temporary_sibling(target)
        os.close(_create(probe))
        os.unlink(probe)
    except OSError as exc:
        raise fail(exc.strerror or exc) from None
    return target


def _temporary_sibling(target: Path) -> Path:
    return target.with_name(f".{target.name}.{secrets.token_hex(6)}.tmp")


def _create(path: Path) -> int:
    # 0o666 less the umask, as ``open(path, "w")`` would create it
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)


def write_atomic(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file in the same folder
    and ``os.replace``: readers see the old content or the new, never a part.

    Parameters
    ----------
    path : str or os.PathLike
        The file to replace (its folder must exist).
    text : str
        Written as UTF-8.
    """
    target = Path(path)
    temporary = _temporary_sibling(target)
    fd = _create(temporary)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())  # the content is on disk before the name points at it
        os.replace(temporary, target)
    except BaseException:
        try:
            os.unlink(temporary)
        except OSError:
            pass
        raise


def run(path: str | os.PathLike[str] | None = None, progress: Progress | None = None,
        sizes: Sequence[int] = SIZES) -> TuneFile:
    """Measure and save; returns what was written.

    Parameters
    ----------
    path : str or os.PathLike, optional
        Where to write (default ``config.tune_file()``); checked before
        measuring (``check_target``).
    progress : callable, optional
        Called as ``progress(dtype_name, size)`` after each size.
    sizes : sequence of int
        Array sizes to time.

    Returns
    -------
    TuneFile
        The file's content, and ``"path"``.
    """
    from . import info, registry

    target = check_target(config.tune_file() if path is None else path)
    measured = measure(sizes=sizes, progress=progress)
    data: TuneFile = {
        "parallel_min_elements": {k: v["threshold"] for k, v in measured["dtypes"].items()},
        "threads": measured["threads"],
        "measurements": measured["dtypes"],
        "cpu": info.cpu_model(),
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
    }
    write_atomic(target, json.dumps(data, indent=2))
    config.reload()
    registry.forget_decisions()
    data["path"] = str(config.tune_file() if path is None else path)
    return data
