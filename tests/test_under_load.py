"""The parallel loops when the machine or the process is busy: the
work-stealing pool, threads shared between calls in flight, and the
benchmark that measures them (benchmarks/under_load.py; no timing is
asserted here)."""

import importlib.util
import os
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

import fastleaky
from fastleaky import config, reference, registry

pytestmark = pytest.mark.skipif(not registry.availability("cython")[0],
                                reason="Cython loops not built")
BENCH = Path(__file__).parent.parent / "benchmarks" / "under_load.py"
PARALLEL = 4 * config.parallel_min_elements("float32")


@pytest.fixture
def loop():
    from fastleaky._backends import _cython_loop

    assert _cython_loop.in_flight() == 0
    yield _cython_loop
    assert _cython_loop.in_flight() == 0


def _pool_in_a_new_process(code, **env):
    proc = subprocess.run(
        [sys.executable, "-c", code + "\nfrom fastleaky._backends import cython_backend as c;"
         " print(c.pool(), '|', c.available()[1])"],
        capture_output=True, text=True, timeout=120, cwd=tempfile.gettempdir(),
        env={**os.environ, **env})
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip().split(" | ")


@pytest.mark.skipif(importlib.util.find_spec("fastleaky._backends._tbb_pool") is None,
                    reason="built without TBB")
def test_tbb_unless_told_otherwise():
    """TBB runs the parallel calls (and the description says so), PyTorch in
    the process or not, unless FASTLEAKY_THREADING chooses OpenMP."""
    pool, reason = _pool_in_a_new_process("import fastleaky")
    if pool != "tbb":
        assert "TBB not loadable" in reason
        pytest.skip(reason)
    assert "TBB work stealing" in reason
    if importlib.util.find_spec("torch") is not None:
        assert _pool_in_a_new_process("import torch, fastleaky, fastleaky.torch")[0] == "tbb"
    assert _pool_in_a_new_process("import fastleaky", FASTLEAKY_THREADING="openmp")[0] == "openmp"
    pool, reason = _pool_in_a_new_process("import fastleaky", FASTLEAKY_THREADING="fortran")
    assert pool == "tbb" and "FASTLEAKY_THREADING='fortran' ignored" in reason


def test_a_call_takes_only_the_threads_left_free(loop):
    """Calls in flight share the runtime's count: the first gets what it
    asks for, the next ones what is left, and every call keeps one."""
    runtime = loop.max_threads()
    first = loop.reserve_threads(runtime)
    try:
        assert first == runtime
        assert loop.in_flight() == runtime
        second = loop.reserve_threads(runtime)
        assert second == 1  # its own thread, nothing more
        loop.release_threads(second)
        loop.release_threads(first)
        half = loop.reserve_threads(1)
        assert half == 1
        rest = loop.reserve_threads(runtime)
        assert rest == max(1, runtime - 1)
        loop.release_threads(rest)
        loop.release_threads(half)
    finally:
        while loop.in_flight() > 0:  # a failed assert must not leak the count
            loop.release_threads(1)


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_calls_next_to_calls_in_flight(loop, pool, dtype):
    """A call while other calls hold threads gets a smaller team (or runs
    serially): the same bits, in place included."""
    x = np.random.default_rng(3).standard_normal(PARALLEL + 77).astype(dtype)
    want = reference.leaky_relu(x, 0.2)
    for held in range(loop.max_threads() + 1):
        taken = [loop.reserve_threads(1) for _ in range(held)]
        try:
            assert fastleaky.leaky_relu(x, 0.2).tobytes() == want.tobytes()
            y = x.copy()
            fastleaky.leaky_relu(y, 0.2, out=y)
            assert y.tobytes() == want.tobytes()
        finally:
            for t in taken:
                loop.release_threads(t)


def test_each_chunk_runs_once_from_many_threads(loop, pool):
    """In place (not idempotent: a chunk run twice would be scaled by
    alpha twice) from 8 Python threads at once, over and over."""
    rng = np.random.default_rng(4)
    xs = [rng.standard_normal(PARALLEL + 1000 * i).astype(np.float32) for i in range(8)]
    wants = [reference.leaky_relu(x, 0.5) for x in xs]

    def work(i):
        for _ in range(5):
            y = xs[i].copy()
            fastleaky.leaky_relu(y, 0.5, out=y)
            if y.tobytes() != wants[i].tobytes():
                return i
        return None

    with ThreadPoolExecutor(8) as ex:
        bad = [i for i in ex.map(work, range(8)) if i is not None]
    assert not bad


def test_pool_chunk_size_is_checked(loop):
    with pytest.raises(ValueError, match="at least 64 bytes"):
        loop.set_pool_chunk_bytes(8)
    loop.set_pool_chunk_bytes(config.POOL_CHUNK_BYTES)


def test_benchmark_runs_on_its_own(tmp_path, capsys):
    """benchmarks/under_load.py, tiny: every part prints its rows."""
    spec = importlib.util.spec_from_file_location("under_load", BENCH)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    parts = "" if importlib.util.find_spec("dask") else "dask"
    out = tmp_path / "rows.json"
    assert bench.main(["--sizes", str(PARALLEL), "--busy", "0,1", "--calls", "2",
                       "--batches", "1", "--compare", "openmp,numba-parallel",
                       "--torch-size", "100000", "--torch-repeats", "2",
                       "--dask-chunks", "4", "--dask-chunk", "100000", "--dask-runs", "1",
                       "--skip", parts, "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "== co-tenant" in text and "p95" in text
    assert "busy=1" in text
    import json

    rows = json.loads(out.read_text())
    cases = {r["case"] for r in rows if r["part"] == "co-tenant"}
    assert {"auto", "serial"} <= cases
    if importlib.util.find_spec("dask"):
        assert any(r["part"] == "nested (dask)" for r in rows)
    if "torch" in sys.modules or importlib.util.find_spec("torch"):
        assert any(r["part"] == "next to torch" for r in rows)


def test_team_rule_and_backoff_are_checked(loop):
    with pytest.raises(ValueError, match="negative"):
        loop.set_team_rule(-1, None)
    with pytest.raises(ValueError, match="negative"):
        loop.set_team_backoff(-0.1)
    with pytest.raises(ValueError, match="negative"):
        loop.set_team_backoff(float("nan"))


def test_large_numpy_calls_find_torchs_team_once_torch_is_imported(tmp_path):
    """In a fresh process: no team before ``import torch``; the first large
    NumPy call after it installs torch's team; FASTLEAKY_THREADING=tbb
    keeps every call on the pool."""
    pytest.importorskip("torch")
    code = (
        "import numpy as np, fastleaky\n"
        "from fastleaky._backends import _cython_loop as L, cython_backend as c\n"
        "from fastleaky import config\n"
        "x = np.ones(config.TEAM_MIN_BYTES // 4, np.float32); o = np.empty_like(x)\n"
        "fastleaky.leaky_relu(x, out=o); print(L.team_threads())\n"
        "import torch\n"
        "fastleaky.leaky_relu(x, out=o); print(L.team_threads(), repr(c._team_problem))\n"
    )
    import subprocess
    import sys

    def run(**env):
        import os

        result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                env={**os.environ, **env}, timeout=120,
                                cwd=tmp_path)  # the installed package, not the source tree
        assert result.returncode == 0, result.stderr
        return result.stdout.split("\n")

    before, after, _ = run()
    assert before == "0" and after.split()[0] != "0" and after.endswith("''")
    before, after, _ = run(FASTLEAKY_THREADING="tbb")
    assert before == "0" and after.startswith("0 ")  # never looked for
