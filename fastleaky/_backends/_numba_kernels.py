"""Numba kernels of the numba-cpu / numba-parallel backends (imports Numba).

Imported on the first call that needs them, never by ``import fastleaky``.
Each operation's one scalar definition (``Op.scalar`` in ``fastleaky.ops``)
is compiled with ``numba.njit(inline="always")`` (``SCALARS``) and used two
ways:

- in ``@njit`` loops, serial and ``prange`` (``LOOPS``), which is what the
  backends call;
- as ``@vectorize`` ufuncs for targets "cpu" and "parallel"
  (``ufuncs(target)``), real NumPy ufuncs for users who want broadcasting,
  ``where=``, reductions and so on.

Why loops rather than the ufuncs: a ufunc call passes the scalar alpha with
stride 0, and Numba's ufunc loop takes its vectorized path only when every
argument has unit stride (``is_unit_strided`` in
``numba/np/ufunc/wrappers.py``), in every thread of a "parallel" ufunc too,
so the ufuncs run at a fraction of the speed of the loops, which LLVM
vectorizes.  NumPy's ufunc call also costs more than Numba's dispatch, and
it turns the FP "invalid" flag that the vectorized compare raises on NaN
into a RuntimeWarning.  Building the ufuncs takes far longer than loading
the loops from the disk cache, so they are built only on request.

float16: Numba has no float16 type on the CPU, so the loops take float16
arrays as their uint16 bits (``_loaded`` / ``_stored``): each element is
widened to float32 (exact), the scalar definition runs in float32, and the
result is narrowed once, rounding to nearest even.  The product of two
halves is exact in float32, so that single rounding gives NumPy's float16
product.  The conversions use the CPU's instructions where Numba's target
has them (F16C on x86-64, any AArch64), else integer arithmetic; either way
NaN is converted bit by bit: LLVM leaves a converted NaN's payload and quiet
bit unspecified (and folds a widen-then-narrow away), while the reference
keeps a NaN that passes through as it is.

The loops are disk-cached: later processes load them from Numba's disk
cache.  Where no cache folder is writable (a read-only install, no home
folder) they are compiled in memory in each process instead
(``numba_loops.njit_with_disk_cache``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._numba_tbb import preload

preload()  # before Numba starts its thread pool

import numpy as np  # noqa: E402
from llvmlite import ir  # noqa: E402
from numba.core import types  # noqa: E402
from numpy.typing import NDArray  # noqa: E402

from .. import ops  # noqa: E402
from .numba_loops import (  # noqa: E402
    Codegen,
    Dispatcher,
    NumbaObject,
    compiled_copy,
    intrinsic,
    njit,
    njit_with_disk_cache,
    overload,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    from ..jit import Ufunc

    # In compiled code ``numba.int64(v)`` and the like convert a value;
    # Numba's annotations say they make a signature (as they do on types).
    numba: Any
    # Bound per copy of the loop templates below (``_loop``).
    scalar: Callable[..., Any]
else:
    import numba

# Values in compiled code are of Numba's types, which the checker does not
# know: the compiled helpers below take and give Any.

SCALARS = {op.name: njit_with_disk_cache(op.scalar, inline="always") for op in ops.OPS}


# ---------------------------------------------------------------- LLVM operations
#
# What Numba has no spelling for: bit casts, a branch-free select, LLVM's
# float16 conversions (``fpext``/``fptrunc`` on ``half``), and NaN converted
# bit by bit (sign, quiet bit and payload) in 16- and 32-bit integer
# operations that vectorize with the rest of a loop.

_I16, _I32, _F16, _F32 = ir.IntType(16), ir.IntType(32), ir.HalfType(), ir.FloatType()


@intrinsic
def _float32_bits(typingctx: NumbaObject,
                  value: NumbaObject) -> tuple[NumbaObject, Codegen] | None:
    if value != types.float32:
        return None

    def codegen(context: NumbaObject, builder: NumbaObject, signature: NumbaObject,
                args: list[NumbaObject]) -> NumbaObject:
        return builder.bitcast(args[0], _I32)

    return types.uint32(types.float32), codegen


@intrinsic
def _float32_from_bits(typingctx: NumbaObject,
                       bits: NumbaObject) -> tuple[NumbaObject, Codegen] | None:
    if bits != types.uint32:
        return None

    def codegen(context: NumbaObject, builder: NumbaObject, signature: NumbaObject,
                args: list[NumbaObject]) -> NumbaObject:
        return builder.bitcast(args[0], _F32)

    return types.float32(types.uint32), codegen


@intrinsic
def _select(typingctx: NumbaObject, condition: NumbaObject, if_true: NumbaObject,
            if_false: NumbaObject) -> tuple[NumbaObject, Codegen] | None:
    """``if_true if condition else if_false`` as one LLVM ``select``: both
    are computed, so a loop around it stays free of branches (vectorizable)."""
    if not isinstance(condition, types.Boolean) or if_true != if_false:
        return None

    def codegen(context: NumbaObject, builder: NumbaObject, signature: NumbaObject,
                args: list[NumbaObject]) -> NumbaObject:
        return builder.select(args[0], args[1], args[2])

    return if_true(condition, if_true, if_false), codegen


@intrinsic
def _widen_instruction(typingctx: NumbaObject,
                       bits: NumbaObject) -> tuple[NumbaObject, Codegen] | None:
    """float16 bits -> float32 by LLVM's ``fpext`` (NaN: unspecified bits)."""
    if bits != types.uint16:
        return None

    def codegen(context: NumbaObject, builder: NumbaObject, signature: NumbaObject,
                args: list[NumbaObject]) -> NumbaObject:
        return builder.fpext(builder.bitcast(args[0], _F16), _F32)

    return types.float32(types.uint16), codegen


