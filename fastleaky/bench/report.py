"""The report: results as a table, Markdown, a throughput plot and JSON.

Both ``fastleaky bench`` and ``fastleaky report`` (from pytest-benchmark JSON)
end here, so the two give the same report.  A result record is one cell:
``impl, family, device, dtype, size, nbytes, seconds`` (median per call),
``samples`` (every repeat's time per call) or ``q1``/``q3`` (pytest-benchmark's
quartiles), ``check`` (the output compared with the reference) and, from
``fastleaky bench``, ``machine``/``disturbed`` (what other work did meanwhile);
:func:`enrich` adds the derived columns.

The limit, "best copy", has one definition everywhere: per cell (device,
dtype, size), the fastest of the copies measured in that run (family
"limit": ``np.copyto`` on one thread and the multi-threaded copies).
"""

from __future__ import annotations

import io
import json
import math
import os
from collections.abc import Collection, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, TypedDict, cast

import numpy as np

from . import activity, provenance, schema
from .impls import BASELINE, COPY_LIMIT
from .schema import Enriched, ImplRecord, Provenance, Report, Result

FORMAT = "fastleaky-bench/1"
FILES = ("report.md", "throughput.png", "results.json")
# A cell whose interquartile range exceeds this share of its median is marked.
WIDE_SPREAD = 0.20
MARK_BUSY = "†"
MARK_WIDE = "‡"

#: A file or folder name, as ``open`` takes it.
StrPath = str | os.PathLike[str]


class _Quartiles(TypedDict, total=False):
    q1: float
    q3: float


class Disturbance(TypedDict):
    """What a report says about the machine (:func:`disturbance`)."""

    state: Literal["busy", "quiet", "unjudged", "unwatched"]
    cells: list[tuple[str, int]]
    lines: list[str]


def _quartiles(r: Result) -> tuple[float, float] | None:
    samples = r.get("samples")
    if samples:
        q1, q3 = np.percentile(samples, [25, 75])
        return float(q1), float(q3)
    if r.get("q1") is not None and r.get("q3") is not None:
        return float(r["q1"]), float(r["q3"])
    return None


def enrich(results: Sequence[Result]) -> list[Enriched]:
    """Add the derived columns to each record.

    ``gbps`` (read + write), ``q1``/``q3`` and ``spread`` (interquartile
    range over the median, None without repeats), ``wide`` (spread above
    ``WIDE_SPREAD``), ``ratio_copy`` (time of ``np.copyto`` over this one, same
    cell), ``best_copy`` (the fastest copy of the cell) and ``ratio_best_copy``,
    ``speedup`` (vs np.where) and ``disturbed``.
    """
    index = {(r["impl"], r["dtype"], r["size"]): r for r in results}
    fastest_copy: dict[tuple[str, str, int], Result] = {}
    for r in results:
        if r.get("family") == "limit":
            copy_key = (r.get("device", "cpu"), r["dtype"], r["size"])
            if copy_key not in fastest_copy or r["seconds"] < fastest_copy[copy_key]["seconds"]:
                fastest_copy[copy_key] = r
    out: list[Enriched] = []
    for r in results:
        device = r.get("device", "cpu")
        seconds = r["seconds"]
        quartiles = _quartiles(r)
        # the keys in the order the files have always had them
        measured: _Quartiles = {"q1": quartiles[0], "q3": quartiles[1]} if quartiles else {}
        spread = (quartiles[1] - quartiles[0]) / seconds if quartiles else None
        key = (r["dtype"], r["size"])
        limit = index.get((COPY_LIMIT.get(device, ""), *key))
        best = fastest_copy.get((device, *key))
        base = index.get((BASELINE, *key))
        out.append({
            **r,
            "gbps": 2 * r["nbytes"] / seconds / 1e9,
            **measured,
            "spread": spread,
            "wide": spread is not None and spread > WIDE_SPREAD,
            "disturbed": bool(r.get("disturbed", False)),
            "ratio_copy": limit["seconds"] / seconds if limit else None,
            "best_copy": best["impl"] if best else None,
            "ratio_best_copy": best["seconds"] / seconds if best else None,
            "speedup": base["seconds"] / seconds if base else None,
        })
    return out


def size_label(n: int) -> str:
    """1000 -> "1e3", 50_000_000 -> "5e7", 1234 -> "1,234"."""
    if n > 0:
        exp = int(math.floor(math.log10(n)))
        mant = n / 10**exp
        if exp >= 3 and mant == int(mant):
            return f"{int(mant)}e{exp}" if mant != 1 else f"1e{exp}"
    return f"{n:,}"


def time_label(seconds: float) -> str:
    """Seconds in µs, ms or s, whichever reads best."""
    if seconds < 1e-3:
        return f"{seconds * 1e6:.2f} µs"
    if seconds < 1:
        return f"{seconds * 1e3:.3f} ms"
    return f"{seconds:.3f} s"


