"""rnnkit.torch: rnnkit's layers as torch.nn.Modules. Outputs and every gradient equal torch.nn.LSTM/GRU/RNN with the
same weights; gradcheck in float64; Adam steps equal; lengths equal pack_padded_sequence; state_dict, dtype moves,
torch.save; rk.from_torch / rk.to_torch."""
import io

import numpy as np
import pytest
import torch

import rnnkit as rk
import rnnkit.torch as rkt

CASES = [
    (rkt.LSTM, torch.nn.LSTM, dict(num_layers=2, bidirectional=True)),
    (rkt.LSTM, torch.nn.LSTM, dict(num_layers=1, batch_first=True)),
    (rkt.GRU, torch.nn.GRU, dict(num_layers=2, bidirectional=True, batch_first=True)),
    (rkt.RNN, torch.nn.RNN, dict(num_layers=2)),
]


def pair(ours_cls, theirs_cls, kw, dtype=torch.float32, I=5, H=7):
    torch.manual_seed(0)
    theirs = theirs_cls(I, H, dtype=dtype, **kw)
    ours = ours_cls(I, H, dtype=dtype, **kw)
    ours.load_state_dict(theirs.state_dict())
    return ours, theirs


def states(cls, L, B, H, dtype, requires_grad=True):
    make = lambda: torch.randn(L, B, H, dtype=dtype, requires_grad=requires_grad)  # noqa: E731
    return (make(), make()) if cls is rkt.LSTM else make()


def flat(out):
    y, hn = out
    return [y, *(hn if isinstance(hn, tuple) else (hn,))]


@pytest.mark.parametrize("ours_cls,theirs_cls,kw", CASES, ids=lambda v: getattr(v, "__name__", str(v)))
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
def test_outputs_and_every_gradient_equal_torch(ours_cls, theirs_cls, kw, dtype):
    ours, theirs = pair(ours_cls, theirs_cls, kw, dtype)
    T, B = 6, 4
    D = 2 if kw.get("bidirectional") else 1
    shape = (B, T, 5) if kw.get("batch_first") else (T, B, 5)
    x = torch.randn(*shape, dtype=dtype, requires_grad=True)
    hx = states(ours_cls, kw["num_layers"] * D, B, 7, dtype)
    outs = [flat(m(x, hx)) for m in (ours, theirs)]
    tol = dict(rtol=1e-5, atol=1e-6) if dtype == torch.float32 else dict(rtol=1e-10, atol=1e-12)
    ups = [torch.randn_like(o) for o in outs[1]]
    grads = []
    for m, out in zip((ours, theirs), outs):
        inputs = [x, *(hx if isinstance(hx, tuple) else (hx,)), *m.parameters()]
        grads.append(torch.autograd.grad(sum((o * u).sum() for o, u in zip(out, ups)), inputs))
    for a, b in zip(outs[0], outs[1]):
        torch.testing.assert_close(a, b, **tol)
    for a, b in zip(grads[0], grads[1]):
        torch.testing.assert_close(a, b, **tol)


@pytest.mark.parametrize("cls,options", [(rkt.LSTM, dict(peephole=True)), (rkt.GRU, dict(linear_before_reset=False)),
                                         (rkt.LSTM, dict(layer_norm=True, bidirectional=True))],
                         ids=["peephole", "gru-cho", "layer-norm"])
def test_gradcheck_float64(cls, options):
    m = cls(3, 4, dtype=torch.float64, **options)
    x = torch.randn(4, 2, 3, dtype=torch.float64, requires_grad=True)

    def f(x, *params):
        y, _ = m(x, lengths=[4, 2])
        return y

    assert torch.autograd.gradcheck(f, (x, *m.parameters()), eps=1e-6, atol=1e-6)


