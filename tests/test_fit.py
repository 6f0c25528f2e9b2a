"""Sequential.fit / evaluate / predict: history, validation, callbacks (EarlyStopping, LR schedules), batching,
quiet mode, both data layouts, and `lengths` (LastStep models and per-step targets with a mask).

The reference for "what fit should do" is a plain loop of model(x) -> loss -> backward -> step -> zero_grad over
the same mini-batches, so fit's bookkeeping is checked against the primitives tested elsewhere.
"""

import sys

import numpy as np
import pytest

import rnnkit as rk
from conftest import assert_close

T, F, H = 6, 2, 8


def mean_task(n, batch_first=False, seed=0, lengths=None):
    """x: random sequences; y: the mean of feature 0 over the (valid) steps -- learnable by a small LSTM."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, T, F)).astype(np.float32)
    lens = np.full(n, T) if lengths is None else lengths
    valid = np.arange(T)[None, :] < lens[:, None]
    y = ((x[:, :, 0] * valid).sum(1) / lens)[:, None].astype(np.float32)
    if not batch_first:
        x = np.ascontiguousarray(x.transpose(1, 0, 2))
    return x, y


def last_step_model(batch_first=False, seed=1, dropout=0.0):
    layers = [rk.LSTM(F, H, batch_first=batch_first, recurrent_dropout=dropout, seed=seed)]
    if dropout:
        layers.append(rk.Dropout(dropout, seed=seed + 1))
    layers += [rk.LastStep(), rk.Dense(H, 1, seed=seed + 2)]
    return rk.Sequential(layers)


def params_equal(a, b):
    return a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


class Recorder:
    """Callback keeping a copy of the parameters, the logs and the optimizer's lr at every epoch end."""

    def __init__(self):
        self.states, self.logs, self.lrs = [], [], []
        self.model = None

    def set_model(self, model):
        self.model = model

    def on_epoch_end(self, epoch, logs):
        assert epoch == len(self.states)
        self.states.append(self.model.state_dict())
        self.logs.append(dict(logs))
        self.lrs.append(self.model.optimizer.lr)
        return False


# --------------------------------------------------------------------------
# history, evaluate, and what one epoch does
# --------------------------------------------------------------------------

def test_history_keys_and_lengths():
    x, y = mean_task(40)
    xv, yv = mean_task(16, seed=5)
    model = last_step_model()
    h = model.fit(x, y, epochs=3, batch_size=16, verbose=0)
    assert set(h) == {"loss"} and len(h["loss"]) == 3
    assert all(isinstance(v, float) and np.isfinite(v) for v in h["loss"])

    h = model.fit(x, y, epochs=4, batch_size=16, validation_data=(xv, yv), verbose=0)
    assert set(h) == {"loss", "val_loss"}
    assert len(h["loss"]) == len(h["val_loss"]) == 4
    # the last recorded validation loss is that of the final weights
    assert h["val_loss"][-1] == pytest.approx(model.evaluate(xv, yv), rel=1e-5)
    assert h["val_loss"][-1] != pytest.approx(model.evaluate(x, y), rel=1e-3)  # and it is not the training set


def test_validation_data_with_lengths():
    lengths = np.array([6, 2, 4, 3, 5, 1, 6, 2])
    x, y = mean_task(8, lengths=lengths)
    xv, yv = mean_task(8, seed=3, lengths=lengths)
    model = last_step_model()
    h = model.fit(x, y, epochs=2, lengths=lengths, validation_data=(xv, yv, lengths), verbose=0)
    assert h["val_loss"][-1] == pytest.approx(model.evaluate(xv, yv, lengths=lengths), rel=1e-5)
    assert h["val_loss"][-1] != pytest.approx(model.evaluate(xv, yv), rel=1e-4)


