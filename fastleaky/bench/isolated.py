"""``fastleaky bench --isolate``: every implementation in a fresh process of its own.

Why: thread pools of different runtimes fight over the cores.  After a
parallel call, an OpenMP pool's threads keep spinning for a while before
they sleep (libgomp's default), and so do TBB's; in one process that
interleaves torch, the Cython OpenMP loops and Numba's TBB loops every few
milliseconds, each runtime's idle threads take CPU time from the next one's
work, and halves the interleaved figures (``docs/design-measurements.md``).

So here each implementation runs alone in a new process, one process at a
time, over all sizes and dtypes.  A fresh process also gets a fresh memory
layout, which alone moves a measurement by tens of percent; hence several
passes: ``rounds`` go round the
implementations, starting one further along each pass, so drift on the
machine hits all of them alike.  A process does the usual warm-up,
calibration and ``repeats`` timed repeats per cell; the reported time is
the median over every repeat of every round; a cell is disturbed when
other work kept the machine busy while any of its processes measured it.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import cast

import numpy as np

from . import activity
from . import impls as impls_mod
from .impls import Impl
from .runner import Progress, Settings
from .schema import Measured, Result, Skipped, Window

# (implementation, dtype, size)
_Cell = tuple[str, str, int]

_ROUNDS_DEFAULT = 3
_PYTHON = sys.executable
# The worker imports the fastleaky this process runs, not whatever the
# working directory holds (a source checkout without its compiled loops).
_PACKAGE_ROOT = str(Path(__file__).resolve().parents[2])
_WORKER_CODE = ("import sys; sys.path.insert(0, sys.argv[1]); "
                "from fastleaky.bench.isolated import _worker; sys.exit(_worker())")


def run(chosen: list[Impl], settings: Settings, rounds: int = _ROUNDS_DEFAULT,
        progress: Progress | None = None) -> Measured:
    """Measure like ``runner.run``, each implementation in its own processes."""
    samples: dict[_Cell, list[float]] = {}
    windows: dict[_Cell, list[Window]] = {}
    first: dict[_Cell, Result] = {}
    skipped: dict[_Cell, Skipped] = {}
    for r in range(rounds):
        shift = r % len(chosen)
        for impl in chosen[shift:] + chosen[:shift]:
            if progress is not None:
                progress(f"round {r + 1}/{rounds} {impl.name}", False)
            measured = _in_fresh_process(impl.name, settings)
            for rec in measured["results"]:
                key = (rec["impl"], rec["dtype"], rec["size"])
                samples.setdefault(key, []).extend(rec["samples"])
                window = rec.get("machine")
                if window:
                    windows.setdefault(key, []).append(window)
                first.setdefault(key, rec)
                if _badness(rec["check"]) > _badness(first[key]["check"]):  # the worst seen
                    first[key] = {**first[key], "check": rec["check"]}
            for skip in measured["skipped"]:
                skipped.setdefault((skip["impl"], skip["dtype"], skip["size"]), skip)
            if progress is not None:
                progress(f"round {r + 1}/{rounds} {impl.name}", True)
    results: list[Result] = []
    for key, rec in first.items():
        seen = windows.get(key, [])
        worst = max(seen, key=lambda w: w["other_cpus"], default=None)
        results.append({**rec, "seconds": float(np.median(samples[key])),
                        "samples": samples[key], "repeats": len(samples[key]),
                        "machine": worst,
                        "disturbed": any(activity.busy(w) for w in seen)})
    order = {name: i for i, name in enumerate(i.name for i in chosen)}
    results.sort(key=lambda rec: (settings.dtypes.index(rec["dtype"]),
                                  settings.sizes.index(rec["size"]), order[rec["impl"]]))
    done = set(first)
    return {"results": results,
            "skipped": [rec for key, rec in skipped.items() if key not in done]}


def _badness(check: str) -> int:
    """Orders ``impls.check`` verdicts: bit-exact < close (...) < WRONG (...)."""
    return 0 if check == "bit-exact" else 2 if check.startswith("WRONG") else 1


def _in_fresh_process(name: str, settings: Settings) -> Measured:
    request = {"impl": name, "sizes": list(settings.sizes), "dtypes": list(settings.dtypes),
               "alpha": settings.alpha, "repeats": settings.repeats,
               "min_repeat_s": settings.min_repeat_s}
    proc = subprocess.run([_PYTHON, "-c", _WORKER_CODE, _PACKAGE_ROOT],
                          input=json.dumps(request), capture_output=True, text=True,
                          check=False)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
        raise RuntimeError(f"the process measuring {name} failed "
                           f"(exit {proc.returncode}): " + " | ".join(tail))
    # what runner.run returned there, as the worker printed it
    return cast(Measured, json.loads(proc.stdout.strip().splitlines()[-1]))


def _worker() -> int:
    from . import runner

    request = json.loads(sys.stdin.read())
    available = impls_mod.registry()
    if request["impl"] not in available:
        print(f"{request['impl']} cannot run in a fresh process here "
              f"(available there: {', '.join(available)})", file=sys.stderr)
        return 1
    settings = Settings(sizes=tuple(request["sizes"]), dtypes=tuple(request["dtypes"]),
                        alpha=request["alpha"], repeats=request["repeats"],
                        min_repeat_s=request["min_repeat_s"])
    measured = runner.run([available[request["impl"]]], settings)
    print(json.dumps(measured))
    return 0

