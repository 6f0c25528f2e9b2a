"""Training parity of rnnkit with torch: optimizers, clipping, LR schedules and losses.

For two small models

(a) bidirectional 2-layer LSTM -> LastStep -> Dense, trained with MSE, and
(b) GRU -> LastStep -> Dense, trained with CrossEntropy on integer targets,

the torch model (float64) and the rnnkit model start from the same weights
(torch's ``state_dict`` loaded into rnnkit under Sequential's "<index>.<name>"
names) and take 10 optimizer steps on the same data with every optimizer
configuration.  We compare the loss of every step and all final parameters.

torch always runs in float64 on float32-representable initial weights and
data, so for float32 rnnkit runs the differences measure rnnkit's own float32
rounding; float64 rnnkit runs must agree to ~1e-9.

Also: clip_grad_norm / clip_grad_value against torch.nn.utils, the LR
schedules against torch.optim.lr_scheduler, and the losses (values and
gradients) against torch.nn.functional.
"""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
import torch.nn.functional as F  # noqa: E402

import rnnkit as rk  # noqa: E402
from conftest import assert_close, torch_float32_exact  # noqa: E402

torch.set_num_threads(2)

T, B, I, H, O, C = 5, 4, 3, 4, 2, 3
STEPS = 10

# (id, rnnkit optimizer factory, torch optimizer factory); lr chosen so that 10 steps move the weights visibly.
OPTIMIZERS = [
    ("sgd_momentum",
     lambda m: rk.optim.SGD(m, lr=0.05, momentum=0.9),
     lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9)),
    ("sgd_nesterov_wd",
     lambda m: rk.optim.SGD(m, lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.01),
     lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.01)),
    ("adam_wd",
     lambda m: rk.optim.Adam(m, lr=0.01, betas=(0.8, 0.99), weight_decay=0.01),
     lambda p: torch.optim.Adam(p, lr=0.01, betas=(0.8, 0.99), weight_decay=0.01)),
    ("adamw",
     lambda m: rk.optim.AdamW(m, lr=0.01, weight_decay=0.1),
     lambda p: torch.optim.AdamW(p, lr=0.01, weight_decay=0.1)),
    ("rmsprop",
     lambda m: rk.optim.RMSprop(m, lr=0.003),
     lambda p: torch.optim.RMSprop(p, lr=0.003)),
    ("rmsprop_momentum_centered",
     lambda m: rk.optim.RMSprop(m, lr=0.003, alpha=0.9, momentum=0.8, centered=True, weight_decay=0.01),
     lambda p: torch.optim.RMSprop(p, lr=0.003, alpha=0.9, momentum=0.8, centered=True, weight_decay=0.01)),
    ("adagrad",
     lambda m: rk.optim.Adagrad(m, lr=0.05, lr_decay=0.05, weight_decay=0.01),
     lambda p: torch.optim.Adagrad(p, lr=0.05, lr_decay=0.05, weight_decay=0.01)),
]


def param_tolerance(opt_id, dtype):
    """(rtol, atol) for final parameters; atol is scaled by the magnitude by assert_close."""
    if dtype == np.float64:
        return 1e-9, 1e-9
    if opt_id == "rmsprop_momentum_centered":
        # Centered RMSprop divides by sqrt(E[g^2] - E[g]^2): for parameters whose gradient hardly changes
        # between steps this is a difference of two nearly equal numbers, so the float32 rounding of the
        # gradients (~1e-7 relative) is amplified by orders of magnitude in the step size.
        return 5e-5, 5e-5
    return 1e-5, 1e-5


# --------------------------------------------------------------------------
# the two model pairs
# --------------------------------------------------------------------------

class TorchBiLSTMHead(torch.nn.Module):
    """torch twin of Sequential([LSTM(bidirectional, 2 layers), LastStep(), Dense])."""

    def __init__(self):
        super().__init__()
        self.rnn = torch.nn.LSTM(I, H, 2, bidirectional=True)
        self.head = torch.nn.Linear(2 * H, O)

    def forward(self, x):
        y, _ = self.rnn(x)
        last = torch.cat([y[-1, :, :H], y[0, :, H:]], dim=1)  # forward half at T-1, reverse half at 0
        return self.head(last)

    def rk_state_dict(self):
        """torch weights under the rnnkit Sequential names."""
        sd = {f"0.{k}": v for k, v in self.rnn.state_dict().items()}
        sd.update({f"2.{k}": v for k, v in self.head.state_dict().items()})
        return sd

    def rk_named_parameters(self):
        return {f"0.{k}": v for k, v in self.rnn.named_parameters()} | \
               {f"2.{k}": v for k, v in self.head.named_parameters()}