def spread_label(r: Enriched) -> str:
    """"±4%": half the interquartile range of the repeats over the median."""
    spread = r.get("spread")
    if spread is None:
        return "-"
    return f"±{50 * spread:.0f}%"


def marks(r: Enriched) -> str:
    """The cell's marks: measured on a busy machine, wide spread."""
    return (MARK_BUSY if r.get("disturbed") else "") + (MARK_WIDE if r.get("wide") else "")


def _num(v: float | None, fmt: str = ".2f", suffix: str = "") -> str:
    return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:{fmt}}{suffix}"


def _ordered(values: Collection[str], order: Iterable[str]) -> list[str]:
    seen = [v for v in order if v in values]
    return seen + sorted(set(values) - set(seen))


def machine_label(r: Enriched) -> str:
    """"busy (0.80 CPUs)": what other work did while the cell was measured."""
    m = r.get("machine")
    if not m:
        return "-"
    return f"{'busy' if r.get('disturbed') else 'quiet'} ({m['other_cpus']:.2f} CPUs)"


def rows(results: Sequence[Enriched]) -> list[list[str]]:
    """The long table: one row per (dtype, size, implementation)."""
    header = ["dtype", "size", "implementation", "time (median)", "spread", "GB/s",
              "× best copy", "× np.copyto", "speed-up vs np.where", "other work",
              "output vs reference"]
    body = []
    for r in results:
        body.append([r["dtype"], size_label(r["size"]), r["impl"] + marks(r),
                     time_label(r["seconds"]), spread_label(r), _num(r["gbps"]),
                     _num(r["ratio_best_copy"]), _num(r["ratio_copy"]),
                     _num(r["speedup"], ".1f", "×"), machine_label(r), r.get("check", "-")])
    return [header] + body


def _md_table(table: list[list[str]], align_right_from: int = 1) -> list[str]:
    header, *body = table
    seps = ["---" if i < align_right_from else "---:" for i in range(len(header))]
    return ["| " + " | ".join(row) + " |" for row in [header, seps] + body]


def summary_tables(results: Sequence[Enriched],
                   impl_order: list[str]) -> dict[str, list[list[str]]]:
    """Per dtype: implementation x size, cells "GB/s ±spread (× best copy)" and marks."""
    tables = {}
    for dtype in _ordered({r["dtype"] for r in results}, ["float32", "float64", "float16"]):
        cells = {(r["impl"], r["size"]): r for r in results if r["dtype"] == dtype}
        sizes = sorted({s for _, s in cells})
        names = _ordered({i for i, _ in cells}, impl_order)
        table = [["implementation"] + [f"n={size_label(s)}" for s in sizes]]
        for name in names:
            row = [name]
            for s in sizes:
                r = cells.get((name, s))
                if r is None:
                    row.append("-")
                    continue
                spread = f" {spread_label(r)}" if r.get("spread") is not None else ""
                row.append(f"{_num(r['gbps'], '.1f')}{spread} "
                           f"({_num(r['ratio_best_copy'])}){marks(r)}")
            table.append(row)
        tables[dtype] = table
    return tables


def _group_label(cells: Iterable[tuple[str, int]]) -> str:
    """"float32 at 1e6, 1e7; float64 at 1e3" for (dtype, size) pairs."""
    by_dtype: dict[str, list[int]] = {}
    for dtype, size in sorted(set(cells), key=lambda c: (c[0], c[1])):
        by_dtype.setdefault(dtype, []).append(size)
    return "; ".join(f"{d} at {', '.join(size_label(s) for s in sizes)}"
                     for d, sizes in by_dtype.items())


