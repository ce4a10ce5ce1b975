"""pytest-benchmark suite, generated from the report's implementation registry.

    pytest benchmarks/ --benchmark-enable --benchmark-json results.json
    fastleaky report results.json

Without ``--benchmark-enable`` (the test run) every case runs once and its
output is checked, so the suite cannot rot.  Measured, each benchmark is
timed as ``fastleaky bench`` times a cell (calibrated calls per round, a few
rounds: ``benchmark.pedantic``), not for pytest-benchmark's default second
of rounds, and records what other work did on the machine meanwhile.
"""

import functools

import numpy as np
import pytest

from fastleaky import cases
from fastleaky.bench import activity, impls, runner
from fastleaky.bench.report import size_label

ALPHA = 0.01
IMPLS = impls.registry()


def _params():
    for name, impl in IMPLS.items():
        marks = [pytest.mark.gpu] if impl.device == "cuda" else []
        yield pytest.param(name, marks=marks, id=name)


@functools.lru_cache(maxsize=2)
def _sample(dtype, size):
    """One input per (dtype, size), shared by the implementations (none writes to it)."""
    return cases.sample(dtype, size, signalling=False)


@pytest.mark.bench
@pytest.mark.parametrize("name", list(_params()))
def test_leaky_relu(benchmark, timing, name, dtype, size):
    impl = IMPLS[name]
    if impl.valid_alpha is not None and not impl.valid_alpha(ALPHA):
        pytest.skip(f"{name} is wrong for alpha={ALPHA}")
    data = impls.Data(_sample(dtype, size), ALPHA)
    try:
        fn = impl.setup(data)
    except impls.Unsupported as exc:
        pytest.skip(str(exc))
    status = impls.check(impl, data, fn)
    if impl.family == "peer":
        assert not status.startswith("WRONG"), f"{name}: {status}"
    else:  # fastleaky and the copies: the exact bits
        assert status == "bit-exact", f"{name}: {status}"
    benchmark.group = f"{dtype} n={size_label(size)}"
    benchmark.extra_info.update(
        impl=name, family=impl.family, device=impl.device, dtype=dtype, size=size,
        nbytes=size * np.dtype(dtype).itemsize, alpha=ALPHA, check=status,
        description=impl.description, note=impl.note,
    )
    target = fn
    if impl.sync is not None:
        sync = impl.sync

        def target():
            fn()
            sync()

    if benchmark.disabled:
        benchmark(target)  # once, as a test
        return
    rounds, min_repeat_s = timing
    loops = runner.calibrate(fn, impl.sync, min_repeat_s)  # warms up too
    before = activity.read()
    benchmark.pedantic(target, rounds=rounds, iterations=loops)
    benchmark.extra_info["machine"] = activity.between(before, activity.read())
