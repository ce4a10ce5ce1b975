"""The ``bench``, ``report`` and ``plot`` commands (argument parsing and output)."""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from .. import cases
from . import activity

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID

    from .report import StrPath
    from .schema import Measured, Provenance, Report, Result

_ParserT = TypeVar("_ParserT", bound=argparse.ArgumentParser)

DEFAULT_OUTPUT = "fastleaky-report"


def _sizes(text: str) -> tuple[int, ...]:
    from ..cli import whole_number

    sizes = []
    for part in text.replace(" ", "").split(","):
        value = whole_number(part)
        if value < 1:
            raise argparse.ArgumentTypeError(f"sizes are whole numbers >= 1, got {part!r}")
        sizes.append(value)
    return tuple(sizes)


def _at_least_one(text: str) -> int:
    from ..cli import whole_number

    value = whole_number(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {text!r}")
    return value


def _non_negative(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, got {text!r}")
    return value


def _dtypes(text: str) -> tuple[str, ...]:
    names = tuple(p for p in text.replace(" ", "").split(",") if p)
    for name in names:
        if name not in cases.DTYPES:
            raise argparse.ArgumentTypeError(
                f"unknown dtype {name!r}; choose from {', '.join(cases.DTYPES)}")
    return names


def _names(text: str) -> list[str]:
    return [p for p in text.replace(" ", "").split(",") if p]


def add_commands(sub: argparse._SubParsersAction[_ParserT]) -> None:
    """Register ``bench``, ``report`` and ``plot`` on the CLI's subparsers."""
    p = sub.add_parser(
        "bench", help="measure every backend and installed peer; write a report folder",
        description="Sweep sizes and dtypes over every available fastleaky backend, the "
        "installed peers (NumPy, numexpr, PyTorch, CuPy) and the copy limit; print a "
        "table and write report.md, throughput.png and results.json.")
    p.add_argument("--quick", action="store_true",
                   help=f"sizes {', '.join(f'{n:.0e}' for n in cases.BENCH_SIZES_QUICK)}, "
                   f"dtypes {', '.join(cases.BENCH_DTYPES_QUICK)}: under a minute")
    p.add_argument("--sizes", type=_sizes, metavar="N,N,...",
                   help="elements per array, e.g. 1e3,1e6,1e8 (default: 1e3 ... 1e8)")
    p.add_argument("--dtypes", type=_dtypes, metavar="DTYPE,...",
                   help=f"from {', '.join(cases.DTYPES)} (default: all)")
    p.add_argument("--backends", type=_names, metavar="NAME,...",
                   help="only these fastleaky backends (e.g. cython,numba-cpu); with no "
                   "--impls, peers other than the baselines are left out")
    p.add_argument("--impls", type=_names, metavar="PATTERN,...",
                   help="only implementations matching these names or globs "
                   "(e.g. 'fastleaky:*,torch:*'); the copy limit and np.where always run")
    p.add_argument("--alpha", type=float, default=0.01, help="slope for x <= 0 (default 0.01)")
    p.add_argument("--repeats", type=_at_least_one,
                   help="timed repeats per cell, >= 1 (default 5, 7 full)")
    p.add_argument("--min-repeat-ms", type=_non_negative, default=2.0,
                   help="loop each call until a repeat lasts this long (default 2 ms)")
    p.add_argument("--isolate", action="store_true",
                   help="run each implementation alone in fresh processes, so that other "
                   "libraries' idle threads do not compete for the cores (slower)")
    p.add_argument("--rounds", type=_at_least_one, default=3,
                   help="with --isolate: passes over the implementations (default 3)")
    p.add_argument("--output", "-o", default=DEFAULT_OUTPUT, metavar="DIR",
                   help=f"report folder (default ./{DEFAULT_OUTPUT})")
    p.add_argument("--list", action="store_true", help="list the implementations and exit")
    p.set_defaults(func=cmd_bench)

    p = sub.add_parser(
        "report", help="the bench report from pytest-benchmark JSON or results.json",
        description="Render report.md and throughput.png from the JSON that "
        "`pytest benchmarks/ --benchmark-enable --benchmark-json FILE.json` writes "
        "(or from a results.json of `fastleaky bench`, or the folder holding it). "
        "The whole file is checked first; nothing is written if it is not valid.")
    p.add_argument("file", metavar="FILE.json")
    p.add_argument("--output", "-o", metavar="DIR",
                   help=f"report folder (default ./{DEFAULT_OUTPUT})", default=DEFAULT_OUTPUT)
    p.set_defaults(func=cmd_report)

    p = sub.add_parser(
        "compare", help="per-cell speed ratios of two runs; fails on a regression",
        description="Compare two benchmark results (results.json of `fastleaky bench`, "
        "its folder, or pytest-benchmark JSON, in any mix): per cell (implementation, "
        "dtype, size) the time ratio NEW/BASE, judged faster, slower or same against "
        "the cells' spread. Exit 1 when a chosen implementation got slower by more "
        "than --fail-above percent; 2 on an error.")
    p.add_argument("base", metavar="BASE")
    p.add_argument("new", metavar="NEW")
    p.add_argument("--impls", type=_names, metavar="PATTERN,...", default=["fastleaky:*"],
                   help="implementations held to --fail-above and summarised (names "
                   "or globs; default 'fastleaky:*')")
    p.add_argument("--fail-above", type=_non_negative, metavar="PERCENT",
                   help="exit 1 if a chosen implementation's time grew by more than "
                   "this (and beyond the spread) in any cell, e.g. 25")
    p.add_argument("--all", action="store_true",
                   help="show every implementation, not only the chosen ones")
    p.set_defaults(func=cmd_compare)

    p = sub.add_parser(
        "plot", help="draw LeakyReLU and its derivative to PNG or SVG",
        description="Draw f(x) and f'(x) for one or more alphas.")
    p.add_argument("--alpha", type=float, action="append", metavar="A",
                   help="slope for x <= 0; repeat for several curves (default 0.01, 0.1, 0.3)")
    p.add_argument("--xmin", type=float, default=-2.0)
    p.add_argument("--xmax", type=float, default=2.0)
    p.add_argument("-o", "--output", default="leaky_relu.png", metavar="FILE",
                   help="a .png or .svg file (default leaky_relu.png)")
    p.set_defaults(func=cmd_plot)


def _writable_folder(path: StrPath) -> Path:
    """Create ``path`` if needed and prove it is writable, before any long work."""
    folder = Path(path)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".fastleaky-write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise OSError(f"cannot write to output folder {str(folder)!r}: "
                      f"{exc.strerror or exc}") from None
    return folder


class _Progress:
    """A rich progress bar on a terminal's stderr, else one line per finished cell."""

    bar: Progress | None
    task: TaskID

    def __init__(self, total: int) -> None:
        self.total = total
        self.done = 0
        try:
            from rich.console import Console
            from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                                       TimeElapsedColumn)
        except ImportError:
            self.bar = None
            return
        console = Console(stderr=True)
        if not console.is_terminal:  # a log file: one line per cell instead of a live bar
            self.bar = None
            return
        self.bar = Progress(TextColumn("{task.description:<44}"), BarColumn(),
                            MofNCompleteColumn(), TimeElapsedColumn(),
                            console=console, transient=True)
        self.task = self.bar.add_task("starting", total=total)

    def __enter__(self) -> _Progress:
        if self.bar is not None:
            self.bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.stop()

    def __call__(self, description: str, done: bool) -> None:
        if self.bar is not None:
            self.bar.update(self.task, description=description, advance=1 if done else 0)
        elif done:
            self.done += 1
            print(f"[{self.done}/{self.total}] {description}", file=sys.stderr, flush=True)


