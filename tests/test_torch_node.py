"""fastleaky.torch's C++ autograd node: what it takes, what it records, and
how it fails (the shared tests of test_torch.py and test_torch_ops.py run on
it as well, through the ``torch_path`` fixture)."""

import os
import subprocess
import sys
import threading

import numpy as np
import pytest

torch = pytest.importorskip("torch")
F = torch.nn.functional

import fastleaky  # noqa: E402
import fastleaky.torch as ft  # noqa: E402
from fastleaky import config  # noqa: E402
from fastleaky._interop import torch_node as node_build  # noqa: E402
from fastleaky._interop import torch_tensors  # noqa: E402

# PyTorch's forward-mode AD loads decompositions through torch.jit.script,
# which PyTorch itself marks deprecated.
pytestmark = pytest.mark.filterwarnings(
    "ignore:`torch.jit.script` is deprecated:DeprecationWarning")


@pytest.fixture
def node(torch_node, monkeypatch):
    if not torch_tensors.cython_for_floats("auto"):
        pytest.skip("auto does not pick the Cython loops here")
    monkeypatch.setattr(ft, "_node", torch_node)
    return torch_node


def _edge_values(dtype, n=2000, seed=0):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, generator=gen, dtype=torch.float64).to(dtype)
    info = torch.finfo(dtype)
    special = torch.tensor([0.0, -0.0, float("nan"), float("inf"), -float("inf"), info.tiny,
                            -info.tiny, info.tiny / 4, -info.tiny / 4, info.max, -info.max,
                            info.eps, -info.eps], dtype=dtype)
    k = min(n, special.numel())
    x[:k] = special[:k]
    return x


def _bits(t):
    ints = {4: torch.int32, 8: torch.int64}[t.element_size()]
    return t.detach().contiguous().view(ints)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("n", [1, 13, 1000, 1 << 20])
@pytest.mark.parametrize("slope", [0.01, 0.2, -0.5, 0.0, 3.0])
def test_node_gives_torchs_bits_and_one_cpp_node(node, dtype, n, slope):
    x = _edge_values(dtype, n).requires_grad_()
    g = _edge_values(dtype, n, seed=1)
    g[g.isnan()] = 1.0  # torch multiplies g by 1 where x > 0, which quiets a NaN's payload
    y = ft.leaky_relu(x, slope)
    assert y.grad_fn.name() == "fastleaky::LeakyReluBackward"
    (next_fn, _), = y.grad_fn.next_functions
    assert type(next_fn).__name__ == "AccumulateGrad"
    y.backward(g)
    xr = x.detach().clone().requires_grad_()
    yr = F.leaky_relu(xr, slope)
    yr.backward(g)
    assert torch.equal(_bits(y), _bits(yr))
    assert torch.equal(_bits(x.grad), _bits(xr.grad))


@pytest.mark.parametrize("make", [
    lambda: torch.randn(10, dtype=torch.float16),
    lambda: torch.randn(10, dtype=torch.bfloat16),
    lambda: torch.randn(6, 4)[:, ::2],
    lambda: torch.randn(1).expand(7),
    lambda: torch.randn(8)._neg_view(),
    lambda: torch.randn(3, dtype=torch.complex64).real,
])
def test_node_returns_none_outside_the_plain_case(node, make):
    x = make()
    assert node.leaky_relu(x, 0.2, "auto") is None
    # and fastleaky.torch then takes its Python path, with torch's bits
    x = x.detach().requires_grad_() if x.dtype.is_floating_point else x
    y = ft.leaky_relu(x, 0.2)
    assert torch.equal(y, F.leaky_relu(x, 0.2))


def test_misaligned_tensors_are_left_to_the_python_path(node):
    for dtype in (torch.float32, torch.float64):
        raw = bytearray(8 * 11 + 8)
        x = torch.frombuffer(raw, dtype=dtype, offset=1, count=10).add_(-1.5)
        assert x.data_ptr() % x.element_size() != 0
        assert node.leaky_relu(x, 0.2, "auto") is None
        assert torch.equal(ft.leaky_relu(x, 0.2), F.leaky_relu(x, 0.2))