class TorchGRUHead(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.rnn = torch.nn.GRU(I, H)
        self.head = torch.nn.Linear(H, C)

    def forward(self, x):
        y, _ = self.rnn(x)
        return self.head(y[-1])

    def rk_state_dict(self):
        sd = {f"0.{k}": v for k, v in self.rnn.state_dict().items()}
        sd.update({f"2.{k}": v for k, v in self.head.state_dict().items()})
        return sd

    def rk_named_parameters(self):
        return {f"0.{k}": v for k, v in self.rnn.named_parameters()} | \
               {f"2.{k}": v for k, v in self.head.named_parameters()}


def make_problem(task, dtype, seed):
    """(torch model float64, rnnkit model, x, y, rk loss, torch loss fn)."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((T, B, I)).astype(dtype)
    if task == "bilstm_mse":
        tm = TorchBiLSTMHead().double()
        model = rk.Sequential([rk.LSTM(I, H, 2, bidirectional=True, dtype=dtype), rk.LastStep(),
                               rk.Dense(2 * H, O, dtype=dtype)])
        y = rng.standard_normal((B, O)).astype(dtype)
        loss, tloss = rk.losses.MSE(), (lambda out, t: F.mse_loss(out, t))
        ty = torch.from_numpy(y.astype(np.float64))
    else:
        tm = TorchGRUHead().double()
        model = rk.Sequential([rk.GRU(I, H, dtype=dtype), rk.LastStep(), rk.Dense(H, C, dtype=dtype)])
        y = rng.integers(0, C, B)
        loss, tloss = rk.losses.CrossEntropy(), (lambda out, t: F.cross_entropy(out, t))
        ty = torch.from_numpy(y)
    if dtype == np.float32:
        torch_float32_exact(tm)
    model.load_state_dict(tm.rk_state_dict())
    assert set(model.parameters()) == set(tm.rk_named_parameters())
    return tm, model, x, y, ty, loss, tloss


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("task", ["bilstm_mse", "gru_ce"])
@pytest.mark.parametrize("opt_id,rk_opt,torch_opt", OPTIMIZERS, ids=[o[0] for o in OPTIMIZERS])
def test_training_steps_match_torch(task, opt_id, rk_opt, torch_opt, dtype):
    tm, model, x, y, ty, loss_fn, tloss = make_problem(task, dtype, seed=len(opt_id) + 7)
    initial = model.state_dict()
    opt = rk_opt(model)
    topt = torch_opt(tm.parameters())
    tx = torch.from_numpy(x.astype(np.float64))

    rk_losses, torch_losses = [], []
    for _ in range(STEPS):
        out = model(x)
        value, d = loss_fn(out, y)
        model.backward(d)
        opt.step()
        model.zero_grad()
        rk_losses.append(value)

        topt.zero_grad()
        tl = tloss(tm(tx), ty)
        tl.backward()
        topt.step()
        torch_losses.append(tl.item())

    rtol = 1e-5 if dtype == np.float32 else 1e-10
    assert_close(np.array(rk_losses), np.array(torch_losses), rtol, rtol, f"{opt_id}: per-step losses")
    # the run must actually train, otherwise the parameter comparison says little
    assert torch_losses[-1] < torch_losses[0]
    moved = max(np.abs(model.parameters()[k] - initial[k]).max() for k in initial)
    assert moved > 1e-3

    p_rtol, p_atol = param_tolerance(opt_id, dtype)
    tparams = tm.rk_named_parameters()
    for name, p in model.parameters().items():
        assert p.dtype == dtype
        assert_close(p, tparams[name].detach().numpy(), p_rtol, p_atol, f"{opt_id}: final {name}")
    # gradients were zeroed after the last step
    assert all(not g.any() for g in model.grads.values())


def test_optimizer_step_count_and_state_names():
    """Adam's bias correction depends on step_count: it must count steps, and keep one moment pair per parameter."""
    tm, model, x, y, ty, loss_fn, _ = make_problem("gru_ce", np.float64, seed=3)
    opt = rk.optim.Adam(model, lr=0.01)
    for _ in range(3):
        _, d = loss_fn(model(x), y)
        model.backward(d)
        opt.step()
        model.zero_grad()
    assert opt.step_count == 3
    assert set(opt.state) == set(model.parameters())
    for name, bufs in opt.state.items():
        assert set(bufs) == {"exp_avg", "exp_avg_sq"}
        assert bufs["exp_avg"].shape == model.parameters()[name].shape


# --------------------------------------------------------------------------
# gradient clipping
# --------------------------------------------------------------------------

def _pair_with_grads(dtype, seed=11):
    tm, model, x, y, ty, loss_fn, tloss = make_problem("bilstm_mse", dtype, seed)
    _, d = loss_fn(model(x), y)
    model.backward(d)
    tloss(tm(torch.from_numpy(x.astype(np.float64))), ty).backward()
    tgrads = {k: v.grad for k, v in tm.rk_named_parameters().items()}
    for k, g in model.grads.items():  # sanity: the two start from the same gradients
        assert_close(g, tgrads[k].numpy(), 1e-5, 1e-6, f"initial grad {k}")
    return tm, model, tgrads


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("fraction", [0.3, 2.0], ids=["clips", "no-clip"])
def test_clip_grad_norm_matches_torch(dtype, fraction):
    tm, model, tgrads = _pair_with_grads(dtype)
    full = float(np.sqrt(sum((g.astype(np.float64) ** 2).sum() for g in model.grads.values())))
    max_norm = fraction * full
    before = {k: g.copy() for k, g in model.grads.items()}
    norm = rk.clip_grad_norm(model, max_norm)
    tnorm = torch.nn.utils.clip_grad_norm_(list(tm.rk_named_parameters().values()), max_norm)
    assert isinstance(norm, float)
    assert norm == pytest.approx(tnorm.item(), rel=1e-6)
    for k, g in model.grads.items():
        assert_close(g, tgrads[k].numpy(), 1e-5, 1e-6, f"clipped grad {k}")
    clipped = float(np.sqrt(sum((g.astype(np.float64) ** 2).sum() for g in model.grads.values())))
    if fraction < 1:
        assert clipped == pytest.approx(max_norm, rel=1e-5)
    else:
        for k, g in model.grads.items():
            np.testing.assert_array_equal(g, before[k])


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
def test_clip_grad_value_matches_torch(dtype):
    tm, model, tgrads = _pair_with_grads(dtype)
    all_abs = np.concatenate([np.abs(g).ravel() for g in model.grads.values()])
    limit = float(np.quantile(all_abs, 0.7))  # clamps ~30% of the entries
    assert rk.clip_grad_value(model, limit) is None
    torch.nn.utils.clip_grad_value_(list(tm.rk_named_parameters().values()), limit)
    n_clamped = 0
    for k, g in model.grads.items():
        assert np.abs(g).max() <= np.asarray(limit, dtype)
        assert_close(g, tgrads[k].numpy(), 1e-5, 1e-6, f"clamped grad {k}")
        n_clamped += int((np.abs(g) == np.asarray(limit, dtype)).sum())
    assert n_clamped > 0


# --------------------------------------------------------------------------
# learning-rate schedules
# --------------------------------------------------------------------------

EPOCHS = 12


class _Params:
    """The smallest thing an rnnkit optimizer accepts."""

    def __init__(self):
        self._p = {"w": np.zeros(2)}
        self._g = {"w": np.zeros(2)}

    def parameters(self):
        return self._p

    @property
    def grads(self):
        return self._g

    def zero_grad(self):
        self._g["w"][...] = 0


def _lr_sequences(make_rk, make_torch, metrics=None, base_lr=0.1):
    opt = rk.optim.SGD(_Params(), lr=base_lr)
    sched = make_rk(opt)
    tparam = torch.nn.Parameter(torch.zeros(2))
    topt = torch.optim.SGD([tparam], lr=base_lr)
    tsched = make_torch(topt)
    rk_lrs, torch_lrs = [opt.lr], [topt.param_groups[0]["lr"]]
    for epoch in range(EPOCHS):
        topt.step()  # torch warns if the schedule steps before the optimizer
        if metrics is None:
            sched.step()
            tsched.step()
        else:
            sched.step(metrics[epoch])
            tsched.step(metrics[epoch])
        rk_lrs.append(opt.lr)
        torch_lrs.append(topt.param_groups[0]["lr"])
    return np.array(rk_lrs), np.array(torch_lrs)


@pytest.mark.parametrize("step_size,gamma", [(3, 0.5), (1, 0.9), (5, 0.1)])
def test_step_lr_matches_torch(step_size, gamma):
    ours, theirs = _lr_sequences(lambda o: rk.optim.StepLR(o, step_size, gamma),
                                 lambda o: torch.optim.lr_scheduler.StepLR(o, step_size, gamma))
    assert_close(ours, theirs, 1e-12, 1e-15, "StepLR lr sequence")
    assert len(set(np.round(ours, 12))) > 1


@pytest.mark.parametrize("T_max,eta_min", [(12, 0.0), (8, 0.01), (5, 0.0)])
def test_cosine_annealing_lr_matches_torch(T_max, eta_min):
    ours, theirs = _lr_sequences(lambda o: rk.optim.CosineAnnealingLR(o, T_max, eta_min),
                                 lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max, eta_min))
    # Up to T_max both follow eta_min + (base - eta_min) (1 + cos(pi t / T_max)) / 2.
    assert_close(ours[:T_max + 1], theirs[:T_max + 1], 1e-10, 1e-12, "CosineAnnealingLR lr sequence")
    assert ours[T_max] == pytest.approx(eta_min, abs=1e-12)
    # Past T_max, rnnkit holds eta_min (its documented choice; torch would start a new cosine cycle).
    np.testing.assert_allclose(ours[T_max:], eta_min, atol=1e-12)


