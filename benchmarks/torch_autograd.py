"""fastleaky.torch.leaky_relu vs torch.nn.functional.leaky_relu, forward + backward.

    python benchmarks/torch_autograd.py [--size 1e7] [--repeats 15] [--dtype float32] [--threads N]

One process, the two implementations interleaved repeat by repeat (so that
load from anything else on the machine hits both alike); prints the median
and min of each, and the thread counts in use.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F

import fastleaky
import fastleaky.torch as ft


def _forward_backward(func, x, g):
    x.grad = None
    t0 = time.perf_counter()
    func(x).backward(g)
    return time.perf_counter() - t0


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=lambda s: int(float(s)), default=10_000_000)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--dtype", default="float32", choices=["float16", "float32", "float64"])
    parser.add_argument("--slope", type=float, default=0.01)
    parser.add_argument("--threads", type=int, default=None,
                        help="threads for both (torch.set_num_threads, fastleaky.thread_limit)")
    args = parser.parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
        with fastleaky.thread_limit(args.threads):
            return _run(args)
    return _run(args)


def _run(args):
    dtype = getattr(torch, args.dtype)
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(args.size, generator=gen).to(dtype).requires_grad_()
    g = torch.randn(args.size, generator=gen).to(dtype)
    impls = {
        "fastleaky.torch.leaky_relu": lambda t: ft.leaky_relu(t, args.slope),
        "torch.nn.functional.leaky_relu": lambda t: F.leaky_relu(t, args.slope),
    }
    for func in impls.values():  # warm up: first-touch page faults, lazy loading
        _forward_backward(func, x, g)
    times = {name: [] for name in impls}
    for _ in range(args.repeats):
        for name, func in impls.items():
            times[name].append(_forward_backward(func, x, g))

    cython = {b.name: b.reason for b in fastleaky.backends()}.get("cython", "")
    print(f"{args.size:.0e} {args.dtype} elements, slope {args.slope}, forward + backward, "
          f"{args.repeats} interleaved repeats")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} intra-op threads; "
          f"fastleaky {fastleaky.__version__} (auto -> cython: {cython})")
    nbytes = x.element_size() * args.size
    # forward reads x, writes y; backward reads g and x, writes grad_input
    traffic = 5 * nbytes
    for name, ts in times.items():
        med = statistics.median(ts)
        print(f"  {name:32s} median {med * 1e3:7.2f} ms  min {min(ts) * 1e3:7.2f} ms  "
              f"({traffic / med / 1e9:5.1f} GB/s effective at the median)")


if __name__ == "__main__":
    main()
