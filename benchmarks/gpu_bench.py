"""GPU benchmark of the cuda backend against the copy limit and its peers.

    python benchmarks/gpu_bench.py [--sizes 4096,1048576,...] [--dtypes float32,float16]
                                   [--ops forward,backward] [--rounds 3]

Needs an NVIDIA GPU; uses PyTorch and CuPy (either or both) in one process,
on the same data.  For each operation, dtype and size it times, per call
(wall clock over many calls, then one synchronize, so launch overhead counts
at small sizes; the best of ``--rounds`` rounds, the cases interleaved):

- ``copy``: a device-to-device copy of ``x`` (PyTorch ``copy_``,
  ``cupy.copyto``): the bandwidth limit of a one-in, one-out kernel;
- ``fastleaky`` with PyTorch, CuPy and Numba device arrays, allocating its
  result and with ``out=``;
- the peers: ``torch.nn.functional.leaky_relu`` (forward),
  ``torch.ops.aten.leaky_relu_backward`` (backward) and a CuPy
  ``ElementwiseKernel`` (both);

and prints ``copy bw`` (the bytes it moves per second over the copy's:
1.00 = at the copy limit; a backward reads two arrays where the copy reads
one) and ``x/torch`` (time over the PyTorch peer's: < 1 is faster), then
the targets: >= 0.98x the copy at >= 16M elements (float32, float16), and a
4096-element call no slower than PyTorch's.
"""

from __future__ import annotations

import argparse
import importlib.util
import time

import numpy as np

import fastleaky

SIZES = (4096, 1 << 20, 1 << 24, 1 << 28)  # 4096, 1M, 16M, 268M
DTYPES = ("float32", "float16")
OPS = ("forward", "backward")
ALPHA = 0.01
BANDWIDTH_TARGET = 0.98
BANDWIDTH_TARGET_MIN_SIZE = 1 << 24


def _per_call(fn, sync, min_time=0.1, max_calls=20_000):
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


def _data(dtype, n):
    """(g, x) on the GPU, as PyTorch tensors or CuPy arrays, whichever is here."""
    if importlib.util.find_spec("torch"):
        import torch

        gen = torch.Generator(device="cuda").manual_seed(0)
        g, x = (torch.randn(n, device="cuda", generator=gen).to(getattr(torch, dtype))
                for _ in range(2))
        return g, x
    import cupy

    rng = cupy.random.default_rng(0)
    return tuple(rng.standard_normal(n, dtype=cupy.float32).astype(dtype) for _ in range(2))


def _torch_cases(op, g, x):
    import torch

    gt, xt = torch.as_tensor(g, device="cuda"), torch.as_tensor(x, device="cuda")
    out = torch.empty_like(xt)
    cases = {"copy (torch)": lambda: out.copy_(xt)}
    if op == "forward":
        cases.update({
            "fastleaky (torch)": lambda: fastleaky.leaky_relu(xt, ALPHA),
            "fastleaky out= (torch)": lambda: fastleaky.leaky_relu(xt, ALPHA, out=out),
            "torch": lambda: torch.nn.functional.leaky_relu(xt, ALPHA),
        })
    else:
        cases.update({
            "fastleaky (torch)": lambda: fastleaky.leaky_relu_backward(gt, xt, ALPHA),
            "fastleaky out= (torch)":
                lambda: fastleaky.leaky_relu_backward(gt, xt, ALPHA, out=out),
            "torch": lambda: torch.ops.aten.leaky_relu_backward(gt, xt, ALPHA, False),
        })
    return torch.cuda.synchronize, cases


def _cupy_cases(op, g, x):
    import cupy

    gc, xc = cupy.asarray(g), cupy.asarray(x)
    out = cupy.empty_like(xc)
    a = np.dtype(xc.dtype).type(ALPHA)
    cases = {"copy (cupy)": lambda: cupy.copyto(out, xc)}
    if op == "forward":
        kernel = cupy.ElementwiseKernel("T x, T a", "T y", "y = x > (T)0 ? x : x * a",
                                        "fastleaky_bench_forward")
        cases.update({
            "fastleaky (cupy)": lambda: fastleaky.leaky_relu(xc, ALPHA),
            "fastleaky out= (cupy)": lambda: fastleaky.leaky_relu(xc, ALPHA, out=out),
            "cupy ElementwiseKernel": lambda: kernel(xc, a, out),
        })
    else:
        kernel = cupy.ElementwiseKernel("T g, T x, T a", "T y", "y = x > (T)0 ? g : g * a",
                                        "fastleaky_bench_backward")
        cases.update({
            "fastleaky (cupy)": lambda: fastleaky.leaky_relu_backward(gc, xc, ALPHA),
            "fastleaky out= (cupy)":
                lambda: fastleaky.leaky_relu_backward(gc, xc, ALPHA, out=out),
            "cupy ElementwiseKernel": lambda: kernel(gc, xc, a, out),
        })
    return cupy.cuda.get_current_stream().synchronize, cases


