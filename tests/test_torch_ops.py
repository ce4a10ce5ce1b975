"""fastleaky.torch as PyTorch operators: torch.compile, torch.func, TorchScript,
the lean tensor path, and writes into tensors that autograd can see."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
F = torch.nn.functional

import fastleaky  # noqa: E402
import fastleaky.torch as ft  # noqa: E402
from fastleaky import api, registry  # noqa: E402
from fastleaky._interop import torch_tensors  # noqa: E402

# PyTorch's forward-mode AD loads decompositions through torch.jit.script,
# which PyTorch itself marks deprecated.
# Every test on both of fastleaky.torch's paths (the Python autograd.Function
# and the C++ node).
pytestmark = [
    pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning"),
    pytest.mark.usefixtures("torch_path"),
]

FLOATS = [torch.float16, torch.bfloat16, torch.float32, torch.float64]


def _x(n=40, dtype=torch.float64, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(n, generator=gen, dtype=torch.float64).to(dtype)


def _same(a, b):
    assert a.dtype == b.dtype and a.shape == b.shape
    assert torch.equal(a, b)


# ---------------------------------------------------------------- the operators

def test_operators_are_registered():
    x = _x()
    _same(torch.ops.fastleaky.leaky_relu(x, 0.2), F.leaky_relu(x, 0.2))
    g = _x(seed=1)
    want = torch.where(x > 0, g, g * 0.2)
    _same(torch.ops.fastleaky.leaky_relu_backward(g, x, 0.2), want)
    assert torch.ops.fastleaky.leaky_relu.default._schema.arguments[1].default_value == 0.01


@pytest.mark.parametrize("op,args", [
    ("leaky_relu", lambda: (_x().requires_grad_(), 0.2, "auto")),
    ("leaky_relu_backward", lambda: (_x().requires_grad_(), _x(seed=1), -0.3, "auto")),
])
def test_opcheck(op, args):
    # schema, autograd registration, fake kernel, AOT dispatch
    torch.library.opcheck(getattr(torch.ops.fastleaky, op).default, args())


def test_operator_gradcheck():
    x = torch.linspace(-2, 2, 24, dtype=torch.float64).add_(0.05).requires_grad_()

    def f(t):
        return torch.ops.fastleaky.leaky_relu(t, 0.2)

    assert torch.autograd.gradcheck(f, (x,))
    assert torch.autograd.gradgradcheck(f, (x,))


def test_backward_operator_checks_its_inputs():
    with pytest.raises(ValueError, match="dtype and shape"):
        torch.ops.fastleaky.leaky_relu_backward(torch.ones(3), torch.ones(4), 0.2)


# ---------------------------------------------------------------- torch.compile

def _mlp(activation):
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(8, 16), activation,
                               torch.nn.Linear(16, 1)).double()


@pytest.mark.parametrize("inplace", [False, True], ids=["out-of-place", "inplace"])
def test_compile_fullgraph_matches_eager(inplace):
    torch._dynamo.reset()
    model = _mlp(ft.LeakyReLU(0.2, inplace=inplace))
    data = torch.randn(4, 8, dtype=torch.float64)
    eager = model(data)
    eager.sum().backward()
    grads = [p.grad.clone() for p in model.parameters()]
    model.zero_grad(set_to_none=True)
    compiled = torch.compile(model, fullgraph=True, backend="aot_eager")
    got = compiled(data)
    got.sum().backward()
    _same(got, eager)
    for p, want in zip(model.parameters(), grads):
        _same(p.grad, want)


def test_compile_graph_has_the_operator():
    torch._dynamo.reset()
    seen = []

    def backend(gm, example_inputs):
        seen.extend(str(n.target) for n in gm.graph.nodes)
        return gm

    f = torch.compile(lambda t: ft.leaky_relu(t, 0.2) * 2, fullgraph=True, backend=backend)
    x = _x()
    _same(f(x), F.leaky_relu(x, 0.2) * 2)
    assert "fastleaky.leaky_relu.default" in seen


# ---------------------------------------------------------------- torch.func

def _both(transform, *args, slope=0.2):
    got = transform(lambda t: ft.leaky_relu(t, slope))(*args)
    want = transform(lambda t: F.leaky_relu(t, slope))(*args)
    return got, want


def test_func_grad_vmap_jacrev_jacfwd():
    x = _x(30).reshape(5, 6)
    for transform in (torch.func.jacrev, torch.func.jacfwd):
        got, want = _both(transform, x[0])
        _same(got, want)
    for in_dims in (0, 1):
        got, want = _both(lambda f: torch.func.vmap(f, in_dims=in_dims), x)
        _same(got, want)
    got = torch.func.grad(lambda t: ft.leaky_relu(t, -0.3).pow(2).sum())(x)
    want = torch.func.grad(lambda t: F.leaky_relu(t, -0.3).pow(2).sum())(x)
    _same(got, want)


def test_func_nested_transforms():
    x = _x(30).reshape(5, 6)

    def per_row(f):
        return torch.func.vmap(torch.func.grad(lambda t: f(t, 0.2).pow(3).sum()), in_dims=1)

    _same(per_row(ft.leaky_relu)(x), per_row(F.leaky_relu)(x))
    hess = torch.func.hessian(lambda t: ft.leaky_relu(t, 0.2).pow(3).sum())(x[0])
    _same(hess, torch.func.hessian(lambda t: F.leaky_relu(t, 0.2).pow(3).sum())(x[0]))


def test_vmap_of_the_backward_with_different_batch_dims():
    # jacrev vmaps the backward over grad_output only: x is unbatched
    x, g = _x(6), _x(12, seed=1).reshape(2, 6)
    got = torch.func.vmap(lambda gg: torch.ops.fastleaky.leaky_relu_backward(gg, x, 0.2))(g)
    _same(got, torch.where(x > 0, g, g * 0.2))
    got = torch.func.vmap(torch.ops.fastleaky.leaky_relu_backward, in_dims=(1, 0, None))(
        g.t().contiguous(), g, 0.2)
    _same(got, torch.where(g > 0, g, g * 0.2))


def test_forward_mode_ad():
    x, tangent = _x(), _x(seed=1)
    got = torch.func.jvp(lambda t: ft.leaky_relu(t, 0.2), (x,), (tangent,))
    want = torch.func.jvp(lambda t: F.leaky_relu(t, 0.2), (x,), (tangent,))
    for a, b in zip(got, want):
        _same(a, b)
    import torch.autograd.forward_ad as fwAD

    with fwAD.dual_level():
        y = ft.leaky_relu(fwAD.make_dual(x, tangent), 0.2)
        _same(fwAD.unpack_dual(y).tangent, torch.where(x > 0, tangent, tangent * 0.2))


def test_double_backward_through_create_graph():
    x = torch.linspace(-2, 2, 9, dtype=torch.float64).add_(0.05).requires_grad_()
    (g,) = torch.autograd.grad(ft.leaky_relu(x, 0.2).pow(2).sum(), x, create_graph=True)
    (gg,) = torch.autograd.grad(g.sum(), x)
    xr = x.detach().clone().requires_grad_()
    (wg,) = torch.autograd.grad(F.leaky_relu(xr, 0.2).pow(2).sum(), xr, create_graph=True)
    (wgg,) = torch.autograd.grad(wg.sum(), xr)
    _same(g.detach(), wg.detach())
    _same(gg, wgg)


# ---------------------------------------------------------------- TorchScript

def test_jit_script_module():
    model = _mlp(ft.LeakyReLU(0.2))
    scripted = torch.jit.script(model)
    data = torch.randn(4, 8, dtype=torch.float64, requires_grad=True)
    got = scripted(data)
    _same(got, model(data))
    got.sum().backward()
    grad = data.grad.clone()
    data.grad = None
    model(data).sum().backward()
    _same(grad, data.grad)


# ---------------------------------------------------------------- the lean path

def test_lean_path_is_one_node_and_skips_the_general_path(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("the general path ran")

    if not torch_tensors.cython_for_floats("auto"):
        pytest.skip("auto does not pick the Cython loops here")
    monkeypatch.setattr(api, "compute", refuse)
    monkeypatch.setattr(torch_tensors, "_host_view", refuse)
    x = _x(1000, torch.float32).requires_grad_()
    y = ft.leaky_relu(x, 0.2)
    # one node, straight to the leaf's gradient accumulator
    (next_fn, _), = y.grad_fn.next_functions
    assert type(next_fn).__name__ == "AccumulateGrad"
    g = _x(1000, torch.float32, seed=1)
    y.backward(g)
    xr = x.detach().clone().requires_grad_()
    F.leaky_relu(xr, 0.2).backward(g)
    _same(y.detach(), F.leaky_relu(x.detach(), 0.2))
    _same(x.grad, xr.grad)


def test_every_dtype_and_layout_on_the_operator_path():
    # strided, expanded and float16/bfloat16 inputs take the operator's general path
    for dtype in FLOATS:
        base = _x(60, dtype).reshape(6, 10)
        for x in (base, base.t(), base[:, ::3], _x(1, dtype).expand(7)):
            _same(torch.ops.fastleaky.leaky_relu(x, 0.2), F.leaky_relu(x, 0.2))


# ---------------------------------------------------------------- writes autograd can see

def test_out_bumps_the_version_counter():
    # the example of a silent wrong gradient: now autograd raises, as for torch's in-place op
    a = torch.tensor([-1.0, 2.0, -3.0, 0.5], dtype=torch.float64, requires_grad=True)
    b = a * 1.0
    c = b.sin()
    version = b._version
    with torch.no_grad():
        assert fastleaky.leaky_relu(b, 0.1, out=b) is b
    assert b._version > version
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        c.sum().backward()


@pytest.mark.parametrize("backend", ["auto", "numpy"])
def test_out_bumps_the_version_on_every_path(backend):
    for out in (torch.empty(4), torch.empty(8)[::2]):  # lean and general paths
        version = out._version
        fastleaky.leaky_relu(torch.tensor([-1.0, 2.0, -3.0, 0.5]), 0.5, out=out,
                             backend=backend)
        assert out.tolist() == [-0.5, 2.0, -1.5, 0.5]
        assert out._version > version


def test_out_inference_tensor():
    with torch.inference_mode():
        out = torch.empty(3)
        x = torch.tensor([-2.0, 1.0, 3.0])
    with pytest.raises(RuntimeError, match="inference tensor"):
        fastleaky.leaky_relu(x, 0.5, out=out)
    with torch.inference_mode():
        assert fastleaky.leaky_relu(x, 0.5, out=out) is out
    assert out.tolist() == [-1.0, 1.0, 3.0]


def test_inplace_inference_tensor_like_torch():
    with torch.inference_mode():
        x = torch.tensor([-2.0, 1.0])
        y = torch.tensor([-2.0, 1.0])
    with pytest.raises(RuntimeError, match="inference tensor"):
        F.leaky_relu(y, 0.5, inplace=True)
    with pytest.raises(RuntimeError, match="inference tensor"):
        ft.leaky_relu(x, 0.5, inplace=True)
    assert x.tolist() == [-2.0, 1.0]  # refused before any write
    with torch.inference_mode():
        ft.leaky_relu(x, 0.5, inplace=True)
    assert x.tolist() == [-1.0, 1.0]


def test_inplace_bumps_the_version_counter():
    a = torch.tensor([-1.0, 2.0], requires_grad=True)
    b = a * 1.0
    c = b.sin()
    ft.leaky_relu(b, 0.1, inplace=True)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        c.sum().backward()


def test_out_with_the_negation_bit_is_written():
    out = torch.zeros(4, dtype=torch.complex64).conj().imag
    assert out.is_neg()
    assert fastleaky.leaky_relu(torch.tensor([-2.0, 1.0, 3.0, -4.0]), 0.5, out=out) is out
    assert out.tolist() == [-1.0, 1.0, 3.0, -2.0]
    x = torch.tensor([-2.0, 1.0, 3.0, -4.0])._neg_view()  # input with the bit: read as -x
    assert fastleaky.leaky_relu(x, 0.5).tolist() == [2.0, -0.5, -1.5, 4.0]


def test_out_that_requires_grad_is_refused():
    out = torch.empty(2, requires_grad=True)
    with pytest.raises(RuntimeError, match="requires grad"):
        fastleaky.leaky_relu(torch.ones(2), out=out)
    with torch.no_grad():
        fastleaky.leaky_relu(torch.tensor([1.0, -2.0]), 0.5, out=out)
    assert out.tolist() == [1.0, -1.0]


def test_lean_out_overlap_goes_general():
    base = torch.tensor([-1.0, 2.0, -3.0, 4.0, -5.0])
    fastleaky.leaky_relu(base[:4], 0.5, out=base[1:])  # partial overlap: as NumPy handles it
    assert base.tolist() == [-1.0, -0.5, 2.0, -1.5, 4.0]


# ---------------------------------------------------------------- NaN results

@pytest.mark.parametrize("dtype", FLOATS, ids=str)
def test_nan_gives_nan_of_the_documented_sign(dtype):
    x = torch.tensor([float("nan"), -float("nan"), 1.0, -1.0] * 20, dtype=dtype)
    for slope in (0.2, 0.5, 0.0):
        got, want = ft.leaky_relu(x, slope), F.leaky_relu(x, slope)
        assert torch.equal(got.isnan(), want.isnan())
        finite = ~want.isnan()
        _same(got[finite], want[finite])
        if dtype != torch.bfloat16:  # PyTorch's own bfloat16 NaN sign depends on position
            assert torch.equal(got.signbit(), want.signbit())


def test_backend_is_resolved_when_the_kernel_runs():
    x = _x(100, torch.float32)
    calls = []
    original = api.compute

    def spy(op, arrays, alpha, out=None, backend="auto"):
        calls.append(backend)
        return original(op, arrays, alpha, out, backend)

    if not registry.availability("numpy")[0]:
        pytest.skip("numpy backend unavailable")
    import unittest.mock

    with unittest.mock.patch.object(api, "compute", spy), fastleaky.use_backend("numpy"):
        _same(torch.ops.fastleaky.leaky_relu(x, 0.2), F.leaky_relu(x, 0.2))
    assert calls and set(calls) == {"numpy"}
    np.testing.assert_array_equal(ft.leaky_relu(x, 0.2).numpy(), F.leaky_relu(x, 0.2).numpy())
