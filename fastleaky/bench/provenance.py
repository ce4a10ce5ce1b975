"""Where and how a report was measured: machine, versions, threads, GPU, command, date."""

from __future__ import annotations

import datetime
import importlib
import os
import platform
import shlex
import sys
from pathlib import Path
from typing import Literal

from .. import info
from .schema import Provenance

_RuntimeThreads = Literal["cython_openmp_threads", "torch_threads", "numexpr_threads"]
_RUNTIME_THREADS: tuple[tuple[_RuntimeThreads, str], ...] = (
    ("cython_openmp_threads", "Cython OpenMP"), ("torch_threads", "PyTorch"),
    ("numexpr_threads", "numexpr"))


def _cython_version() -> str | None:
    """Cython's version at run time, else the one that generated the extension."""
    version = info.versions().get("cython")
    if version:
        return version
    try:
        # a compiled module without type information: imported by name, only
        # its location is read
        loop = importlib.import_module("fastleaky._backends._cython_loop")
        if loop.__file__ is None:
            return None
        source = Path(loop.__file__).with_name("_cython_loop.c")
        with source.open() as f:
            first = f.readline()
        if "Cython" in first:
            return first.split("Cython", 1)[1].strip(" */\n") + " (built with)"
    except (ImportError, OSError):
        pass
    return None


def load_average() -> list[float] | None:
    """The 1, 5 and 15 minute load averages, where the system has them."""
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except (AttributeError, OSError):
        return None


def command_line(argv: list[str] | None = None) -> str:
    """The command as typed (``fastleaky ...`` or ``python -m fastleaky ...``)."""
    argv = list(sys.argv if argv is None else argv)
    if argv:
        argv[0] = Path(argv[0]).name
        if argv[0] == "__main__.py":
            argv[0] = "python -m fastleaky"
    return shlex.join(argv)


def collect(*, gpu: bool = False, argv: list[str] | None = None) -> Provenance:
    """Provenance for a report; ``gpu`` adds the GPU's name and driver."""
    versions = info.versions()
    versions["cython"] = _cython_version()
    data: Provenance = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": command_line(argv),
        "cpu": info.cpu_model(),
        "logical_cpus": os.cpu_count(),
        "memory_bytes": info.memory_bytes(),
        "os": platform.platform(),
        "python": platform.python_version(),
        "versions": {k: v for k, v in versions.items() if v and k != "python"},
        "threading": info.threading_info(),
        "load_average": load_average(),
    }
    if gpu:
        data["gpu"] = info.gpu_info()
    return data


def lines(p: Provenance) -> list[str]:
    """Provenance as Markdown bullet lines."""
    mem = p.get("memory_bytes")
    t = p.get("threading", {})
    out = [
        f"- Machine: {p.get('cpu', '?')}, {p.get('logical_cpus', '?')} logical CPUs"
        + (f", {mem / 2**30:.1f} GiB memory" if mem else "")
        + f"; {p.get('os', '?')}",
        f"- Python {p.get('python', '?')}; "
        + ", ".join(f"{k} {v}" for k, v in p.get("versions", {}).items()),
    ]
    if t:
        parts = []
        if "numba_threading_layer" in t:
            parts.append(f"Numba threading layer {t['numba_threading_layer']}, "
                         f"{t.get('numba_num_threads', '?')} threads")
        for key, label in _RUNTIME_THREADS:
            if key in t:
                parts.append(f"{label} {t[key]} threads")
        if t.get("fastleaky_thread_limit"):
            parts.append(f"fastleaky thread limit {t['fastleaky_thread_limit']}")
        out.append("- Threads: " + "; ".join(parts))
    gpu = p.get("gpu")
    if gpu:
        if gpu.get("found"):
            out.append(f"- GPU: {gpu['name']} (compute {gpu['compute_capability']}), "
                       f"driver {gpu['driver']}")
        else:
            out.append(f"- GPU: none ({gpu.get('reason', '')})")
    load, load_end = p.get("load_average"), p.get("load_average_end")
    if load:
        out.append(f"- Load average (1, 5, 15 min) when measuring started: "
                   f"{', '.join(map(str, load))}"
                   + (f"; when it ended: {', '.join(map(str, load_end))}" if load_end else "")
                   + f" (on {p.get('logical_cpus', '?')} logical CPUs: above that count, "
                   "other work shared the machine)")
    if p.get("note"):
        out.append(f"- Note: {p['note']}")
    out.append(f"- Command: `{p.get('command', '?')}`")
    out.append(f"- Date: {p.get('date', '?')}")
    return out
