"""fastleaky: LeakyReLU and its gradient at memory bandwidth.

``import fastleaky`` loads NumPy and this package only: Numba, CUDA and the
optional libraries are imported when a call first needs them.
"""

from .api import leaky_relu, leaky_relu_backward, leaky_relu_grad
from .registry import BackendInfo, BackendUnavailableError, backends, use_backend
from .threads import thread_limit

__version__ = "0.1.0"

__all__ = [
    "BackendInfo",
    "BackendUnavailableError",
    "backends",
    "leaky_relu",
    "leaky_relu_backward",
    "leaky_relu_grad",
    "thread_limit",
    "use_backend",
]