def _numba_cases(op, g, x):
    from numba import cuda

    gn, xn = cuda.as_cuda_array(g), cuda.as_cuda_array(x)
    out = cuda.device_array_like(xn)
    if op == "forward":
        cases = {
            "fastleaky (numba)": lambda: fastleaky.leaky_relu(xn, ALPHA),
            "fastleaky out= (numba)": lambda: fastleaky.leaky_relu(xn, ALPHA, out=out),
        }
    else:
        cases = {
            "fastleaky (numba)": lambda: fastleaky.leaky_relu_backward(gn, xn, ALPHA),
            "fastleaky out= (numba)":
                lambda: fastleaky.leaky_relu_backward(gn, xn, ALPHA, out=out),
        }
    return cuda.synchronize, cases


def measure(op, dtype, n, rounds):
    """{case name: seconds per call}, the best of ``rounds`` interleaved rounds."""
    g, x = _data(dtype, n)
    timed = []
    for provider, module in ((_torch_cases, "torch"), (_cupy_cases, "cupy"),
                             (_numba_cases, "numba")):
        if importlib.util.find_spec(module) is None:
            continue
        try:
            sync, cases = provider(op, g, x)
        except Exception as exc:  # a library without this dtype, out of memory
            print(f"  {module}: skipped ({type(exc).__name__}: {exc})")
            continue
        timed.extend((name, fn, sync) for name, fn in cases.items())
    best: dict[str, float] = {}
    for _ in range(rounds):
        for name, fn, sync in timed:
            try:
                t = _per_call(fn, sync)
            except Exception as exc:
                print(f"  {name}: failed ({type(exc).__name__}: {exc})")
                continue
            best[name] = min(best.get(name, t), t)
    return best


def report(op, dtype, n, times):
    arity = 2 if op == "backward" else 1
    itemsize = np.dtype(dtype).itemsize
    copy = times.get("copy (torch)", times.get("copy (cupy)"))
    peer = times.get("torch")
    print(f"\n{op} {dtype} n={n:,}")
    print(f"  {'':26s} {'us/call':>10s} {'GB/s':>8s} {'copy bw':>8s} {'x/torch':>8s}")
    for name, t in times.items():
        moved = (1 if name.startswith("copy") else arity) * n * itemsize + n * itemsize
        ratio = f"{moved / t / (2 * n * itemsize / copy):8.3f}" if copy else "     n/a"
        vs_peer = f"{t / peer:8.3f}" if peer else "     n/a"
        print(f"  {name:26s} {t * 1e6:10.2f} {moved / t / 1e9:8.1f} {ratio} {vs_peer}")


def targets(results) -> list[str]:
    """One line per target: what was measured and whether it is met."""
    lines = []
    for (op, dtype, n), times in sorted(results.items()):
        arity = 2 if op == "backward" else 1
        copy = times.get("copy (torch)", times.get("copy (cupy)"))
        if n >= BANDWIDTH_TARGET_MIN_SIZE and copy:
            for name, t in times.items():
                if name.startswith("fastleaky out="):
                    ratio = (arity + 1) / 2 * copy / t
                    verdict = "met" if ratio >= BANDWIDTH_TARGET else "MISSED"
                    lines.append(f"{op} {dtype} n={n:,} {name}: {ratio:.3f}x the copy "
                                 f"(target {BANDWIDTH_TARGET}x) {verdict}")
        if n == 4096 and "torch" in times:
            for name in ("fastleaky (torch)", "fastleaky out= (torch)"):
                if name in times:
                    ratio = times[name] / times["torch"]
                    verdict = "met" if ratio <= 1.0 else "MISSED"
                    lines.append(f"{op} {dtype} n=4,096 {name}: {ratio:.3f}x the time of "
                                 f"torch (target <= 1) {verdict}")
    return lines


def run(sizes, dtypes, op_names, rounds):
    cuda = [b for b in fastleaky.backends() if b.name == "cuda"][0]
    print(f"fastleaky {fastleaky.__version__}; cuda backend: {cuda.reason}")
    results = {}
    for op in op_names:
        for dtype in dtypes:
            for n in sizes:
                results[(op, dtype, n)] = times = measure(op, dtype, n, rounds)
                report(op, dtype, n, times)
    print("\ntargets:")
    for line in targets(results):
        print("  " + line)
    return results


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default=",".join(map(str, SIZES)))
    parser.add_argument("--dtypes", default=",".join(DTYPES))
    parser.add_argument("--ops", default=",".join(OPS))
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    cuda = [b for b in fastleaky.backends() if b.name == "cuda"][0]
    if not cuda.available:
        raise SystemExit(f"the cuda backend cannot run here: {cuda.reason}")
    run([int(s) for s in args.sizes.split(",")], args.dtypes.split(","),
        args.ops.split(","), args.rounds)


if __name__ == "__main__":
    main()