# ---- the hot entry: fast_leaky_relu, which fastleaky.torch.leaky_relu calls first

def _decided():
    """Have the registry decide what "auto" computes with (the Python path
    decides it at its first call; until then the hot entry declines)."""
    fastleaky.registry.fast_entry("auto")


def test_the_hot_entry_takes_the_common_call(node):
    _decided()
    for dtype in (torch.float32, torch.float64):
        x = torch.randn(100, dtype=dtype, requires_grad=True)
        for backend in ("auto", "".join(["au", "to"])):  # equal, but not the interned string
            y = node.fast_leaky_relu(x, 0.2, backend)
            assert y.grad_fn.name() == "fastleaky::LeakyReluBackward"
            assert torch.equal(y, F.leaky_relu(x, 0.2))


class _Subclass(torch.Tensor):
    pass


@pytest.mark.parametrize("args", [
    (torch.nn.Parameter(torch.randn(10)), 0.2, "auto"),
    (torch.randn(10).as_subclass(_Subclass), 0.2, "auto"),
    ([1.0, -1.0], 0.2, "auto"),
    (torch.randn(10), 1, "auto"),
    (torch.randn(10), True, "auto"),
    (torch.randn(10), np.float64(0.2), "auto"),
    (torch.randn(10), float("nan"), "auto"),
    (torch.randn(10), float("inf"), "auto"),
    (torch.randn(10), 1e39, "auto"),  # beyond float32: the Python path raises torch's error
    (torch.randn(10), 0.2, "cython"),
    (torch.randn(10), 0.2, "numpy"),
    (torch.randn(10), 0.2, "AUTO"),
    (torch.randn(10), 0.2, None),
    (torch.randn(10, dtype=torch.float16), 0.2, "auto"),
    (torch.arange(10), 0.2, "auto"),
    (torch.randn(10)[::2], 0.2, "auto"),
    (torch.randn(2, 3).to_sparse(), 0.2, "auto"),
])
def test_the_hot_entry_leaves_the_rest_to_python(node, args):
    _decided()
    assert node.fast_leaky_relu(*args) is None


def test_the_hot_entry_takes_float64_slopes_beyond_float32(node):
    _decided()
    x = torch.randn(10, dtype=torch.float64)
    assert torch.equal(node.fast_leaky_relu(x, 1e39, "auto"), F.leaky_relu(x, 1e39))


def test_the_hot_entry_follows_the_registry(node):
    x = torch.randn(10, requires_grad=True)
    _decided()
    for name in ("numpy", "cython"):
        with fastleaky.use_backend(name):
            assert node.fast_leaky_relu(x, 0.2, "auto") is None
    fastleaky.registry.forget_decisions()
    assert node.fast_leaky_relu(x, 0.2, "auto") is None
    y = ft.leaky_relu(x, 0.2)  # the Python path decides again, and takes the node
    assert y.grad_fn.name() == "fastleaky::LeakyReluBackward"
    assert node.fast_leaky_relu(x, 0.2, "auto") is not None


def test_the_hot_entry_is_off_under_torch_func(node):
    _decided()
    plain = torch.randn(5)
    seen = []

    def f(t):
        seen.append(node.fast_leaky_relu(plain, 0.2, "auto"))
        return ft.leaky_relu(t, 0.2)

    batch = torch.randn(3, 5)
    assert torch.equal(torch.func.vmap(f)(batch), F.leaky_relu(batch, 0.2))
    assert seen == [None]


def test_the_hot_entry_checks_its_arguments(node):
    with pytest.raises(TypeError, match="takes"):
        node.fast_leaky_relu(torch.randn(3), 0.2)
    with pytest.raises(TypeError, match="ContextVar"):
        node.bind_gate(object(), {}, fastleaky.registry.fast_entry("auto"))
    with pytest.raises(TypeError, match="entry"):
        node.bind_gate(fastleaky.registry.backend_context_var(), {}, None)
    _decided()
    assert node.fast_leaky_relu(torch.randn(3), 0.2, "auto") is not None  # still bound