@pytest.mark.parametrize("batch_first", [False, True], ids=["tbf", "btf"])
def test_fit_equals_manual_loop(batch_first):
    """shuffle=False: fit = the plain loop over consecutive mini-batches (last one partial), bitwise."""
    n, bs = 20, 8
    x, y = mean_task(n, batch_first)
    lengths = np.random.default_rng(4).integers(1, T + 1, n)
    fitted, manual = last_step_model(batch_first), last_step_model(batch_first)
    h = fitted.fit(x, y, epochs=2, batch_size=bs, shuffle=False, lengths=lengths,
                   optimizer=rk.optim.SGD(fitted, lr=0.1, momentum=0.5), verbose=0)

    opt, loss = rk.optim.SGD(manual, lr=0.1, momentum=0.5), rk.losses.MSE()
    axis = 0 if batch_first else 1
    for epoch in range(2):
        total = 0.0
        for lo in range(0, n, bs):
            idx = np.arange(lo, min(n, lo + bs))
            value, d = loss(manual(np.take(x, idx, axis=axis), lengths=lengths[idx]), y[idx])
            manual.backward(d)
            opt.step()
            manual.zero_grad()
            total += value * len(idx)
        assert h["loss"][epoch] == pytest.approx(total / n, rel=1e-6)
    assert params_equal(fitted.parameters(), manual.parameters())


def test_first_epoch_loss_is_loss_at_initial_weights():
    x, y = mean_task(32)
    model = last_step_model()
    before = model.evaluate(x, y)
    h = model.fit(x, y, epochs=1, batch_size=32, optimizer=rk.optim.SGD(model, lr=0.1), verbose=0)
    assert h["loss"][0] == pytest.approx(before, rel=1e-6)
    assert model.evaluate(x, y) < before


def test_shuffle_seed_is_reproducible():
    x, y = mean_task(30)
    runs = []
    for seed in (7, 7, 8):
        model = last_step_model()
        model.fit(x, y, epochs=2, batch_size=8, seed=seed, verbose=0)
        runs.append(model.state_dict())
    assert params_equal(runs[0], runs[1])
    assert not params_equal(runs[0], runs[2])


def test_string_loss_and_optimizer_and_clip_norm():
    x, y = mean_task(16)
    model = last_step_model()
    h = model.fit(x, y, epochs=2, loss="mse", optimizer="sgd", clip_norm=1e-3, verbose=0)
    assert isinstance(model.loss, rk.losses.MSE) and isinstance(model.optimizer, rk.optim.SGD)
    assert len(h["loss"]) == 2
    # with a tiny clip norm and SGD's lr 0.01, each step moves the weights by at most lr * clip_norm
    model2 = last_step_model()
    start = model2.state_dict()
    model2.fit(x, y, epochs=1, batch_size=16, optimizer=rk.optim.SGD(model2, lr=0.01), clip_norm=1e-3, verbose=0)
    step = np.sqrt(sum(((model2.parameters()[k] - start[k]).astype(np.float64) ** 2).sum() for k in start))
    assert 0 < step <= 0.01 * 1e-3 * (1 + 1e-3)


# --------------------------------------------------------------------------
# callbacks
# --------------------------------------------------------------------------

def test_early_stopping_min_delta_plateau_restores_best_weights():
    """With a min_delta no epoch can beat, epoch 0 stays best: training stops after `patience` more epochs
    and the weights of epoch 0 come back."""
    x, y = mean_task(24)
    xv, yv = mean_task(12, seed=9)
    model, rec = last_step_model(), Recorder()
    es = rk.EarlyStopping(patience=3, min_delta=1e6)
    h = model.fit(x, y, epochs=50, batch_size=8, validation_data=(xv, yv), callbacks=[rec, es], verbose=0,
                  optimizer=rk.optim.Adam(model, lr=0.01))
    assert len(h["loss"]) == 4 and len(rec.states) == 4
    assert es.best_epoch == 0 and es.stopped_epoch == 3
    assert params_equal(model.parameters(), rec.states[0])
    assert not params_equal(rec.states[0], rec.states[-1])


