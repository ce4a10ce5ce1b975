"""``fastleaky tune``: measure where the parallel loops start to pay off here.

For each dtype, times the Cython loop on one thread and on all threads at
sizes from 1,024 to 4M elements (doubling), interleaved, median of repeats,
and takes as threshold the smallest size from which the parallel loop wins
(median over three neighbouring sizes, robust to one noisy point).  The result goes to ``config.tune_file()``
(``FASTLEAKY_TUNE_FILE`` overrides) and is used by the dispatcher from then
on; ``fastleaky info`` shows the thresholds in force.
"""

from __future__ import annotations

import datetime
import json
import statistics
from pathlib import Path

import numpy as np

from . import config

SIZES = tuple(1024 << k for k in range(13))  # 1,024 .. 4,194,304


def _median_time(fn, min_seconds=0.002, repeats=7) -> float:
    """Median seconds per call, each repeat looping ``fn`` for at least
    ``min_seconds`` (the bench's calibration, warm-up included)."""
    from .bench import runner

    loops = runner.calibrate(fn, None, min_seconds)
    return statistics.median(runner.time_loops(fn, loops) / loops for _ in range(repeats))


def _crossover(sizes, serial, parallel) -> int:
    """Smallest size where the parallel loop wins, there and over a window of three sizes
    (median speed-up > 1), so that one noisy point neither starts nor stops it."""
    speedup = [s / p for s, p in zip(serial, parallel)]
    for i, n in enumerate(sizes):
        if speedup[i] > 1.0 and statistics.median(speedup[i:i + 3]) > 1.0:
            return n
    return max(sizes) * 2  # parallel never won: effectively off


def measure(dtypes=config.DEFAULT_PARALLEL_MIN_ELEMENTS, sizes=SIZES, progress=None) -> dict:
    """{dtype: {"threshold": n, "serial_s": [...], "parallel_s": [...]}}."""
    from . import ops, registry

    ok, reason = registry.availability("cython")
    if not ok:
        raise RuntimeError(f"cannot tune: {reason}")
    cython_backend = registry.load("cython")
    nthreads = cython_backend.max_threads()
    results = {}
    for name in dtypes:
        dtype = np.dtype(name)
        if dtype.type not in cython_backend.native_dtypes():
            continue
        x = np.random.default_rng(0).standard_normal(max(sizes)).astype(dtype)
        out = np.empty_like(x)
        a = dtype.type(0.01)
        serial, parallel = [], []
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


def run(path=None, progress=None, sizes=SIZES) -> dict:
    """Measure and save; returns what was written."""
    from . import info, registry

    measured = measure(sizes=sizes, progress=progress)
    data = {
        "parallel_min_elements": {k: v["threshold"] for k, v in measured["dtypes"].items()},
        "threads": measured["threads"],
        "measurements": measured["dtypes"],
        "cpu": info.cpu_model(),
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
    }
    target = config.tune_file() if path is None else Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(data, indent=2))
    config.reload()
    registry.forget_decisions()
    data["path"] = str(target)
    return data