def test_node_sees_in_place_changes_of_its_input(node):
    a = torch.tensor([-1.0, 2.0, -3.0, 0.5], dtype=torch.float64, requires_grad=True)
    b = a * 1.0
    y = ft.leaky_relu(b, 0.1)
    with torch.no_grad():
        b.mul_(2)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        y.sum().backward()


def test_node_frees_its_input_after_backward(node):
    x = torch.randn(50, dtype=torch.float64, requires_grad=True)
    y = ft.leaky_relu(x, 0.25)
    y.sum().backward(retain_graph=True)
    y.sum().backward()  # retained: a second backward works and accumulates
    assert torch.equal(x.grad, 2 * torch.where(x > 0, 1.0, 0.25).double())
    with pytest.raises(RuntimeError, match="backward through the graph a second time"):
        y.sum().backward()


@pytest.mark.parametrize("grad", [
    lambda y: torch.ones(()).expand_as(y),  # what sum().backward() hands over
    lambda y: torch.randn(y.shape[1], y.shape[0]).t(),  # non-contiguous
    lambda y: torch.randn(y.shape)._neg_view(),  # the lazy negation bit
    lambda y: torch.randn(y.shape, dtype=torch.float64),  # another dtype: torch casts it
])
def test_node_backward_takes_any_gradient(node, grad):
    x = torch.randn(40, 30).requires_grad_()
    xr = x.detach().clone().requires_grad_()
    y, yr = ft.leaky_relu(x, 0.2), F.leaky_relu(xr, 0.2)
    g = grad(y)
    y.backward(g)
    yr.backward(g)
    assert torch.equal(x.grad, xr.grad)


def test_node_double_backward_and_gradcheck(node):
    x = torch.linspace(-2, 2, 24, dtype=torch.float64).add_(0.05).requires_grad_()

    def f(t):
        return ft.leaky_relu(t, 0.2)

    assert f(x).grad_fn.name() == "fastleaky::LeakyReluBackward"
    assert torch.autograd.gradcheck(f, (x,))
    assert torch.autograd.gradgradcheck(f, (x,))
    (gx,) = torch.autograd.grad((f(x) ** 2).sum(), x, create_graph=True)
    (ggx,) = torch.autograd.grad(gx.sum(), x)
    xr = x.detach().clone().requires_grad_()
    (gr,) = torch.autograd.grad((F.leaky_relu(xr, 0.2) ** 2).sum(), xr, create_graph=True)
    (ggr,) = torch.autograd.grad(gr.sum(), xr)
    assert torch.equal(gx, gr) and torch.equal(ggx, ggr)


def test_node_is_not_used_for_forward_mode_ad(node):
    import torch.autograd.forward_ad as fwad

    x, t = torch.randn(30, dtype=torch.float64), torch.randn(30, dtype=torch.float64)
    with fwad.dual_level():
        y = ft.leaky_relu(fwad.make_dual(x, t), 0.2)
        tangent = fwad.unpack_dual(y).tangent
    assert torch.equal(tangent, torch.where(x > 0, t, t * 0.2))


def test_node_without_grad(node):
    x = torch.randn(100)
    assert ft.leaky_relu(x, 0.2).grad_fn is None
    with torch.no_grad():
        assert ft.leaky_relu(x.requires_grad_(), 0.2).grad_fn is None
    with torch.inference_mode():
        y = ft.leaky_relu(torch.randn(100), 0.2)
        assert y.is_inference() and y.grad_fn is None


def test_node_follows_use_backend(node):
    x = torch.randn(100, requires_grad=True)
    with fastleaky.use_backend("numpy"):
        y = ft.leaky_relu(x, 0.2)
    assert y.grad_fn.name() != "fastleaky::LeakyReluBackward"
    assert torch.equal(y, F.leaky_relu(x, 0.2))


