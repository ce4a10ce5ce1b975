"""Bad input, table-driven: every public entry point against every bad input.

Each row builds fresh arguments, says which exception type it expects and
which words its message must contain; the test also checks that no array
passed in (``x``, ``grad_output``, ``out``) was written before the error.

The table is open for other kinds of arrays: an entry point declares the
kinds it takes (``"numpy"`` here), and a row names its kind; rows and entry
points for PyTorch tensors or GPU arrays are appended to ``ROWS`` and
``ENTRY_POINTS`` the same way.  The command line has its own table below.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import pytest

import fastleaky
from fastleaky import cases, config

ALL_OPS = ("leaky_relu", "leaky_relu_grad", "leaky_relu_backward")
BACKWARD = ("leaky_relu_backward",)


@dataclass(frozen=True)
class EntryPoint:
    """How to call one public function with a row's inputs."""

    call: Callable[[dict], object]
    kinds: frozenset = frozenset({"numpy"})


def _unary(fn):
    def call(inp):
        return fn(inp["x"], inp.get("alpha", 0.1), out=inp.get("out"), backend=inp["backend"])
    return call


def _backward(inp):
    g = inp.get("grad_output")
    if g is None:  # a grad_output that matches x, so that x's problem is the one raised
        x = inp["x"]
        g = np.ones_like(x) if isinstance(x, np.ndarray) and x.dtype.kind == "f" else x
    return fastleaky.leaky_relu_backward(g, inp["x"], inp.get("alpha", 0.1),
                                         out=inp.get("out"), backend=inp["backend"])


ENTRY_POINTS: dict[str, EntryPoint] = {
    "leaky_relu": EntryPoint(_unary(fastleaky.leaky_relu)),
    "leaky_relu_grad": EntryPoint(_unary(fastleaky.leaky_relu_grad)),
    "leaky_relu_backward": EntryPoint(_backward),
}


@dataclass(frozen=True)
class Row:
    """One bad input: ``make()`` returns the call's inputs (``x``, and any of
    ``grad_output``, ``alpha``, ``out``, ``backend``); ``ops`` the entry points
    it applies to; ``backends`` restricts it to some host backends; ``env``
    sets environment variables for the call."""

    id: str
    make: Callable[[], dict]
    exc: type
    match: str
    ops: tuple = ALL_OPS
    kind: str = "numpy"
    backends: tuple | None = None
    env: dict = field(default_factory=dict)


# big enough for the threaded loops (which read the thread settings)
_PARALLEL_SIZE = 1 + config.parallel_min_elements("float32")


def _x(n=50, dtype="float32"):
    return cases.sample(dtype, n)


def _with(**extra):
    return lambda: {"x": _x(), **{k: (v() if callable(v) else v) for k, v in extra.items()}}


def _readonly(a):
    a.flags.writeable = False
    return a


def _fives():
    return np.full(50, 5.0, np.float32)