def print_table(results: Sequence[Result]) -> None:
    """The long table on the terminal (rich where installed)."""
    from . import report

    table = report.rows(report.enrich(results))
    del_cols = {table[0].index("× np.copyto")}  # in the files; the console keeps the limit
    table = [[c for i, c in enumerate(row) if i not in del_cols] for row in table]
    header, body = table[0], table[1:]
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:
        widths = [max(len(r[i]) for r in table) for i in range(len(header))]
        for row in table:
            print("  ".join(c.ljust(w) if i < 3 else c.rjust(w)
                            for i, (c, w) in enumerate(zip(row, widths))))
        return
    t = Table(title="LeakyReLU: median time per call (GB/s counts read + write; "
              f"spread: ± half the interquartile range; {report.MARK_BUSY} busy machine, "
              f"{report.MARK_WIDE} wide spread)")
    for i, name in enumerate(header):
        t.add_column(name, justify="left" if i < 3 or i >= len(header) - 2 else "right")
    previous = None
    for row in body:
        if previous is not None and row[:2] != previous:
            t.add_section()
        previous = row[:2]
        t.add_row(*row)
    Console(width=max(170, Console().width)).print(t)


def print_disturbance(results: Sequence[Result], prov: Provenance | None) -> None:
    """The machine's state in plain words on stderr: a warning when it was busy."""
    from . import report

    state = report.disturbance(results, prov)
    if state["state"] == "busy":
        print("\nWARNING: the machine was busy while measuring. " + "\n".join(state["lines"]),
              file=sys.stderr)
    else:
        print("\n" + state["lines"][0], file=sys.stderr)


def _check_alpha(alpha: float) -> None:
    """The API's own check (finite real), before anything is measured."""
    import numpy as np

    import fastleaky

    fastleaky.leaky_relu(np.zeros(1, np.float32), alpha)


