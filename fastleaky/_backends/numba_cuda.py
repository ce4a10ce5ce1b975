"""The ``cuda`` backend: numba-cuda kernels, grid-stride, several elements a thread.

Nothing here runs at ``import fastleaky``: numba.cuda is imported on first
use, and the kernels are compiled then (``cache=True``).  The kernels are
the operations' scalar definitions (``fastleaky.ops``) in grid-stride loops
(``_cuda_kernels``).

Kernel shape: each thread handles ``ITEMS`` elements of a tile of
``ITEMS * blockDim`` (coalesced: element ``k`` of thread ``t`` is at
``tile + t + k * blockDim``), issuing all loads before any store, and the
grid strides over the tiles: several independent loads in flight per thread
reach the device's copy bandwidth, where one element per thread falls well
short of it.  Indices are int64, so arrays above 2**31 elements work.

Launch paths (``launch``): on a GPU, numba's compiled kernel is launched
through ``cuda.core.launch`` with raw pointers and a cached launch
configuration (numba's own dispatcher types every argument and exports each
array twice through DLPack on every call, which costs more than a small
kernel runs).  The compiled kernel handle comes from private numba-cuda
attributes, so it is feature-detected; without them the plain
``kernel[grid, block, stream](...)`` dispatcher is used.  Under the simulator
(``NUMBA_ENABLE_CUDASIM=1``) kernels always run through the plain dispatcher
with the simulator's arrays.
"""

from __future__ import annotations

import glob
import importlib
import importlib.metadata
import importlib.util
import os
import sys
import threading
import types
import warnings
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol, TypedDict

import numpy as np
from numpy.typing import NDArray

from .. import config, ops
from .numba_loops import Dispatcher, NumbaObject

if TYPE_CHECKING:
    import ctypes

ITEMS = 4  # elements per thread per tile (written out in _cuda_kernels)

_DTYPES = (np.float16, np.float32, np.float64)
_lock = threading.Lock()

#: A kernel's element type: one of ``_DTYPES``.
Float = type[np.floating[Any]]
#: What a kernel is compiled for: ``(inputs..., out, alpha, n)`` as Numba types.
Signature = tuple[NumbaObject, ...]


class Kernel(Dispatcher, Protocol):
    """A compiled kernel: ``kernel[blocks, threads]`` or
    ``kernel[blocks, threads, stream]`` gives the function that launches it."""

    def __getitem__(self, launch_config: tuple[object, ...]) -> Callable[..., None]: ...


class _Launcher(Protocol):
    def __call__(self, stream_handle: int, blocks: int, threads: int,
                 *args: object) -> None: ...


class _State(TypedDict, total=False):
    """What is looked up once, and the caches."""

    sim: bool  # simulating()
    max_blocks: int
    kernels: dict[tuple[str, Float], tuple[Kernel, Signature]]
    fast: dict[tuple[str, Float, int], _Launcher | None]  # launchers
    numba_streams: dict[int, object]


_state: _State = {}

parallel = False  # no host threads: ``run`` ignores ``nthreads``


# ---------------------------------------------------------------- availability

def _numpy_too_new() -> str | None:
    # numba-cuda 0.30 registers an overload for np.row_stack, which NumPy 2.5
    # removed: importing its array support fails there.
    version = importlib.metadata.version("numba-cuda")
    major_minor = tuple(int(p) for p in version.split(".")[:2])
    if major_minor <= (0, 30) and not hasattr(np, "row_stack"):
        return (f"numba-cuda {version} does not work with numpy {np.__version__} "
                "(np.row_stack is gone); install numpy<2.5 or a newer numba-cuda")
    return None


def available() -> tuple[bool, str]:
    """Cheap and side-effect free: imports neither numba nor anything CUDA,
    and never initialises the driver (a process that forks after calling
    ``fastleaky.backends()`` keeps a usable GPU in its children)."""
    if importlib.util.find_spec("numba_cuda") is None:
        return False, "numba-cuda is not installed (pip install 'fastleaky[cuda]')"
    too_new = _numpy_too_new()
    if too_new:
        return False, too_new
    version = importlib.metadata.version("numba-cuda")
    if os.environ.get("NUMBA_ENABLE_CUDASIM", "0") not in ("", "0"):
        return True, f"numba-cuda {version}, CUDA simulator (NUMBA_ENABLE_CUDASIM=1)"
    problem = _driver_problem()
    if problem:
        return False, problem
    return True, f"numba-cuda {version}, {_driver_version()}"


