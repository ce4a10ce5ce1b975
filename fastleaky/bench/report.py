"""The report: results as a table, Markdown, a throughput plot and JSON.

Both ``fastleaky bench`` and ``fastleaky report`` (from pytest-benchmark JSON)
end here, so the two give the same report.  A result record is one cell:
``impl, family, device, dtype, size, nbytes, seconds`` (median per call) and
``check`` (the output compared with the reference); :func:`enrich` adds the
derived columns.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from . import provenance
from .impls import BASELINE, COPY_LIMIT

FORMAT = "fastleaky-bench/1"
BEST_COPY = {"cpu": "torch:copy"}
FILES = ("report.md", "throughput.png", "results.json")


def enrich(results: list[dict]) -> list[dict]:
    """Add ``gbps`` (read + write), ``ratio_copy`` (to the copy limit of the same
    device, dtype and size), ``ratio_best_copy`` and ``speedup`` (vs np.where)."""
    index = {(r["impl"], r["dtype"], r["size"]): r for r in results}
    out = []
    for r in results:
        r = dict(r)
        r["gbps"] = 2 * r["nbytes"] / r["seconds"] / 1e9 if r["seconds"] > 0 else math.nan
        key = (r["dtype"], r["size"])
        limit = index.get((COPY_LIMIT.get(r["device"], ""), *key))
        best = index.get((BEST_COPY.get(r["device"], ""), *key))
        base = index.get((BASELINE, *key))
        r["ratio_copy"] = limit["seconds"] / r["seconds"] if limit else None
        r["ratio_best_copy"] = best["seconds"] / r["seconds"] if best else None
        r["speedup"] = base["seconds"] / r["seconds"] if base else None
        out.append(r)
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
    if seconds < 1e-3:
        return f"{seconds * 1e6:.2f} µs"
    if seconds < 1:
        return f"{seconds * 1e3:.3f} ms"
    return f"{seconds:.3f} s"


def _num(v, fmt=".2f", suffix="") -> str:
    return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:{fmt}}{suffix}"


def _ordered(values, order):
    seen = [v for v in order if v in values]
    return seen + sorted(set(values) - set(seen))


def rows(results: list[dict]) -> list[list[str]]:
    """The long table: one row per (dtype, size, implementation)."""
    header = ["dtype", "size", "implementation", "time", "GB/s", "× copy limit",
              "× best copy", "speed-up vs np.where", "output vs reference"]
    body = []
    for r in results:
        body.append([r["dtype"], size_label(r["size"]), r["impl"], time_label(r["seconds"]),
                     _num(r["gbps"]), _num(r["ratio_copy"]), _num(r["ratio_best_copy"]),
                     _num(r["speedup"], ".1f", "×"), r.get("check", "-")])
    return [header] + body


def _md_table(table: list[list[str]], align_right_from: int = 1) -> list[str]:
    header, *body = table
    seps = ["---" if i < align_right_from else "---:" for i in range(len(header))]
    return ["| " + " | ".join(row) + " |" for row in [header, seps] + body]


def summary_tables(results: list[dict], impl_order: list[str]) -> dict[str, list[list[str]]]:
    """Per dtype: implementation x size, cells "GB/s (ratio to the copy limit)"."""
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
                row.append("-" if r is None else
                           f"{_num(r['gbps'], '.1f')} ({_num(r['ratio_copy'])})")
            table.append(row)
        tables[dtype] = table
    return tables


def markdown(report: dict, plot_name: str | None = "throughput.png") -> str:
    results = enrich(report["results"])
    impls = report.get("impls", {})
    settings = report.get("settings", {})
    alpha = settings.get("alpha", 0.01)
    lines = [
        "# fastleaky: LeakyReLU comparison report",
        "",
        f"LeakyReLU (alpha={alpha}) on contiguous 1-D arrays of standard normal values "
        "(edge values spread through them). Effective GB/s = 2 × bytes / time: x read "
        "once and the result written once; temporaries are not counted. The ratio is "
        "to the copy limit (`np.copyto` of the same array on the host, a device-to-device "
        "copy on a GPU): nothing that reads x and writes a result can be much faster. "
        f"{settings.get('timing', '')}".rstrip(),
        "",
    ]
    if plot_name:
        lines += [f"![GB/s vs size]({plot_name})", ""]
    for dtype, table in summary_tables(results, list(impls)).items():
        lines += [f"## {dtype}: GB/s (ratio to the copy limit)", ""]
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
        seen = {}
        for s in skipped:
            seen.setdefault((s["impl"], s["reason"]), []).append(
                f"{s['dtype']} n={size_label(s['size'])}")
        for (name, reason), where in seen.items():
            lines.append(f"- `{name}`: {reason} ({', '.join(where)})")
        lines.append("")
    lines += ["## Provenance", ""] + provenance.lines(report.get("provenance", {})) + [""]
    return "\n".join(lines)


def plot_throughput(report: dict, path) -> None:
    """GB/s vs size (log-log), one panel per dtype, one line per implementation;
    the copy limit drawn as the roofline."""
    from matplotlib.figure import Figure

    results = enrich(report["results"])
    dtypes = _ordered({r["dtype"] for r in results}, ["float32", "float64", "float16"])
    impl_order = _ordered({r["impl"] for r in results}, list(report.get("impls", {})))
    fig = Figure(figsize=(5.2 * max(len(dtypes), 1), 5.4), layout="constrained")
    axes = fig.subplots(1, max(len(dtypes), 1), sharey=True, squeeze=False)[0]
    styles = {"fastleaky": "-", "peer": "--", "limit": ":"}
    colors = {}
    # tab10 without its gray (C7), which would read as the gray roofline
    palette = [f"C{i}" for i in range(10) if i != 7] + ["olive", "navy", "teal", "maroon", "gold"]
    for name in impl_order:
        if name not in COPY_LIMIT.values():
            colors[name] = palette[len(colors) % len(palette)]
    for ax, dtype in zip(axes, dtypes):
        here = [r for r in results if r["dtype"] == dtype]
        for name in impl_order:
            pts = sorted((r["size"], r["gbps"]) for r in here if r["impl"] == name)
            if not pts:
                continue
            xs, ys = zip(*pts)
            family = next(r["family"] for r in here if r["impl"] == name)
            if name in COPY_LIMIT.values():
                ax.plot(xs, ys, color="black", lw=3, alpha=0.55, label=f"{name} (copy limit)")
                ax.fill_between(xs, ys, min(ys) / 100, color="gray", alpha=0.10, lw=0)
            else:
                ax.plot(xs, ys, styles.get(family, "-"), marker="o", ms=3.5, lw=1.6,
                        color=colors[name], label=name)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_title(dtype)
        ax.set_xlabel("elements")
        ax.grid(True, which="major", alpha=0.35)
        ax.grid(True, which="minor", alpha=0.12)
    axes[0].set_ylabel("GB/s (read + write)")
    handles, labels = [], []
    for ax in axes:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            if lab not in labels:
                handles.append(h)
                labels.append(lab)
    prov = report.get("provenance", {})
    fig.suptitle(f"LeakyReLU throughput — {prov.get('cpu', '')}, "
                 f"{prov.get('logical_cpus', '?')} CPUs ({prov.get('date', '')[:10]})",
                 fontsize=11)
    fig.legend(handles, labels, loc="outside lower center", ncol=min(4, len(labels) or 1),
               fontsize=8.5, frameon=False)
    fig.savefig(path, dpi=110)


def write(report: dict, folder) -> list[Path]:
    """report.md, throughput.png and results.json in ``folder``; returns the paths."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / name for name in FILES]
    report = {**report, "format": FORMAT}
    paths[2].write_text(json.dumps({**report, "results": enrich(report["results"])},
                                   indent=1, default=str) + "\n")
    plot_throughput(report, paths[1])
    paths[0].write_text(markdown(report, paths[1].name))
    return paths


