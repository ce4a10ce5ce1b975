"""Disturbance detection: what other work did while the sweep measured, and
how the report, the console and the figure say it.  No timing assertions:
the machine counters are replaced by scripted ones where a verdict matters."""

import json
import sys

import numpy as np
import pytest

from fastleaky import cli
from fastleaky.bench import activity, impls, report, runner

pytest.importorskip("matplotlib")

TINY = ["--sizes", "1000,3000", "--dtypes", "float32", "--repeats", "2",
        "--min-repeat-ms", "0", "--impls", "numpy:*,fastleaky:auto"]


def _scripted(monkeypatch, other_cpus: float):
    """activity.read returning counters in which other work uses ``other_cpus``
    CPUs: each reading advances the wall clock by one second."""
    state = {"t": 0.0}

    def read():
        state["t"] += 1.0
        t = state["t"]
        return activity.Counters(wall=t, busy=t * (0.9 + other_cpus), steal=0.0, own=t * 0.9)

    monkeypatch.setattr(activity, "read", read)


def test_between_counts_other_work_and_steal():
    a = activity.Counters(wall=10.0, busy=100.0, steal=1.0, own=5.0)
    b = activity.Counters(wall=12.0, busy=103.0, steal=1.5, own=6.0)
    w = activity.between(a, b)
    assert w == {"seconds": 2.0, "other_cpus": 1.0, "other_cpu_s": 2.0, "steal_cpus": 0.25}
    assert activity.busy(w)
    assert activity.between(None, b) is None and not activity.busy(None)


@pytest.mark.parametrize("other_s, wall, busy", [
    (0.0, 1.0, False),
    (0.2, 1.0, False),   # 0.2 CPUs: below BUSY_CPUS
    (0.3, 1.0, True),
    (0.02, 0.05, False),  # 0.4 CPUs but two ticks: tick rounding can do that
    (0.06, 0.1, True),
])
def test_busy_needs_a_share_of_a_cpu_and_more_than_tick_rounding(other_s, wall, busy):
    window = {"seconds": wall, "other_cpus": other_s / wall, "other_cpu_s": other_s,
              "steal_cpus": 0.0}
    assert activity.busy(window) is busy


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc/stat is Linux's")
def test_proc_stat_and_psutil_agree(monkeypatch):
    psutil = pytest.importorskip("psutil")
    busy_psutil, _ = activity._machine_seconds()
    monkeypatch.setitem(sys.modules, "psutil", None)  # as where psutil is not installed
    busy_proc, _ = activity._machine_seconds()
    assert activity.source() == "/proc/stat"
    assert abs(busy_proc - busy_psutil) < 5.0  # the same counter, read moments apart
    assert psutil is not None and activity.read() is not None


def test_runner_marks_every_cell_of_a_busy_stretch(monkeypatch):
    _scripted(monkeypatch, other_cpus=1.0)
    chosen = [impls.registry()[n] for n in ("numpy:copyto", "numpy:where")]
    settings = runner.Settings(sizes=(1000,), dtypes=("float32",), repeats=2,
                               min_repeat_s=0.0)
    measured = runner.run(chosen, settings)
    assert [r["disturbed"] for r in measured["results"]] == [True, True]
    assert measured["results"][0]["machine"]["other_cpus"] == pytest.approx(1.0)


def test_busy_machine_is_flagged_in_files_and_on_the_console(tmp_path, capsys, monkeypatch):
    _scripted(monkeypatch, other_cpus=1.0)
    folder = tmp_path / "busy"
    assert cli.main(["bench", *TINY, "-o", str(folder)]) == 0
    err = capsys.readouterr().err
    assert "WARNING: the machine was busy" in err and "--isolate" in err
    assert "float32 at 1e3, 3e3" in err
    md = (folder / "report.md").read_text()
    first = md.split("\n## ")[0]
    assert "**Warning: measured on a busy machine.**" in first and "--isolate" in first
    assert f"fastleaky:auto{report.MARK_BUSY}" in md  # the cells themselves, too
    data = json.loads((folder / "results.json").read_text())
    assert all(r["disturbed"] and r["machine"]["other_cpus"] == pytest.approx(1.0)
               for r in data["results"])


