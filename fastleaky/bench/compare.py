"""``fastleaky compare BASE NEW``: did anything get slower?

Cells (implementation, device, dtype, size) present in both runs are paired.
For each, the ratio NEW/BASE of the median times (above 1: slower) is
judged against the spread the cells themselves showed: "slower" when even
NEW's faster repeats (its first quartile) were slower than BASE's slower
ones (its third quartile) and the medians differ by more than ``FLOOR``;
"faster" the other way round; else "same".  The floor is there because a
fresh process alone moves a memory-bound loop by several percent (its
memory layout changes), a difference no run's own repeats can show.

A regression, for ``--fail-above P``, is a chosen cell judged slower whose
time grew by more than P percent.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence
from typing import Literal, TypedDict

from .report import MARK_BUSY, _group_label, enrich, size_label
from .schema import Enriched, Provenance, Report

#: A cell: implementation, device, dtype, size.
CellKey = tuple[str, str, str, int]
Verdict = Literal["slower", "faster", "same"]


class Row(TypedDict):
    """One cell measured in both runs, judged."""

    impl: str
    device: str
    dtype: str
    size: int
    base_s: float
    new_s: float
    ratio: float
    verdict: Verdict
    chosen: bool
    regression: bool
    disturbed: bool


class Comparison(TypedDict):
    """What :func:`compare` finds; :func:`render` shows it."""

    rows: list[Row]
    only_base: list[CellKey]
    only_new: list[CellKey]
    differences: list[str]
    patterns: list[str]
    fail_above: float | None
    failed: bool


# Medians closer than this are "same" whatever the spread says.
FLOOR = 0.05
_PROVENANCE_KEYS = (("cpu", "CPU"), ("logical_cpus", "logical CPUs"),
                    ("memory_bytes", "memory"), ("os", "OS"), ("python", "Python"))


def _key(r: Enriched) -> CellKey:
    return (r["impl"], r.get("device", "cpu"), r["dtype"], r["size"])


def verdict(base: Enriched, new: Enriched) -> Verdict:
    """"slower", "faster" or "same" for two enriched records of one cell."""
    ratio = new["seconds"] / base["seconds"]
    b_lo, b_hi = base.get("q1", base["seconds"]), base.get("q3", base["seconds"])
    n_lo, n_hi = new.get("q1", new["seconds"]), new.get("q3", new["seconds"])
    if ratio > 1 + FLOOR and n_lo > b_hi:
        return "slower"
    if ratio < 1 / (1 + FLOOR) and n_hi < b_lo:
        return "faster"
    return "same"


def provenance_differences(base: Provenance, new: Provenance) -> list[str]:
    """What differs between the two runs' machines and versions, one item each."""
    out = []
    for key, label in _PROVENANCE_KEYS:
        a, b = base.get(key), new.get(key)
        if a is not None and b is not None and a != b:
            out.append(f"{label}: {a} vs {b}")
    va, vb = base.get("versions") or {}, new.get("versions") or {}
    for name in sorted(set(va) & set(vb)):
        if va[name] != vb[name]:
            out.append(f"{name} {va[name]} vs {vb[name]}")
    return out


