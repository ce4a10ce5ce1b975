"""The public API's annotations: complete, in step with the registry, and
true at run time (``ci/typecheck`` runs mypy --strict on tests/typing/)."""

import inspect
import runpy
import sys
import typing
from pathlib import Path

import pytest

import fastleaky
import fastleaky.testing
from fastleaky import reference, registry

USER_SCRIPT = Path(__file__).parent / "typing" / "user_script.py"
# The same with PyTorch, dask and xarray objects.
USER_SCRIPT_KINDS = Path(__file__).parent / "typing" / "user_script_kinds.py"


def test_backend_name_type_is_the_registry_names():
    assert typing.get_args(fastleaky.BackendName) == registry.NAMES


def _public_functions():
    for module in (fastleaky, reference, fastleaky.testing):
        for name in module.__all__:
            obj = getattr(module, name)
            if inspect.isfunction(obj):
                yield f"{module.__name__}.{name}", inspect.unwrap(obj)


def test_every_public_function_is_annotated():
    missing = []
    for name, fn in _public_functions():
        annotations = fn.__annotations__
        params = [p for p in inspect.signature(fn).parameters
                  if p not in ("self", "cls")]
        missing += [f"{name}({p})" for p in params if p not in annotations]
        if "return" not in annotations:
            missing.append(f"{name} -> ?")
    assert not missing, missing


@pytest.mark.skipif(sys.version_info < (3, 11), reason="typing.get_overloads: Python 3.11+")
def test_overloads_are_declared():
    for fn in (fastleaky.leaky_relu, fastleaky.leaky_relu_grad, fastleaky.leaky_relu_backward):
        assert len(typing.get_overloads(fn)) >= 5, fn.__name__
    for fn in (reference.leaky_relu, reference.leaky_relu_grad, reference.leaky_relu_backward):
        assert len(typing.get_overloads(fn)) >= 2, fn.__name__


def test_typed_user_script_runs():
    """Its assert_type claims are checked by mypy; its isinstance checks here."""
    runpy.run_path(str(USER_SCRIPT), run_name="user_script")


def test_typed_user_script_with_other_kinds_runs():
    for library in ("torch", "dask.array", "xarray"):
        pytest.importorskip(library)
    runpy.run_path(str(USER_SCRIPT_KINDS), run_name="user_script_kinds")


def test_typed_torch_user_script_runs():
    pytest.importorskip("torch")
    runpy.run_path(str(Path(__file__).parent / "typing" / "torch_user.py"), run_name="torch_user")


def test_typed_building_blocks_script_runs():
    pytest.importorskip("numba")
    runpy.run_path(str(Path(__file__).parent / "typing" / "building_blocks.py"),
                   run_name="building_blocks")