def test_early_stopping_on_a_real_plateau():
    """Linear regression converges quickly; the validation loss then only jitters and training stops early at
    the best epoch's weights."""
    rng = np.random.default_rng(3)
    w = rng.standard_normal((3, 2))
    x = rng.standard_normal((64, 3)).astype(np.float32)
    y = (x @ w + 0.1 * rng.standard_normal((64, 2))).astype(np.float32)
    xv = rng.standard_normal((32, 3)).astype(np.float32)
    yv = (xv @ w + 0.1 * rng.standard_normal((32, 2))).astype(np.float32)
    model, rec = rk.Sequential([rk.Dense(3, 2, seed=1)]), Recorder()
    es = rk.EarlyStopping(monitor="val_loss", patience=4, min_delta=1e-4)
    epochs = 300
    h = model.fit(x, y, epochs=epochs, batch_size=16, validation_data=(xv, yv), callbacks=[rec, es], verbose=0,
                  optimizer=rk.optim.Adam(model, lr=0.05), seed=0)
    n = len(h["val_loss"])
    assert n < epochs, "no plateau detected"
    assert es.stopped_epoch == n - 1 and n == es.best_epoch + es.patience + 1
    best = h["val_loss"][es.best_epoch]
    assert best <= min(h["val_loss"]) + es.min_delta
    assert all(v >= best - es.min_delta for v in h["val_loss"][es.best_epoch + 1:])
    assert params_equal(model.parameters(), rec.states[es.best_epoch])
    assert model.evaluate(xv, yv) == pytest.approx(best, rel=1e-6)
    assert best < 0.1 * h["val_loss"][0]


def test_early_stopping_without_restore_keeps_last_weights():
    x, y = mean_task(24)
    model, rec = last_step_model(), Recorder()
    es = rk.EarlyStopping(monitor="loss", patience=2, min_delta=1e6, restore_best_weights=False)
    model.fit(x, y, epochs=10, callbacks=[rec, es], verbose=0)
    assert len(rec.states) == 3
    assert params_equal(model.parameters(), rec.states[-1])


def test_step_lr_callback_changes_lr_and_the_optimizer_uses_it():
    x, y = mean_task(16)
    model, rec = last_step_model(), Recorder()
    opt = rk.optim.SGD(model, lr=0.2)
    model.fit(x, y, epochs=5, batch_size=8, optimizer=opt, callbacks=[rk.optim.StepLR(opt, 2, 0.5), rec],
              verbose=0)
    assert rec.lrs == pytest.approx([0.2, 0.1, 0.1, 0.05, 0.05])
    assert opt.lr == pytest.approx(0.05)

    # gamma = 0: lr is 0 after the first epoch, so later epochs must leave the weights alone
    model, rec = last_step_model(), Recorder()
    opt = rk.optim.SGD(model, lr=0.2)
    model.fit(x, y, epochs=3, batch_size=8, optimizer=opt, callbacks=[rk.optim.StepLR(opt, 1, 0.0), rec],
              verbose=0)
    assert opt.lr == 0.0
    assert params_equal(rec.states[0], rec.states[2])
    assert not params_equal(rec.states[0], last_step_model().state_dict())


def test_reduce_lr_on_plateau_callback_matches_torch_on_recorded_metric():
    torch = pytest.importorskip("torch")
    x, y = mean_task(32)
    xv, yv = mean_task(16, seed=4)
    model, rec = last_step_model(), Recorder()
    opt = rk.optim.Adam(model, lr=0.1)
    sched = rk.optim.ReduceLROnPlateau(opt, factor=0.5, patience=0, threshold=0.05)
    model.fit(x, y, epochs=8, batch_size=8, optimizer=opt, validation_data=(xv, yv), callbacks=[sched, rec],
              verbose=0, seed=1)
    assert opt.lr < 0.1, "the schedule never reduced the learning rate"

    tparam = torch.nn.Parameter(torch.zeros(1))
    topt = torch.optim.SGD([tparam], lr=0.1)
    tsched = torch.optim.lr_scheduler.ReduceLROnPlateau(topt, factor=0.5, patience=0, threshold=0.05)
    expected = []
    for logs in rec.logs:
        topt.step()
        tsched.step(logs["val_loss"])
        expected.append(topt.param_groups[0]["lr"])
    assert rec.lrs == pytest.approx(expected, rel=1e-12)