def test_an_invalid_thread_cap_raises_from_forward_and_backward(node, monkeypatch):
    n = 2 * config.parallel_min_elements("float32")  # a parallel size: the cap is read
    x = torch.randn(n, requires_grad=True)
    y = ft.leaky_relu(x, 0.2)  # recorded with a valid cap
    monkeypatch.setenv(config.ENV_THREADS, "two")
    with pytest.raises(ValueError, match=config.ENV_THREADS):
        ft.leaky_relu(x, 0.2)
    with pytest.raises(ValueError, match=config.ENV_THREADS):
        y.backward(torch.ones_like(y))


def test_node_from_several_python_threads(node):
    errors = []

    def work(seed):
        try:
            gen = torch.Generator().manual_seed(seed)
            for n in (100, 50_000, 300_000):
                x = torch.randn(n, generator=gen).requires_grad_()
                g = torch.randn(n, generator=gen)
                ft.leaky_relu(x, 0.3).backward(g)
                want = torch.where(x.detach() > 0, g, g * 0.3)
                if not torch.equal(x.grad, want):
                    errors.append(seed)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(repr(exc))

    threads = [threading.Thread(target=work, args=(seed,)) for seed in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


def test_a_build_for_another_torch_or_source_is_not_loaded(monkeypatch, tmp_path):
    name = node_build.module_name()
    monkeypatch.setattr(torch, "__version__", torch.__version__ + "+other")
    assert node_build.module_name() != name
    monkeypatch.setenv(node_build.ENV_DIR, str(tmp_path))
    assert node_build.build_directory().parent == tmp_path
    assert node_build.load() is None  # nothing built there: loading never compiles


def test_the_switch_turns_the_node_off(monkeypatch):
    monkeypatch.setenv(node_build.ENV_SWITCH, "0")
    assert node_build.load() is None
    with pytest.raises(RuntimeError, match="turned off"):
        ft.build_node()
    monkeypatch.setattr(ft, "_node", None)
    assert "turned off" in ft.node_status()


def test_a_fresh_process_loads_the_build(torch_node, tmp_path):
    env = {k: v for k, v in os.environ.items() if k != node_build.ENV_SWITCH}
    code = ("import fastleaky.torch as ft, torch; print(ft.node_status()); "
            "x = torch.randn(10, requires_grad=True); print(ft.leaky_relu(x).grad_fn.name())")
    # run outside the checkout: the installed package, not the source tree
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True, cwd=tmp_path).stdout
    assert torch_node.__file__ in out
    assert "fastleaky::LeakyReluBackward" in out


def test_the_command_builds_or_reuses_the_node(torch_node, capsys):
    from fastleaky import cli

    assert cli.main(["torch-node"]) == 0
    out = capsys.readouterr().out
    assert torch_node.__file__ in out and "C++ autograd node" in out


# ---------------------------------------------------------------- saved tensors handed back changed

@pytest.mark.parametrize("unpack", [
    lambda t: t.t().contiguous().t() if t.dim() == 2 else t,  # same values, other strides
    lambda t: (-t)._neg_view(),  # same values, the lazy negation bit
    lambda t: t[:1].clone().expand_as(t),  # other values, expanded (stride 0)
    lambda t: t.double(),  # another dtype: torch promotes
    lambda t: t.t().double() if t.dim() == 2 else t.double(),  # both
])
@pytest.mark.parametrize("contiguous_input", [True, False])
def test_a_saved_tensor_hook_may_hand_back_any_layout(torch_path, unpack, contiguous_input):
    base = torch.randn(64, 64)
    x = (base if contiguous_input else base.t()).requires_grad_()
    xr = x.detach().clone().requires_grad_()
    g = torch.randn(64, 64)
    for fn, leaf in ((ft.leaky_relu, x), (F.leaky_relu, xr)):
        with torch.autograd.graph.saved_tensors_hooks(lambda t: t, unpack):
            y = fn(leaf, 0.3)
        y.backward(g)
    assert x.grad.dtype == xr.grad.dtype
    assert torch.equal(x.grad, xr.grad)


def test_a_saved_tensor_on_another_device_raises_like_torch(torch_path):
    x = torch.randn(16, requires_grad=True)
    with torch.autograd.graph.saved_tensors_hooks(lambda t: t, lambda t: t.to("meta")):
        y = ft.leaky_relu(x, 0.2)
    with pytest.raises((RuntimeError, ValueError), match="device"):
        y.sum().backward()