@intrinsic
def _narrow_instruction(typingctx: NumbaObject,
                        value: NumbaObject) -> tuple[NumbaObject, Codegen] | None:
    """float32 -> float16 bits by LLVM's ``fptrunc``, rounding to nearest
    even (NaN: unspecified bits)."""
    if value != types.float32:
        return None

    def codegen(context: NumbaObject, builder: NumbaObject, signature: NumbaObject,
                args: list[NumbaObject]) -> NumbaObject:
        return builder.bitcast(builder.fptrunc(args[0], _F16), _I16)

    return types.uint16(types.float32), codegen


@intrinsic
def _nan_to_float32(typingctx: NumbaObject,
                    h: NumbaObject) -> tuple[NumbaObject, Codegen] | None:
    """float16 NaN bits ``h`` as a float32 NaN: sign, quiet bit and payload kept."""
    if h != types.uint16:
        return None

    def codegen(context: NumbaObject, builder: NumbaObject, signature: NumbaObject,
                args: list[NumbaObject]) -> NumbaObject:
        wide = builder.zext(args[0], _I32)
        sign = builder.shl(builder.and_(wide, _I32(0x8000)), _I32(16))
        payload = builder.shl(builder.and_(wide, _I32(0x3FF)), _I32(13))
        bits = builder.or_(builder.or_(sign, payload), _I32(0x7F800000))
        return builder.bitcast(bits, _F32)

    return types.float32(types.uint16), codegen


@intrinsic
def _nan_to_half(typingctx: NumbaObject,
                 f: NumbaObject) -> tuple[NumbaObject, Codegen] | None:
    """float32 NaN ``f`` as float16 bits, as NumPy converts it: sign and the
    payload's top ten bits (quiet bit first) kept, and a NaN still where
    those are all zero."""
    if f != types.float32:
        return None

    def codegen(context: NumbaObject, builder: NumbaObject, signature: NumbaObject,
                args: list[NumbaObject]) -> NumbaObject:
        bits = builder.bitcast(args[0], _I32)
        payload = builder.and_(builder.lshr(bits, _I32(13)), _I32(0x3FF))
        is_zero = builder.icmp_unsigned("==", payload, _I32(0))
        payload = builder.select(is_zero, _I32(1), payload)
        sign = builder.and_(builder.lshr(bits, _I32(16)), _I32(0x8000))
        return builder.trunc(builder.or_(builder.or_(sign, payload), _I32(0x7C00)), _I16)

    return types.uint16(types.float32), codegen


