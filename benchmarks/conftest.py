"""The benchmark suite's sweep, timing settings and provenance.

Run as tests (the default, ``--benchmark-disable``) each case runs once at
``cases.BENCH_SIZES_TEST``.  With ``--benchmark-enable`` the sweep is the
one of ``fastleaky bench --quick`` (sizes ``cases.BENCH_SIZES_QUICK``, dtypes
``cases.BENCH_DTYPES_QUICK``) unless ``--bench-sizes``/``--bench-dtypes``
say otherwise (``full`` for the whole sweep), timed as ``fastleaky bench``
times: calls per round calibrated to last ``--bench-min-repeat-ms``, then
``--bench-repeats`` rounds.
"""

import pytest

from fastleaky import cases
from fastleaky.bench import provenance, report


def pytest_addoption(parser):
    group = parser.getgroup("fastleaky benchmarks")
    group.addoption(
        "--bench-sizes", default=None, metavar="SIZES",
        help="benchmark sizes: 'quick' (the default), 'full' or a list such as 1e3,1e6")
    group.addoption(
        "--bench-dtypes", default=None, metavar="DTYPES",
        help="benchmark dtypes: 'quick' (float32,float64, the default), 'full' or a list")
    group.addoption(
        "--bench-repeats", default=5, type=int, metavar="N",
        help="timed rounds per benchmark (default 5)")
    group.addoption(
        "--bench-min-repeat-ms", default=2.0, type=float, metavar="MS",
        help="calls per round chosen so that a round lasts this long (default 2)")


def _benchmarks_enabled(config) -> bool:
    return config.getoption("benchmark_enable", False) or not config.getoption(
        "benchmark_disable", False)


def _sizes(option: str) -> tuple[int, ...]:
    try:
        sizes = tuple(int(float(s)) for s in option.split(","))
    except ValueError:
        raise pytest.UsageError(f"--bench-sizes: not a list of sizes: {option!r}") from None
    if any(n < 1 for n in sizes):
        raise pytest.UsageError(f"--bench-sizes: sizes are >= 1: {option!r}")
    return sizes


def bench_sizes(config) -> tuple[int, ...]:
    option = config.getoption("--bench-sizes")
    if option == "quick":
        return cases.BENCH_SIZES_QUICK
    if option == "full":
        return cases.BENCH_SIZES_FULL
    if option:
        return _sizes(option)
    return cases.BENCH_SIZES_QUICK if _benchmarks_enabled(config) else cases.BENCH_SIZES_TEST


def bench_dtypes(config) -> tuple[str, ...]:
    option = config.getoption("--bench-dtypes")
    if option == "full":
        return cases.BENCH_DTYPES
    if option and option != "quick":
        names = tuple(n for n in option.replace(" ", "").split(",") if n)
        unknown = [n for n in names if n not in cases.DTYPES]
        if unknown or not names:
            raise pytest.UsageError(f"--bench-dtypes: choose from {', '.join(cases.DTYPES)}, "
                                    f"'quick' or 'full': {option!r}")
        return names
    if option == "quick" or _benchmarks_enabled(config):
        return cases.BENCH_DTYPES_QUICK
    return cases.BENCH_DTYPES  # as tests: every dtype, once each


def pytest_generate_tests(metafunc):
    if "size" in metafunc.fixturenames:
        metafunc.parametrize("size", bench_sizes(metafunc.config), ids=report.size_label)
    if "dtype" in metafunc.fixturenames:
        metafunc.parametrize("dtype", bench_dtypes(metafunc.config))


@pytest.fixture
def timing(request):
    """(rounds, seconds a round lasts at least) for a measured benchmark."""
    config = request.config
    repeats = config.getoption("--bench-repeats")
    min_ms = config.getoption("--bench-min-repeat-ms")
    if repeats < 1 or not min_ms >= 0:
        raise pytest.UsageError("--bench-repeats must be >= 1 and --bench-min-repeat-ms >= 0")
    return repeats, min_ms / 1e3


def pytest_benchmark_update_machine_info(config, machine_info):
    # what `fastleaky report` prints under the tables
    machine_info["fastleaky"] = provenance.collect(argv=["pytest", *config.invocation_params.args])