def test_data_swapped_for_a_strided_tensor(torch_path):
    x = torch.randn(64, 64, requires_grad=True)
    y = ft.leaky_relu(x, 0.2)
    x.data = torch.randn(64, 64).t()
    y.backward(torch.ones(64, 64))
    assert torch.equal(x.grad, torch.where(x.detach() > 0, 1.0, torch.tensor(0.2)))


@pytest.mark.filterwarnings("ignore:The PyTorch API of nested tensors is in prototype")
def test_nested_tensors_are_refused_like_torch(torch_path):
    x = torch.nested.nested_tensor([torch.randn(3), torch.randn(5)], requires_grad=True)
    with pytest.raises(NotImplementedError):
        F.leaky_relu(x, 0.2)
    with pytest.raises(NotImplementedError):
        ft.leaky_relu(x, 0.2)


# (compiled autograd itself reads .grad of a non-leaf while it traces, with
# torch's own nodes as well)
@pytest.mark.filterwarnings("ignore:The .grad attribute of a Tensor that is not a leaf")
def test_compiled_autograd(torch_path):
    from torch._dynamo import compiled_autograd

    for loss in (torch.sum, lambda y: (y ** 2).sum()):  # two graphs: the node is bound once
        grads = []
        for fn in (ft.leaky_relu, F.leaky_relu):
            a = torch.linspace(-3, 3, 64, requires_grad=True)
            with compiled_autograd._enable(torch.compile(backend="eager")):
                loss(fn(a * 1.5, 0.2)).backward()
            grads.append(a.grad)
        assert torch.equal(*grads)


def test_the_node_is_a_torch_autograd_node(node):
    x = torch.randn(5, requires_grad=True)
    y = ft.leaky_relu(x, 0.3)
    assert isinstance(y.grad_fn, torch.autograd.graph.Node)
    assert y.grad_fn._saved_negative_slope == 0.3
    assert torch.equal(y.grad_fn._saved_self, x)
    seen = []
    y.grad_fn.register_hook(lambda grad_inputs, grad_outputs: seen.append(grad_inputs[0].shape))
    y.sum().backward()
    assert seen == [x.shape]
    with pytest.raises(RuntimeError, match="second time"):
        y.grad_fn._saved_self  # noqa: B018 - freed by the backward, as torch's own nodes


# ---------------------------------------------------------------- layouts, batched gradients

@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("make", [
    lambda t: t.to(memory_format=torch.channels_last),
    lambda t: t.permute(3, 1, 0, 2),
    lambda t: t.transpose(0, 3).contiguous().transpose(0, 3),
    lambda t: t[:, :, ::2],  # not dense: a contiguous result, as torch gives
])
def test_results_keep_the_inputs_layout_like_torch(torch_path, dtype, make):
    base = torch.randn(3, 4, 5, 6).to(dtype)
    x = make(base).requires_grad_()
    xr = x.detach().clone(memory_format=torch.preserve_format).requires_grad_()
    assert xr.stride() == x.stride() or not x.is_contiguous()
    y, yr = ft.leaky_relu(x, 0.2), F.leaky_relu(xr, 0.2)
    assert torch.equal(y, yr) and y.stride() == yr.stride()
    g = make(torch.randn(3, 4, 5, 6).to(dtype))
    y.backward(g)
    yr.backward(g)
    assert torch.equal(x.grad, xr.grad) and x.grad.stride() == xr.grad.stride()


def test_batched_gradients(torch_path):
    x = torch.randn(5, 3, requires_grad=True)
    grads = torch.randn(4, 5, 3)
    (got,) = torch.autograd.grad(ft.leaky_relu(x, 0.2), x, grads, is_grads_batched=True)
    (want,) = torch.autograd.grad(F.leaky_relu(x, 0.2), x, grads, is_grads_batched=True)
    assert torch.equal(got, want)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32])
