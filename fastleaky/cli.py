"""The ``fastleaky`` command line (also ``python -m fastleaky``)."""

from __future__ import annotations

import argparse
import decimal
import os
import sys
from collections.abc import Callable, Sequence
from typing import NoReturn, cast

import numpy as np


class _Parser(argparse.ArgumentParser):
    """Usage errors in one line on stderr, naming the command, exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _environment_problems() -> list[tuple[str, str]]:
    """(variable, why) for each FASTLEAKY_* setting that would make calls raise,
    read afresh (the registry keeps the first value it read)."""
    from . import config, registry, threads

    problems: list[tuple[str, str]] = []
    backend = os.environ.get(config.ENV_BACKEND, "").strip() or "auto"
    try:
        registry.check_name(backend)
    except (ValueError, TypeError):
        problems.append((config.ENV_BACKEND, f"{config.ENV_BACKEND}={backend!r} is not a "
                         f"fastleaky backend; valid names: {', '.join(registry.NAMES)}"))
    try:
        threads.parse_env_threads(os.environ.get(config.ENV_THREADS, ""))
    except ValueError as exc:
        problems.append((config.ENV_THREADS, str(exc)))
    return problems


def _cmd_info(args: argparse.Namespace) -> int:
    """Everything ``info`` knows, even with a bad setting: the setting is named
    at the top and left out of what follows, and the command then fails
    (exit 2, one error line per setting): every call would raise on it."""
    from . import info

    problems = _environment_problems()
    for name, _ in problems:
        os.environ.pop(name, None)
    text = info.render_text()
    if problems:
        lines = ["settings with errors (fastleaky calls raise ValueError until they are "
                 "fixed or unset; ignored below):"]
        lines += [f"  {why}" for _, why in problems]
        text = "\n".join(lines) + "\n\n" + text
    print(text, flush=True)
    for _, why in problems:
        print(f"fastleaky info: error: {why}", file=sys.stderr)
    return 2 if problems else 0


def _cmd_demo(args: argparse.Namespace) -> int:
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


def _cmd_tune(args: argparse.Namespace) -> int:
    """Measure the serial/parallel crossover here and save it for the dispatcher."""
    from . import tune

    def progress(dtype: str, n: int) -> None:
        if not args.quiet:
            print(f"  {dtype:<8} {n:>10,} elements", file=sys.stderr)

    data = tune.run(path=args.output, progress=progress)
    print(f"saved {data['path']} ({data['threads']} threads):")
    for dtype, n in data["parallel_min_elements"].items():
        m = data["measurements"][dtype]
        best = max(s / p for s, p in zip(m["serial_s"], m["parallel_s"]))
        print(f"  {dtype:<8} parallel from {n:>12,} elements (best speed-up {best:.2f}x)")
    return 0


def _cmd_torch_node(args: argparse.Namespace) -> int:
    """Build fastleaky.torch's C++ autograd node against the installed torch (once)."""
    try:
        import fastleaky.torch as ft
    except ImportError as exc:
        raise ImportError(f"needs PyTorch ({exc})") from exc
    print(ft.build_node(verbose=args.verbose))
    print(ft.node_status())
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The ``fastleaky`` command line: ``info``, ``demo``, ``bench``, ``report``,
    ``compare``, ``plot``, ``tune`` and ``torch-node``."""
    from . import __version__

    parser = _Parser(
        prog="fastleaky",
        description="LeakyReLU kernels: information, demos and comparison reports."
    )
    parser.add_argument("--version", action="version", version=f"fastleaky {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser("info", help="versions, backends and why they are (un)available")
    p.set_defaults(func=_cmd_info)

    p = sub.add_parser("demo", help="run every backend once and compare with the reference")
    p.add_argument("--size", type=whole_number, default=1_000_000,
                   help="elements, e.g. 1000 or 1e3 (default 1e6)")
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

    p = sub.add_parser(
        "torch-node",
        help="compile fastleaky.torch's C++ autograd node for the installed torch",
        description="Compiles the C++ autograd node of fastleaky.torch against the torch "
        "installed here (a C++17 compiler and ninja needed; about 20 s on two cores) into "
        "FASTLEAKY_TORCH_NODE_DIR, else ~/.cache/fastleaky/torch-node; every later "
        "`import fastleaky.torch` uses it. A build that exists is reused.",
    )
    p.add_argument("--verbose", "-v", action="store_true", help="show the compiler's output")
    p.set_defaults(func=_cmd_torch_node)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status.

    Parameters
    ----------
    argv : sequence of str, optional
        The arguments after the program name (default: ``sys.argv[1:]``).

    Returns
    -------
    int
        0 on success, 1 when ``compare`` finds a regression, 2 on an error.
    """
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra:  # named by the subcommand that was given them, not the top level
        sub = _subcommand(parser, args.command)
        sub.error(f"unrecognized arguments: {' '.join(extra)}")
    run: Callable[[argparse.Namespace], int] = args.func  # set by each subcommand
    try:
        if args.command != "info":  # info names a bad setting instead of failing on it
            _check_environment()
        return run(args)
    except (ValueError, TypeError, OSError, RuntimeError, ImportError) as exc:
        print(f"fastleaky {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except MemoryError as exc:  # e.g. demo --size 10**14: one line, no traceback
        print(f"fastleaky {args.command}: error: {exc}", file=sys.stderr)
        return 2


def _subcommand(parser: argparse.ArgumentParser, name: str) -> argparse.ArgumentParser:
    """The parser of subcommand ``name``, from the action ``add_subparsers`` made."""
    actions = parser._subparsers._group_actions if parser._subparsers is not None else []
    commands = next(a for a in actions if isinstance(a, argparse._SubParsersAction))
    return cast(argparse.ArgumentParser, commands.choices[name])  # one of build_parser's


def whole_number(text: str) -> int:
    """A count in any notation a user types: ``1000``, ``1_000``, ``1e3``,
    ``1.5e6``; exact for any size (no float rounding); >= 0.

    Raises
    ------
    argparse.ArgumentTypeError
        For anything that is not a whole number >= 0.
    """
    try:
        value = decimal.Decimal(text.strip())
    except decimal.InvalidOperation:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if not value.is_finite() or value != value.to_integral_value():
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}")
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text.strip()}")
    if value.adjusted() > 100:
        raise argparse.ArgumentTypeError(f"too large: {text!r}")
    return int(value)


def _check_environment() -> None:
    """Fail on a bad FASTLEAKY_* variable up front, not when (or if) a call reads it."""
    from . import registry, threads

    registry.default_name()
    threads.limit()