# ---------------------------------------------------------------- float16 <-> float32

@njit(inline="always")
def widen_by_instruction(h: Any) -> Any:
    """float16 bits ``h`` as a float32."""
    return _select((h & 0x7FFF) > 0x7C00, _nan_to_float32(h), _widen_instruction(h))


@njit(inline="always")
def narrow_by_instruction(f: Any) -> Any:
    """float32 ``f`` as float16 bits, rounded to nearest even."""
    return _select(f != f, _nan_to_half(f), _narrow_instruction(f))


_TWO_TO_MINUS_24 = np.float32(2.0**-24)  # the float16 subnormal step
_ONE_HALF = np.float32(0.5)


@njit(inline="always")
def widen_by_arithmetic(h: Any) -> Any:
    """float16 bits ``h`` as a float32, without a conversion instruction."""
    magnitude = h & 0x7FFF
    if magnitude > 0x7C00:
        return _nan_to_float32(h)
    if magnitude == 0x7C00:
        bits = 0x7F800000
    elif magnitude >= 0x0400:  # normal: rebias the exponent (15 -> 127)
        bits = (magnitude << 13) + 0x38000000
    else:  # subnormal or zero: magnitude * 2**-24, exact in float32
        bits = numba.int64(_float32_bits(numba.float32(magnitude) * _TWO_TO_MINUS_24))
    return _float32_from_bits(numba.uint32(((h & 0x8000) << 16) | bits))


@njit(inline="always")
def narrow_by_arithmetic(f: Any) -> Any:
    """float32 ``f`` as float16 bits, rounded to nearest even, without a
    conversion instruction (F. Giesen's ``float_to_half_fast3_rtne``)."""
    u = numba.int64(_float32_bits(f))
    magnitude = u & 0x7FFFFFFF
    if magnitude > 0x7F800000:
        return _nan_to_half(f)
    if magnitude >= 0x47800000:  # 2**16 and above, infinity included
        h = 0x7C00
    elif magnitude < 0x38800000:
        # Below 2**-14 the result is subnormal (or zero): adding 0.5 leaves
        # steps of 2**-24 in the mantissa, rounded to nearest even by the FPU.
        rounded = _float32_from_bits(numba.uint32(magnitude)) + _ONE_HALF
        h = numba.int64(_float32_bits(rounded)) - 0x3F000000
    else:
        # Rebias the exponent (127 -> 15) and round the 13 dropped bits to
        # nearest even; a carry out of the mantissa gives the next binade,
        # and from 65520 up, infinity.
        odd = (magnitude >> 13) & 1
        h = (magnitude - 0x38000000 + 0xFFF + odd) >> 13
    return numba.uint16(((u >> 16) & 0x8000) | h)


def _target_converts_half() -> bool:
    """Whether Numba's target machine has float16 conversion instructions.

    Without them LLVM calls runtime functions that Numba does not provide
    (the process crashes), e.g. with ``NUMBA_CPU_NAME=generic``.
    """
    import importlib

    import llvmlite.binding as ll

    # (modules as such: Numba's config attributes are made at run time)
    config = importlib.import_module("numba.core.config")
    codegen = importlib.import_module("numba.core.codegen")

    triple = ll.get_process_triple()
    if triple.startswith(("aarch64", "arm64")):
        return True
    if triple.startswith(("x86_64", "amd64")):
        features: str | None = config.CPU_FEATURES
        if features is None:
            features = codegen.get_host_cpu_features()
        return "+f16c" in features.split(",")
    return False


HALF_BY_INSTRUCTION = _target_converts_half()
_widen_half = widen_by_instruction if HALF_BY_INSTRUCTION else widen_by_arithmetic
_narrow_half = narrow_by_instruction if HALF_BY_INSTRUCTION else narrow_by_arithmetic


# ---------------------------------------------------------------- elements