def test_callback_returning_true_stops_training():
    class StopAt:
        def on_epoch_end(self, epoch, logs):
            return epoch == 1

    x, y = mean_task(8)
    h = last_step_model().fit(x, y, epochs=10, callbacks=[StopAt()], verbose=0)
    assert len(h["loss"]) == 2


# --------------------------------------------------------------------------
# predict
# --------------------------------------------------------------------------

@pytest.mark.parametrize("batch_first", [False, True], ids=["tbf", "btf"])
@pytest.mark.parametrize("head", ["last_step", "per_step"])
def test_predict_is_inference_and_batched(batch_first, head):
    layers = [rk.LSTM(F, H, 2, dropout=0.3, recurrent_dropout=0.3, batch_first=batch_first, seed=3),
              rk.Dropout(0.5, seed=4)]
    layers += [rk.LastStep(), rk.Dense(H, 3, seed=5)] if head == "last_step" else [rk.Dense(H, 3, seed=5)]
    model = rk.Sequential(layers)
    n = 11
    x, _ = mean_task(n, batch_first, seed=2)
    lengths = np.random.default_rng(1).integers(1, T + 1, n)

    for lens in (None, lengths):
        direct = model(x, lengths=lens, training=False)
        p1 = model.predict(x, lengths=lens, batch_size=1)
        p4 = model.predict(x, lengths=lens, batch_size=4)
        pall = model.predict(x, lengths=lens, batch_size=1000)
        assert pall.shape == direct.shape
        for p, name in ((p1, "batch_size=1"), (p4, "batch_size=4"), (pall, "batch_size=1000")):
            assert_close(p, direct, 1e-6, 1e-6, f"predict {name}")
    # predict records nothing to backpropagate through
    model.predict(x)
    with pytest.raises(RuntimeError, match="backward"):
        model.backward(np.zeros_like(direct))
    # no dropout at inference: repeated calls agree, and differ from a training-mode forward
    np.testing.assert_array_equal(model.predict(x), model.predict(x))
    assert not np.allclose(model(x, training=True), model.predict(x))


# --------------------------------------------------------------------------
# quiet mode
# --------------------------------------------------------------------------

def test_verbose_zero_prints_nothing(capsys, monkeypatch):
    x, y = mean_task(16)
    xv, yv = mean_task(8, seed=1)
    # pretend stderr is a terminal, so that verbose=1 would draw a progress bar
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True, raising=False)
    last_step_model().fit(x, y, epochs=2, validation_data=(xv, yv), verbose=0)
    out = capsys.readouterr()
    assert out.err == "" and out.out == ""

    pytest.importorskip("tqdm")
    last_step_model().fit(x, y, epochs=2, validation_data=(xv, yv), verbose=1)
    assert "epoch" in capsys.readouterr().err  # the check above is able to see output


# --------------------------------------------------------------------------
# learning, layouts and lengths
# --------------------------------------------------------------------------

@pytest.mark.parametrize("batch_first", [False, True], ids=["tbf", "btf"])
def test_both_layouts_learn(batch_first):
    x, y = mean_task(128, batch_first)
    model = last_step_model(batch_first)
    before = model.evaluate(x, y)
    h = model.fit(x, y, epochs=8, batch_size=16, optimizer=rk.optim.Adam(model, lr=0.02), verbose=0, seed=0)
    assert h["loss"][-1] < 0.3 * h["loss"][0]
    assert model.evaluate(x, y) < 0.3 * before


