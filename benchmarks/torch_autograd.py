"""fastleaky.torch against torch's own LeakyReLU: forward + backward, and an MLP training step.

    python benchmarks/torch_autograd.py [--sizes 1024,32768,262144,1e7] [--batches 32,256,2048]
                                        [--repeats 7] [--threads 2] [--compile] [--slope 0.2]

One process, the implementations interleaved repeat by repeat (so that
load from anything else on the machine hits them alike).  Each repeat
times a block of calls; the best and the median block per call are
printed, with the ratio ``torch time / fastleaky time`` (above 1: fastleaky
is faster).  Both use ``--threads`` threads (``torch.set_num_threads`` and
``fastleaky.thread_limit``).

- forward + backward: ``f(x).backward(g)`` on a float32 leaf of each size;
- training step: an MLP 512 -> 1024 -> 1024 -> 1 with two LeakyReLU
  layers, mean-squared loss, SGD, at each batch size;
- ``--compile``: the same step with ``torch.compile(fullgraph=True)`` on
  each model (compilation happens in the warm-up, outside the timing).
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F

import fastleaky
import fastleaky.torch as ft


def _interleaved(cases: dict, repeats: int, calls: int) -> dict:
    """{name: per-call seconds of each repeat}, the cases run in turn."""
    for run in cases.values():  # warm up: first-touch page faults, lazy loading, compiling
        for _ in range(3):
            run()
    times = {name: [] for name in cases}
    for _ in range(repeats):
        for name, run in cases.items():
            t0 = time.perf_counter()
            for _ in range(calls):
                run()
            times[name].append((time.perf_counter() - t0) / calls)
    return times


def _report(title: str, times: dict) -> None:
    (tname, tt), (fname, ff) = times.items()
    best_t, best_f = min(tt), min(ff)
    print(f"{title:>26}  torch {best_t * 1e6:10.1f} us (median {statistics.median(tt) * 1e6:10.1f})"
          f"  fastleaky {best_f * 1e6:10.1f} us (median {statistics.median(ff) * 1e6:10.1f})"
          f"  speed ratio {best_t / best_f:5.2f} (median {statistics.median(tt) / statistics.median(ff):5.2f})"
          f"  difference {(best_f - best_t) * 1e6:+8.1f} us")


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
        times = _interleaved({"torch": step(F.leaky_relu), "fastleaky": step(ft.leaky_relu)},
                             repeats, calls)
        _report(f"fwd+bwd {n:,}", times)


def _mlp(activation, slope):
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Linear(512, 1024), activation(slope),
        torch.nn.Linear(1024, 1024), activation(slope),
        torch.nn.Linear(1024, 1),
    )


def training_step(batches, repeats, slope, compile_: bool) -> None:
    for batch in batches:
        gen = torch.Generator().manual_seed(1)
        data = torch.randn(batch, 512, generator=gen)
        target = torch.randn(batch, 1, generator=gen)
        cases = {}
        for name, activation in (("torch", torch.nn.LeakyReLU), ("fastleaky", ft.LeakyReLU)):
            model = _mlp(activation, slope)
            opt = torch.optim.SGD(model.parameters(), lr=1e-4)
            forward = torch.compile(model, fullgraph=True) if compile_ else model

            def run(model=model, opt=opt, forward=forward):
                opt.zero_grad(set_to_none=True)
                F.mse_loss(forward(data), target).backward()
                opt.step()
            cases[name] = run
        calls = max(10, min(100, 200_000 // batch))
        times = _interleaved(cases, repeats, calls)
        _report(f"{'compiled ' if compile_ else ''}MLP step, batch {batch}", times)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1024,32768,262144,1e7")
    parser.add_argument("--batches", default="32,256,2048")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--slope", type=float, default=0.2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--compile", action="store_true",
                        help="also time the training step under torch.compile(fullgraph=True)")
    args = parser.parse_args(argv)

    def ints(text):
        return [int(float(v)) for v in text.split(",") if v]

    torch.set_num_threads(args.threads)
    cython = {b.name: b.reason for b in fastleaky.backends()}.get("cython", "")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} intra-op threads; "
          f"fastleaky {fastleaky.__version__} on {args.threads} threads (cython: {cython}); "
          f"float32, slope {args.slope}, best of {args.repeats} interleaved repeats")
    with fastleaky.thread_limit(args.threads):
        forward_backward(ints(args.sizes), args.repeats, args.slope)
        training_step(ints(args.batches), args.repeats, args.slope, False)
        if args.compile:
            training_step(ints(args.batches), args.repeats, args.slope, True)


if __name__ == "__main__":
    main()
