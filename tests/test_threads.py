"""Many Python threads calling every CPU backend at once, under every Numba
threading layer: bit-exact results, no abort (Numba's workqueue layer aborts
the process on concurrent parallel calls unless the dispatcher guards it)."""

import importlib.util
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

WORKER = Path(__file__).parent / "workers" / "hammer_threads.py"
HAVE_NUMBA = importlib.util.find_spec("numba") is not None


def _load_worker():
    spec = importlib.util.spec_from_file_location("hammer_threads", WORKER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.timeout(120)
def test_sixteen_threads_every_backend():
    failures = _load_worker().run()
    assert not failures, failures[:10]


@pytest.mark.skipif(not HAVE_NUMBA, reason="numba is not installed")
@pytest.mark.parametrize("layer", ["tbb", "omp", "workqueue"])
def test_sixteen_threads_under_numba_layer(layer):
    env = {**os.environ, "NUMBA_THREADING_LAYER": layer}
    try:
        proc = subprocess.run([sys.executable, str(WORKER)], capture_output=True, text=True,
                              env=env, timeout=180, cwd=tempfile.gettempdir())
    except subprocess.TimeoutExpired:
        pytest.fail(f"threads under NUMBA_THREADING_LAYER={layer} hung (no exit in 180 s)")
    if proc.returncode != 0 and "No threading layer could be loaded" in proc.stderr:
        pytest.skip(f"Numba's {layer} layer cannot load here")
    assert proc.returncode == 0, (proc.returncode, proc.stdout[-2000:], proc.stderr[-2000:])
    assert f"layer={layer} failures=0" in proc.stdout


@pytest.mark.parametrize("value", ["1", "2", " 3 ", "\t4\t", "007", "", "  ", "0", "-1", "+2",
                                   "2.0", "1_000", "\u0662", "2 2", "x", "99999999999999999999"])
def test_env_thread_rule_is_one_rule(value):
    """The Python reader and the C fast entry's reader agree on every value."""
    from fastleaky import registry, threads

    try:
        expected = threads.parse_env_threads(value)
    except ValueError:
        expected = -1
    if expected is None:
        expected = 0
    if not registry.availability("cython")[0]:
        pytest.skip("Cython loops not built")
    from fastleaky._backends import _cython_loop

    got = _cython_loop.parse_env_threads(value.encode())
    if expected > 10**9:  # C saturates; both mean "more than the runtime's count"
        assert got >= 10**9
    else:
        assert got == expected