@pytest.mark.parametrize("slope", [1e300, -3.4028235e38, 1e39])
def test_a_slope_beyond_float32_is_refused_like_torch(torch_path, dtype, slope):
    x = torch.randn(8, dtype=dtype)
    with pytest.raises(RuntimeError, match="overflow"):
        F.leaky_relu(x, slope)
    with pytest.raises(RuntimeError, match="overflow"):
        ft.leaky_relu(x, slope)
    # float64 computes in float64: both take it
    x64 = x.double()
    assert torch.equal(ft.leaky_relu(x64, slope), F.leaky_relu(x64, slope))


def test_forward_mode_jacobian_of_a_transposed_input(torch_path):
    x = torch.randn(3, 4, dtype=torch.float64).t()

    def jac(fn):
        return torch.autograd.functional.jacobian(lambda a: fn(a, 0.1), x, vectorize=True,
                                                  strategy="forward-mode")

    assert torch.equal(jac(ft.leaky_relu), jac(F.leaky_relu))


@pytest.mark.filterwarnings("ignore:The .grad attribute of a Tensor that is not a leaf")
@pytest.mark.parametrize("unpack", [lambda t: t.double(), lambda t: t[:1].clone()])
def test_compiled_autograd_with_a_saved_tensor_hook(torch_path, unpack):
    from torch._dynamo import compiled_autograd

    grads = []
    for fn in (ft.leaky_relu, F.leaky_relu):
        x = torch.randn(4, 5, generator=torch.Generator().manual_seed(3), requires_grad=True)
        with torch.autograd.graph.saved_tensors_hooks(lambda t: t, unpack):
            y = fn(x * 1.0, 0.2)
        with compiled_autograd._enable(torch.compile(backend="eager")):
            (y * torch.arange(20.0).reshape(4, 5)).sum().backward()
        grads.append(x.grad)
    assert torch.equal(*grads)


@pytest.mark.filterwarnings("ignore:The .grad attribute of a Tensor that is not a leaf")
def test_compiled_autograd_keeps_channels_last(torch_path):
    from torch._dynamo import compiled_autograd

    seen = {}
    for name, fn in (("fastleaky", ft.leaky_relu), ("torch", F.leaky_relu)):
        x = torch.randn(2, 3, 4, 5).to(memory_format=torch.channels_last).requires_grad_()
        h = x * 2.0
        h.register_hook(lambda grad, name=name: seen.__setitem__(name, grad.stride()))
        with compiled_autograd._enable(torch.compile(backend="eager")):
            fn(h, 0.2).sum().backward()
    assert seen["fastleaky"] == seen["torch"]


def test_size_one_dimensions_get_torchs_strides(torch_path):
    x = torch.empty_strided((2, 1, 4, 1), (4, 7, 1, 99)).normal_().requires_grad_()
    assert ft.leaky_relu(x, 0.2).stride() == F.leaky_relu(x, 0.2).stride()


# ---- tensors without memory, and code that watches the dispatcher

def _zeros():
    return torch._efficientzerotensor(6, dtype=torch.float64)


def test_a_zerotensor_reads_as_zeros(torch_path):
    x = torch.randn(6, dtype=torch.float64)
    assert torch.equal(ft.leaky_relu(_zeros(), 0.1), torch.zeros(6, dtype=torch.float64))
    assert torch.equal(fastleaky.leaky_relu(_zeros(), 0.1), torch.zeros(6, dtype=torch.float64))
    assert torch.equal(fastleaky.leaky_relu_backward(_zeros(), x, 0.1),
                       torch.zeros(6, dtype=torch.float64))
    leaf = x.clone().requires_grad_()
    (grad,) = torch.autograd.grad(ft.leaky_relu(leaf, 0.1), leaf, _zeros())
    assert torch.equal(grad, torch.zeros(6, dtype=torch.float64))
    zero_leaf = _zeros().requires_grad_()
    (grad,) = torch.autograd.grad(ft.leaky_relu(zero_leaf, 0.1), zero_leaf,
                                  torch.ones(6, dtype=torch.float64))
    assert torch.equal(grad, F.leaky_relu(torch.zeros(6, dtype=torch.float64).requires_grad_(),
                                          0.1).grad_fn(torch.ones(6, dtype=torch.float64)))


