"""fastleaky: LeakyReLU and its gradient at memory bandwidth.

``import fastleaky`` loads NumPy and this package only: Numba, CUDA and the
optional libraries are imported when a call first needs them.
"""

from . import reference
from .api import leaky_relu, leaky_relu_backward, leaky_relu_grad
from .registry import BackendInfo, BackendName, BackendUnavailableError, backends, use_backend
from .threads import thread_limit

__version__ = "0.1.0"


def get_include() -> str:
    """The directory to put on Cython's include path for ``cimport fastleaky.kernels``.

    ``fastleaky/kernels.pxd`` is installed with the package; this is the
    directory that holds the ``fastleaky`` package (like ``numpy.get_include()``
    for NumPy's headers), e.g. ``cythonize(..., include_path=[fastleaky.get_include()])``.
    """
    import os

    return os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


__all__ = [
    "BackendInfo",
    "BackendName",
    "BackendUnavailableError",
    "backends",
    "get_include",
    "leaky_relu",
    "leaky_relu_backward",
    "leaky_relu_grad",
    "reference",
    "thread_limit",
    "use_backend",
]