ROWS = [
    # -- the data: kinds and dtypes fastleaky does not compute on
    Row("x-complex", lambda: {"x": np.array([1 + 2j, -1j])}, TypeError, "complex"),
    Row("x-str", lambda: {"x": np.array(["a", "b"])}, TypeError, "<U1"),
    Row("x-object", lambda: {"x": np.array([None, 1.0], dtype=object)}, TypeError, "object"),
    Row("x-datetime", lambda: {"x": np.array(["2020-01-01"], dtype="datetime64[D]")},
        TypeError, "datetime64"),
    Row("x-timedelta", lambda: {"x": np.array([1], dtype="timedelta64[s]")},
        TypeError, "timedelta64"),
    Row("x-structured", lambda: {"x": np.zeros(3, dtype=[("a", "f4")])},
        TypeError, "real numbers"),
    Row("x-None", lambda: {"x": None}, TypeError, "object"),
    Row("x-python-object", lambda: {"x": object()}, TypeError, "object"),
    Row("x-string", lambda: {"x": "abc"}, TypeError, "<U3"),
    Row("x-ragged-list", lambda: {"x": [[1.0, 2.0], [3.0]]}, ValueError, "inhomogeneous"),
    Row("x-complex-with-out", _with(x=lambda: _x().astype(np.complex64), out=_fives),
        TypeError, "complex"),
    # -- alpha
    Row("alpha-nan", _with(alpha=float("nan"), out=_fives), ValueError, "finite"),
    Row("alpha-inf", _with(alpha=float("inf"), out=_fives), ValueError, "finite"),
    Row("alpha-neg-inf", _with(alpha=-np.inf, out=_fives), ValueError, "finite"),
    Row("alpha-overflows-float32", _with(alpha=1e300, out=_fives), ValueError, "float32"),
    Row("alpha-overflows-float16", lambda: {"x": _x(dtype="float16"), "alpha": 1e5},
        ValueError, "float16"),
    Row("alpha-complex", _with(alpha=1j, out=_fives), TypeError, "real"),
    Row("alpha-np-complex", _with(alpha=np.complex64(1), out=_fives), TypeError, "real"),
    Row("alpha-str", _with(alpha="0.1", out=_fives), TypeError, "real"),
    Row("alpha-None", _with(alpha=None, out=_fives), TypeError, "real"),
    Row("alpha-list", _with(alpha=[0.1], out=_fives), TypeError, "real"),
    Row("alpha-array", _with(alpha=lambda: np.array([0.1, 0.2]), out=_fives),
        TypeError, "scalar"),
    Row("alpha-str-array", _with(alpha=lambda: np.array(["x"]), out=_fives), TypeError, "real"),
    # -- out
    Row("out-wrong-shape", _with(out=lambda: np.zeros(51, np.float32)), ValueError, "shape"),
    Row("out-transposed-shape", lambda: {"x": _x(50).reshape(5, 10),
                                         "out": np.zeros((10, 5), np.float32)},
        ValueError, "shape"),
    Row("out-wrong-dtype", _with(out=lambda: np.zeros(50, np.float64)), TypeError, "dtype"),
    Row("out-int-dtype", _with(out=lambda: np.zeros(50, np.int32)), TypeError, "dtype"),
    Row("out-read-only", _with(out=lambda: _readonly(np.zeros(50, np.float32))),
        ValueError, "read-only"),
    Row("out-list", _with(out=lambda: [0.0] * 50), TypeError, "ndarray"),
    Row("out-memoryview", _with(out=lambda: memoryview(np.zeros(50, np.float32))),
        TypeError, "ndarray"),
    Row("out-for-0d-scalar", lambda: {"x": 1.5, "out": np.zeros(1)}, ValueError, "shape"),
    # -- backend names
    Row("backend-unknown", _with(backend="fortran"), ValueError,
        "unknown fastleaky backend 'fortran'; valid names: auto"),
    Row("backend-case", _with(backend="Cython"), ValueError, "unknown fastleaky backend"),
    Row("backend-None", _with(backend=None), ValueError, "unknown fastleaky backend None"),
    # -- grad_output of leaky_relu_backward
    Row("grad-shorter", _with(grad_output=lambda: np.ones(3, np.float32), out=_fives),
        ValueError, "grad_output has shape", ops=BACKWARD),
    Row("grad-broadcastable", _with(grad_output=lambda: np.ones(1, np.float32), out=_fives),
        ValueError, "must match", ops=BACKWARD),
    Row("grad-transposed", lambda: {"x": _x(50).reshape(5, 10),
                                    "grad_output": np.ones((10, 5), np.float32)},
        ValueError, "shape", ops=BACKWARD),
    Row("grad-complex", _with(grad_output=lambda: np.ones(50, np.complex64), out=_fives),
        TypeError, "complex", ops=BACKWARD),
    Row("grad-str", _with(grad_output=lambda: np.array(["a"] * 50)), TypeError, "dtype <U1",
        ops=BACKWARD),
    Row("grad-datetime", _with(grad_output=lambda: np.zeros(50, "datetime64[s]")), TypeError,
        "dtype datetime64[s]", ops=BACKWARD),
    Row("grad-promotes-out-dtype", _with(grad_output=lambda: np.ones(50, np.float64),
                                         out=_fives), TypeError, "dtype", ops=BACKWARD),
    # -- environment: a bad thread cap raises where a parallel loop would read it
    Row("env-threads-not-a-number", lambda: {"x": _x(_PARALLEL_SIZE)}, ValueError,
        "FASTLEAKY_NUM_THREADS='abc' is not a whole number",
        backends=("auto", "cython", "numba-parallel"), env={"FASTLEAKY_NUM_THREADS": "abc"}),
    Row("env-threads-zero", lambda: {"x": _x(_PARALLEL_SIZE)}, ValueError, "must be >= 1",
        backends=("auto", "cython", "numba-parallel"), env={"FASTLEAKY_NUM_THREADS": "0"}),
]

