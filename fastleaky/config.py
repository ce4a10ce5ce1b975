"""Every tunable of the dispatcher, and the environment variables, in one place.

The default thresholds are the smallest sizes at which the parallel loop
did not lose to the serial one in every one of several ``fastleaky tune``
runs on the machine they were measured on (figures in
``docs/design-measurements.md``): a noisy second core must not make small
calls slower.  ``fastleaky tune`` measures the machine it runs on and
writes a JSON file that overrides them (``FASTLEAKY_TUNE_FILE``, else a
per-user cache file).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

ENV_BACKEND = "FASTLEAKY_BACKEND"
ENV_TUNE_FILE = "FASTLEAKY_TUNE_FILE"
ENV_THREADS = "FASTLEAKY_NUM_THREADS"

# Elements from which the multi-threaded loop is used (per dtype).
DEFAULT_PARALLEL_MIN_ELEMENTS = {
    "float16": 65_536,
    "float32": 262_144,
    "float64": 262_144,
}

# CUDA launch shape (the ``cuda`` backend).  256 threads a block, each
# handling 4 elements a tile; the grid covers the array up to
# CUDA_BLOCKS_PER_SM blocks per SM, beyond which it strides.  Under the
# simulator every CUDA thread is a Python thread: few and small blocks.
CUDA_THREADS_PER_BLOCK = 256
CUDA_BLOCKS_PER_SM = 16
CUDA_SIM_THREADS_PER_BLOCK = 8
CUDA_SIM_MAX_BLOCKS = 2

_tuned: dict | None = None


def tune_file() -> Path:
    """Where ``fastleaky tune`` writes and the dispatcher reads thresholds."""
    env = os.environ.get(ENV_TUNE_FILE)
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "fastleaky" / "tune.json"


def _load_tuned() -> dict:
    global _tuned
    if _tuned is None:
        path = tune_file()
        try:
            data = json.loads(path.read_text())
            _tuned = dict(data.get("parallel_min_elements", {}))
        except (OSError, ValueError, AttributeError):
            _tuned = {}
    return _tuned


def parallel_min_elements(dtype_name: str) -> int:
    """Size from which a parallel loop beats the serial one for this dtype."""
    tuned = _load_tuned()
    if dtype_name in tuned:
        return int(tuned[dtype_name])
    return DEFAULT_PARALLEL_MIN_ELEMENTS.get(dtype_name, DEFAULT_PARALLEL_MIN_ELEMENTS["float64"])


_by_dtype: dict = {}


def parallel_min_for(dtype) -> int:
    """``parallel_min_elements`` keyed by a NumPy dtype, cached: ``dtype.name``
    costs a few microseconds, more than a small array's whole loop."""
    try:
        return _by_dtype[dtype]
    except KeyError:
        n = _by_dtype[dtype] = parallel_min_elements(dtype.name)
        return n


def parallel_min_cache() -> dict:
    """The dict behind ``parallel_min_for`` (dtype -> size), for readers on
    the per-call path; ``reload`` empties it in place."""
    return _by_dtype


def thresholds_in_force() -> dict:
    """The thresholds the dispatcher uses now, and where they come from."""
    tuned = _load_tuned()
    return {
        "source": str(tune_file()) if tuned else "built-in defaults",
        "parallel_min_elements": {
            name: parallel_min_elements(name) for name in DEFAULT_PARALLEL_MIN_ELEMENTS
        },
    }


def reload() -> None:
    """Forget cached tune data (after ``fastleaky tune`` wrote a new file)."""
    global _tuned
    _tuned = None
    _by_dtype.clear()
