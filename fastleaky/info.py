"""What ``fastleaky info`` reports: versions, backends, threading, hardware."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import platform
import sys
import warnings

from . import config

_PACKAGES = ("fastleaky", "numpy", "numba", "llvmlite", "numba-cuda", "cython", "numexpr",
             "torch", "cupy", "dask", "xarray")


def versions() -> dict:
    out = {"python": platform.python_version()}
    for name in _PACKAGES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = None
    return out


def cpu_model() -> str:
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


def threading_info() -> dict:
    """Threads each runtime would use here, and Numba's threading layer.

    Imports numba (never at ``import fastleaky``, only here) and starts its
    thread pool so that the layer in use can be named without compiling.
    """
    from . import registry, threads

    try:
        usable = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        usable = os.cpu_count()
    out: dict = {"usable_cpus": usable, "fastleaky_thread_limit": threads.limit()}
    if importlib.util.find_spec("numba") is not None:
        try:
            from ._backends._numba_tbb import preload

            out["tbb"] = preload()  # as the numba backends do before Numba starts threads
            import numba
            from numba.np.ufunc import parallel

            parallel._launch_threads()
            out["numba_threading_layer"] = numba.threading_layer()
            out["numba_num_threads"] = numba.get_num_threads()
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


def numba_cache_info() -> dict | None:
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
    return numba_loops.disk_cache_state()


def _cache_line(state: dict) -> str:
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


def gpu_info() -> dict:
    """The CUDA GPU Numba sees: name, compute capability, driver; or why none."""
    if importlib.util.find_spec("numba") is None:
        return {"found": False, "reason": "numba is not installed"}
    try:
        if importlib.util.find_spec("numba.cuda") is None:
            return {"found": False, "reason": "numba-cuda is not installed"}
        from numba import cuda

        if cuda.config.ENABLE_CUDASIM:
            return {"found": False, "reason": "CUDA simulator (NUMBA_ENABLE_CUDASIM=1)"}
        if not cuda.is_available():
            return {"found": False, "reason": "no CUDA driver or GPU found"}
        from numba.cuda.cudadrv.driver import driver

        dev = cuda.get_current_device()
        name = dev.name.decode() if isinstance(dev.name, bytes) else str(dev.name)
        major, minor = dev.compute_capability
        return {
            "found": True,
            "name": name,
            "count": len(cuda.gpus),
            "compute_capability": f"{major}.{minor}",
            "driver": ".".join(map(str, driver.get_version())),
            "memory_bytes": cuda.current_context().get_memory_info()[1],
        }
    except Exception as exc:  # any CUDA failure means "no usable GPU" here
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        return {"found": False, "reason": f"{type(exc).__name__}: {first}"}


def collect() -> dict:
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
