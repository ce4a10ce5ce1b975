"""What the rest of the machine did while a measurement ran.

A timing on a shared machine is only as good as the machine was quiet: on
two cores, one other busy process turns a two-thread loop's 17 µs into
milliseconds whenever the scheduler hands one of its threads' cores to the
other process, while single-thread code barely notices.  So the sweep reads
two counters around each measured stretch:

* the CPU time the whole machine spent busy, steal time included (what a
  hypervisor gave to other virtual machines): ``psutil.cpu_times()``, or
  ``/proc/stat`` where psutil is not installed;
* the CPU time of this process, all its threads (``time.process_time``).

Their difference over the wall time is the number of CPUs other work kept
busy meanwhile (``other_cpus``).  The machine-wide counter advances in
scheduler ticks (10 ms on Linux), so a stretch shorter than a few ticks
says little; :func:`busy` therefore asks for both a share of a CPU and an
amount of CPU time above what the tick rounding can produce.
"""

from __future__ import annotations

import importlib
import os
import time
from dataclasses import dataclass

from .schema import Window

# Other work that averaged this many CPUs over a stretch makes it "busy".
BUSY_CPUS = 0.25
# ... and amounted to at least this much CPU time (a few scheduler ticks:
# the machine-wide counter is exact only to about one tick per CPU).
BUSY_MIN_SECONDS = 0.04
# A stretch shorter than this is too short to call quiet: a few ticks only.
JUDGE_MIN_SECONDS = 0.1


@dataclass(frozen=True)
class Counters:
    """One reading: wall clock, machine busy and steal CPU seconds, own CPU seconds."""

    wall: float
    busy: float
    steal: float
    own: float


def _machine_seconds() -> tuple[float, float] | None:
    """(busy, steal) CPU seconds of the whole machine since boot, or None."""
    try:
        # optional, and without type information: imported by name, its
        # fields read with getattr (they vary by platform)
        psutil = importlib.import_module("psutil")
    except ImportError:
        return _proc_stat_seconds()
    t: object = psutil.cpu_times()
    steal = getattr(t, "steal", 0.0)
    busy = sum(getattr(t, name, 0.0) for name in ("user", "nice", "system", "irq", "softirq"))
    return busy + steal, steal


def _proc_stat_seconds() -> tuple[float, float] | None:
    try:
        with open("/proc/stat") as f:
            fields = f.readline().split()
        ticks = os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, AttributeError):
        return None
    if not fields or fields[0] != "cpu":
        return None
    # user nice system idle iowait irq softirq steal (guest is inside user)
    values = [int(v) for v in fields[1:9]]
    values += [0] * (8 - len(values))  # old kernels: no steal column
    user, nice, system, _idle, _iowait, irq, softirq, steal = values
    return (user + nice + system + irq + softirq + steal) / ticks, steal / ticks


def read() -> Counters | None:
    """The counters now, or None where the machine's CPU time cannot be read."""
    machine = _machine_seconds()
    if machine is None:
        return None
    return Counters(time.perf_counter(), machine[0], machine[1], time.process_time())


def between(start: Counters | None, end: Counters | None) -> Window | None:
    """What other work did from ``start`` to ``end``.

    Returns
    -------
    Window or None
        ``seconds`` (wall), ``other_cpus`` (CPUs other work kept busy, on
        average, steal included), ``other_cpu_s`` (the same as CPU seconds)
        and ``steal_cpus``; None when either reading is missing.
    """
    if start is None or end is None:
        return None
    wall = max(end.wall - start.wall, 1e-9)
    other = max(0.0, (end.busy - start.busy) - (end.own - start.own))
    steal = max(0.0, end.steal - start.steal)
    return {"seconds": round(wall, 4), "other_cpus": round(other / wall, 3),
            "other_cpu_s": round(other, 4), "steal_cpus": round(steal / wall, 3)}


def busy(window: Window | None) -> bool:
    """Whether other work used enough of the machine during ``window`` to matter."""
    if not window:
        return False
    return (window["other_cpus"] >= BUSY_CPUS
            and window["other_cpu_s"] >= BUSY_MIN_SECONDS)


def judged(window: Window | None) -> bool:
    """Whether ``window`` is long enough for "not busy" to mean "quiet"."""
    if not window:
        return False
    return busy(window) or window["seconds"] >= JUDGE_MIN_SECONDS


def source() -> str:
    """Where the machine's CPU time is read from, for the report."""
    try:
        importlib.import_module("psutil")
    except ImportError:
        return "/proc/stat" if _proc_stat_seconds() is not None else "unavailable"
    return "psutil"
