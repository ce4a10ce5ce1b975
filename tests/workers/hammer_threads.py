"""16 threads calling every CPU backend at once; exits 0 when every result is
bit-exact.  Run by tests/test_threads.py in-process and, under each Numba
threading layer, as ``python hammer_threads.py`` in a subprocess."""

from __future__ import annotations

import sys
import threading

import numpy as np

import fastleaky
from fastleaky import config, reference

THREADS = 16
CALLS = 40
# at least 2e5 elements, and above the parallel thresholds in force, so that
# the threaded loops are the ones called concurrently
SIZE = max(200_000, 1 + max(config.parallel_min_elements(d) for d in ("float32", "float64")))


def backends() -> list[str]:
    return ["auto"] + [b.name for b in fastleaky.backends() if b.available and b.device == "cpu"]


def run(names=None, threads=THREADS, calls=CALLS, size=SIZE) -> list[str]:
    """Hammer the backends from ``threads`` threads; returns the failures."""
    names = backends() if names is None else names
    inputs = {dt: np.random.default_rng(1).standard_normal(size).astype(dt)
              for dt in (np.float32, np.float64)}
    expected = {dt: (reference.leaky_relu(x, 0.1), reference.leaky_relu_grad(x, 0.1),
                     reference.leaky_relu_backward(x[::-1], x, 0.1))
                for dt, x in inputs.items()}
    failures: list[str] = []
    barrier = threading.Barrier(threads)

    def check(label, got, want):
        if not np.array_equal(got.view(f"u{got.itemsize}"), want.view(f"u{want.itemsize}")):
            failures.append(label)

    def worker(t):
        barrier.wait()
        for i in range(calls):
            name = names[(t + i) % len(names)]
            dt = (np.float32, np.float64)[(t + i) % 2]
            x = inputs[dt]
            fwd, grd, bwd = expected[dt]
            try:
                mode = (t + i) % 3
                if mode == 0:
                    check(f"{name} forward", fastleaky.leaky_relu(x, 0.1, backend=name), fwd)
                elif mode == 1:
                    with fastleaky.use_backend(name if name != "auto" else "numpy"):
                        check(f"{name} grad", fastleaky.leaky_relu_grad(x, 0.1), grd)
                else:
                    out = np.empty_like(x)
                    with fastleaky.thread_limit(1 + t % 2):
                        fastleaky.leaky_relu_backward(x[::-1], x, 0.1, out=out, backend=name)
                    check(f"{name} backward", out, bwd)
            except Exception as exc:  # noqa: BLE001  (report, do not kill the thread)
                failures.append(f"{name}: {type(exc).__name__}: {exc}")

    pool = [threading.Thread(target=worker, args=(t,)) for t in range(threads)]
    for th in pool:
        th.start()
    for th in pool:
        th.join()
    return failures


def main() -> int:
    failures = run()
    from fastleaky._backends import numba_loops

    print(f"layer={numba_loops.threading_layer()} failures={len(failures)}")
    for f in failures[:20]:
        print(f)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
