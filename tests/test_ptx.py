"""The cuda kernels as a GPU would run them, checked without a GPU or driver.

Every kernel is built as the backend builds it (``numba_cuda.definition``),
compiled by NVVM for compute capabilities 8.0, 9.0 and 10.0 (arch-specific
from 9.0 on: ``sm_90a``, ``sm_100a``, as numba-cuda compiles for the GPU at
hand), linked to a cubin by nvJitLink, and its machine code (SASS, from
``cuobjdump``) checked: no local memory, stack or spills; no float64
instruction in the float16 and float32 kernels; all of a thread's loads
of a tile issued before its stores; a bounded register count.  The fast launch path's
packed arguments are checked against each kernel's PTX parameter list.

Needs the NVIDIA compiler wheels (``pip install ".[ptx]"``); skips without
them unless ``FASTLEAKY_REQUIRE_PTX=1`` (``ci/ptx``) makes that a failure.
``python tests/test_ptx.py`` prints the SASS facts of every kernel.
"""

from __future__ import annotations

import ctypes
import functools
import os
import re
import subprocess
import tempfile
from dataclasses import dataclass

import numpy as np
import pytest

from fastleaky import ops

CCS = ((8, 0), (9, 0), (10, 0))
DTYPES = (np.float16, np.float32, np.float64)
MAX_REGISTERS = 64
REQUIRED = os.environ.get("FASTLEAKY_REQUIRE_PTX", "") == "1"

# SASS opcodes that compute in float64 (besides conversions naming F64).
_F64_OPCODES = {"DADD", "DMUL", "DFMA", "DSETP", "DSET", "DMNMX", "DMMA"}
_INSTRUCTION = re.compile(r"/\*[0-9a-f]{4,}\*/\s+(?:@!?U?P[T0-9]+\s+)?([A-Z][A-Z0-9_.]*)")
_RESOURCES = re.compile(r"REG:(\d+) STACK:(\d+) SHARED:(\d+) LOCAL:(\d+)")


def _missing_toolchain() -> str | None:
    if os.environ.get("NUMBA_ENABLE_CUDASIM", "0") not in ("", "0"):
        return "the CUDA simulator compiles nothing"
    try:
        from cuda import pathfinder
        from cuda.core import Linker  # noqa: F401
        from numba.cuda.cudadrv import nvvm
    except ImportError as exc:
        return f"numba-cuda or cuda.core cannot be imported: {exc}"
    if not nvvm.is_available():
        return "NVVM is not installed (pip install '.[ptx]')"
    for tool in ("cuobjdump", "nvdisasm"):
        if pathfinder.find_nvidia_binary_utility(tool) is None:
            return f"{tool} is not installed (pip install '.[ptx]')"
    return None


@pytest.fixture(scope="module", autouse=True)
def toolchain():
    missing = _missing_toolchain()
    if missing:
        if REQUIRED:
            pytest.fail(f"FASTLEAKY_REQUIRE_PTX=1 but {missing}")
        pytest.skip(missing)


def _arch(cc) -> tuple:
    """The compute capability as numba-cuda compiles for a GPU of it."""
    return (*cc, "a" if cc >= (9, 0) else "")


@dataclass(frozen=True)
class Compiled:
    ptx: str
    sass: str
    registers: int
    stack: int
    local: int

    @property
    def opcodes(self) -> list[str]:
        return _INSTRUCTION.findall(self.sass)

    def loads_before_a_store(self) -> int:
        """The most global loads issued one after another before a store
        (in program order; the unrolled path's, not the tail's, which the
        compiler may place first)."""
        most = count = 0
        for opcode in self.opcodes:
            if opcode.startswith("STG"):
                most, count = max(most, count), 0
            count += opcode.startswith("LDG")
        return most

    def float64_instructions(self) -> list[str]:
        return [op for op in self.opcodes
                if op.split(".")[0] in _F64_OPCODES or "F64" in op.split(".")[1:]]

    def local_memory_instructions(self) -> list[str]:
        return [op for op in self.opcodes if op.split(".")[0] in ("LDL", "STL")]