PAIRS = [(op, row) for op, entry in ENTRY_POINTS.items() for row in ROWS
         if op in row.ops and row.kind in entry.kinds]


def _snapshot(inputs):
    """What each passed-in buffer holds now, to compare after the call."""
    return {k: (_contents(v), v) for k, v in inputs.items()
            if isinstance(v, (np.ndarray, list, memoryview))}


def _contents(v):
    return repr(v) if isinstance(v, list) else np.asarray(v).tobytes()


@pytest.mark.parametrize("op, row", PAIRS, ids=[f"{op}-{row.id}" for op, row in PAIRS])
def test_bad_input(op, row, backend, monkeypatch):
    if row.backends is not None and backend not in row.backends:
        pytest.skip(f"{row.id} concerns {', '.join(row.backends)} only")
    for name, value in row.env.items():
        monkeypatch.setenv(name, value)
    inputs = row.make()
    inputs.setdefault("backend", backend)
    before = _snapshot(inputs)
    with pytest.raises(row.exc, match=_escape(row.match)):
        ENTRY_POINTS[op].call(inputs)
    for name, (contents, original) in before.items():
        assert _contents(original) == contents, f"{name} was written before the error"


def _escape(words: str) -> str:
    import re

    return re.escape(words)


# ------------------------------------------------------------ the command line

@dataclass(frozen=True)
class CliRow:
    id: str
    args: tuple
    match: str
    env: dict = field(default_factory=dict)


CLI_ROWS = [
    CliRow("no-command", (), "required: COMMAND"),
    CliRow("unknown-command", ("bogus",), "invalid choice: 'bogus'"),
    CliRow("info-unknown-option", ("info", "--bogus"), "unrecognized arguments: --bogus"),
    CliRow("demo-size-not-a-number", ("demo", "--size", "abc"), "not a whole number: 'abc'"),
    CliRow("demo-size-negative", ("demo", "--size", "-5"), "must be >= 0, got -5"),
    CliRow("demo-size-too-big", ("demo", "--size", str(10**14)), "Unable to allocate"),
    CliRow("demo-dtype", ("demo", "--dtype", "int8"), "invalid choice: 'int8'"),
    CliRow("demo-alpha-nan", ("demo", "--alpha", "nan"), "alpha must be finite"),
    CliRow("demo-alpha-overflows", ("demo", "--alpha", "1e300", "--dtype", "float16"),
           "not finite in float16"),
    CliRow("info-env-backend", ("info",), "FASTLEAKY_BACKEND='bogus' is not a fastleaky backend",
           {"FASTLEAKY_BACKEND": "bogus"}),
    CliRow("demo-env-backend", ("demo", "--size", "10"),
           "FASTLEAKY_BACKEND='bogus' is not a fastleaky backend", {"FASTLEAKY_BACKEND": "bogus"}),
    CliRow("demo-env-threads", ("demo", "--size", "10"),
           "FASTLEAKY_NUM_THREADS='x' is not a whole number", {"FASTLEAKY_NUM_THREADS": "x"}),
]