def test_adam_steps_equal_torch():
    ours, theirs = pair(rkt.LSTM, torch.nn.LSTM, dict(num_layers=2))
    opts = [torch.optim.Adam(m.parameters(), lr=1e-2) for m in (ours, theirs)]
    for step in range(4):
        x = torch.randn(5, 3, 5)
        for m, opt in zip((ours, theirs), opts):
            opt.zero_grad()
            y, _ = m(x)
            (y ** 2).mean().backward()
            opt.step()
    for (name, a), b in zip(ours.named_parameters(), theirs.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6, msg=name)


def test_lengths_equal_pack_padded_sequence():
    ours, theirs = pair(rkt.LSTM, torch.nn.LSTM, dict(bidirectional=True, batch_first=True))
    x = torch.randn(4, 6, 5)
    lengths = torch.tensor([6, 2, 4, 1])
    y, (h, c) = ours(x, lengths=lengths)
    packed = torch.nn.utils.rnn.pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
    py, (ph, pc) = theirs(packed)
    py, _ = torch.nn.utils.rnn.pad_packed_sequence(py, batch_first=True, total_length=6)
    for a, b in ((y, py), (h, ph), (c, pc)):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_state_dict_dtype_moves_and_torch_save():
    m = rkt.GRU(3, 4, num_layers=2, bidirectional=True)
    sd = m.state_dict()
    t = torch.nn.GRU(3, 4, num_layers=2, bidirectional=True)
    t.load_state_dict(sd)  # torch's names and shapes
    x = torch.randn(5, 2, 3)
    torch.testing.assert_close(m(x)[0], t(x)[0], rtol=1e-5, atol=1e-6)
    m64 = m.double()
    y64, _ = m64(x.double())
    assert y64.dtype == torch.float64
    torch.testing.assert_close(y64, t.double()(x.double())[0], rtol=1e-10, atol=1e-12)
    buf = io.BytesIO()
    torch.save(m64, buf)
    buf.seek(0)
    again = torch.load(buf, weights_only=False)
    torch.testing.assert_close(again(x.double())[0], y64)


def test_optimizer_updates_reach_the_kernels_and_errors_are_clear():
    m = rkt.LSTM(3, 4)
    x = torch.randn(2, 1, 3)
    before = m(x)[0].detach().clone()
    with torch.no_grad():
        for p in m.parameters():
            p.add_(0.1)
    assert not torch.allclose(m(x)[0], before)
    with pytest.raises(TypeError, match="x"):
        m(x.double())
    y1, _ = m(x.requires_grad_())
    y2, _ = m(2 * x)  # a second forward replaces the C++ record: the first one's backward replays it
    g1 = torch.autograd.grad(y1.sum(), x, retain_graph=True)[0]
    g2 = torch.autograd.grad(y2.sum(), x)[0]
    again = torch.autograd.grad(m(x)[0].sum(), x)[0]
    torch.testing.assert_close(g1, again)
    assert not torch.allclose(g1, g2)
    y3, _ = m(x)
    with torch.no_grad():
        next(m.parameters()).add_(1.0)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        y3.sum().backward()
    with pytest.raises(TypeError, match="hx"):
        m(x, hx=torch.zeros(1, 1, 4))


def test_rnnkit_options_pass_through():
    m = rkt.LSTM(3, 4, peephole=True, activation="softsign", zoneout=0.2, seed=1)
    ref = rk.LSTM(3, 4, peephole=True, activation="softsign", zoneout=0.2, seed=1)
    ref.load_state_dict({k: v.detach().numpy() for k, v in m.state_dict().items()})
    x = np.random.default_rng(0).standard_normal((5, 2, 3)).astype(np.float32)
    m.eval()
    with torch.no_grad():
        y, _ = m(torch.from_numpy(x))
    np.testing.assert_array_equal(y.numpy(), ref(x, training=False)[0])


