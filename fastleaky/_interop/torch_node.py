"""fastleaky.torch's autograd node in C++ (``torch_node.cpp``): built on request, used once built.

A C++ extension of PyTorch is tied to the torch it was compiled against
(its C++ ABI changes between releases), so it cannot ship in fastleaky's
wheel.  ``build`` compiles it on the user's machine against the torch
installed there, with ``torch.utils.cpp_extension`` (a C++17 compiler is
needed), into a cache directory named after a hash of the source, the torch
version, the C++ ABI flag and the Python ABI: a build for another torch or
an older source is never loaded.  ``load`` imports a build that exists and
hands it the Cython loops' entry; it never compiles.

``FASTLEAKY_TORCH_NODE=0`` turns the node off; ``FASTLEAKY_TORCH_NODE_DIR``
moves the cache (default ``$XDG_CACHE_HOME/fastleaky/torch-node``, or
``~/.cache/...``).
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import torch

from .. import ops, registry

SOURCE = Path(__file__).with_name("torch_node.cpp")
ENV_SWITCH = "FASTLEAKY_TORCH_NODE"
ENV_DIR = "FASTLEAKY_TORCH_NODE_DIR"


def module_name() -> str:
    """The extension's name for this source, torch and Python."""
    digest = hashlib.sha256(SOURCE.read_bytes())
    for part in (torch.__version__, str(torch._C._GLIBCXX_USE_CXX11_ABI),
                 sys.implementation.cache_tag, sys.platform):
        digest.update(b"\0" + part.encode())
    return f"fastleaky_torch_node_{digest.hexdigest()[:16]}"


def build_directory() -> Path:
    """Where this source's build for this torch lives."""
    root = os.environ.get(ENV_DIR)
    if not root:
        cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        root = os.path.join(cache, "fastleaky", "torch-node")
    return Path(root) / module_name()


def _library(name: str) -> Path:
    return build_directory() / f"{name}.so"


def why_not() -> str:
    """Why the node cannot be used here, or "" when it can (built or not)."""
    if os.environ.get(ENV_SWITCH, "").strip() == "0":
        return f"turned off by {ENV_SWITCH}=0"
    ok, reason = registry.availability("cython")
    if not ok:
        return f"the Cython loops are not available ({reason})"
    return ""


def _bind(module: ModuleType) -> ModuleType:
    from .._backends import _cython_loop

    from . import torch_tensors
    torch_tensors.pointer_kernel()  # the loops' thresholds, thread cap and PyTorch's team
    torch.autograd.graph.Node.register(module.LeakyReluBackward)
    module.bind(_cython_loop.tensor_call_capsule(), ops.FORWARD.code, ops.BACKWARD.code,
                np.dtype(np.float32).num, np.dtype(np.float64).num)
    from .. import torch as fastleaky_torch
    module.bind_backward(fastleaky_torch._backward)  # create_graph's recorded backward
    # What fast_leaky_relu reads to tell, as torch_tensors.cython_for_floats("auto")
    # does, that "auto" means the loops: no use_backend() in force and the
    # registry's cached decision for "auto" is their entry.
    loops = torch_tensors.plain_entry()
    if loops is not None:
        module.bind_gate(registry.backend_context_var(), registry.fast_entries(), loops)
    return module


def load() -> ModuleType | None:
    """The built node, bound to the loops; None when it is not built or is off."""
    if why_not():
        return None
    name = module_name()
    path = _library(name)
    if not path.is_file():
        return None
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    sys.modules[name] = module
    return _bind(module)


def build(verbose: bool = False) -> ModuleType:
    """Compile the node against this torch (once: a build that exists is
    reused) and return it, bound to the loops."""
    problem = why_not()
    if problem:
        raise RuntimeError(f"fastleaky's PyTorch node cannot be used: {problem}")
    loaded = load()
    if loaded is not None:
        return loaded
    from torch.utils import cpp_extension

    directory = build_directory()
    directory.mkdir(parents=True, exist_ok=True)
    name = module_name()
    module = cpp_extension.load(name=name, sources=[str(SOURCE)], build_directory=str(directory),
                                extra_cflags=["-O2"], verbose=verbose)
    assert isinstance(module, ModuleType)
    sys.modules[name] = module
    return _bind(module)
