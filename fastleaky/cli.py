"""The ``fastleaky`` command line (also ``python -m fastleaky``)."""

from __future__ import annotations

import argparse
import sys

import numpy as np


def _cmd_info(args) -> int:
    from . import info

    print(info.render_text())
    return 0


def _cmd_demo(args) -> int:
    """Apply every available backend to one array and check it against the reference."""
    import time

    import fastleaky
    from fastleaky import cases, reference

    # the API's checks first: the reference itself accepts any alpha
    fastleaky.leaky_relu(np.zeros(1, args.dtype), args.alpha)
    x = cases.sample(args.dtype, args.size)
    expected = reference.leaky_relu(x, args.alpha)
    print(f"leaky_relu on {args.size:,} {args.dtype} values, alpha={args.alpha}\n")
    print(f"{'backend':<16}{'available':<11}{'bit-exact':<11}{'ms':>9}  reason")
    for b in fastleaky.backends():
        if not b.available or b.device != "cpu":
            print(f"{b.name:<16}{'no':<11}{'-':<11}{'-':>9}  {b.reason}")
            continue
        got = fastleaky.leaky_relu(x, args.alpha, backend=b.name)  # warm-up / compile
        start = time.perf_counter()
        got = fastleaky.leaky_relu(x, args.alpha, backend=b.name)
        ms = (time.perf_counter() - start) * 1e3
        bits = np.dtype(f"u{x.dtype.itemsize}")
        exact = np.array_equal(got.view(bits), expected.view(bits))
        print(f"{b.name:<16}{'yes':<11}{'yes' if exact else 'NO':<11}{ms:>9.3f}  {b.reason}")
    return 0


def _cmd_tune(args) -> int:
    """Measure the serial/parallel crossover here and save it for the dispatcher."""
    from . import tune

    def progress(dtype, n):
        if not args.quiet:
            print(f"  {dtype:<8} {n:>10,} elements", file=sys.stderr)

    data = tune.run(path=args.output, progress=progress)
    print(f"saved {data['path']} ({data['threads']} threads):")
    for dtype, n in data["parallel_min_elements"].items():
        m = data["measurements"][dtype]
        best = max(s / p for s, p in zip(m["serial_s"], m["parallel_s"]))
        print(f"  {dtype:<8} parallel from {n:>12,} elements (best speed-up {best:.2f}x)")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fastleaky",
        description="LeakyReLU kernels: information, demos and comparison reports."
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser("info", help="versions, backends and why they are (un)available")
    p.set_defaults(func=_cmd_info)

    p = sub.add_parser("demo", help="run every backend once and compare with the reference")
    p.add_argument("--size", type=_count, default=1_000_000, help="elements (default 1e6)")
    p.add_argument("--dtype", choices=["float16", "float32", "float64"], default="float32")
    p.add_argument("--alpha", type=float, default=0.01)
    p.set_defaults(func=_cmd_demo)

    from .bench import command as bench_command

    bench_command.add_commands(sub)

    p = sub.add_parser(
        "tune",
        help="measure where multi-threading starts to pay off here and save it",
        description="Times the Cython loops on one thread and on all threads at sizes "
        "from 1,024 to 4M elements and saves the crossover per dtype to the tune file "
        "(FASTLEAKY_TUNE_FILE, else ~/.cache/fastleaky/tune.json), which the dispatcher "
        "reads from then on. `fastleaky info` shows the thresholds in force.",
    )
    p.add_argument("--output", "-o", default=None, help="write here instead of the tune file")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress lines")
    p.set_defaults(func=_cmd_tune)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        _check_environment()
        return args.func(args)
    except (ValueError, TypeError, OSError, RuntimeError, ImportError) as exc:
        print(f"fastleaky {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except MemoryError as exc:  # e.g. demo --size 10**14: one line, no traceback
        print(f"fastleaky {args.command}: error: {exc}", file=sys.stderr)
        return 2


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def _check_environment() -> None:
    """Fail on a bad FASTLEAKY_* variable up front, not when (or if) a call reads it."""
    from . import registry, threads

    registry.default_name()
    threads.limit()