def _driver_library() -> tuple[ctypes.CDLL | None, str | None]:
    """The CUDA driver library, loaded where numba-cuda would look for it."""
    import ctypes

    if os.environ.get("NUMBA_CUDA_DRIVER"):
        names = [os.environ["NUMBA_CUDA_DRIVER"]]
    elif sys.platform == "win32":
        names = ["nvcuda.dll"]
    else:
        names = ["libcuda.so.1", "libcuda.so"]
    errors = []
    for name in names:
        try:
            return ctypes.CDLL(name), None
        except OSError as exc:
            errors.append(str(exc))
    return None, "; ".join(errors)


def _driver_problem() -> str | None:
    lib, error = _driver_library()
    if lib is None:
        return f"no CUDA driver found ({error})"
    if sys.platform.startswith("linux") and not glob.glob("/dev/nvidia[0-9]*"):
        return "the CUDA driver is installed but no GPU device (/dev/nvidia*) is present"
    return None


def _driver_version() -> str:
    import ctypes

    lib, _ = _driver_library()
    version = ctypes.c_int(0)
    if lib is None or lib.cuDriverGetVersion(ctypes.byref(version)) != 0:
        return "CUDA driver found"
    return f"CUDA driver {version.value // 1000}.{version.value % 1000 // 10}"


def native_dtypes() -> frozenset[type[np.generic]]:
    return frozenset(_DTYPES)


def _simulating() -> bool:
    from numba.cuda.core import config as numba_config

    return bool(numba_config.ENABLE_CUDASIM)


def simulating() -> bool:
    """Whether numba-cuda runs its simulator (``NUMBA_ENABLE_CUDASIM=1``)."""
    if "sim" not in _state:
        _state["sim"] = _simulating()
    return _state["sim"]


# ---------------------------------------------------------------- kernels

# The options every kernel is compiled with (numba-cuda's defaults besides
# these); ``definition`` gives them to anything that compiles the kernels
# another way (tests/test_ptx.py, for a given compute capability).
COMPILE_OPTIONS: dict[str, object] = {}


def _cuda() -> types.ModuleType:
    """``numba.cuda``, as a module: Numba's own annotations describe its
    built-in CUDA target, not numba-cuda's, which runs."""
    return importlib.import_module("numba.cuda")


def definition(op_name: str, dtype: Float) -> tuple[types.FunctionType, Signature,
                                                     dict[str, object]]:
    """What the kernel of ``op_name`` on ``dtype`` arrays is compiled from:
    ``(python function, signature, options)``, with the signature
    ``(inputs..., out, alpha, n)`` on 1-D C arrays.

    Needs numba-cuda but no driver or GPU: ``numba.cuda.compile_ptx(func,
    signature, cc=..., **options)`` compiles it for any compute capability.
    ``TypeError`` for a dtype the backend has no kernel for.
    """
    from . import _cuda_kernels

    numba_types = importlib.import_module("numba.cuda.types")
    int64 = numba_types.int64
    elements = {np.float16: numba_types.float16, np.float32: numba_types.float32,
                np.float64: numba_types.float64}
    if dtype not in elements:
        raise TypeError(f"the cuda backend has no kernel for {np.dtype(dtype).name}; "
                        f"it computes {', '.join(np.dtype(t).name for t in _DTYPES)}")
    op = ops.BY_NAME[op_name]
    element = elements[dtype]
    arr = element[::1]
    signature = (*([arr] * op.arity), arr, element, int64)
    return _cuda_kernels.kernel_function(op, dtype), signature, dict(COMPILE_OPTIONS)


def _build(op_name: str, dtype: Float) -> tuple[Kernel, Signature]:
    """Compile one kernel for the current GPU (eagerly: ``cuda.jit`` with a
    signature asks the driver for the device's compute capability)."""
    from .numba_loops import record_disk_cache

    cuda = _cuda()
    func, signature, options = definition(op_name, dtype)
    dispatcher: Kernel
    try:
        dispatcher = cuda.jit([signature], cache=True, **options)(func)
    except RuntimeError as exc:
        # No writable cache folder (a read-only install, no home folder):
        # compile in memory, as the CPU loops do, rather than fail the call.
        if "cannot cache" not in str(exc):
            raise
        record_disk_cache(func.__qualname__, None)
        dispatcher = cuda.jit([signature], **options)(func)
        return dispatcher, signature
    record_disk_cache(func.__qualname__, "numba-cuda's cache folder")
    return dispatcher, signature


