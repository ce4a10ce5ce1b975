"""fastleaky's parallel calls on a machine that is not quiet: median and tail.

    python benchmarks/under_load.py [--sizes 1e6,1e7] [--busy 0,1,2] [--calls 30]
                                    [--batches 6] [--compare openmp,numba-parallel,torch]
                                    [--skip torch,dask] [--json PATH]

Three parts, each in this one process:

- co-tenant load: for each count of ``--busy`` processes (started here,
  each spinning on one core, stopped at the end of its part), every case
  runs ``--batches`` batches of ``--calls`` calls of ``leaky_relu(x,
  out=o)`` on float32, the cases interleaved batch by batch; each call is
  timed alone.  Cases: ``auto`` (the default backend), ``serial``
  (``thread_limit(1)``) and those of ``--compare``: ``openmp`` (the Cython
  loops on their OpenMP team instead of TBB), ``numba-parallel``, ``torch``
  (``torch._C._nn.leaky_relu(x, out=o)``, the ATen op behind ``F.leaky_relu``, on tensors sharing the
  memory).  Reported per case: median, p95 and worst call in GB/s (bytes
  read and written / time) and the p95 call time over ``serial``'s;
- next to PyTorch: at 2**24 elements, torch's ``copy_``, a small MLP
  training step or ``leaky_relu(out=)`` runs before each fastleaky call
  and each torch ``leaky_relu(out=)`` call, the two timed alike; reported:
  the median call of each and fastleaky's speed over torch's;
- nested parallelism: dask's threaded scheduler (2 workers) over 64 chunks
  of 1e6 float32 with fastleaky's default threads, with ``thread_limit(1)``
  in each task, and on dask's synchronous scheduler; the best and median of
  5 runs each.

No result is asserted: the figures are for reading (docs/design-measurements.md).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import time

import numpy as np

import fastleaky

_SPIN = "import os\nos.nice(0)\nwhile True:\n    pass\n"


@contextlib.contextmanager
def busy_processes(count: int):
    """``count`` processes spinning on a core each, for the duration."""
    procs = [subprocess.Popen([sys.executable, "-c", _SPIN]) for _ in range(count)]
    try:
        time.sleep(0.3 if count else 0)  # let the scheduler see them
        yield
    finally:
        for proc in procs:
            proc.kill()
        for proc in procs:
            proc.wait()


def _loadavg() -> str:
    try:
        with open("/proc/loadavg") as f:
            return " ".join(f.read().split()[:3])
    except OSError:
        return "n/a"


@contextlib.contextmanager
def _cython_on_openmp():
    from fastleaky._backends import _cython_loop, _tbb_pool

    _cython_loop.use_pool(None, 0)
    try:
        yield
    finally:
        _cython_loop.use_pool(_tbb_pool.parallel_for(), _tbb_pool.concurrency())


def _cases(x: np.ndarray, o: np.ndarray, compare: list[str]) -> dict:
    """name -> a function making one call."""
    cases = {
        "auto": lambda: fastleaky.leaky_relu(x, out=o),
        "serial": lambda: _serial(x, o),
    }
    if "openmp" in compare:
        from fastleaky._backends import cython_backend

        if cython_backend.pool() == "tbb":
            def openmp():
                with _cython_on_openmp():
                    fastleaky.leaky_relu(x, out=o, backend="cython")
            cases["openmp"] = openmp
    if "numba-parallel" in compare:
        cases["numba-parallel"] = lambda: fastleaky.leaky_relu(x, out=o, backend="numba-parallel")
    if "torch" in compare:
        try:
            import torch
        except ImportError:
            pass
        else:
            tx, to = torch.from_numpy(x), torch.from_numpy(o)
            cases["torch"] = lambda: torch._C._nn.leaky_relu(tx, 0.01, out=to)
    return cases


def _serial(x, o):
    with fastleaky.thread_limit(1):
        fastleaky.leaky_relu(x, out=o)


def co_tenant(sizes, busy_counts, calls, batches, compare) -> list[dict]:
    rows = []
    for busy in busy_counts:
        for n in sizes:
            x = np.random.default_rng(0).standard_normal(n).astype(np.float32)
            o = np.empty_like(x)
            cases = _cases(x, o, compare)
            for run in cases.values():  # warm up: page faults, compiling, threads
                for _ in range(5):
                    run()
            times = {name: [] for name in cases}
            load_before = _loadavg()
            with busy_processes(busy):
                for _ in range(batches):
                    for name, run in cases.items():
                        time.sleep(0.01)  # the previous case's threads go idle
                        for _ in range(calls):
                            t0 = time.perf_counter()
                            run()
                            times[name].append(time.perf_counter() - t0)
            nbytes = 2 * x.nbytes
            serial_p95 = float(np.percentile(times["serial"], 95))
            for name, t in times.items():
                t = np.asarray(t)
                p95 = float(np.percentile(t, 95))
                rows.append({
                    "part": "co-tenant", "busy": busy, "n": n, "case": name,
                    "median_gbs": nbytes / float(np.median(t)) / 1e9,
                    "p95_gbs": nbytes / p95 / 1e9,
                    "worst_gbs": nbytes / float(t.max()) / 1e9,
                    "p95_over_serial": p95 / serial_p95,
                    "load_before": load_before, "load_after": _loadavg(),
                })
    return rows


def next_to_torch(n: int, repeats: int) -> list[dict]:
    import torch

    rows = []
    for dtype in (np.float32, np.float64):
        x = np.random.default_rng(1).standard_normal(n).astype(dtype)
        o = np.empty_like(x)
        tx, to = torch.from_numpy(x), torch.from_numpy(o)
        scratch = torch.empty_like(tx)
        tdtype = tx.dtype
        model = torch.nn.Sequential(torch.nn.Linear(256, 512), torch.nn.ReLU(),
                                    torch.nn.Linear(512, 1)).to(tdtype)
        opt = torch.optim.SGD(model.parameters(), lr=1e-3)
        batch = torch.randn(512, 256, dtype=tdtype)

        def step():
            opt.zero_grad()
            model(batch).square().mean().backward()
            opt.step()

        neighbours = {
            "copy_": lambda: scratch.copy_(tx),
            "leaky_relu(out=)": lambda: torch._C._nn.leaky_relu(tx, 0.01, out=scratch),
            "model step": step,
        }
        contenders = {
            "fastleaky": lambda: fastleaky.leaky_relu(x, out=o),
            "torch": lambda: torch._C._nn.leaky_relu(tx, 0.01, out=to),
        }
        for label, neighbour in neighbours.items():
            times = {name: [] for name in contenders}
            for _ in range(3):
                for run in contenders.values():
                    neighbour()
                    run()
            for _ in range(repeats):
                for name, run in contenders.items():
                    neighbour()
                    t0 = time.perf_counter()
                    run()
                    times[name].append(time.perf_counter() - t0)
            fl_t = statistics.median(times["fastleaky"])
            torch_t = statistics.median(times["torch"])
            rows.append({
                "part": "next to torch", "n": n, "dtype": np.dtype(dtype).name,
                "neighbour": label, "fastleaky_ms": fl_t * 1e3, "torch_ms": torch_t * 1e3,
                "speed_over_torch": torch_t / fl_t, "load": _loadavg(),
            })
    return rows


def nested_dask(chunks: int, chunk: int, runs: int) -> list[dict]:
    import dask
    import dask.array as da

    x = np.random.default_rng(2).standard_normal(chunks * chunk).astype(np.float32)
    arr = da.from_array(x, chunks=chunk)

    def serial_block(b):
        with fastleaky.thread_limit(1):
            return fastleaky.leaky_relu(b)

    variants = {
        "threads (2), fastleaky default": (fastleaky.leaky_relu, "threads"),
        "threads (2), thread_limit(1)": (serial_block, "threads"),
        "synchronous, fastleaky default": (fastleaky.leaky_relu, "synchronous"),
    }
    times = {name: [] for name in variants}
    graphs = {name: arr.map_blocks(f, dtype=x.dtype).to_delayed().ravel()
              for name, (f, _) in variants.items()}
    for i in range(runs + 1):
        for name, (_, scheduler) in variants.items():
            t0 = time.perf_counter()
            dask.compute(*graphs[name], scheduler=scheduler, num_workers=2)
            if i:  # the first run warms up
                times[name].append(time.perf_counter() - t0)
    base = statistics.median(times["threads (2), thread_limit(1)"])
    return [{"part": "nested (dask)", "variant": name, "best_ms": min(t) * 1e3,
             "median_ms": statistics.median(t) * 1e3,
             "median_over_thread_limit_1": statistics.median(t) / base, "load": _loadavg()}
            for name, t in times.items()]


def _print(rows: list[dict]) -> None:
    part = None
    for row in rows:
        if row["part"] != part:
            part = row["part"]
            print(f"\n== {part}")
        if part == "co-tenant":
            print(f"busy={row['busy']} n={row['n']:.0e} {row['case']:15s} "
                  f"median {row['median_gbs']:6.1f} GB/s  p95 {row['p95_gbs']:6.1f}  "
                  f"worst {row['worst_gbs']:6.2f}  p95 time / serial's {row['p95_over_serial']:5.2f}"
                  f"   load {row['load_before']} -> {row['load_after']}")
        elif part == "next to torch":
            print(f"{row['dtype']:8s} after {row['neighbour']:17s} fastleaky "
                  f"{row['fastleaky_ms']:7.2f} ms  torch {row['torch_ms']:7.2f} ms  "
                  f"fastleaky speed / torch's {row['speed_over_torch']:5.2f}   load {row['load']}")
        else:
            print(f"{row['variant']:32s} best {row['best_ms']:7.1f} ms  median "
                  f"{row['median_ms']:7.1f} ms  / thread_limit(1)'s "
                  f"{row['median_over_thread_limit_1']:5.2f}   load {row['load']}")


def _list(text: str) -> list[str]:
    return [s for s in text.split(",") if s]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1e6,1e7")
    parser.add_argument("--busy", default="0,1,2", help="co-tenant process counts")
    parser.add_argument("--calls", type=int, default=30, help="calls per batch")
    parser.add_argument("--batches", type=int, default=6)
    parser.add_argument("--compare", default="openmp,numba-parallel,torch",
                        help="extra co-tenant cases (openmp, numba-parallel, torch)")
    parser.add_argument("--skip", default="", help="parts to skip: co-tenant, torch, dask")
    parser.add_argument("--torch-size", type=int, default=2**24)
    parser.add_argument("--torch-repeats", type=int, default=30)
    parser.add_argument("--dask-chunks", type=int, default=64)
    parser.add_argument("--dask-chunk", type=int, default=1_000_000)
    parser.add_argument("--dask-runs", type=int, default=5)
    parser.add_argument("--json", help="also write the rows to this file")
    args = parser.parse_args(argv)
    skip = set(_list(args.skip))

    from fastleaky._backends import cython_backend

    print(f"fastleaky parallel calls on: {cython_backend.available()[1]}; "
          f"{os.cpu_count()} CPUs; load average {_loadavg()}")
    rows = []
    if "co-tenant" not in skip:
        sizes = [int(float(s)) for s in _list(args.sizes)]
        rows += co_tenant(sizes, [int(b) for b in _list(args.busy)], args.calls,
                          args.batches, _list(args.compare))
    if "torch" not in skip:
        try:
            rows += next_to_torch(args.torch_size, args.torch_repeats)
        except ImportError:
            print("(torch not installed: the part next to PyTorch is skipped)")
    if "dask" not in skip:
        try:
            rows += nested_dask(args.dask_chunks, args.dask_chunk, args.dask_runs)
        except ImportError:
            print("(dask not installed: the nested part is skipped)")
    _print(rows)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