def from_pytest_benchmark(data: dict) -> dict:
    """A report (as :func:`write` takes) from pytest-benchmark's ``--benchmark-json``."""
    results, impls = [], {}
    for bench in data.get("benchmarks", []):
        extra = bench.get("extra_info") or {}
        if "impl" not in extra:
            continue  # not one of ours
        results.append({
            "impl": extra["impl"], "family": extra.get("family", "peer"),
            "device": extra.get("device", "cpu"), "dtype": extra["dtype"],
            "size": int(extra["size"]), "nbytes": int(extra["nbytes"]),
            "seconds": float(bench["stats"]["median"]),
            "repeats": int(bench["stats"].get("rounds", 0)),
            "loops": int(bench["stats"].get("iterations", 1) or 1),
            "check": extra.get("check", "-"),
        })
        impls.setdefault(extra["impl"], {
            "family": extra.get("family", "peer"), "device": extra.get("device", "cpu"),
            "description": extra.get("description", ""), "note": extra.get("note", "")})
    if not results:
        raise ValueError("no fastleaky benchmarks in this file (was it written by "
                         "`pytest benchmarks/ --benchmark-enable --benchmark-json FILE`?)")
    machine = data.get("machine_info", {})
    prov = dict(machine.get("fastleaky") or {})
    prov.setdefault("cpu", (machine.get("cpu") or {}).get("brand_raw", machine.get("processor")))
    prov.setdefault("python", machine.get("python_version"))
    prov.setdefault("date", data.get("datetime"))
    prov["command"] = prov.get("command") or "pytest benchmarks/ --benchmark-json"
    alpha = next((b["extra_info"].get("alpha") for b in data["benchmarks"]
                  if (b.get("extra_info") or {}).get("alpha") is not None), 0.01)
    timing = ("Timing: pytest-benchmark (calibrated rounds, median per call; each "
              "implementation measured in turn, not interleaved).")
    return {"provenance": prov, "impls": impls, "results": results, "skipped": [],
            "settings": {"alpha": alpha, "timing": timing, "source": "pytest-benchmark"}}


def load(path) -> dict:
    """A report from results.json (``fastleaky bench``) or pytest-benchmark JSON."""
    text = Path(path).read_text()
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise ValueError(f"{path} is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path} holds no benchmark results")
    if data.get("format") == FORMAT:
        return data
    if "benchmarks" in data:
        return from_pytest_benchmark(data)
    raise ValueError(f"{path} is neither pytest-benchmark JSON nor a fastleaky results.json")
