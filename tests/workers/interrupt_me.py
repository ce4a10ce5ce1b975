"""Loops long parallel calls until interrupted (SIGINT), then checks that the
next call works and is bit-exact.  Run by tests/test_interrupt.py."""

from __future__ import annotations

import signal
import sys

import numpy as np

import fastleaky
from fastleaky import reference

SIZE = 1 << 24


def main(name: str) -> int:
    # A shell that starts jobs in the background without job control leaves
    # SIGINT ignored in them, and Python keeps an ignored SIGINT ignored.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    x = np.random.default_rng(3).standard_normal(SIZE).astype(np.float32)
    out = np.empty_like(x)
    expected = reference.leaky_relu(x, 0.1)
    fastleaky.leaky_relu(x, 0.1, out=out, backend=name)  # compile, start threads
    print("ready", flush=True)
    calls = 0
    try:
        while True:  # nearly all of the time is spent inside the parallel call
            fastleaky.leaky_relu(x, 0.1, out=out, backend=name)
            calls += 1
    except KeyboardInterrupt:
        print(f"interrupted after {calls} calls", flush=True)
    out[:] = 0
    fastleaky.leaky_relu(x, 0.1, out=out, backend=name)
    ok = np.array_equal(out.view(np.uint32), expected.view(np.uint32))
    g = fastleaky.leaky_relu_backward(x, x, 0.1, backend=name)
    ok &= np.array_equal(g.view(np.uint32), reference.leaky_relu_backward(x, x, 0.1).view(np.uint32))
    print(f"next call ok={ok}", flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