def disturbance(results: Sequence[Result], provenance_: Provenance | None = None) -> Disturbance:
    """What the report must say about the machine: ``state`` ("busy", "quiet",
    "unjudged" or "unwatched"), the disturbed (dtype, size) cases and the
    advice, as ``lines`` of plain text."""
    watched = [(r, w) for r in results if (w := r.get("machine"))]
    busy = [r for r in results if r.get("disturbed")]
    cpus = (provenance_ or {}).get("logical_cpus") or os.cpu_count() or 1
    if not watched:
        return {"state": "unwatched", "cells": [], "lines": [
            "Other work on the machine was not watched while measuring (no machine CPU "
            "counters here, or a file written without them): a busy machine would not "
            "show."]}
    total = {(r["dtype"], r["size"]) for r, _ in watched}
    brief = {(r["dtype"], r["size"]) for r, w in watched if not activity.judged(w)}
    brief_line = (f"{len(brief)} of {len(total)} (dtype, size) cases were measured too "
                  f"briefly (under {activity.JUDGE_MIN_SECONDS:g} s) for the machine's CPU "
                  f"counters to tell whether other work disturbed them: {_group_label(brief)}.")
    if not busy:
        most = max(w["other_cpus"] for _, w in watched)
        if brief:
            return {"state": "unjudged", "cells": [], "lines": [
                f"No busy stretch was seen (other work used at most {most:.2f} of {cpus} "
                f"CPUs), but {brief_line}"]}
        return {"state": "quiet", "cells": [], "lines": [
            f"The machine was quiet while measuring: other work used at most "
            f"{most:.2f} of {cpus} CPUs during any (dtype, size)."]}
    groups = {(r["dtype"], r["size"]) for r in busy}
    worst = max(w["other_cpus"] for r in busy if (w := r.get("machine")) is not None)
    steal = max(w.get("steal_cpus", 0.0) for _, w in watched)
    lines = [
        f"Other work kept up to {worst:.2f} of {cpus} CPUs busy "
        + (f"(steal up to {steal:.2f}) " if steal >= activity.BUSY_CPUS else "")
        + f"while {len(groups)} of {len(total)} (dtype, size) cases were measured: "
        f"{_group_label(groups)}.",
        f"Their {len(busy)} cells (marked {MARK_BUSY}) may be far slower than this machine "
        "is when quiet, multi-threaded implementations most of all: do not read them as "
        "its speed.",
        "What to do: re-run at a quieter time (see `uptime`/`top` for what else runs); "
        "or with `--isolate`; or cap the threads to the CPUs left free "
        "(`FASTLEAKY_NUM_THREADS`, `OMP_NUM_THREADS`, `NUMBA_NUM_THREADS`).",
    ]
    if brief:
        lines.append(brief_line)
    return {"state": "busy", "cells": sorted(groups), "lines": lines}


def markdown(report: Report, plot_name: str | None = "throughput.png") -> str:
    """report.md: the summary tables, every measurement, implementations, provenance."""
    results = enrich(report["results"])
    impls = report.get("impls", {})
    settings = report.get("settings", {})
    alpha = settings.get("alpha", 0.01)
    state = disturbance(results, report.get("provenance"))
    lines = ["# fastleaky: LeakyReLU comparison report", ""]
    if state["state"] == "busy":
        lines += ["> **Warning: measured on a busy machine.** " + state["lines"][0]]
        for line in state["lines"][1:]:
            lines += [">", f"> {line}"]
        lines.append("")
    else:
        lines += [state["lines"][0], ""]
    lines += [
        f"LeakyReLU (alpha={alpha}) on contiguous 1-D arrays of standard normal values "
        "(edge values spread through them). Effective GB/s = 2 × bytes / time: x read "
        "once and the result written once; temporaries are not counted. "
        "\"× best copy\" is the time of the best copy over this one's, per cell: the "
        "fastest of the copies of the same array measured in the same run (`np.copyto` "
        "on one thread, the multi-threaded copies; a device-to-device copy on a GPU). "
        "Nothing that reads x and writes a result can be much faster. "
        f"{settings.get('timing', '')}".rstrip(),
        "",
        f"Each cell: median GB/s, ± half the interquartile range of the repeats as a "
        f"share of the median, and (× best copy). {MARK_BUSY}: measured while other work "
        f"kept the machine busy; {MARK_WIDE}: spread (interquartile range) above "
        f"{WIDE_SPREAD:.0%} of the median.",
        "",
    ]
    if plot_name:
        lines += [f"![GB/s vs size, higher is better]({plot_name})", ""]
    for dtype, table in summary_tables(results, list(impls)).items():
        lines += [f"## {dtype}: GB/s ±spread (× best copy)", ""]
        lines += _md_table(table) + [""]
    lines += ["## All measurements", ""]
    lines += _md_table(rows(results), align_right_from=3) + [""]
    if impls:
        lines += ["## Implementations", "", "| name | what | notes |", "| --- | --- | --- |"]
        for name, meta in impls.items():
            lines.append(f"| `{name}` | {meta.get('description', '')} | {meta.get('note', '')} |")
        lines.append("")
    skipped = report.get("skipped", [])
    if skipped:
        lines += ["## Not measured", ""]
        seen: dict[tuple[str, str], list[str]] = {}
        for s in skipped:
            seen.setdefault((s["impl"], s["reason"]), []).append(
                f"{s['dtype']} n={size_label(s['size'])}")
        for (name, reason), where in seen.items():
            lines.append(f"- `{name}`: {reason} ({', '.join(where)})")
        lines.append("")
    lines += ["## Provenance", ""] + provenance.lines(report.get("provenance", {})) + [""]
    return "\n".join(lines)