def cmd_bench(args: argparse.Namespace) -> int:
    """``fastleaky bench``: measure, print the table, write the report folder."""
    from .. import info
    from . import provenance, report, runner

    chosen = runner.select(args.impls, args.backends)
    if args.list:
        for impl in chosen:
            print(f"{impl.name:<28} {impl.family:<10} {impl.device:<5} {impl.description}")
        return 0
    _check_alpha(args.alpha)
    settings = runner.Settings(
        sizes=args.sizes or (cases.BENCH_SIZES_QUICK if args.quick else cases.BENCH_SIZES_FULL),
        dtypes=args.dtypes or (cases.BENCH_DTYPES_QUICK if args.quick else cases.BENCH_DTYPES),
        alpha=args.alpha,
        repeats=args.repeats or (5 if args.quick else 7),
        min_repeat_s=args.min_repeat_ms / 1e3,
    )
    too_big = runner.too_big(settings)
    if too_big:
        more = f" (and {len(too_big) - 1} more)" if len(too_big) > 1 else ""
        raise MemoryError(f"--sizes: {too_big[0]}{more}; choose smaller sizes")
    folder = _writable_folder(args.output)
    started = time.perf_counter()
    prov = provenance.collect(gpu=any(i.device == "cuda" for i in chosen))
    if args.isolate:
        from . import isolated

        measured: Measured
        with _Progress(args.rounds * len(chosen)) as progress:
            measured = isolated.run(chosen, settings, args.rounds, progress)
        how = (f"each implementation alone in a fresh process, {args.rounds} passes over "
               "them in rotated order; the median of every repeat of every pass")
    else:
        total = len(settings.dtypes) * len(settings.sizes) * len(chosen)
        with _Progress(total) as progress:
            measured = runner.run(chosen, settings, progress)
        how = "implementations interleaved within each size, in one process"
    if not measured["results"]:
        reasons = sorted({s["reason"] for s in measured["skipped"]})
        raise RuntimeError("nothing could be measured: " + "; ".join(reasons))
    if args.isolate and any(i.name.startswith("torch") for i in chosen):
        import torch  # noqa: F401  (measured elsewhere; imported so its threads are named)
    # Numba's threading layer is only known once a parallel loop ran: read it again.
    prov["threading"] = info.threading_info()
    prov["load_average_end"] = provenance.load_average()
    prov["machine_activity"] = activity.source()
    elapsed = time.perf_counter() - started
    data: Report = {
        "provenance": prov,
        "settings": {
            "sizes": list(settings.sizes), "dtypes": list(settings.dtypes),
            "alpha": settings.alpha, "repeats": settings.repeats,
            "min_repeat_s": settings.min_repeat_s, "elapsed_s": round(elapsed, 1),
            "timing": (f"Timing: warm-up, then the median of {settings.repeats} repeats, each "
                       f"looping the call until it lasts at least "
                       f"{settings.min_repeat_s * 1e3:g} ms; {how}; GPU work "
                       "synchronized. time.perf_counter."),
            "isolated": bool(args.isolate),
        },
        "impls": runner.describe(chosen),
        "results": measured["results"],
        "skipped": measured["skipped"],
    }
    contents = report.render(data)
    print_table(measured["results"])
    paths = report.write_contents(contents, folder)
    print(f"\nmeasured in {elapsed:.1f} s; wrote " + ", ".join(str(p) for p in paths))
    print_disturbance(measured["results"], prov)
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    """``fastleaky report``: the report folder from benchmark JSON."""
    from . import report

    data = report.load(args.file)
    contents = report.render(data)
    folder = _writable_folder(args.output)
    print_table(data["results"])
    paths = report.write_contents(contents, folder)
    print("wrote " + ", ".join(str(p) for p in paths))
    print_disturbance(data["results"], data.get("provenance"))
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    """``fastleaky compare``: per-cell ratios of two runs; 1 on a regression."""
    from . import compare, report

    base, new = report.load(args.base), report.load(args.new)
    result = compare.compare(base, new, args.impls, args.fail_above)
    print(compare.render(result, show_all=args.all))
    return 1 if result["failed"] else 0


def cmd_plot(args: argparse.Namespace) -> int:
    """``fastleaky plot``: LeakyReLU and its derivative to a PNG or SVG file."""
    from .figures import plot_function

    alphas = args.alpha or [0.01, 0.1, 0.3]
    out = Path(args.output)
    if out.is_dir():
        raise ValueError(f"{str(out)!r} is a folder: give a file name ending in .png or .svg")
    folder = out.parent if out.parent != Path("") else Path(".")
    if not folder.is_dir():
        raise OSError(f"cannot write {str(out)!r}: no folder {str(folder)!r}")
    if not os.access(folder, os.W_OK):
        raise OSError(f"cannot write {str(out)!r}: the folder {str(folder)!r} is read-only")
    path = plot_function(out, alphas, args.xmin, args.xmax)
    print(f"wrote {path}")
    return 0
