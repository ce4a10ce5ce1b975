"""GPU benchmark of the cuda backend against the copy limit and its peers.

    python benchmarks/gpu_bench.py [--sizes 4096,1048576,...] [--dtypes float32,...]

Needs an NVIDIA GPU; uses CuPy and/or PyTorch where installed.  For each
dtype and size it times, per call (wall clock over many calls, then one
synchronize, so launch overhead counts at small sizes):

- ``copy``: device-to-device copy of the input (``torch`` ``copy_`` or
  ``cupy.copyto``), the bandwidth limit of a one-in, one-out kernel;
- ``fastleaky`` with CuPy, PyTorch and Numba device-array input;
- ``torch.nn.functional.leaky_relu`` and a CuPy ``ElementwiseKernel``;

and prints ratios: ``copy/x`` (1.00 = at the copy limit) and
``x/torch`` (< 1 = faster than torch's leaky_relu).
"""

from __future__ import annotations

import argparse
import importlib.util
import time

import numpy as np

import fastleaky

SIZES = (4096, 1 << 20, 1 << 24, 1 << 28)  # 4096, 1M, 16M, 268M
DTYPES = ("float32", "float16", "float64")
ALPHA = 0.01


def _per_call(fn, sync, min_time=0.2, max_calls=10_000):
    fn()
    sync()
    calls = 1
    while True:
        sync()
        start = time.perf_counter()
        for _ in range(calls):
            fn()
        sync()
        elapsed = time.perf_counter() - start
        if elapsed >= min_time or calls >= max_calls:
            return elapsed / calls
        calls = min(max_calls, calls * max(2, int(min_time / max(elapsed, 1e-6))))


def _cupy_cases(dtype, n):
    import cupy

    x = cupy.asarray(np.random.default_rng(0).standard_normal(n).astype(dtype))
    out = cupy.empty_like(x)
    alpha = np.dtype(dtype).type(ALPHA)
    kernel = cupy.ElementwiseKernel("T x, T a", "T y", "y = x > (T)0 ? x : x * a",
                                    "fastleaky_bench_leaky_relu")
    sync = cupy.cuda.get_current_stream().synchronize
    return sync, {
        "copy (cupy)": lambda: cupy.copyto(out, x),
        "fastleaky (cupy)": lambda: fastleaky.leaky_relu(x, ALPHA),
        "fastleaky out= (cupy)": lambda: fastleaky.leaky_relu(x, ALPHA, out=out),
        "cupy ElementwiseKernel": lambda: kernel(x, alpha, out),
    }


def _torch_cases(dtype, n):
    import torch

    x = torch.randn(n, device="cuda").to(getattr(torch, dtype))
    out = torch.empty_like(x)
    sync = torch.cuda.synchronize
    return sync, {
        "copy (torch)": lambda: out.copy_(x),
        "fastleaky (torch)": lambda: fastleaky.leaky_relu(x, ALPHA),
        "torch leaky_relu": lambda: torch.nn.functional.leaky_relu(x, ALPHA),
    }


def _numba_cases(dtype, n):
    from numba import cuda

    x = cuda.to_device(np.random.default_rng(0).standard_normal(n).astype(dtype))
    out = cuda.device_array_like(x)
    return cuda.synchronize, {
        "fastleaky (numba)": lambda: fastleaky.leaky_relu(x, ALPHA),
        "fastleaky out= (numba)": lambda: fastleaky.leaky_relu(x, ALPHA, out=out),
    }


def run(sizes, dtypes):
    providers = [_numba_cases]
    if importlib.util.find_spec("cupy"):
        providers.append(_cupy_cases)
    if importlib.util.find_spec("torch"):
        providers.append(_torch_cases)
    print(f"fastleaky {fastleaky.__version__}; cuda backend: "
          f"{[b.reason for b in fastleaky.backends() if b.name == 'cuda'][0]}")
    for dtype in dtypes:
        for n in sizes:
            times = {}
            for provider in providers:
                try:
                    sync, cases = provider(dtype, n)
                except Exception as exc:  # a library missing a dtype, out of memory
                    print(f"  {provider.__name__[1:-6]}: skipped ({type(exc).__name__}: {exc})")
                    continue
                for name, fn in cases.items():
                    try:
                        times[name] = _per_call(fn, sync)
                    except Exception as exc:
                        print(f"  {name}: failed ({type(exc).__name__}: {exc})")
                del cases
            copy = times.get("copy (torch)", times.get("copy (cupy)"))
            torch_time = times.get("torch leaky_relu")
            nbytes = 2 * n * np.dtype(dtype).itemsize
            print(f"\n{dtype} n={n:,}")
            print(f"  {'':28s} {'us/call':>10s} {'GB/s':>8s} {'copy/x':>7s} {'x/torch':>8s}")
            for name, t in times.items():
                ratio_copy = f"{copy / t:7.2f}" if copy else "    n/a"
                ratio_torch = f"{t / torch_time:8.2f}" if torch_time else "     n/a"
                print(f"  {name:28s} {t * 1e6:10.2f} {nbytes / t / 1e9:8.1f} "
                      f"{ratio_copy} {ratio_torch}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default=",".join(map(str, SIZES)))
    parser.add_argument("--dtypes", default=",".join(DTYPES))
    args = parser.parse_args(argv)
    ok, reason = [(b.available, b.reason) for b in fastleaky.backends() if b.name == "cuda"][0]
    if not ok:
        raise SystemExit(f"the cuda backend cannot run here: {reason}")
    run([int(s) for s in args.sizes.split(",")], args.dtypes.split(","))


if __name__ == "__main__":
    main()
