"""pytest-benchmark suite, generated from the report's implementation registry.

    pytest benchmarks/ --benchmark-enable --benchmark-json results.json
    fastleaky report results.json

Without ``--benchmark-enable`` (the test run) every case runs once and its
output is checked, so the suite cannot rot.
"""

import numpy as np
import pytest

from fastleaky import cases
from fastleaky.bench import impls
from fastleaky.bench.report import size_label

ALPHA = 0.01
IMPLS = impls.registry()


def _params():
    for name, impl in IMPLS.items():
        marks = [pytest.mark.gpu] if impl.device == "cuda" else []
        yield pytest.param(name, marks=marks, id=name)


@pytest.mark.bench
@pytest.mark.parametrize("dtype", cases.BENCH_DTYPES)
@pytest.mark.parametrize("name", list(_params()))
def test_leaky_relu(benchmark, name, dtype, size):
    impl = IMPLS[name]
    if impl.valid_alpha is not None and not impl.valid_alpha(ALPHA):
        pytest.skip(f"{name} is wrong for alpha={ALPHA}")
    data = impls.Data(cases.sample(dtype, size, signalling=False), ALPHA)
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
    if impl.sync is None:
        benchmark(fn)
    else:
        sync = impl.sync

        def synchronized():
            fn()
            sync()

        benchmark(synchronized)