def kernel(op: str, dtype: Float) -> tuple[Kernel, Signature]:
    """The compiled kernel (a numba dispatcher) and its one signature."""
    key = (op, dtype)
    kernels = _state.setdefault("kernels", {})
    try:
        return kernels[key]
    except KeyError:
        pass
    with _lock:
        if key not in kernels:
            kernels[key] = _build(op, dtype)
    return kernels[key]


# ---------------------------------------------------------------- launching

def _launch_shape(n: int) -> tuple[int, int]:
    """(blocks, threads) for n elements: enough tiles to cover n, capped so
    that large arrays loop (grid-stride) instead of launching ~n/1024 blocks."""
    if simulating():
        threads = config.CUDA_SIM_THREADS_PER_BLOCK
        cap = config.CUDA_SIM_MAX_BLOCKS
    else:
        threads = config.CUDA_THREADS_PER_BLOCK
        known = _state.get("max_blocks")
        if known is None:
            sms: int = _cuda().get_current_device().MULTIPROCESSOR_COUNT
            known = _state["max_blocks"] = sms * config.CUDA_BLOCKS_PER_SM
        cap = known
    blocks = min(-(-n // (threads * ITEMS)), cap)
    return max(blocks, 1), threads


def _fast_launcher(op: str, dtype: Float, device: int) -> _Launcher | None:
    """``f(stream_handle, blocks, threads, *args)`` launching the compiled
    kernel on GPU ``device`` through cuda.core with raw pointers, or None
    where numba-cuda's private attributes are not those of 0.30 (then the
    public dispatcher is used)."""
    fast = _state.setdefault("fast", {})
    key = (op, dtype, device)
    if key in fast:
        return fast[key]
    launcher: _Launcher | None = None
    try:
        # (as modules: cuda-python has no type information)
        cu = importlib.import_module("cuda.bindings.driver")
        core = importlib.import_module("cuda.core")
        LaunchConfig, Stream, core_launch = core.LaunchConfig, core.Stream, core.launch
        cuda = _cuda()

        dispatcher, signature = kernel(op, dtype)
        compiled: Any = dispatcher  # its private attributes
        with cuda.gpus[device]:
            context = int(cuda.current_context().handle)
            # private: _Kernel.library -> CodeLibrary.get_cufunc() -> the
            # cuda.core Kernel loaded in this device's primary context
            handle = compiled.overloads[tuple(signature)].library.get_cufunc().kernel
    except (ImportError, AttributeError, KeyError, TypeError):
        handle = None
    if handle is not None:
        configs: dict[int, object] = {}
        streams: dict[int, object] = {}

        def launch_fast(stream_handle: int, blocks: int, threads: int, *args: object) -> None:
            cfg = configs.get(blocks)
            if cfg is None:
                if len(configs) > 4096:
                    configs.clear()
                cfg = configs[blocks] = LaunchConfig(grid=blocks, block=threads)
            stream = streams.get(stream_handle)
            if stream is None:
                stream = streams[stream_handle] = Stream.from_handle(stream_handle)
            # The launch goes to the calling thread's current context: make
            # it this device's primary context when it is not (another
            # thread, another GPU current); checking is cheap.
            if int(cu.cuCtxGetCurrent()[1]) == context:
                core_launch(stream, cfg, handle, *args)
            else:
                with cuda.gpus[device]:
                    core_launch(stream, cfg, handle, *args)

        launcher = launch_fast
    fast[key] = launcher
    return launcher


def _array_params(ptr: int, n: int, itemsize: int) -> tuple[int, ...]:
    # numba's 1-D array argument: meminfo, parent, nitems, itemsize, data,
    # shape[0], strides[0] (all pointer-sized).
    return (0, 0, n, itemsize, ptr, n, itemsize)


def fast_launch_args(dtype: Float, n: int, inputs: Sequence[int], out: int,
                     a: np.generic | float) -> list[object]:
    """The kernel arguments of the fast launch path, in the kernel's
    parameter order, as ``cuda.core.launch`` packs them: each array
    (device pointers ``inputs``, then ``out``) as numba's seven
    pointer-sized fields, ``alpha`` as a scalar of ``dtype`` (a Python
    float would be packed as a double, which a float32 kernel would read
    as another number), ``n`` as int64."""
    itemsize = np.dtype(dtype).itemsize
    args: list[object] = []
    for p in (*inputs, out):
        args.extend(_array_params(p, n, itemsize))
    args.append(a if type(a) is dtype else dtype(a))
    args.append(np.int64(n))
    return args


def launch(op: str, dtype: Float, n: int, inputs: Sequence[Any], out: Any, a: np.generic,
           stream: int = 0, device: int = 0) -> None:
    """Run ``op`` on ``n`` elements.

    ``inputs`` and ``out`` are flat contiguous buffers of ``dtype``: device
    pointers (ints) on a GPU, or 1-D arrays numba can launch with (the
    simulator's arrays, numba device arrays).  ``a`` is a scalar of
    ``dtype``; ``stream`` a CUDA stream handle (0: the legacy default
    stream); ``device`` the GPU the buffers are on.
    Asynchronous on a GPU, like any kernel launch.
    """
    if n == 0:
        return
    blocks, threads = _launch_shape(n)
    if simulating():
        dispatcher, _ = kernel(op, dtype)
        # The simulator computes with NumPy scalars, which warn on inf * 0
        # and overflow; the results are the defined IEEE ones.  Warning
        # filters (not errstate) reach the simulator's thread per CUDA thread.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            dispatcher[blocks, threads](*inputs, out, a, np.int64(n))
        return
    if all(isinstance(p, int) for p in (*inputs, out)):
        fast = _fast_launcher(op, dtype, device)
        if fast is not None:
            fast(stream, blocks, threads, *fast_launch_args(dtype, n, inputs, out, a))
            return
    from numba.cuda.core.errors import NumbaPerformanceWarning

    cuda = _cuda()
    dispatcher, _ = kernel(op, dtype)
    # numba warns about grids smaller than the GPU; small arrays need few blocks.
    with warnings.catch_warnings(), cuda.gpus[device]:
        warnings.simplefilter("ignore", NumbaPerformanceWarning)
        if any(isinstance(p, int) for p in (*inputs, out)):
            inputs = [_wrap_pointer(p, n, dtype) for p in inputs]
            out = _wrap_pointer(out, n, dtype)
        dispatcher[blocks, threads, _numba_stream(stream)](*inputs, out, a, np.int64(n))


def _wrap_pointer(ptr: Any, n: int, dtype: Float) -> Any:
    """``ptr`` as a numba device array of ``n`` elements, if it is a pointer."""
    if not isinstance(ptr, int):
        return ptr
    desc = {"shape": (n,), "strides": None, "typestr": np.dtype(dtype).str,
            "data": (ptr, False), "version": 3}
    return _cuda().from_cuda_array_interface(desc, owner=None, sync=False)


def _numba_stream(handle: int) -> object:
    """The numba stream of a raw CUDA stream handle (0: the default stream)."""
    streams = _state.setdefault("numba_streams", {})
    stream = streams.get(handle)
    if stream is None:
        cuda = _cuda()
        stream = streams[handle] = (
            cuda.default_stream() if handle == 0 else cuda.external_stream(handle)
        )
    return stream


# ---------------------------------------------------------------- host arrays

def _on_device(op: str, dtype: Float, inputs: Sequence[NDArray[Any]], a: np.generic,
               out: NDArray[Any]) -> None:
    """Host NumPy arrays (``backend="cuda"``): copy in, compute, copy back."""
    cuda = _cuda()
    n = out.size
    if n == 0:
        return
    stream = cuda.stream()
    d_in = [cuda.to_device(x, stream=stream) for x in inputs]
    d_out = cuda.device_array(n, dtype, stream=stream)
    if simulating():
        launch(op, dtype, n, d_in, d_out, a)
    else:
        ptr = [d.device_ctypes_pointer.value for d in (*d_in, d_out)]
        device = cuda.get_current_device().id
        launch(op, dtype, n, ptr[:-1], ptr[-1], a, int(stream.handle), device)
    d_out.copy_to_host(out, stream=stream)
    stream.synchronize()


def run(op: ops.Op, inputs: Sequence[NDArray[Any]], a: np.generic, out: NDArray[Any],
        nthreads: int) -> None:
    """``op`` on host arrays (``backend="cuda"``): 1-D contiguous native
    arrays of out's dtype, ``a`` a scalar of it; ``nthreads`` is unused."""
    _on_device(op.name, out.dtype.type, inputs, a, out)


# Per-operation entry points over ``run``, as ``fastleaky.api`` calls them.
