"""The registry, backend selection, and what importing fastleaky costs."""

import os
import subprocess
import sys
import tempfile
import threading

import numpy as np
import pytest

import fastleaky
from fastleaky import registry


def _run_python(code, **env):
    full_env = {**os.environ, **env}
    # cwd elsewhere: "python -c" puts the working directory on sys.path, and
    # the tests must import the installed package, not the checkout.
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=full_env, timeout=120, cwd=tempfile.gettempdir())


def test_backends_records():
    records = fastleaky.backends()
    names = [r.name for r in records]
    assert names[:4] == ["numpy", "cython", "numba-cpu", "numba-parallel"]
    for r in records:
        assert isinstance(r.available, bool) and r.reason
    assert records[0].available


def test_unknown_backend_lists_valid_names():
    with pytest.raises(ValueError, match="valid names: auto, numpy, cython"):
        fastleaky.leaky_relu(np.ones(3), backend="fortran")
    with pytest.raises(ValueError, match="unknown fastleaky backend 'fortran'"):
        with fastleaky.use_backend("fortran"):
            pass


def test_unavailable_backend_says_why(monkeypatch, request):
    monkeypatch.setitem(registry._availability, "cython",
                        (False, "the Cython extension was not built (test)"))
    # availability is fixed for a process; the fast entries cached it
    registry.forget_decisions()
    request.addfinalizer(registry.forget_decisions)
    with pytest.raises(fastleaky.BackendUnavailableError, match="not built"):
        fastleaky.leaky_relu(np.ones(3), backend="cython")
    monkeypatch.setitem(registry._availability, "numba-cpu", (False, "numba missing (test)"))
    monkeypatch.setitem(registry._availability, "numba-parallel", (False, "numba missing"))
    # auto never fails because a backend is missing
    np.testing.assert_array_equal(fastleaky.leaky_relu(np.array([-1.0, 1.0]), 0.5),
                                  [-0.5, 1.0])
    assert registry.auto_host(np.float32, 10**7) == "numpy"


def test_use_backend_is_context_local():
    seen = {}

    def worker(name):
        with fastleaky.use_backend(name):
            seen[name] = registry.requested_name("auto")

    threads = [threading.Thread(target=worker, args=(n,)) for n in ("numpy", "cython")]
    with fastleaky.use_backend("numba-cpu"):
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert registry.requested_name("auto") == "numba-cpu"
        # an explicit argument wins over the context
        assert registry.requested_name("numpy") == "numpy"
    assert seen == {"numpy": "numpy", "cython": "cython"}


def test_auto_policy():
    assert registry.auto_host(None, 10) == "numpy"  # e.g. longdouble
    if registry.availability("cython")[0]:
        assert registry.auto_host(np.float32, 100) == "cython"
        assert registry.auto_host(np.float64, 10**8) == "cython"


