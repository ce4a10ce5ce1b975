"""What ``fastleaky info`` reports: versions, backends, threading, hardware."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import platform
import sys
import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypedDict

from . import config

if TYPE_CHECKING:
    from .config import ThresholdsInForce


class ThreadingInfo(TypedDict, total=False):
    """Threads each runtime would use here (``threading_info``)."""

    usable_cpus: int | None
    fastleaky_thread_limit: int | None
    tbb: str
    numba_threading_layer: str
    numba_num_threads: int
    cython_openmp_threads: int
    numexpr_threads: int
    torch_threads: int


class NumbaCacheInfo(TypedDict, total=False):
    """Folders of the Numba disk cache and the kernels compiled in memory,
    or ``error`` when Numba could not say."""

    cached: list[str]
    uncached: list[str]
    error: str


class _GpuKeys(TypedDict):
    found: bool


class GpuInfo(_GpuKeys, total=False):
    """The GPU Numba sees (``found``) or ``reason`` why none."""

    reason: str
    name: str
    count: int
    compute_capability: str
    driver: str
    memory_bytes: int


class BackendLine(TypedDict):
    """One backend as ``fastleaky info`` lists it."""

    name: str
    available: bool
    reason: str


class Info(TypedDict):
    """Everything ``fastleaky info`` reports (``collect``)."""

    versions: dict[str, str | None]
    platform: str
    cpu: str
    logical_cpus: int | None
    backends: list[BackendLine]
    thresholds: ThresholdsInForce
    executable: str
    memory_bytes: int | None
    threading: ThreadingInfo
    numba_cache: NumbaCacheInfo | None
    gpu: GpuInfo

_PACKAGES = ("fastleaky", "numpy", "numba", "llvmlite", "numba-cuda", "cython", "numexpr",
             "torch", "cupy", "dask", "xarray")


def versions() -> dict[str, str | None]:
    """Python's version and each related package's, None where not installed."""
    out: dict[str, str | None] = {"python": platform.python_version()}
    for name in _PACKAGES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = None
    return out


def cpu_model() -> str:
    """The CPU's model name, else what ``platform`` knows of it."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def memory_bytes() -> int | None:
    """Total physical memory, or None where it cannot be read cheaply."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def available_memory() -> int | None:
    """Memory available to new allocations (Linux ``MemAvailable``), or None."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def threading_info() -> ThreadingInfo:
    """Threads each runtime would use here, and Numba's threading layer.

    Imports numba (never at ``import fastleaky``, only here) and starts its
    thread pool so that the layer in use can be named without compiling.
    """
    from . import registry, threads

    usable: int | None
    try:
        usable = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        usable = os.cpu_count()
    out: ThreadingInfo = {"usable_cpus": usable, "fastleaky_thread_limit": threads.limit()}
    if importlib.util.find_spec("numba") is not None:
        try:
            from ._backends._numba_tbb import preload

            out["tbb"] = preload()  # as the numba backends do before Numba starts threads
            from numba.np.ufunc import parallel

            # numba.threading_layer and numba.get_num_threads are these
            # functions; Numba does not annotate them.
            launch: Callable[[], None] = parallel._launch_threads
            layer: Callable[[], str] = parallel.threading_layer
            num_threads: Callable[[], int] = parallel.get_num_threads
            launch()
            out["numba_threading_layer"] = layer()
            out["numba_num_threads"] = num_threads()
        except Exception as exc:  # a broken threading layer is worth reporting, not dying of
            out["numba_threading_layer"] = f"unavailable ({type(exc).__name__}: {exc})"
    if registry.availability("cython")[0]:
        loop = getattr(registry.load("cython"), "_loop", None)
        if loop is not None and hasattr(loop, "max_threads"):
            out["cython_openmp_threads"] = loop.max_threads()
    if "numexpr" in sys.modules or importlib.util.find_spec("numexpr") is not None:
        import numexpr

        out["numexpr_threads"] = numexpr.get_num_threads()
    if "torch" in sys.modules:  # importing torch costs most of a second: only if loaded
        out["torch_threads"] = sys.modules["torch"].get_num_threads()
    return out


def numba_cache_info() -> NumbaCacheInfo | None:
    """Where the Numba kernels (backends and ``fastleaky.jit``) are cached on
    disk, or which are compiled in memory because no cache folder is
    writable; None without Numba.  Builds the dispatchers, compiles nothing."""
    if importlib.util.find_spec("numba") is None:
        return None
    from ._backends import numba_loops

    try:
        numba_loops.kernels()
        from . import jit  # noqa: F401  (its functions are decided at import)
    except Exception as exc:  # a broken Numba install is worth reporting, not dying of
        return {"error": f"{type(exc).__name__}: {exc}"}
    state = numba_loops.disk_cache_state()
    return {"cached": state["cached"], "uncached": state["uncached"]}