def _loaded(value: Any) -> Any:
    """An array element as the loops compute with it (uint16: float16 bits)."""
    raise NotImplementedError("compiled only")


# (Numba requires an overload's typing function and the implementation it
# returns to have one signature, annotations included: both take Any, Numba
# types in the first, values in compiled code in the second.)

@overload(_loaded)
def _loaded_impl(value: Any) -> Callable[[Any], Any]:
    if value == types.uint16:
        def widened(value: Any) -> Any:
            return _widen_half(value)

        return widened

    def unchanged(value: Any) -> Any:
        return value

    return unchanged


def _stored(value: Any, out: NDArray[Any]) -> Any:
    """``value`` as an element of ``out`` (uint16: float16 bits)."""
    raise NotImplementedError("compiled only")


@overload(_stored)
def _stored_impl(value: Any, out: Any) -> Callable[[Any, Any], Any]:
    if out.dtype == types.uint16:
        def narrowed(value: Any, out: Any) -> Any:
            return _narrow_half(numba.float32(value))

        return narrowed

    def unchanged(value: Any, out: Any) -> Any:
        return value

    return unchanged


# ---------------------------------------------------------------- loops
#
# One loop per arity, serial and prange; a copy per operation gets that
# operation's scalar definition bound to ``scalar``.

def _unary_serial(x: NDArray[Any], a: Any, out: NDArray[Any]) -> None:
    for i in range(out.size):
        out[i] = _stored(scalar(_loaded(x[i]), a), out)  # noqa: F821 (bound per copy)


def _unary_prange(x: NDArray[Any], a: Any, out: NDArray[Any]) -> None:
    for i in numba.prange(out.size):
        out[i] = _stored(scalar(_loaded(x[i]), a), out)  # noqa: F821


def _binary_serial(g: NDArray[Any], x: NDArray[Any], a: Any, out: NDArray[Any]) -> None:
    for i in range(out.size):
        out[i] = _stored(scalar(_loaded(g[i]), _loaded(x[i]), a), out)  # noqa: F821


def _binary_prange(g: NDArray[Any], x: NDArray[Any], a: Any, out: NDArray[Any]) -> None:
    for i in numba.prange(out.size):
        out[i] = _stored(scalar(_loaded(g[i]), _loaded(x[i]), a), out)  # noqa: F821


_TEMPLATES: dict[tuple[int, bool], Callable[..., None]] = {
    (1, False): _unary_serial, (1, True): _unary_prange,
    (2, False): _binary_serial, (2, True): _binary_prange,
}


def _loop(op: ops.Op, parallel: bool) -> Dispatcher:
    """``op``'s loop: ``(inputs..., a, out)`` on 1-D arrays of one type
    (float32, float64, or uint16 holding float16), ``a`` float32 for
    float16, else of the arrays' type."""
    name = f"{op.name}_{'prange' if parallel else 'serial'}"
    template = _TEMPLATES[op.arity, parallel]
    copy = compiled_copy(template, name, {"scalar": SCALARS[op.name]}, inlined=(op.scalar,))
    return njit_with_disk_cache(copy, parallel=parallel)


LOOPS = {(op.name, parallel): _loop(op, parallel) for op in ops.OPS for parallel in (False, True)}


# ---------------------------------------------------------------- ufuncs

_SIGNATURES = {
    1: ["float32(float32, float32)", "float64(float64, float64)"],
    2: ["float32(float32, float32, float32)", "float64(float64, float64, float64)"],
}
_ufuncs: dict[str, dict[str, Ufunc]] = {}


def ufuncs(target: str) -> dict[str, Ufunc]:
    """``{"forward", "grad", "backward"}`` -> ``@vectorize`` ufunc for ``target``.

    Built on first request.  Not disk-cached: the cpu and parallel builds of
    one Python function would share (and overwrite) one cache index.
    """
    if target not in _ufuncs:
        _ufuncs[target] = {
            op.name: numba.vectorize(_SIGNATURES[op.arity], target=target)(op.scalar)
            for op in ops.OPS
        }
    return _ufuncs[target]
