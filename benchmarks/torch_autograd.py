"""fastleaky.torch against torch's own LeakyReLU: forward + backward, and an MLP training step.

    python benchmarks/torch_autograd.py [--sizes 1024,32768,262144,1e7] [--batches 32,256,2048]
                                        [--repeats 7] [--threads 2] [--compile] [--slope 0.2]
                                        [--in-process]

Each case (a size, a batch) runs in a fresh process of its own, and in
it the implementations are interleaved repeat by repeat (so that load from
anything else on the machine hits them alike).  A process of its own,
because the memory allocator's state depends on what ran before: after the
smaller sizes, glibc's malloc was seen handing each 1 MiB result back to
the system and mapping it again at the next call -- about 500 page faults
per call for both libraries, which then timed the page faults instead of
the kernels.  ``--in-process`` runs every case in this process instead.
Each repeat times a block of calls; the best and the median block per
call are printed, with the ratio ``torch time / fastleaky time`` (above 1:
fastleaky is faster) and the minor page faults per call of each.  Both use
``--threads`` threads (``torch.set_num_threads`` and
``fastleaky.thread_limit``).

- forward + backward: ``f(x).backward(g)`` on a float32 leaf of each size;
- training step: an MLP 512 -> 1024 -> 1024 -> 1 with two LeakyReLU
  layers, mean-squared loss, SGD, at each batch size (both models share
  their Linear layers: only the activations differ);
- ``--compile``: the same step with ``torch.compile(fullgraph=True)`` on
  each model (compilation happens in the warm-up, outside the timing).
"""

from __future__ import annotations

import argparse
import resource
import statistics
import subprocess
import sys
import time

import torch
import torch.nn.functional as F

import fastleaky
import fastleaky.torch as ft


def _minor_faults() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def _interleaved(cases: dict, repeats: int, calls: int) -> tuple[dict, dict]:
    """{name: per-call seconds of each repeat}, {name: minor page faults per
    call}, the cases run in turn."""
    for run in cases.values():  # warm up: first-touch page faults, lazy loading, compiling
        for _ in range(3):
            run()
    times: dict = {name: [] for name in cases}
    faults = dict.fromkeys(cases, 0)
    for _ in range(repeats):
        for name, run in cases.items():
            f0 = _minor_faults()
            t0 = time.perf_counter()
            for _ in range(calls):
                run()
            times[name].append((time.perf_counter() - t0) / calls)
            faults[name] += _minor_faults() - f0
    return times, {name: count / (repeats * calls) for name, count in faults.items()}


def _report(title: str, measured: tuple[dict, dict]) -> None:
    times, faults = measured
    (tname, tt), (fname, ff) = times.items()
    best_t, best_f = min(tt), min(ff)
    print(f"{title:>26}  torch {best_t * 1e6:10.1f} us (median {statistics.median(tt) * 1e6:10.1f})"
          f"  fastleaky {best_f * 1e6:10.1f} us (median {statistics.median(ff) * 1e6:10.1f})"
          f"  speed ratio {best_t / best_f:5.2f} (median {statistics.median(tt) / statistics.median(ff):5.2f})"
          f"  difference {(best_f - best_t) * 1e6:+8.1f} us"
          f"  page faults/call {faults[tname]:.1f} / {faults[fname]:.1f}", flush=True)


def forward_backward(sizes, repeats, slope) -> None:
    gen = torch.Generator().manual_seed(0)
    for n in sizes:
        x = torch.randn(n, generator=gen).requires_grad_()
        g = torch.randn(n, generator=gen)

        def step(func):
            def run():
                x.grad = None
                func(x, slope).backward(g)
            return run

        # blocks of at least 20 calls: the first call after the other library's
        # block pays for waking the thread pool, which is not the steady state
        calls = max(20, min(200, 20_000_000 // (20 * n)))
        _report(f"fwd+bwd {n:,}", _interleaved(
            {"torch": step(F.leaky_relu), "fastleaky": step(ft.leaky_relu)}, repeats, calls))


def _linears():
    torch.manual_seed(0)
    return torch.nn.Linear(512, 1024), torch.nn.Linear(1024, 1024), torch.nn.Linear(1024, 1)


def training_step(batches, repeats, slope, compile_: bool) -> None:
    for batch in batches:
        gen = torch.Generator().manual_seed(1)
        data = torch.randn(batch, 512, generator=gen)
        target = torch.randn(batch, 1, generator=gen)
        # One set of Linear layers and one optimizer for both models: they
        # differ only in their activations, and their matrix products run
        # on the same memory (with separate weights the two models' page
        # faults per step differed by up to 400 at batch 2048, which has
        # nothing to do with the activations).
        first, hidden, last = _linears()
        opt = torch.optim.SGD([*first.parameters(), *hidden.parameters(), *last.parameters()],
                              lr=1e-4)
        cases = {}
        for name, activation in (("torch", torch.nn.LeakyReLU), ("fastleaky", ft.LeakyReLU)):
            model = torch.nn.Sequential(first, activation(slope), hidden, activation(slope), last)
            forward = torch.compile(model, fullgraph=True) if compile_ else model

            def run(forward=forward):
                opt.zero_grad(set_to_none=True)
                F.mse_loss(forward(data), target).backward()
                opt.step()
            cases[name] = run
        calls = max(10, min(100, 200_000 // batch))
        _report(f"{'compiled ' if compile_ else ''}MLP step, batch {batch}",
                _interleaved(cases, repeats, calls))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1024,32768,262144,1e7")
    parser.add_argument("--batches", default="32,256,2048")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--slope", type=float, default=0.2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--compile", action="store_true",
                        help="also time the training step under torch.compile(fullgraph=True)")
    parser.add_argument("--in-process", action="store_true",
                        help="run every case in this process instead of one fresh process each")
    parser.add_argument("--quiet", action="store_true", help=argparse.SUPPRESS)  # no header line
    parser.add_argument("--compile-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    def ints(text):
        return [int(float(v)) for v in text.split(",") if v]

    if not args.in_process:
        common = ["--repeats", str(args.repeats), "--slope", str(args.slope),
                  "--threads", str(args.threads), "--in-process"]
        cases = ([["--sizes", str(n), "--batches", ""] for n in ints(args.sizes)]
                 + [["--sizes", "", "--batches", str(b)] for b in ints(args.batches)]
                 + [["--sizes", "", "--batches", str(b), "--compile-only"] for b in
                    (ints(args.batches) if args.compile else [])])
        for i, case in enumerate(cases):
            subprocess.run([sys.executable, __file__, *case, *common]
                           + ([] if i == 0 else ["--quiet"]), check=True)
        return

    torch.set_num_threads(args.threads)
    if not args.quiet:
        cython = {b.name: b.reason for b in fastleaky.backends()}.get("cython", "")
        print(f"torch {torch.__version__}, {torch.get_num_threads()} intra-op threads; "
              f"fastleaky {fastleaky.__version__} on {args.threads} threads (cython: {cython}); "
              f"torch path: {ft.node_status()}; float32, slope {args.slope}, "
              f"best of {args.repeats} interleaved repeats", flush=True)
    with fastleaky.thread_limit(args.threads):
        forward_backward(ints(args.sizes), args.repeats, args.slope)
        if not args.compile_only:
            training_step(ints(args.batches), args.repeats, args.slope, False)
        if args.compile or args.compile_only:
            training_step(ints(args.batches), args.repeats, args.slope, True)


if __name__ == "__main__":
    main()
