"""Children of a multiprocessing pool (fork and spawn) calling the parallel
backends after the parent used them: correct results and no hang.  GNU
OpenMP is not fork-safe; see ``fastleaky/_backends/_forksafe.py``."""

import importlib.util
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

WORKER = Path(__file__).parent / "workers" / "fork_children.py"
LAYERS = ["default"]
if importlib.util.find_spec("numba") is not None:
    LAYERS += ["omp", "workqueue"]


def _run(method, layer):
    env = dict(os.environ)
    if layer != "default":
        env["NUMBA_THREADING_LAYER"] = layer
    try:
        return subprocess.run([sys.executable, str(WORKER), method], capture_output=True,
                              text=True, env=env, timeout=180, cwd=tempfile.gettempdir())
    except subprocess.TimeoutExpired:
        pytest.fail(f"{method} pool with Numba layer {layer} hung (no exit in 180 s)")


@pytest.mark.skipif(sys.platform == "win32", reason="no fork on Windows")
@pytest.mark.parametrize("layer", LAYERS)
def test_fork_pool_after_parallel_calls(layer):
    proc = _run("fork", layer)
    assert proc.returncode == 0, (proc.stdout[-2000:], proc.stderr[-2000:])
    assert "ok=True" in proc.stdout


def test_spawn_pool_after_parallel_calls():
    proc = _run("spawn", "default")
    assert proc.returncode == 0, (proc.stdout[-2000:], proc.stderr[-2000:])
    assert "ok=True" in proc.stdout


def test_fork_child_keeps_parallel_loops_when_parent_ran_none():
    """Only children of a process that started OpenMP threads lose them."""
    code = (
        "import os, fastleaky\n"
        "from fastleaky._backends import cython_backend, _forksafe\n"
        "pid = os.fork()\n"
        "if pid == 0:\n"
        "    os._exit(0 if not _forksafe.child_of_openmp_process() else 3)\n"
        "_, status = os.waitpid(pid, 0)\n"
        "print(os.waitstatus_to_exitcode(status))\n"
    )
    if sys.platform == "win32":
        pytest.skip("no fork on Windows")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, cwd=tempfile.gettempdir())
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "0"
