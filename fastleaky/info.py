"""What ``fastleaky info`` reports: versions, backends, threading, hardware."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import sys

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


def collect() -> dict:
    import fastleaky

    return {
        "versions": versions(),
        "platform": platform.platform(),
        "cpu": cpu_model(),
        "logical_cpus": os.cpu_count(),
        "backends": [
            {"name": b.name, "available": b.available, "reason": b.reason}
            for b in fastleaky.backends()
        ],
        "thresholds": config.thresholds_in_force(),
        "executable": sys.executable,
    }


def render_text() -> str:
    data = collect()
    lines = [f"fastleaky {data['versions']['fastleaky']} on {data['platform']}",
             f"CPU: {data['cpu']} ({data['logical_cpus']} logical CPUs)", "", "versions:"]
    lines += [f"  {k:<12} {v or '-'}" for k, v in data["versions"].items()]
    lines += ["", "backends:"]
    for b in data["backends"]:
        lines.append(f"  {b['name']:<15} {'yes' if b['available'] else 'no ':<4} {b['reason']}")
    t = data["thresholds"]
    lines += ["", f"dispatcher thresholds ({t['source']}):"]
    lines += [f"  parallel from {n:,} elements ({d})"
              for d, n in t["parallel_min_elements"].items()]
    return "\n".join(lines)
