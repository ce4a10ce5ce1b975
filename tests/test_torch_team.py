"""PyTorch's OpenMP team as the Cython loops' threads, seen from awkward
callers: a forked child of a process whose torch operators started that
team's threads, and Python threads other than the one that set
``torch.set_num_threads``.  Each case runs in its own interpreter (a
timeout catches a hang; torch's thread settings stay out of this process).
"""

import importlib.util
import subprocess
import sys
import tempfile

import pytest

pytestmark = [
    pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="needs PyTorch"),
    pytest.mark.skipif(importlib.util.find_spec("fastleaky._backends._cython_loop") is None,
                       reason="needs the Cython loops"),
]


def _stdout_with_team(code, timeout=120):
    """``code`` after ``_TEAM_OR_SKIP`` in a fresh interpreter: its output
    (the test skips where torch's team cannot be used)."""
    try:
        proc = subprocess.run([sys.executable, "-c", _TEAM_OR_SKIP + code], capture_output=True,
                              text=True, timeout=timeout, cwd=tempfile.gettempdir())
    except subprocess.TimeoutExpired:
        pytest.fail(f"no exit in {timeout} s")
    assert proc.returncode == 0, proc.stderr[-2000:]
    if "no team" in proc.stdout:
        pytest.skip("PyTorch's OpenMP team not usable here")
    return proc.stdout


_TEAM_OR_SKIP = (
    "import sys, torch, fastleaky\n"
    "from fastleaky._backends import cython_backend\n"
    "if cython_backend.share_torch_threads():\n"
    "    print('no team'); sys.exit(0)\n"
)


@pytest.mark.skipif(sys.platform == "win32", reason="no fork on Windows")
def test_numpy_call_in_fork_child_after_torch_ops_in_parent():
    stdout = _stdout_with_team(
        "import multiprocessing, numpy as np\n"
        "from fastleaky import config, reference\n"
        "torch.set_num_threads(2)  # a team of two, whatever the cores\n"
        "torch.nn.functional.leaky_relu(torch.ones(4_000_000))  # torch starts its threads\n"
        "x = np.linspace(-1, 1, config.TEAM_MIN_BYTES // 4, dtype=np.float32)\n"
        "def child():\n"
        "    y = fastleaky.leaky_relu(x)\n"
        "    ok = np.array_equal(y, reference.leaky_relu(x, np.float32(0.01)))\n"
        "    raise SystemExit(0 if ok else 3)\n"
        "p = multiprocessing.get_context('fork').Process(target=child)\n"
        "p.start(); p.join(10)\n"
        "if p.is_alive():\n"
        "    p.kill(); p.join(); print('child hung')\n"
        "else:\n"
        "    print('child exit', p.exitcode)\n"
    )
    assert "child exit 0" in stdout, stdout


def test_team_follows_torch_set_num_threads_in_a_fresh_thread():
    stdout = _stdout_with_team(
        "import threading\n"
        "from fastleaky._backends import _cython_loop\n"
        "def in_fresh_thread(f):\n"
        "    box = []\n"
        "    t = threading.Thread(target=lambda: box.append(f())); t.start(); t.join()\n"
        "    return box[0]\n"
        "default = in_fresh_thread(_cython_loop.team_threads)\n"
        "wanted = 1 if default > 1 else 2\n"
        "torch.set_num_threads(wanted)\n"
        "print('torch', in_fresh_thread(torch.get_num_threads),\n"
        "      'team', in_fresh_thread(_cython_loop.team_threads))\n"
    )
    words = stdout.split()
    assert words[words.index("team") + 1] == words[words.index("torch") + 1], stdout
