import importlib.util
import os
import tempfile

# The built-in thresholds, whatever a ``fastleaky tune`` run left in this
# user's cache: the size tests straddle them (serial and parallel splits).
# Set before fastleaky reads them; subprocesses inherit it.
os.environ["FASTLEAKY_TUNE_FILE"] = os.path.join(tempfile.mkdtemp(), "no-tune-file.json")

import pytest  # noqa: E402
from hypothesis import HealthCheck, settings  # noqa: E402

import fastleaky  # noqa: E402
from fastleaky import registry  # noqa: E402

# CI names the backends that must run there, so that a broken build fails
# the suite instead of quietly skipping its tests.
REQUIRED = {n for n in os.environ.get("FASTLEAKY_REQUIRE_BACKENDS", "").split(",") if n}

# Hypothesis: a short default run; FASTLEAKY_HYPOTHESIS_PROFILE=fuzz (ci/fuzz)
# for a nightly-style one with many more examples.
settings.register_profile("fastleaky", max_examples=150, deadline=None)
settings.register_profile("fuzz", max_examples=20_000, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("FASTLEAKY_HYPOTHESIS_PROFILE", "fastleaky"))

ALL_BACKENDS = [b.name for b in fastleaky.backends()]
HOST_BACKENDS = [b.name for b in fastleaky.backends() if b.device == "cpu"]


def require_backend(name):
    if name == "auto":
        return name
    ok, reason = registry.availability(name)
    if not ok:
        if name in REQUIRED:
            pytest.fail(f"backend {name!r} is required here but unavailable: {reason}")
        pytest.skip(f"backend {name!r} unavailable: {reason}")
    return name


@pytest.fixture(params=["auto", *HOST_BACKENDS])
def backend(request):
    """Every backend that computes NumPy arrays on the host, and "auto"."""
    return require_backend(request.param)


def _cython_pools():
    """The Cython loops' parallel runtimes here: TBB and OpenMP where the
    TBB pool is built (whichever the process uses now), else the one there
    is (None: no Cython loops); and PyTorch's OpenMP team where torch is
    installed (every parallel NumPy call on it, whatever its size)."""
    if not registry.availability("cython")[0]:
        return [None]
    from fastleaky._backends import _cython_loop, cython_backend

    pools = ["tbb", "openmp"] if cython_backend.tbb_available() else [_cython_loop.pool()]
    if importlib.util.find_spec("torch") is not None:
        pools.append("torch-team")
    return pools


@pytest.fixture(params=_cython_pools())
def pool(request):
    """Run the Cython loops on each parallel runtime the build has."""
    if request.param not in ("tbb", "openmp", "torch-team"):
        yield request.param
        return
    from fastleaky import config
    from fastleaky._backends import _cython_loop, cython_backend

    if request.param == "torch-team":
        import torch  # noqa: F401  (its OpenMP runtime is the team)

        why_not = cython_backend.share_torch_threads()
        if why_not:
            pytest.skip(f"no PyTorch team: {why_not}")
        _cython_loop.set_team_rule(1, None)  # every size: the team
        _cython_loop.set_team_backoff(0.0)  # and never a back-off to the pool
        try:
            yield request.param
        finally:
            _cython_loop.set_team_backoff(config.TEAM_BACKOFF_SECONDS)
            _cython_loop.set_team_rule(config.TEAM_MIN_BYTES, None)
        return
    before = _cython_loop.pool()
    if request.param == "tbb":
        cython_backend._install_pool()
    else:
        _cython_loop.use_pool(None, 0)
    try:
        yield request.param
    finally:
        if before == "tbb":
            cython_backend._install_pool()
        else:
            _cython_loop.use_pool(None, 0)


def _missing_for_torch_node():
    """What compiling the node needs and this machine lacks, or ""."""
    import shutil

    from torch.utils.cpp_extension import is_ninja_available

    if not shutil.which(os.environ.get("CXX", "c++")):
        return "no C++ compiler"
    return "" if is_ninja_available() else "no ninja (pip install ninja)"


@pytest.fixture(scope="session")
def torch_node():
    """fastleaky.torch's C++ autograd node, built once (reused from the cache
    when a build for this torch exists); skipped where it cannot be built,
    failed where CI requires it (``torch-node`` in FASTLEAKY_REQUIRE_BACKENDS)."""
    pytest.importorskip("torch")
    from fastleaky._interop import torch_node

    module = torch_node.load()
    if module is not None:
        return module
    problem = torch_node.why_not() or _missing_for_torch_node()
    if problem:
        if "torch-node" in REQUIRED:
            pytest.fail(f"the torch node is required here but cannot be built: {problem}")
        pytest.skip(f"the torch node cannot be built: {problem}")
    return torch_node.build()


@pytest.fixture(params=["python", "node"])
def torch_path(request, monkeypatch):
    """Run a test on fastleaky.torch's Python autograd.Function and on its C++ node."""
    import fastleaky.torch as ft

    node = request.getfixturevalue("torch_node") if request.param == "node" else None
    monkeypatch.setattr(ft, "_node", node)
    return request.param


@pytest.fixture
def require():
    """``require(name)``: skip (fail where CI requires it) if backend ``name`` cannot run."""
    return require_backend


def pytest_collection_modifyitems(config, items):
    """``slow`` tests (minutes, many GiB) run only when ``-m`` names them (ci/slow)."""
    if "slow" in (config.option.markexpr or ""):
        return
    skip = pytest.mark.skip(reason="slow: run with -m slow (ci/slow)")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)
