"""Every tunable of the dispatcher, and the environment variables, in one place.

The default thresholds are the smallest sizes at which the parallel loop
did not lose to the serial one in every one of several ``fastleaky tune``
runs on the machine they were measured on (figures in
``docs/design-measurements.md``): a noisy second core must not make small
calls slower.  ``fastleaky tune`` measures the machine it runs on and
writes a JSON file that overrides them (``FASTLEAKY_TUNE_FILE``, else a
per-user cache file).  A tune file that cannot be read or does not validate
is ignored with one ``TuneFileWarning`` naming the file and the problem: a
call never fails because of it.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

if TYPE_CHECKING:
    from types import FrameType
    from typing import TypedDict

    import numpy as np

    class ThresholdsInForce(TypedDict):
        """What ``thresholds_in_force`` reports."""

        source: str
        ignored: str | None
        parallel_min_elements: dict[str, int]

ENV_BACKEND = "FASTLEAKY_BACKEND"
ENV_TUNE_FILE = "FASTLEAKY_TUNE_FILE"
ENV_THREADS = "FASTLEAKY_NUM_THREADS"
# Which runtime runs the Cython loops' parallel calls: "tbb" (work stealing;
# "auto", the default, where the build has it) or "openmp" (one chunk per
# thread).  TBB never waits for a descheduled helper, so co-tenant load costs
# a call its speed-up at most; OpenMP's team measured faster next to
# PyTorch's own OpenMP pool on a quiet machine, but collapses under load
# (docs/design-measurements.md).
ENV_THREADING = "FASTLEAKY_THREADING"
THREADING_CHOICES = ("auto", "tbb", "openmp")

# Elements from which the multi-threaded loop is used (per dtype).
DEFAULT_PARALLEL_MIN_ELEMENTS = {
    "float16": 65_536,
    "float32": 262_144,
    "float64": 262_144,
}

# The pieces TBB's scheduler hands to threads, in bytes of the result: small
# enough that the calling thread can take over most of the work of a helper
# the OS has not scheduled, large enough that handing them out stays a small
# share of the time (see docs/design-measurements.md).
POOL_CHUNK_BYTES = 65_536

# Results of at least this many bytes are written by the Cython loops with
# streaming (non-temporal) stores, which skip reading each output line
# first: a gain only where the output cannot stay in the caches anyway.
# The crossover measured on x86-64 is in docs/design-measurements.md; 0
# turns streaming off.
STREAM_MIN_BYTES = 32 * 2**20

# In a process that has imported PyTorch, NumPy calls with results of at
# least this many bytes run their parallel part on torch's own OpenMP team
# (as tensor calls always do): next to torch's threads, which keep spinning
# after each op, a second pool's helper may not get a core, and for a call
# of several milliseconds a team thread that the OS runs late costs a
# small share of it.  Smaller calls keep the work-stealing pool, which a
# busy machine cannot stall (docs/design-measurements.md); 0: never.
TEAM_MIN_BYTES = 64 * 2**20
# After a team call whose caller waited at the closing barrier for a
# quarter of the call or more (a team thread the OS did not run: another
# process has the core), NumPy calls keep to the work-stealing pool for
# this many seconds, then try the team again.
TEAM_BACKOFF_SECONDS = 0.5

# CUDA launch shape (the ``cuda`` backend).  256 threads a block, each
# handling 4 elements a tile; the grid covers the array up to
# CUDA_BLOCKS_PER_SM blocks per SM, beyond which it strides.  Under the
# simulator every CUDA thread is a Python thread: few and small blocks.
CUDA_THREADS_PER_BLOCK = 256
CUDA_BLOCKS_PER_SM = 16
CUDA_SIM_THREADS_PER_BLOCK = 8
CUDA_SIM_MAX_BLOCKS = 2

_tuned: dict[str, int] | None = None
_tune_problem: str | None = None  # why the tune file in force was ignored
_load_lock = threading.Lock()

# A threshold is a size: 0 (threads always) up to the largest array size.
MAX_THRESHOLD = sys.maxsize


class TuneFileWarning(UserWarning):
    """The tune file could not be read or did not validate: the built-in
    thresholds are used instead."""


def tune_file() -> Path:
    """Where ``fastleaky tune`` writes and the dispatcher reads thresholds."""
    env = os.environ.get(ENV_TUNE_FILE)
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "fastleaky" / "tune.json"


def validate_tune_data(data: object) -> dict[str, int]:
    """The thresholds of a parsed tune file, ``{dtype name: int}``.

    Parameters
    ----------
    data : object
        The file's JSON: an object whose ``"parallel_min_elements"`` maps
        some of the dtype names in ``DEFAULT_PARALLEL_MIN_ELEMENTS`` to
        whole numbers from 0 to ``MAX_THRESHOLD`` (other keys are ignored).

    Returns
    -------
    dict of str to int

    Raises
    ------
    ValueError
        Saying what is wrong, for anything else.
    """
    if not isinstance(data, dict):
        raise ValueError(f"expected a JSON object, got {type(data).__name__}")
    if "parallel_min_elements" not in data:
        raise ValueError("no 'parallel_min_elements' entry")
    table = data["parallel_min_elements"]
    if not isinstance(table, dict):
        raise ValueError("'parallel_min_elements' must map dtype names to sizes, "
                         f"got {type(table).__name__}")
    out: dict[str, int] = {}
    for name, value in table.items():
        where = f"parallel_min_elements[{name!r}]"
        if name not in DEFAULT_PARALLEL_MIN_ELEMENTS:
            raise ValueError(f"{where}: unknown dtype (expected one of "
                             f"{', '.join(DEFAULT_PARALLEL_MIN_ELEMENTS)})")
        # bool is an int in Python; JSON's true/false is not a size
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"{where} must be a whole number, got {value!r}")
        if not 0 <= value <= MAX_THRESHOLD:
            raise ValueError(f"{where} must be between 0 and {MAX_THRESHOLD}, got {value}")
        out[name] = value
    return out


def _reject_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not JSON")


def _read_tune_file(path: Path) -> tuple[dict[str, int], str | None]:
    """(thresholds, None), or ({}, the problem) for a file that cannot be
    read or does not validate; ({}, None) where there is no file."""
    try:
        text = path.read_text(encoding="utf-8")
    except (FileNotFoundError, NotADirectoryError):  # no file: nothing to say
        return {}, None
    except (OSError, UnicodeDecodeError) as exc:
        return {}, f"cannot be read ({getattr(exc, 'strerror', None) or exc})"
    try:
        # Python's json accepts NaN and Infinity, which JSON does not
        data = json.loads(text, parse_constant=_reject_constant)
        return validate_tune_data(data), None
    except ValueError as exc:  # json.JSONDecodeError included
        return {}, f"is not a valid tune file ({exc})"


def _load_tuned() -> dict[str, int]:
    global _tuned, _tune_problem
    if _tuned is not None:
        return _tuned
    with _load_lock:
        if _tuned is not None:  # another thread loaded it meanwhile (and warned)
            return _tuned
        path = tune_file()
        tuned, problem = _read_tune_file(path)
        _tuned, _tune_problem = tuned, problem
    if problem is not None:
        warnings.warn(f"ignoring the tune file {str(path)!r}: it {problem}; using the "
                      "built-in thresholds (`fastleaky tune` writes a new one)",
                      TuneFileWarning, stacklevel=_first_frame_outside_package())
    return tuned


def _first_frame_outside_package() -> int:
    """``stacklevel`` that points a warning at the caller of fastleaky
    (Python 3.12's ``skip_file_prefixes``, by hand)."""
    package = os.path.dirname(os.path.abspath(__file__)) + os.sep
    frame: FrameType | None = sys._getframe(2)  # the caller of the function that warns
    level = 2
    while frame is not None and frame.f_code.co_filename.startswith(package):
        frame, level = frame.f_back, level + 1
    return level


def parallel_min_elements(dtype_name: str) -> int:
    """Size from which a parallel loop beats the serial one for this dtype."""
    tuned = _load_tuned()
    if dtype_name in tuned:
        return tuned[dtype_name]
    return DEFAULT_PARALLEL_MIN_ELEMENTS.get(dtype_name, DEFAULT_PARALLEL_MIN_ELEMENTS["float64"])


_by_dtype: dict[np.dtype[Any], int] = {}


def parallel_min_for(dtype: np.dtype[Any]) -> int:
    """``parallel_min_elements`` keyed by a NumPy dtype, cached: ``dtype.name``
    costs a few microseconds, more than a small array's whole loop."""
    try:
        return _by_dtype[dtype]
    except KeyError:
        n = _by_dtype[dtype] = parallel_min_elements(dtype.name)
        return n


def parallel_min_cache() -> dict[np.dtype[Any], int]:
    """The dict behind ``parallel_min_for`` (dtype -> size), for readers on
    the per-call path; ``reload`` empties it in place."""
    return _by_dtype


def thresholds_in_force() -> ThresholdsInForce:
    """The thresholds the dispatcher uses now, where they come from, and
    (``"ignored"``) why a tune file was ignored, or None."""
    tuned = _load_tuned()
    problem = _tune_problem
    return {
        "source": str(tune_file()) if tuned else "built-in defaults",
        "ignored": None if problem is None else f"{tune_file()} ignored: it {problem}",
        "parallel_min_elements": {
            name: parallel_min_elements(name) for name in DEFAULT_PARALLEL_MIN_ELEMENTS
        },
    }


def reload() -> None:
    """Forget cached tune data (after ``fastleaky tune`` wrote a new file)."""
    global _tuned, _tune_problem
    with _load_lock:
        _tuned = None
        _tune_problem = None
        _by_dtype.clear()