def test_lengths_flow_into_fit_for_last_step_models():
    n = 48
    lengths = np.random.default_rng(2).integers(1, T + 1, n)
    x, y = mean_task(n, lengths=lengths)
    padded = np.arange(T)[:, None] >= lengths[None, :]  # (T, N)
    x_junk = x.copy()
    x_junk[padded] = 1e3  # garbage past each length

    runs = {}
    for name, data, lens in (("clean", x, lengths), ("junk", x_junk, lengths), ("no_lengths", x, None)):
        model = last_step_model()
        h = model.fit(data, y, epochs=3, batch_size=16, lengths=lens, verbose=0, seed=1)
        runs[name] = (h, model)
    # padding never reaches the model when lengths are given ...
    assert runs["clean"][0] == runs["junk"][0]
    assert params_equal(runs["clean"][1].parameters(), runs["junk"][1].parameters())
    # ... while ignoring lengths trains on something else
    assert not params_equal(runs["clean"][1].parameters(), runs["no_lengths"][1].parameters())
    # and evaluation honours them too
    assert runs["clean"][1].evaluate(x_junk, y, lengths=lengths) == pytest.approx(
        runs["clean"][1].evaluate(x, y, lengths=lengths), rel=1e-6)


def _per_step_problem(batch_first, n=24, seed=0):
    rng = np.random.default_rng(seed)
    lengths = rng.integers(1, T + 1, n)
    x = rng.standard_normal((n, T, F)).astype(np.float32)
    y = np.cumsum(x[:, :, :1], axis=1).astype(np.float32)  # running sum: a per-step target
    pad = np.arange(T)[None, :] >= lengths[:, None]      # (N, T)
    if not batch_first:
        x, y, pad = x.transpose(1, 0, 2).copy(), y.transpose(1, 0, 2).copy(), pad.T.copy()
    return x, y, lengths, pad


@pytest.mark.parametrize("batch_first", [False, True], ids=["tbf", "btf"])
def test_per_step_targets_with_lengths_are_masked(batch_first):
    x, y, lengths, pad = _per_step_problem(batch_first)
    y_huge = y.copy()
    y_huge[pad] = 1e6

    def build():
        return rk.Sequential([rk.GRU(F, H, batch_first=batch_first, seed=3), rk.Dense(H, 1, seed=4)])

    a, b = build(), build()
    ha = a.fit(x, y, epochs=2, batch_size=8, lengths=lengths, verbose=0, seed=2)
    hb = b.fit(x, y_huge, epochs=2, batch_size=8, lengths=lengths, verbose=0, seed=2)
    assert ha == hb
    assert max(ha["loss"]) < 1e3
    assert params_equal(a.parameters(), b.parameters())
    assert a.evaluate(x, y_huge, lengths=lengths) == a.evaluate(x, y, lengths=lengths)

    # evaluate = mean squared error over the valid steps only, computed from predict
    pred = a.predict(x, lengths=lengths)
    valid = ~pad
    expected = np.mean((pred[valid].astype(np.float64) - y[valid]) ** 2)
    assert a.evaluate(x, y, lengths=lengths, batch_size=5) == pytest.approx(expected, rel=1e-5)


def test_per_step_cross_entropy_ignores_padding_labels():
    x, y, lengths, pad = _per_step_problem(False, seed=1)
    labels = (y[..., 0] > 0).astype(np.int64)  # (T, N) class per step
    junk = labels.copy()
    junk[pad] = -1  # not a class: must never be looked at

    def build():
        return rk.Sequential([rk.LSTM(F, H, seed=5), rk.Dense(H, 2, seed=6)])

    a, b = build(), build()
    ha = a.fit(x, labels, epochs=2, batch_size=8, lengths=lengths, loss="cross_entropy", verbose=0, seed=0)
    hb = b.fit(x, junk, epochs=2, batch_size=8, lengths=lengths, loss="cross_entropy", verbose=0, seed=0)
    assert ha == hb
    assert params_equal(a.parameters(), b.parameters())