@pytest.mark.parametrize("patience,factor,threshold,min_lr", [(2, 0.5, 1e-4, 0.0), (0, 0.3, 0.05, 0.02),
                                                              (1, 0.1, 0.0, 1e-3)])
def test_reduce_lr_on_plateau_matches_torch(patience, factor, threshold, min_lr):
    metrics = [1.0, 0.8, 0.8, 0.79999, 0.81, 0.9, 0.7, 0.69, 0.7, 0.7, 0.7, 0.71]
    ours, theirs = _lr_sequences(
        lambda o: rk.optim.ReduceLROnPlateau(o, factor=factor, patience=patience, threshold=threshold,
                                             min_lr=min_lr),
        lambda o: torch.optim.lr_scheduler.ReduceLROnPlateau(o, factor=factor, patience=patience,
                                                             threshold=threshold, min_lr=min_lr),
        metrics=metrics)
    assert_close(ours, theirs, 1e-12, 1e-15, "ReduceLROnPlateau lr sequence")
    assert ours[-1] < ours[0]


def test_reduce_lr_on_plateau_reads_logs_dict():
    """As a fit callback the schedule gets the logs dict: monitor='val_loss' wins over 'loss'."""
    opt = rk.optim.SGD(_Params(), lr=1.0)
    sched = rk.optim.ReduceLROnPlateau(opt, factor=0.5, patience=0)
    sched.on_epoch_end(0, {"loss": 5.0, "val_loss": 1.0})
    sched.on_epoch_end(1, {"loss": 1.0, "val_loss": 2.0})  # loss improved, val_loss did not
    assert opt.lr == 0.5