def compare(base: Report, new: Report, patterns: Sequence[str] = ("fastleaky:*",),
            fail_above: float | None = None) -> Comparison:
    """Pair the cells of two reports (as ``report.load`` returns them) and judge each.

    Parameters
    ----------
    base, new : dict
        The two runs.
    patterns : sequence of str
        Implementations (names or globs) that are summarised and held to
        ``fail_above``.
    fail_above : float, optional
        Percent: a chosen cell judged slower with a time ratio above
        ``1 + fail_above / 100`` is a regression, and the comparison fails.

    Returns
    -------
    Comparison
        ``rows`` (one per paired cell: names, medians, ``ratio``, ``verdict``,
        ``chosen``, ``regression``, ``disturbed``), ``only_base``, ``only_new``,
        ``differences`` (provenance), ``failed`` and ``fail_above``.
    """
    b = {_key(r): r for r in enrich(base["results"])}
    n = {_key(r): r for r in enrich(new["results"])}
    rows: list[Row] = []
    for key in [k for k in n if k in b]:
        rb, rn = b[key], n[key]
        ratio = rn["seconds"] / rb["seconds"]
        chosen = any(fnmatch.fnmatchcase(key[0], p) for p in patterns)
        judged = verdict(rb, rn)
        regression = (chosen and fail_above is not None and judged == "slower"
                      and ratio > 1 + fail_above / 100)
        rows.append({"impl": key[0], "device": key[1], "dtype": key[2], "size": key[3],
                     "base_s": rb["seconds"], "new_s": rn["seconds"], "ratio": ratio,
                     "verdict": judged, "chosen": chosen, "regression": regression,
                     "disturbed": rb["disturbed"] or rn["disturbed"]})
    if not rows:
        raise ValueError("BASE and NEW have no cell (implementation, dtype, size) in common")
    if not any(r["chosen"] for r in rows):
        raise ValueError(f"no implementation measured in both matches "
                         f"{', '.join(map(repr, patterns))}")
    return {
        "rows": rows,
        "only_base": sorted(set(b) - set(n)),
        "only_new": sorted(set(n) - set(b)),
        "differences": provenance_differences(base.get("provenance") or {},
                                              new.get("provenance") or {}),
        "patterns": list(patterns),
        "fail_above": fail_above,
        "failed": any(r["regression"] for r in rows),
    }


def _time(seconds: float) -> str:
    if seconds < 1e-3:
        return f"{seconds * 1e6:.2f} µs"
    return f"{seconds * 1e3:.3f} ms"


def render(result: Comparison, show_all: bool = False) -> str:
    """The comparison as plain text: provenance note, table, summary lines."""
    lines = []
    if result["differences"]:
        lines += ["BASE and NEW were measured on different machines or versions ("
                  + "; ".join(result["differences"]) + "): the ratios include that "
                  "difference, not only the code's.", ""]
    shown = [r for r in result["rows"] if show_all or r["chosen"]]
    header = ["dtype", "size", "implementation", "BASE", "NEW", "NEW/BASE", "verdict"]
    table = [header] + [
        [r["dtype"], size_label(r["size"]), r["impl"] + (MARK_BUSY if r["disturbed"] else ""),
         _time(r["base_s"]), _time(r["new_s"]), f"{r['ratio']:.2f}×",
         r["verdict"] + ("  REGRESSION" if r["regression"] else "")]
        for r in shown]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    for row in table:
        lines.append("  ".join(c.ljust(w) if i < 3 or i == 6 else c.rjust(w)
                               for i, (c, w) in enumerate(zip(row, widths))).rstrip())
    lines.append("")
    chosen = [r for r in result["rows"] if r["chosen"]]
    counts = {v: sum(r["verdict"] == v for r in chosen) for v in ("slower", "faster", "same")}
    what = ", ".join(result["patterns"])
    lines.append(f"{what}: {counts['slower']} slower, {counts['faster']} faster, "
                 f"{counts['same']} same of {len(chosen)} cells (time NEW/BASE; slower or "
                 f"faster only beyond both cells' interquartile ranges and {FLOOR:.0%})")
    if chosen:
        worst = max(chosen, key=lambda r: r["ratio"])
        lines.append(f"largest time ratio: {worst['impl']} {worst['dtype']} "
                     f"n={size_label(worst['size'])} {worst['ratio']:.2f}× ({worst['verdict']})")
    busy = [r for r in result["rows"] if r["disturbed"]]
    if busy:
        lines.append(f"{len(busy)} cells (marked {MARK_BUSY}) were measured on a busy machine "
                     "in BASE or NEW: their ratios may be the machine's, not the code's")
    for label, keys in (("only in BASE", result["only_base"]),
                        ("only in NEW", result["only_new"])):
        if keys:
            lines.append(f"{label}: {len(keys)} cells ({_group_label((k[2], k[3]) for k in keys)})")
    if result["fail_above"] is not None:
        regressions = [r for r in result["rows"] if r["regression"]]
        if regressions:
            lines.append(f"FAILED: {len(regressions)} cells of {what} got slower by more "
                         f"than {result['fail_above']:g}%")
        else:
            lines.append(f"passed: no cell of {what} got slower by more than "
                         f"{result['fail_above']:g}%")
    return "\n".join(lines)
