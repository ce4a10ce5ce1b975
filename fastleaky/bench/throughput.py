"""The report's figure: GB/s against size, one panel per dtype.

Made to be read at a glance at its default size: ``fastleaky:auto`` (what a
user calls) is the one bold line, named at its right end, with its spread
shaded; fastleaky's other backends are thin solid lines and the peers thin
dashed ones, both faded; the limit is one black line, the best copy of each
size (the fastest copy measured there).  Sizes where cells were measured
while the machine was busy are shaded amber.  The legend explains every
style.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import IO

from .impls import BASELINE
from .report import StrPath, _ordered, enrich
from .schema import Enriched, Report

HIGHLIGHT = "fastleaky:auto"
_HIGHLIGHT_COLOR = "#d62728"
_BUSY_COLOR = "#f0b000"


def _best_copy(rows: Sequence[Enriched]) -> list[tuple[int, float]]:
    """(size, GB/s) of the fastest copy at each size."""
    best: dict[int, float] = {}
    for r in rows:
        if r.get("family") == "limit":
            best[r["size"]] = max(best.get(r["size"], 0.0), r["gbps"])
    return sorted(best.items())


def plot_throughput(report: Report, path: StrPath | IO[bytes]) -> None:
    """Draw the figure to ``path`` (a file name or a binary file object; PNG)."""
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    results = enrich(report["results"])
    dtypes = _ordered({r["dtype"] for r in results}, ["float32", "float64", "float16"])
    order = _ordered({r["impl"] for r in results}, list(report.get("impls", {})))
    names = [n for n in order if n != HIGHLIGHT
             and next(r["family"] for r in results if r["impl"] == n) != "limit"]
    # tab10 without red (the highlight) and gray (reads as the limit)
    palette = ["C0", "C1", "C2", "C4", "C5", "C6", "C8", "C9", "olive", "navy", "teal"]
    colors = {name: palette[i % len(palette)] for i, name in enumerate(names)}
    fig = Figure(figsize=(5.4 * max(len(dtypes), 1), 5.8), layout="constrained")
    axes = fig.subplots(1, max(len(dtypes), 1), sharey=True, squeeze=False)[0]
    any_busy = False
    xs: Sequence[float]
    ys: Sequence[float]
    for ax, dtype in zip(axes, dtypes):
        here = [r for r in results if r["dtype"] == dtype]
        best = _best_copy(here)
        if best:
            xs, ys = zip(*best)
            ax.plot(xs, ys, color="black", lw=2.4, zorder=3)
        for name in names:
            pts = sorted((r["size"], r["gbps"]) for r in here if r["impl"] == name)
            if not pts:
                continue
            family = next(r["family"] for r in here if r["impl"] == name)
            xs, ys = zip(*pts)
            peer = family != "fastleaky"
            ax.plot(xs, ys, "--" if peer else "-", color=colors[name], lw=1.1,
                    alpha=0.45 if peer else 0.6, marker="o", ms=2.5, zorder=2)
        mine = sorted((r["size"], r) for r in here if r["impl"] == HIGHLIGHT)
        if mine:
            xs = [s for s, _ in mine]
            ys = [r["gbps"] for _, r in mine]
            if all(r.get("q1") for _, r in mine):
                lo = [2 * r["nbytes"] / r["q3"] / 1e9 for _, r in mine]
                hi = [2 * r["nbytes"] / r["q1"] / 1e9 for _, r in mine]
                ax.fill_between(xs, lo, hi, color=_HIGHLIGHT_COLOR, alpha=0.18, lw=0,
                                zorder=4)
            ax.plot(xs, ys, "-", color=_HIGHLIGHT_COLOR, lw=3.2, marker="o", ms=5, zorder=5)
            ax.annotate(HIGHLIGHT, (xs[-1], ys[-1]), xytext=(6, 0),
                        textcoords="offset points", va="center", ha="left",
                        color=_HIGHLIGHT_COLOR, fontweight="bold", fontsize=9,
                        annotation_clip=False)
        for size in sorted({r["size"] for r in here if r.get("disturbed")}):
            any_busy = True
            ax.axvspan(size / 1.35, size * 1.35, color=_BUSY_COLOR, alpha=0.25, lw=0,
                       zorder=0)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_title(dtype)
        ax.set_xlabel("elements per array")
        ax.margins(x=0.12)  # room for the label at the line's end
        ax.grid(True, which="major", alpha=0.35)
        ax.grid(True, which="minor", alpha=0.12)
    axes[0].set_ylabel("GB/s, read + write  (higher is better)")
    handles = [
        Line2D([], [], color=_HIGHLIGHT_COLOR, lw=3.2, marker="o", ms=5,
               label=f"{HIGHLIGHT} (what fastleaky.leaky_relu picks)"),
        Patch(color=_HIGHLIGHT_COLOR, alpha=0.18,
              label=f"{HIGHLIGHT}: interquartile range of the repeats"),
        Line2D([], [], color="black", lw=2.4,
               label="best copy: the fastest copy of each size (the limit)"),
    ]
    for name in names:
        family = next(r["family"] for r in results if r["impl"] == name)
        peer = family != "fastleaky"
        handles.append(Line2D([], [], ls="--" if peer else "-", color=colors[name],
                              lw=1.1, alpha=0.45 if peer else 0.6, marker="o", ms=2.5,
                              label=name + (" (baseline)" if name == BASELINE else "")))
    if any_busy:
        handles.append(Patch(color=_BUSY_COLOR, alpha=0.25,
                             label="sizes measured while the machine was busy"))
    prov = report.get("provenance", {})
    fig.suptitle(f"LeakyReLU throughput — {prov.get('cpu') or '?'}, "
                 f"{prov.get('logical_cpus') or '?'} CPUs ({str(prov.get('date') or '')[:10]})"
                 "\nsolid: fastleaky backends · dashed: other libraries · "
                 "black: best copy", fontsize=10)
    fig.legend(handles=handles, loc="outside lower center", ncol=3, fontsize=8,
               frameon=False)
    fig.savefig(path, dpi=110, format="png")
