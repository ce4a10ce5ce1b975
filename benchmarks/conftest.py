"""The benchmark suite's sizes and provenance.

Run as tests (the default, ``--benchmark-disable``) each case runs once at
``cases.BENCH_SIZES_TEST``; with ``--benchmark-enable`` the sizes are
``cases.BENCH_SIZES_QUICK`` unless ``--bench-sizes`` says otherwise.
"""

import pytest

from fastleaky import cases
from fastleaky.bench import provenance, report


def pytest_addoption(parser):
    parser.addoption(
        "--bench-sizes", default=None, metavar="SIZES",
        help="benchmark sizes: 'quick', 'full' or a comma list such as 1e3,1e6",
    )


def _benchmarks_enabled(config) -> bool:
    return config.getoption("benchmark_enable", False) or not config.getoption(
        "benchmark_disable", False)


def bench_sizes(config) -> tuple[int, ...]:
    option = config.getoption("--bench-sizes")
    if option == "quick":
        return cases.BENCH_SIZES_QUICK
    if option == "full":
        return cases.BENCH_SIZES_FULL
    if option:
        try:
            return tuple(int(float(s)) for s in option.split(","))
        except ValueError:
            raise pytest.UsageError(f"--bench-sizes: not a list of sizes: {option!r}") from None
    return cases.BENCH_SIZES_QUICK if _benchmarks_enabled(config) else cases.BENCH_SIZES_TEST


def pytest_generate_tests(metafunc):
    if "size" in metafunc.fixturenames:
        metafunc.parametrize("size", bench_sizes(metafunc.config), ids=report.size_label)


def pytest_benchmark_update_machine_info(config, machine_info):
    # what `fastleaky report` prints under the tables
    machine_info["fastleaky"] = provenance.collect(argv=["pytest", *config.invocation_params.args])