def test_a_zerotensor_is_never_written(torch_path):
    with pytest.raises(RuntimeError, match="ZeroTensors are immutable"):
        fastleaky.leaky_relu(torch.randn(6, dtype=torch.float64), 0.1, out=_zeros())
    with pytest.raises(RuntimeError, match="ZeroTensors are immutable"):
        ft.leaky_relu(_zeros(), 0.1, inplace=True)


@pytest.mark.parametrize("requires_grad", [False, True])
def test_fake_tensor_mode_gets_fake_results(torch_path, requires_grad):
    from torch._subclasses.fake_tensor import FakeTensor, FakeTensorMode

    real = torch.randn(5, requires_grad=requires_grad)
    with FakeTensorMode(allow_non_fake_inputs=True):
        y = ft.leaky_relu(real, 0.1)
    assert isinstance(y, FakeTensor) and y.shape == real.shape
    mode = FakeTensorMode()
    x = mode.from_tensor(real)
    with mode:
        y = ft.leaky_relu(x, 0.1)
        if requires_grad:
            y.sum().backward()
            assert isinstance(x.grad, FakeTensor)
    with FakeTensorMode(), pytest.raises(AssertionError, match="FakeTensor"):
        ft.leaky_relu(real, 0.1)  # as torch refuses a real tensor there


def test_make_fx_and_jit_trace_record_the_operator(torch_path):
    import warnings

    from torch.fx.experimental.proxy_tensor import make_fx

    negative = torch.full((5,), -3.0)
    graph = make_fx(lambda t: ft.leaky_relu(t, 0.1), tracing_mode="real")(torch.randn(5))
    assert "fastleaky.leaky_relu.default" in [str(n.target) for n in graph.graph.nodes]
    assert torch.equal(graph(negative), F.leaky_relu(negative, 0.1))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the tracer's own warnings about Python values
        traced = torch.jit.trace(ft.LeakyReLU(0.1), torch.randn(5))
    assert torch.equal(traced(negative), F.leaky_relu(negative, 0.1))