def _cache_line(state: NumbaCacheInfo) -> str:
    if "error" in state:
        return f"unknown ({state['error']})"
    if not state["uncached"]:
        return ", ".join(state["cached"])
    missing = ("no writable cache folder (NUMBA_CACHE_DIR, the package's __pycache__, "
               "the user cache folder)")
    if not state["cached"]:
        return f"{missing}: kernels compiled in memory in each process"
    return (f"{', '.join(state['cached'])}; {len(state['uncached'])} kernels "
            f"({', '.join(state['uncached'])}) compiled in memory: {missing}")


def gpu_info() -> GpuInfo:
    """The CUDA GPU Numba sees: name, compute capability, driver; or why none."""
    if importlib.util.find_spec("numba") is None:
        return {"found": False, "reason": "numba is not installed"}
    try:
        if importlib.util.find_spec("numba.cuda") is None:
            return {"found": False, "reason": "numba-cuda is not installed"}
        from numba import cuda
        from numba.cuda.core import config as cuda_config  # the module cuda.config is

        if cuda_config.ENABLE_CUDASIM:
            return {"found": False, "reason": "CUDA simulator (NUMBA_ENABLE_CUDASIM=1)"}
        # numba-cuda does not annotate these: what they return, named
        is_available: Callable[[], bool] = cuda.is_available
        if not is_available():
            return {"found": False, "reason": "no CUDA driver or GPU found"}
        from numba.cuda.cudadrv.driver import driver

        current_device: Callable[[], Any] = cuda.get_current_device
        current_context: Callable[[], Any] = cuda.current_context
        driver_version: Callable[[], tuple[int, ...]] = driver.get_version
        dev = current_device()
        name = dev.name.decode() if isinstance(dev.name, bytes) else str(dev.name)
        major, minor = dev.compute_capability
        return {
            "found": True,
            "name": name,
            "count": len(cuda.gpus),
            "compute_capability": f"{major}.{minor}",
            "driver": ".".join(map(str, driver_version())),
            "memory_bytes": current_context().get_memory_info()[1],
        }
    except Exception as exc:  # any CUDA failure means "no usable GPU" here
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        return {"found": False, "reason": f"{type(exc).__name__}: {first}"}


def collect() -> Info:
    """What ``fastleaky info`` reports, as data."""
    import fastleaky

    with warnings.catch_warnings():
        # a bad tune file is reported below, not warned about as well
        warnings.simplefilter("ignore", config.TuneFileWarning)
        thresholds = config.thresholds_in_force()
    return {
        "versions": versions(),
        "platform": platform.platform(),
        "cpu": cpu_model(),
        "logical_cpus": os.cpu_count(),
        "backends": [
            {"name": b.name, "available": b.available, "reason": b.reason}
            for b in fastleaky.backends()
        ],
        "thresholds": thresholds,
        "executable": sys.executable,
        "memory_bytes": memory_bytes(),
        "threading": threading_info(),
        "numba_cache": numba_cache_info(),
        "gpu": gpu_info(),
    }


def render_text() -> str:
    """``fastleaky info``'s text."""
    data = collect()
    mem = data["memory_bytes"]
    mem_text = f", {mem / 2**30:.1f} GiB memory" if mem else ""
    lines = [f"fastleaky {data['versions']['fastleaky']} on {data['platform']}",
             f"CPU: {data['cpu']} ({data['logical_cpus']} logical CPUs{mem_text})", "",
             "versions:"]
    lines += [f"  {k:<12} {v or '-'}" for k, v in data["versions"].items()]
    lines += ["", "backends:"]
    for b in data["backends"]:
        lines.append(f"  {b['name']:<15} {'yes' if b['available'] else 'no ':<4} {b['reason']}")
    t = data["thresholds"]
    lines += ["", f"dispatcher thresholds ({t['source']}):"]
    if t["ignored"]:
        lines.append(f"  {t['ignored']}")
    lines += [f"  parallel from {n:,} elements ({d})"
              for d, n in t["parallel_min_elements"].items()]
    lines += ["", "threads:"]
    lines += [f"  {k:<24} {'-' if v is None else v}" for k, v in data["threading"].items()]
    if data["numba_cache"] is not None:
        lines += ["", f"numba disk cache: {_cache_line(data['numba_cache'])}"]
    gpu = data["gpu"]
    if gpu["found"]:
        gpu_line = (f"{gpu['name']} (compute {gpu['compute_capability']}, "
                    f"driver {gpu['driver']}, {gpu['count']} device(s))")
    else:
        gpu_line = f"none ({gpu['reason']})"
    lines += ["", f"GPU: {gpu_line}"]
    return "\n".join(lines)