@pytest.mark.filterwarnings("ignore:LSTM with projections is not supported with oneDNN")
def test_from_torch_and_to_torch():
    torch.manual_seed(1)
    seq = torch.nn.Sequential(torch.nn.Embedding(10, 4), torch.nn.Linear(4, 3))
    model = rk.from_torch(seq)
    tokens = np.array([[1, 2, 3]])
    np.testing.assert_allclose(model.seq_forward(tokens, training=False),
                               seq(torch.tensor(tokens)).detach().numpy(), rtol=1e-6, atol=1e-6)
    for module in (torch.nn.LSTM(3, 5, num_layers=2, bidirectional=True, proj_size=2), torch.nn.GRU(3, 5),
                   torch.nn.RNN(3, 5, nonlinearity="relu", batch_first=True)):
        layer = rk.from_torch(module)
        x = torch.randn(4, 2, 3)
        ours = layer(x.numpy(), training=False)[0]
        np.testing.assert_allclose(ours, module(x)[0].detach().numpy(), rtol=1e-5, atol=1e-6)
        back = rk.to_torch(layer)
        assert type(back) is type(module)
        for (name, a), b in zip(back.state_dict().items(), module.state_dict().values()):
            torch.testing.assert_close(a, b, msg=name)
    with pytest.raises(ValueError, match="peephole"):
        rk.to_torch(rk.LSTM(3, 4, peephole=True))
    with pytest.raises(TypeError, match="Conv1d"):
        rk.from_torch(torch.nn.Conv1d(1, 1, 1))


def test_distributed_data_parallel_single_process(tmp_path):
    """DistributedDataParallel (gloo, one process) wraps an rnnkit.torch module: gradients equal the bare module's."""
    import torch.distributed as dist
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'rendezvous'}", rank=0, world_size=1)
    try:
        ours, _ = pair(rkt.GRU, torch.nn.GRU, dict(num_layers=2))
        bare, _ = pair(rkt.GRU, torch.nn.GRU, dict(num_layers=2))
        ddp = torch.nn.parallel.DistributedDataParallel(ours)
        x = torch.randn(5, 3, 5)
        for m in (ddp, bare):
            y, _ = m(x, lengths=[5, 2, 4])
            (y ** 2).sum().backward()
        for (name, a), b in zip(ours.named_parameters(), bare.parameters()):
            torch.testing.assert_close(a.grad, b.grad, msg=name)
    finally:
        dist.destroy_process_group()


@pytest.mark.parametrize("ours_cls,theirs_cls", [(rkt.LSTMCell, torch.nn.LSTMCell), (rkt.GRUCell, torch.nn.GRUCell),
                                                 (rkt.RNNCell, torch.nn.RNNCell)], ids=["lstm", "gru", "rnn"])
def test_cells_in_an_unrolled_loop_equal_torch(ours_cls, theirs_cls):
    torch.manual_seed(0)
    theirs = theirs_cls(4, 6, dtype=torch.float64)
    ours = ours_cls(4, 6, dtype=torch.float64)
    ours.load_state_dict(theirs.state_dict())
    xs = torch.randn(5, 3, 4, dtype=torch.float64, requires_grad=True)
    results = []
    for m in (ours, theirs):
        state, total = None, 0
        for t in range(5):
            state = m(xs[t], state)
            h = state[0] if isinstance(state, tuple) else state
            total = total + (h * (t + 1)).sum()
        grads = torch.autograd.grad(total, [xs, *m.parameters()])
        results.append((total, grads))
    torch.testing.assert_close(results[0][0], results[1][0])
    for a, b in zip(results[0][1], results[1][1]):
        torch.testing.assert_close(a, b)


def test_cell_backward_out_of_order_replays():
    torch.manual_seed(1)
    ours, theirs = rkt.GRUCell(3, 4), torch.nn.GRUCell(3, 4)
    ours.load_state_dict(theirs.state_dict())
    x1, x2 = torch.randn(2, 3, requires_grad=True), torch.randn(2, 3, requires_grad=True)
    a1, a2 = ours(x1), ours(x2)
    b1, b2 = theirs(x1), theirs(x2)
    # the first step's gradient first: its record is not on top of the cell's tape
    for a, b, x in ((a1, b1, x1), (a2, b2, x2)):
        torch.testing.assert_close(torch.autograd.grad(a.sum(), x)[0], torch.autograd.grad(b.sum(), x)[0])
