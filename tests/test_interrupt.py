"""Ctrl-C during a long parallel call: the KeyboardInterrupt arrives (once
the call returns) and the process stays usable, with correct results."""

import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

WORKER = Path(__file__).parent / "workers" / "interrupt_me.py"


@pytest.mark.skipif(sys.platform == "win32", reason="SIGINT to a child is POSIX-only")
@pytest.mark.parametrize("name", ["cython", "numba-parallel"])
def test_sigint_during_parallel_call(name, require):
    require(name)
    proc = subprocess.Popen([sys.executable, str(WORKER), name], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=tempfile.gettempdir())
    try:
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(0.3)  # inside the loop of calls (not a timing assertion)
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        pytest.fail(f"{name}: the process hung after SIGINT")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, (stdout, stderr)
    assert "interrupted after" in stdout
    assert "next call ok=True" in stdout