@pytest.mark.parametrize("row", CLI_ROWS, ids=[r.id for r in CLI_ROWS])
def test_cli_bad_input(row):
    env = {**os.environ, **row.env}
    proc = subprocess.run([sys.executable, "-m", "fastleaky", *row.args], capture_output=True,
                          text=True, env=env, timeout=120, cwd=tempfile.gettempdir())
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr and "Warning" not in proc.stderr, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if "error:" in line]
    assert len(errors) == 1, proc.stderr
    assert errors[0].startswith("fastleaky") and row.match in errors[0], proc.stderr
    assert errors[0] == proc.stderr.rstrip("\n").splitlines()[-1]


# ---- PyTorch: the autograd function, the module, and plain tensors through the API

def _torch_rows():
    torch = pytest.importorskip("torch")
    import fastleaky.torch as ft

    def t(*shape, dtype=torch.float32):
        return torch.linspace(-1, 1, int(np.prod(shape)), dtype=dtype).reshape(shape)

    return [
        ("fn-complex", lambda: {"x": t(4, dtype=torch.complex64)},
         lambda i: ft.leaky_relu(i["x"]), TypeError, "floating tensor"),
        ("fn-int", lambda: {"x": torch.arange(4, dtype=torch.int32)},
         lambda i: ft.leaky_relu(i["x"]), TypeError, "floating tensor"),
        ("fn-nan-slope", lambda: {"x": t(4)}, lambda i: ft.leaky_relu(i["x"], float("nan")),
         ValueError, "finite"),
        ("fn-str-slope", lambda: {"x": t(4)}, lambda i: ft.leaky_relu(i["x"], "0.1"),
         TypeError, "real"),
        ("fn-ndarray", lambda: {"x": np.ones(4, np.float32)}, lambda i: ft.leaky_relu(i["x"]),
         TypeError, "torch.Tensor"),
        ("fn-inplace-nan-slope", lambda: {"x": t(4)},
         lambda i: ft.leaky_relu(i["x"], float("nan"), inplace=True), ValueError, "finite"),
        ("module-inf-slope", lambda: {"x": t(4)}, lambda i: ft.LeakyReLU(float("inf"))(i["x"]),
         ValueError, "finite"),
        ("api-complex", lambda: {"x": t(4, dtype=torch.complex64)},
         lambda i: fastleaky.leaky_relu(i["x"]), TypeError, "complex"),
        ("api-requires-grad", lambda: {"x": t(4).requires_grad_()},
         lambda i: fastleaky.leaky_relu(i["x"]), RuntimeError, "fastleaky.torch"),
        ("api-out-dtype", lambda: {"x": t(4), "out": torch.full((4,), 5.0, dtype=torch.float64)},
         lambda i: fastleaky.leaky_relu(i["x"], out=i["out"]), TypeError, "dtype"),
        ("api-out-shape", lambda: {"x": t(4), "out": torch.full((5,), 5.0)},
         lambda i: fastleaky.leaky_relu(i["x"], out=i["out"]), ValueError, "shape"),
        ("api-grad-shape", lambda: {"x": t(4), "g": t(5)},
         lambda i: fastleaky.leaky_relu_backward(i["g"], i["x"]), ValueError, "shape"),
        ("api-backend", lambda: {"x": t(4)},
         lambda i: fastleaky.leaky_relu(i["x"], backend="nope"), ValueError, "valid names"),
    ]


TORCH_ROW_IDS = ["fn-complex", "fn-int", "fn-nan-slope", "fn-str-slope", "fn-ndarray",
                 "fn-inplace-nan-slope", "module-inf-slope", "api-complex", "api-requires-grad",
                 "api-out-dtype", "api-out-shape", "api-grad-shape", "api-backend"]


@pytest.mark.parametrize("row_id", TORCH_ROW_IDS)
def test_torch_bad_input(row_id):
    rows = {r[0]: r for r in _torch_rows()}
    _, make, call, exc, match = rows[row_id]
    inputs = make()
    before = {k: v.detach().clone() for k, v in inputs.items() if hasattr(v, "detach")}
    with pytest.raises(exc, match=_escape(match)):
        call(inputs)
    for name, old in before.items():
        assert inputs[name].detach().equal(old), f"{name} was written before the error"