def render(report: Report) -> dict[str, bytes]:
    """The three files' contents, made in memory: nothing is written if any fails."""
    from .throughput import plot_throughput

    report = {**report, "format": FORMAT}
    results_json = json.dumps({**report, "results": enrich(report["results"])},
                              indent=1, default=str) + "\n"
    png = io.BytesIO()
    plot_throughput(report, png)
    return {"report.md": markdown(report, "throughput.png").encode(),
            "throughput.png": png.getvalue(), "results.json": results_json.encode()}


def write(report: Report, folder: StrPath) -> list[Path]:
    """report.md, throughput.png and results.json in ``folder``; returns the paths."""
    return write_contents(render(report), folder)


def write_contents(contents: dict[str, bytes], folder: StrPath) -> list[Path]:
    """Write what :func:`render` made to ``folder`` (created if needed)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name in FILES:
        path = folder / name
        path.write_bytes(contents[name])
        paths.append(path)
    return paths


def from_pytest_benchmark(data: Mapping[str, Any]) -> Report:
    """A report (as :func:`write` takes) from pytest-benchmark's ``--benchmark-json``
    (validated first: :class:`schema.SchemaError` names what is wrong)."""
    schema.validate_pytest_benchmark(data)
    results: list[Result] = []
    impls: dict[str, ImplRecord] = {}
    for bench in data["benchmarks"]:
        extra = bench.get("extra_info") or {}
        if "impl" not in extra:
            continue  # not one of ours
        stats = bench["stats"]
        rec: Result = {
            "impl": extra["impl"], "family": extra.get("family", "peer"),
            "device": extra.get("device", "cpu"), "dtype": extra["dtype"],
            "size": extra["size"], "nbytes": extra["nbytes"],
            "seconds": float(stats["median"]),
            "repeats": int(stats.get("rounds") or 0),
            "loops": int(stats.get("iterations") or 1),
            "check": extra.get("check", "-"),
        }
        if stats.get("data"):
            rec["samples"] = [float(v) for v in stats["data"]]
        elif stats.get("q1") is not None and stats.get("q3") is not None:
            rec["q1"], rec["q3"] = float(stats["q1"]), float(stats["q3"])
        if isinstance(extra.get("machine"), dict):
            rec["machine"] = extra["machine"]
            rec["disturbed"] = activity.busy(extra["machine"])
        results.append(rec)
        impls.setdefault(extra["impl"], {
            "family": extra.get("family", "peer"), "device": extra.get("device", "cpu"),
            "description": extra.get("description", ""), "note": extra.get("note", "")})
    if not results:
        raise ValueError("no fastleaky benchmarks in this file (was it written by "
                         "`pytest benchmarks/ --benchmark-enable --benchmark-json FILE`?)")
    machine = data.get("machine_info") or {}
    # checked to be an object; its fields are shown as they are
    prov = cast(Provenance, dict(machine.get("fastleaky") or {}))
    prov.setdefault("cpu", (machine.get("cpu") or {}).get("brand_raw", machine.get("processor")))
    prov.setdefault("python", machine.get("python_version"))
    prov.setdefault("date", data.get("datetime") or "unknown")
    prov["command"] = prov.get("command") or "pytest benchmarks/ --benchmark-json"
    alpha = next((b["extra_info"]["alpha"] for b in data["benchmarks"]
                  if isinstance(b.get("extra_info"), dict)
                  and b["extra_info"].get("alpha") is not None), 0.01)
    timing = ("Timing: pytest-benchmark, each implementation measured in turn (not "
              "interleaved); the rounds and calls per round as benchmarks/ chose them; "
              "the median time per call.")
    return {"provenance": prov, "impls": impls, "results": results, "skipped": [],
            "settings": {"alpha": alpha, "timing": timing, "source": "pytest-benchmark"}}


def load(path: StrPath) -> Report:
    """A validated report from results.json (``fastleaky bench``) or pytest-benchmark
    JSON; ValueError (one line) for anything else."""
    path = Path(path)
    if path.is_dir():
        if not (path / "results.json").is_file():
            raise ValueError(f"{str(path)!r} is a folder without a results.json")
        path = path / "results.json"
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise OSError(f"no such file: {str(path)!r}") from None
    except UnicodeDecodeError:
        raise ValueError(f"{path} is not JSON (not text)") from None
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise ValueError(f"{path} is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path} holds no benchmark results (not a JSON object)")
    try:
        if data.get("format") == FORMAT:
            schema.validate_results(data)
            return cast(Report, data)  # its structure checked just above
        if "benchmarks" in data:
            return from_pytest_benchmark(data)
    except schema.SchemaError as exc:
        raise ValueError(f"{path}: not a valid benchmark file: {exc}") from None
    raise ValueError(f"{path} is neither pytest-benchmark JSON nor a fastleaky results.json")