# --------------------------------------------------------------------------
# losses against torch.nn.functional
# --------------------------------------------------------------------------

def _torch_value_grad(fn, pred, *args):
    tp = torch.tensor(pred.astype(np.float64), requires_grad=True)
    value = fn(tp, *args)
    value.backward()
    return value.item(), tp.grad.numpy()


LOSS_DTYPES = [(np.float32, 1e-5), (np.float64, 1e-12)]


@pytest.mark.parametrize("dtype,rtol", LOSS_DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("shape", [(7, 3), (4, 5, 2), (6, 1)])
def test_mse_matches_torch(rng, dtype, rtol, shape):
    pred = rng.standard_normal(shape).astype(dtype)
    target = rng.standard_normal(shape).astype(dtype)
    value, grad = rk.losses.MSE()(pred, target)
    tv, tg = _torch_value_grad(F.mse_loss, pred, torch.from_numpy(target.astype(np.float64)))
    assert isinstance(value, float)
    assert value == pytest.approx(tv, rel=rtol)
    assert grad.dtype == dtype and grad.shape == pred.shape
    assert_close(grad, tg, rtol, rtol, "d MSE / d pred")


@pytest.mark.parametrize("dtype,rtol", LOSS_DTYPES, ids=["f32", "f64"])
def test_mse_masked_matches_torch_on_selected_rows(rng, dtype, rtol):
    pred = rng.standard_normal((5, 3, 2)).astype(dtype)
    target = rng.standard_normal((5, 3, 2)).astype(dtype)
    mask = rng.random((5, 3)) < 0.6
    mask[0, 0] = True
    value, grad = rk.losses.MSE()(pred, target, mask=mask)
    tp = torch.tensor(pred.astype(np.float64), requires_grad=True)
    tv = F.mse_loss(tp[torch.from_numpy(mask)], torch.from_numpy(target.astype(np.float64))[torch.from_numpy(mask)])
    tv.backward()
    assert value == pytest.approx(tv.item(), rel=rtol)
    assert_close(grad, tp.grad.numpy(), rtol, rtol, "d masked MSE / d pred")
    assert not grad[~mask].any()


@pytest.mark.parametrize("dtype,rtol", LOSS_DTYPES, ids=["f32", "f64"])
def test_cross_entropy_2d_matches_torch(rng, dtype, rtol):
    logits = (3 * rng.standard_normal((9, 5))).astype(dtype)
    logits[0] += 80  # large logits: needs the log-sum-exp shift
    target = rng.integers(0, 5, 9)
    value, grad = rk.losses.CrossEntropy()(logits, target)
    tv, tg = _torch_value_grad(F.cross_entropy, logits, torch.from_numpy(target))
    assert value == pytest.approx(tv, rel=rtol)
    assert_close(grad, tg, rtol, rtol, "d CE / d logits")


@pytest.mark.parametrize("dtype,rtol", LOSS_DTYPES, ids=["f32", "f64"])
def test_cross_entropy_3d_masked_matches_torch(rng, dtype, rtol):
    """Per-step logits (T, B, C) with a (T, B) mask: mean CE over the selected rows."""
    Tn, Bn, Cn = 6, 4, 5
    logits = (2 * rng.standard_normal((Tn, Bn, Cn))).astype(dtype)
    target = rng.integers(0, Cn, (Tn, Bn))
    lengths = np.array([6, 2, 4, 1])
    mask = np.arange(Tn)[:, None] < lengths[None, :]
    target[~mask] = -100  # padding labels: ignored because masked out
    value, grad = rk.losses.CrossEntropy()(logits, target, mask=mask)

    tp = torch.tensor(logits.astype(np.float64), requires_grad=True)
    tm = torch.from_numpy(mask)
    tv = F.cross_entropy(tp[tm], torch.from_numpy(target)[tm])
    tv.backward()
    assert value == pytest.approx(tv.item(), rel=rtol)
    assert_close(grad, tp.grad.numpy(), rtol, rtol, "d masked CE / d logits")
    assert not grad[~mask].any()

    # unmasked per-step CE equals torch's (N, C, T)-style CE over all rows
    target_full = rng.integers(0, Cn, (Tn, Bn))
    value, grad = rk.losses.CrossEntropy()(logits, target_full)
    tv, tg = _torch_value_grad(lambda z, t: F.cross_entropy(z.reshape(-1, Cn), t.reshape(-1)), logits,
                               torch.from_numpy(target_full))
    assert value == pytest.approx(tv, rel=rtol)
    assert_close(grad, tg, rtol, rtol, "d per-step CE / d logits")


@pytest.mark.parametrize("dtype,rtol", LOSS_DTYPES, ids=["f32", "f64"])
def test_bce_with_logits_matches_torch(rng, dtype, rtol):
    logits = (4 * rng.standard_normal((8, 3))).astype(dtype)
    logits[0, 0], logits[1, 1] = 60.0, -60.0  # saturated: the stable formula is needed
    target = rng.random((8, 3)).astype(dtype)
    target[2] = np.round(target[2])
    value, grad = rk.losses.BCEWithLogits()(logits, target)
    tv, tg = _torch_value_grad(F.binary_cross_entropy_with_logits, logits,
                               torch.from_numpy(target.astype(np.float64)))
    assert value == pytest.approx(tv, rel=rtol)
    assert_close(grad, tg, rtol, rtol, "d BCE / d logits")

    # masked (T, B, C): mean over the unmasked entries
    logits3 = rng.standard_normal((4, 3, 2)).astype(dtype)
    target3 = (rng.random((4, 3, 2)) < 0.5).astype(dtype)
    mask = rng.random((4, 3)) < 0.5
    mask[0, 0] = True
    value, grad = rk.losses.BCEWithLogits()(logits3, target3, mask=mask)
    tp = torch.tensor(logits3.astype(np.float64), requires_grad=True)
    tm = torch.from_numpy(mask)
    tv = F.binary_cross_entropy_with_logits(tp[tm], torch.from_numpy(target3.astype(np.float64))[tm])
    tv.backward()
    assert value == pytest.approx(tv.item(), rel=rtol)
    assert_close(grad, tp.grad.numpy(), rtol, rtol, "d masked BCE / d logits")