def _cubin_sass(ptx: str, cc) -> str:
    from cuda import pathfinder
    from cuda.core import Linker, LinkerOptions, ObjectCode

    major, minor, suffix = _arch(cc)
    linker = Linker(ObjectCode.from_ptx(ptx.encode()),
                    options=LinkerOptions(arch=f"sm_{major}{minor}{suffix}"))
    cubin = bytes(linker.link("cubin").code)
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "kernel.cubin")
        with open(path, "wb") as f:
            f.write(cubin)
        cuobjdump = pathfinder.find_nvidia_binary_utility("cuobjdump")
        nvdisasm = pathfinder.find_nvidia_binary_utility("nvdisasm")
        env = dict(os.environ, NVDISASM_PATH=os.path.dirname(nvdisasm))
        return subprocess.run([cuobjdump, "-res-usage", "-sass", path], env=env,
                              check=True, capture_output=True, text=True).stdout


def _compile(func, signature, cc, **options) -> Compiled:
    from numba import cuda

    ptx, _ = cuda.compile_ptx(func, signature, cc=_arch(cc), **options)
    sass = _cubin_sass(ptx, cc)
    registers, stack, _shared, local = map(int, _RESOURCES.search(sass).groups())
    return Compiled(ptx, sass, registers, stack, local)


@functools.lru_cache(maxsize=None)
def kernel(op_name: str, dtype, cc) -> Compiled:
    """The backend's kernel, compiled exactly as the backend compiles it."""
    from fastleaky._backends import numba_cuda

    func, signature, options = numba_cuda.definition(op_name, dtype)
    return _compile(func, signature, cc, **options)


KERNELS = [pytest.param(op.name, dt, cc, id=f"{op.name}-{np.dtype(dt).name}-cc{cc[0]}{cc[1]}")
           for op in ops.OPS for dt in DTYPES for cc in CCS]


# ---------------------------------------------------------------- machine code

@pytest.mark.parametrize("op_name, dtype, cc", KERNELS)
def test_no_local_memory_stack_or_spills(op_name, dtype, cc):
    k = kernel(op_name, dtype, cc)
    assert (k.local, k.stack) == (0, 0)
    assert k.local_memory_instructions() == []


@pytest.mark.parametrize("op_name, dtype, cc", KERNELS)
def test_registers_bounded(op_name, dtype, cc):
    assert kernel(op_name, dtype, cc).registers <= MAX_REGISTERS


@pytest.mark.parametrize("op_name, dtype, cc",
                         [k for k in KERNELS if k.values[1] != np.float64])
def test_no_float64_in_float16_and_float32_kernels(op_name, dtype, cc):
    k = kernel(op_name, dtype, cc)
    assert k.float64_instructions() == []
    assert ".f64" not in k.ptx


@pytest.mark.parametrize("op_name, dtype, cc", KERNELS)
def test_a_threads_loads_before_its_stores(op_name, dtype, cc):
    from fastleaky._backends import numba_cuda

    arity = ops.BY_NAME[op_name].arity
    assert kernel(op_name, dtype, cc).loads_before_a_store() >= numba_cuda.ITEMS * arity


def test_float64_instructions_are_seen():
    # the check above can fail: the float64 kernels have them
    assert kernel("forward", np.float64, (9, 0)).float64_instructions()


# ---------------------------------------------------------------- launch parameters

_PARAM = re.compile(r"\.param\s+(?:\.align\s+(\d+)\s+)?\.([a-z]+)(\d+)\s+\S+?_param_(\d+)(\[(\d+)\])?")


def ptx_parameters(ptx: str) -> list[tuple[str, int]]:
    """The kernel's parameters in order: (PTX type, size in bytes)."""
    entry = ptx[ptx.index(".entry"):]
    entry = entry[:entry.index(")")]
    params = []
    for _align, kind, bits, index, _array, count in _PARAM.findall(entry):
        assert int(index) == len(params)
        size = int(bits) // 8 * (int(count) if count else 1)
        params.append((f"{kind}{bits}", size))
    return params