def test_a_dispatch_mode_sees_the_backward_operator(torch_path):
    from torch.utils._python_dispatch import TorchDispatchMode

    seen = []

    class Log(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            seen.append(str(func))
            return func(*args, **(kwargs or {}))

    x = torch.randn(5, requires_grad=True)
    g = torch.randn(5)
    y = ft.leaky_relu(x, 0.1)
    with Log():
        (grad,) = torch.autograd.grad(y, x, g)
    assert "fastleaky.leaky_relu_backward.default" in seen
    assert torch.equal(grad, torch.where(x > 0, g, g * 0.1))


def test_forward_over_reverse(torch_path):
    x = torch.randn(8, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradgradcheck(lambda t: ft.leaky_relu(t, -0.3), (x,),
                                        check_fwd_over_rev=True)


def test_compile_with_dynamic_shapes(torch_path):
    module = torch.compile(ft.LeakyReLU(0.2), fullgraph=True, dynamic=True, backend="aot_eager")
    for shape in ((4, 3), (7, 5)):
        x = torch.randn(*shape, requires_grad=True)
        xr = x.detach().clone().requires_grad_()
        y, yr = module(x), F.leaky_relu(xr, 0.2)
        y.sum().backward()
        yr.sum().backward()
        assert torch.equal(y, yr) and torch.equal(x.grad, xr.grad)


def test_the_array_api_refuses_what_watches_the_dispatcher(torch_path):
    """fastleaky.leaky_relu* compute on memory, which a dispatch mode or a
    tracer would not see (make_fx would record an empty tensor)."""
    import warnings

    from torch._subclasses.fake_tensor import FakeTensorMode
    from torch.fx.experimental.proxy_tensor import make_fx
    from torch.utils._python_dispatch import TorchDispatchMode

    class Passthrough(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            return func(*args, **(kwargs or {}))

    x = torch.randn(1000)
    out = torch.zeros(1000)
    for mode in (Passthrough, lambda: FakeTensorMode(allow_non_fake_inputs=True)):
        with mode(), pytest.raises(RuntimeError, match="does not see"):
            fastleaky.leaky_relu(x, 0.1, out=out)
    assert torch.equal(out, torch.zeros(1000))  # nothing written
    for pre_dispatch in (False, True):
        with pytest.raises(RuntimeError, match="does not see"):
            make_fx(lambda t: fastleaky.leaky_relu(t, 0.1), pre_dispatch=pre_dispatch)(x)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the tracer's own warnings
        with pytest.raises(RuntimeError, match="does not see"):
            torch.jit.trace(lambda t: fastleaky.leaky_relu(t, 0.1), x)


def test_memoryless_and_redirected_tensors(torch_path):
    from torch.overrides import TorchFunctionMode

    x = torch.randn(1000)
    functional = torch._to_functional_tensor(x)
    result = ft.leaky_relu(functional, 0.1)
    assert torch.equal(torch._from_functional_tensor(result), F.leaky_relu(x, 0.1))
    with pytest.raises(RuntimeError, match="functionalization"):
        fastleaky.leaky_relu(functional, 0.1)
    with pytest.raises(RuntimeError, match="functionalization"):
        fastleaky.leaky_relu(x, 0.1, out=torch._to_functional_tensor(torch.empty(1000)))

    class TinyResults(TorchFunctionMode):  # hands back a 1-element tensor for any result
        def __torch_function__(self, func, types, args=(), kwargs=None):
            if func in (torch.empty_like, torch.empty_strided, torch.empty):
                return torch.zeros(1)
            return func(*args, **(kwargs or {}))

    with TinyResults():
        for fn in (lambda: ft.leaky_relu(x, 0.1), lambda: fastleaky.leaky_relu(x, 0.1)):
            try:
                result = fn()
            except (ValueError, RuntimeError):
                continue  # refused: fine; writing 1000 elements into one is not
            assert torch.equal(result, F.leaky_relu(x, 0.1))


def test_pre_dispatch_tracing_records_the_operator(torch_path):
    from torch.fx.experimental.proxy_tensor import make_fx

    x = torch.randn(5)
    graph = make_fx(lambda t: ft.leaky_relu(t, 0.1), pre_dispatch=True)(x)
    assert "fastleaky.leaky_relu.default" in [str(n.target) for n in graph.graph.nodes]
    assert torch.equal(graph(-x.abs()), F.leaky_relu(-x.abs(), 0.1))


def test_the_second_derivative_reaches_the_input(torch_path):
    for fn in (ft.leaky_relu, F.leaky_relu):
        t = torch.randn(6, dtype=torch.float64, requires_grad=True)
        (g,) = torch.autograd.grad(fn(t, 0.1).sum(), t, create_graph=True)
        (h,) = torch.autograd.grad(g.sum(), t)
        assert torch.equal(h, torch.zeros_like(t))


def test_inplace_under_torch_func_forward_ad_and_tracing(torch_path):
    import warnings

    import torch.autograd.forward_ad as fwad

    def f(fn):
        return lambda t: fn(t * 1.0, 0.1, inplace=True).sum()

    x = torch.randn(6, dtype=torch.float64)
    assert torch.equal(torch.func.grad(f(ft.leaky_relu))(x), torch.func.grad(f(F.leaky_relu))(x))
    batch = torch.randn(3, 6)
    assert torch.equal(torch.func.vmap(lambda t: ft.leaky_relu(t * 1.0, 0.1, inplace=True))(batch),
                       F.leaky_relu(batch, 0.1))
    tangents = []
    for fn in (ft.leaky_relu, F.leaky_relu):
        with fwad.dual_level():
            dual = fwad.make_dual(x.clone(), torch.ones_like(x))
            tangents.append(fwad.unpack_dual(fn(dual * 1.0, 0.1, inplace=True)).tangent)
    assert torch.equal(*tangents)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(lambda t: ft.leaky_relu(t * 1.0, 0.1, inplace=True), x)
    assert torch.equal(traced(-x.abs()), F.leaky_relu(-x.abs(), 0.1))