def test_quiet_machine_flags_nothing(tmp_path, capsys, monkeypatch):
    _scripted(monkeypatch, other_cpus=0.0)
    folder = tmp_path / "quiet"
    assert cli.main(["bench", *TINY, "-o", str(folder)]) == 0
    err = capsys.readouterr().err
    assert "WARNING" not in err and "machine was quiet" in err
    md = (folder / "report.md").read_text()
    assert "Warning" not in md and report.MARK_BUSY not in md.split("## All")[0].replace(
        f"{report.MARK_BUSY}: measured while", "")


def test_isolated_cells_are_disturbed_when_any_process_was(monkeypatch):
    from fastleaky.bench import isolated

    windows = iter([{"seconds": 1.0, "other_cpus": 0.0, "other_cpu_s": 0.0, "steal_cpus": 0.0},
                    {"seconds": 1.0, "other_cpus": 1.2, "other_cpu_s": 1.2, "steal_cpus": 0.0}])

    def fake_process(name, settings):
        rec = {"impl": name, "family": "peer", "device": "cpu", "dtype": "float32",
               "size": 1000, "nbytes": 4000, "seconds": 1e-6, "samples": [1e-6],
               "repeats": 1, "loops": 1, "check": "bit-exact", "machine": next(windows)}
        return {"results": [rec], "skipped": []}

    monkeypatch.setattr(isolated, "_in_fresh_process", fake_process)
    settings = runner.Settings(sizes=(1000,), dtypes=("float32",))
    out = isolated.run([impls.registry()["numpy:copyto"]], settings, rounds=2)
    assert out["results"][0]["disturbed"] is True
    assert out["results"][0]["machine"]["other_cpus"] == 1.2


def _record(impl, family, seconds, samples=None, **extra):
    return {"impl": impl, "family": family, "device": "cpu", "dtype": "float32",
            "size": 1000, "nbytes": 4000, "seconds": seconds,
            "samples": samples or [seconds], **extra}


def test_best_copy_is_the_fastest_copy_of_the_cell_with_or_without_torch():
    rows = [_record("numpy:copyto", "limit", 2e-6), _record("torch:copy", "limit", 3e-6),
            _record("numba:copy-parallel", "limit", 1e-6),
            _record("fastleaky:auto", "fastleaky", 1.25e-6)]
    enriched = {r["impl"]: r for r in report.enrich(rows)}
    assert enriched["fastleaky:auto"]["ratio_best_copy"] == pytest.approx(0.8)
    assert enriched["fastleaky:auto"]["best_copy"] == "numba:copy-parallel"
    assert all(enriched[n]["ratio_best_copy"] <= 1.0 for n in
               ("numpy:copyto", "torch:copy", "numba:copy-parallel"))
    without_torch = {r["impl"]: r for r in report.enrich(
        [r for r in rows if r["impl"] != "torch:copy"])}
    assert without_torch["fastleaky:auto"]["ratio_best_copy"] == pytest.approx(0.8)


def test_spread_is_the_interquartile_range_and_wide_cells_are_marked():
    tight = _record("fastleaky:auto", "fastleaky", 1.0, [0.99, 1.0, 1.0, 1.0, 1.01])
    wide = _record("numpy:where", "peer", 1.0, [0.5, 0.7, 1.0, 1.3, 2.0])
    a, b = report.enrich([tight, wide])
    assert a["spread"] == pytest.approx(0.0) and not a["wide"]
    assert b["spread"] == pytest.approx(0.6) and b["wide"]
    assert report.spread_label(b) == "±30%" and report.marks(b) == report.MARK_WIDE
    table = report.summary_tables([a, b], [])["float32"]
    assert table[2][1] == f"0.0 ±30% (-){report.MARK_WIDE}"  # no copy measured: no ratio


@pytest.mark.parametrize("dtype", ["float16", "float32", "float64"])
def test_parallel_copy_moves_every_bit(dtype):
    pytest.importorskip("numba")
    from fastleaky import cases
    from fastleaky.bench import parallel_copy

    x = cases.sample(dtype, 10_007)  # signalling NaNs and payloads included
    out = np.zeros_like(x)
    parallel_copy.copy(x, out)
    bits = np.dtype(f"u{x.dtype.itemsize}")
    assert np.array_equal(out.view(bits), x.view(bits))