def _packed(args) -> list[int]:
    """The address of each argument as cuda.core's launch packs it."""
    from cuda.core._kernel_arg_handler import ParamHolder

    holder = ParamHolder(args)
    addresses = list((ctypes.c_void_p * len(args)).from_address(holder.ptr))
    return holder, addresses


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("op", ops.OPS, ids=lambda op: op.name)
@pytest.mark.parametrize("alpha", [0.3, np.float64(0.3)], ids=["python-float", "float64"])
def test_fast_launch_arguments_match_the_ptx_parameters(op, dtype, alpha):
    from fastleaky._backends import numba_cuda

    params = ptx_parameters(kernel(op.name, dtype, (9, 0)).ptx)
    n = (1 << 33) + 5  # above 2**32: a 32-bit n would be seen
    pointers = [0x7F0011223340 + 0x1000 * i for i in range(op.arity + 1)]
    args = numba_cuda.fast_launch_args(dtype, n, pointers[:-1], pointers[-1], alpha)
    assert len(args) == len(params)
    holder, addresses = _packed(args)
    itemsize = np.dtype(dtype).itemsize
    expected = []
    for p in pointers:
        expected += [np.uint64(v) for v in (0, 0, n, itemsize, p, n, itemsize)]
    expected += [dtype(0.3), np.int64(n)]
    for k, ((ptx_type, size), address, value) in enumerate(zip(params, addresses, expected)):
        assert size == np.dtype(type(value)).itemsize, (k, ptx_type, value)
        assert ctypes.string_at(address, size) == np.array(value).tobytes(), (k, ptx_type)
    # alpha of the kernel's element type (float16 travels as its 16 bits),
    # n a 64-bit integer
    assert params[-2] == ({2: "u16", 4: "f32", 8: "f64"}[itemsize], itemsize)
    assert params[-1] == ("u64", 8)
    del holder


# ---------------------------------------------------------------- users' kernels

def _user_kernel_source():
    from numba import cuda

    from fastleaky.cuda import (
        leaky_relu_backward_device,
        leaky_relu_device,
        leaky_relu_grad_device,
    )

    def user_kernel(g, x, alpha, y, dy, dx):
        i = cuda.grid(1)
        if i < x.size:
            y[i] = leaky_relu_device(x[i], alpha)
            dy[i] = leaky_relu_grad_device(x[i], alpha)
            dx[i] = leaky_relu_backward_device(g[i], x[i], alpha)

    return user_kernel


@pytest.mark.parametrize("dtype", [np.float16, np.float32])
def test_users_kernels_compute_in_their_type(dtype):
    # the public device functions: no float64 in a float16 or float32 kernel
    from numba.cuda import types

    element = {np.float16: types.float16, np.float32: types.float32}[dtype]
    signature = (element[::1], element[::1], element, element[::1], element[::1], element[::1])
    k = _compile(_user_kernel_source(), signature, (9, 0))
    assert ".f64" not in k.ptx
    assert k.float64_instructions() == []
    assert k.local == 0


# ---------------------------------------------------------------- report

def _report() -> None:
    """The SASS facts of every kernel, one line each."""
    missing = _missing_toolchain()
    if missing:
        raise SystemExit(missing)
    print(f"{'kernel':26s} {'cc':>5s} {'regs':>5s} {'stack':>5s} {'local':>5s} "
          f"{'loads/store':>11s} {'f64 instr':>9s}")
    for op in ops.OPS:
        for dt in DTYPES:
            for cc in CCS:
                k = kernel(op.name, dt, cc)
                print(f"{op.name + ' ' + np.dtype(dt).name:26s} {cc[0]}.{cc[1]:<3d} "
                      f"{k.registers:5d} {k.stack:5d} {k.local:5d} "
                      f"{k.loads_before_a_store():11d} {len(k.float64_instructions()):9d}")


if __name__ == "__main__":
    _report()
