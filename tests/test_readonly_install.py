"""A read-only install with no writable Numba cache folder: the Numba
backends and ``fastleaky.jit`` compile in memory instead of failing.

The package is copied to a folder made read-only, with a plain file where
each ``__pycache__`` folder would go (so that even root cannot cache next to
the sources), and a home folder and ``NUMBA_CACHE_DIR`` that cannot exist;
a subprocess imports that copy.
"""

import importlib.util
import os
import shutil
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import fastleaky

pytestmark = [
    pytest.mark.skipif(sys.platform == "win32", reason="POSIX permissions"),
    pytest.mark.skipif(importlib.util.find_spec("numba") is None,
                       reason="numba is not installed"),
]

SCRIPT = textwrap.dedent("""
    import sys
    import numpy as np
    import fastleaky
    from fastleaky import info, reference
    from fastleaky.testing import assert_bitwise_equal

    assert fastleaky.__file__.startswith(sys.argv[1]), fastleaky.__file__
    x = np.linspace(-3, 3, 1001, dtype=np.float32)
    g = np.linspace(2, -2, 1001, dtype=np.float32)
    for name in ("numba-cpu", "numba-parallel"):
        assert_bitwise_equal(fastleaky.leaky_relu(x, 0.1, backend=name),
                             reference.leaky_relu(x, 0.1))
        assert_bitwise_equal(fastleaky.leaky_relu_backward(g, x, 0.1, backend=name),
                             reference.leaky_relu_backward(g, x, 0.1))
    from fastleaky.jit import leaky_relu, leaky_relu_grad
    assert leaky_relu(-2.0, 0.5) == -1.0 and leaky_relu_grad(0.0, 0.25) == 0.25
    print(info.render_text())
""")


def _read_only_copy(root: Path) -> Path:
    site = root / "site"
    shutil.copytree(Path(fastleaky.__file__).parent, site / "fastleaky",
                    ignore=shutil.ignore_patterns("__pycache__", "*.c"))
    for folder in [site / "fastleaky", *(p for p in (site / "fastleaky").rglob("*") if p.is_dir())]:
        (folder / "__pycache__").write_bytes(b"")  # no cache folder can go here
    for path in [site, *site.rglob("*")]:
        path.chmod(path.stat().st_mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
    return site


def _writable_again(site: Path) -> None:
    for path in [site, *site.rglob("*")]:
        path.chmod(path.stat().st_mode | stat.S_IWUSR)


@pytest.mark.timeout(300)
@pytest.mark.parametrize("numba_cache_dir", ["unset", "unwritable"])
def test_numba_backends_and_jit_run_without_a_writable_cache(tmp_path, numba_cache_dir):
    not_a_folder = tmp_path / "plain-file"
    not_a_folder.write_bytes(b"")
    site = _read_only_copy(tmp_path)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NUMBA_CACHE_DIR", "PYTHON"))}
    env.update(HOME=str(not_a_folder / "home"), XDG_CACHE_HOME=str(not_a_folder / "cache"),
               PYTHONPATH=str(site), PYTHONDONTWRITEBYTECODE="1")
    if numba_cache_dir == "unwritable":
        env["NUMBA_CACHE_DIR"] = str(not_a_folder / "numba")
    try:
        proc = subprocess.run([sys.executable, "-c", SCRIPT, str(site)], capture_output=True,
                              text=True, env=env, cwd=tmp_path, timeout=280)
    finally:
        _writable_again(site)
    assert proc.returncode == 0, proc.stderr[-3000:]
    [line] = [ln for ln in proc.stdout.splitlines() if "numba disk cache" in ln]
    assert "no writable cache folder" in line, line