def test_env_backend_sets_default():
    proc = _run_python(
        "import fastleaky.registry as r; print(r.requested_name('auto'))",
        FASTLEAKY_BACKEND="numpy",
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "numpy"


def test_env_backend_unknown_is_an_error():
    proc = _run_python(
        "import fastleaky, numpy; fastleaky.leaky_relu(numpy.ones(2))",
        FASTLEAKY_BACKEND="gpu-magic",
    )
    assert proc.returncode != 0
    assert "FASTLEAKY_BACKEND='gpu-magic' is not a fastleaky backend" in proc.stderr


def test_import_does_not_load_numba_or_cuda():
    proc = _run_python(
        "import sys, fastleaky, numpy\n"
        "fastleaky.backends()\n"
        "fastleaky.leaky_relu(numpy.ones(10, numpy.float32))\n"
        "heavy = [m for m in ('numba', 'numba.cuda', 'llvmlite', 'torch', 'cupy', 'dask')"
        " if m in sys.modules]\n"
        "print(heavy)"
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


def test_thread_limit():
    from fastleaky import threads

    assert threads.get(8) == 8 or threads.limit() is not None
    with fastleaky.thread_limit(1):
        assert threads.get(8) == 1
        x = np.linspace(-1, 1, 300_001)
        np.testing.assert_array_equal(fastleaky.leaky_relu(x, backend="numpy"),
                                      fastleaky.leaky_relu(x))
    with pytest.raises(ValueError, match=">= 1"):
        with fastleaky.thread_limit(0):
            pass


@pytest.mark.skipif(not registry.availability("cython")[0], reason="Cython loops not built")
def test_compiled_fast_path_follows_thread_limits(monkeypatch):
    """The C fast path picks threads like ``threads.get``: context, then environment."""
    from fastleaky import threads
    from fastleaky._backends import _cython_loop as loop

    monkeypatch.delenv("FASTLEAKY_NUM_THREADS", raising=False)
    fastleaky.leaky_relu(np.ones(4))  # sets the fast path up
    runtime = loop.max_threads()
    assert loop.plain_call_threads() == threads.get(runtime)
    with fastleaky.thread_limit(1):
        assert loop.plain_call_threads() == 1
        with fastleaky.thread_limit(runtime + 5):
            assert loop.plain_call_threads() == runtime
        with fastleaky.thread_limit(10**30):  # no C overflow
            assert loop.plain_call_threads() == runtime
    monkeypatch.setenv("FASTLEAKY_NUM_THREADS", "1")
    assert loop.plain_call_threads() == 1
    with fastleaky.thread_limit(runtime):  # the context wins over the environment
        assert loop.plain_call_threads() == runtime
    for bad in ("0", "x", "2.0", "1_000"):  # the general path parses these and says why
        monkeypatch.setenv("FASTLEAKY_NUM_THREADS", bad)
        assert loop.plain_call_threads() == -1


@pytest.mark.skipif(not registry.availability("numba-parallel")[0], reason="numba not installed")
def test_numba_parallel_follows_thread_limit(monkeypatch):
    """Under a cap of 1 the serial loop runs; under a cap below Numba's
    thread count the prange loop runs with the cap set, restored after."""
    import numba

    from fastleaky import config

    seen = []
    real_set = numba.set_num_threads

    def spy(n):
        seen.append(n)
        real_set(n)

    monkeypatch.setattr(numba, "set_num_threads", spy)
    backend = registry.load("numba-parallel")
    runs = []
    real_run = backend.run
    monkeypatch.setattr(backend, "run", lambda op, ins, a, out, n: (runs.append(n),
                                                                      real_run(op, ins, a, out, n)))
    x = np.linspace(-1, 1, config.parallel_min_for(np.dtype(np.float64)) + 1)
    strided = np.repeat(x, 2)[::2]  # the general path, not the plain entry
    expected = fastleaky.leaky_relu(x, backend="numpy")
    before = numba.get_num_threads()
    for arg in (x, strided):
        np.testing.assert_array_equal(fastleaky.leaky_relu(arg, backend="numba-parallel"),
                                      expected)
    assert seen == [] and runs == [0]  # no cap: Numba's own setting, untouched
    with fastleaky.thread_limit(1):
        for arg in (x, strided):
            np.testing.assert_array_equal(fastleaky.leaky_relu(arg, backend="numba-parallel"),
                                          expected)
    assert seen == [] and runs == [0, 1]  # serial: nothing to set
    if before > 2:
        with fastleaky.thread_limit(2):
            np.testing.assert_array_equal(fastleaky.leaky_relu(x, backend="numba-parallel"),
                                          expected)
        assert seen == [2, before]  # capped for the call, restored after
    assert numba.get_num_threads() == before


@pytest.mark.skipif(not registry.availability("numba-parallel")[0], reason="numba not installed")
def test_numba_parallel_cap_below_the_pool():
    """A cap of 2 under a pool of 4 threads: set for the call, restored after
    (its own process: the pool's size is fixed when Numba starts)."""
    code = (
        "import numba, numpy as np, fastleaky\n"
        "from fastleaky import config\n"
        "seen = []\n"
        "real = numba.set_num_threads\n"
        "numba.set_num_threads = lambda n: (seen.append(n), real(n))\n"
        "x = np.linspace(-1, 1, config.parallel_min_for(np.dtype(np.float64)) + 1)\n"
        "want = fastleaky.leaky_relu(x, backend='numpy')\n"
        "with fastleaky.thread_limit(2):\n"
        "    assert (fastleaky.leaky_relu(x, backend='numba-parallel') == want).all()\n"
        "print(seen, numba.get_num_threads())\n"
    )
    proc = _run_python(code, NUMBA_NUM_THREADS="4")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[2, 4] 4"
