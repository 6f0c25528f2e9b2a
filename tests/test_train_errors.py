"""Bad inputs to the training API raise clear errors that name the offending argument.

rnnkit's messages start with "<argument>: expected ..., got ...", so each check matches that prefix (and, where
useful, the offending value) rather than just the exception type.
"""

import numpy as np
import pytest

import rnnkit as rk


def small_model(dtype="float32", batch_first=False):
    return rk.Sequential([rk.LSTM(3, 4, batch_first=batch_first, seed=1, dtype=dtype), rk.LastStep(),
                          rk.Dense(4, 2, seed=2, dtype=dtype)])


# --------------------------------------------------------------------------
# layers
# --------------------------------------------------------------------------

@pytest.mark.parametrize("shape", [(5, 4), (2, 3, 2), (4,)])
def test_dense_wrong_input_size(shape):
    layer = rk.Dense(3, 2)
    with pytest.raises(ValueError, match=r"^x: expected shape \(\.\.\., 3\)"):
        layer(np.zeros(shape, np.float32))


def test_dense_wrong_input_dtype():
    with pytest.raises(TypeError, match=r"^x: expected a float32 array, got dtype float64"):
        rk.Dense(3, 2)(np.zeros((2, 3)))


def test_dense_wrong_upstream_gradient_shape():
    layer = rk.Dense(3, 2)
    layer(np.zeros((4, 3), np.float32))
    with pytest.raises(ValueError, match=r"^dout: expected shape"):
        layer.backward(np.zeros((4, 3), np.float32))


@pytest.mark.parametrize("kwargs,arg", [({"activation": "gelu"}, "activation"), ({"l1": -1.0}, "l1"),
                                        ({"l2": float("nan")}, "l2"), ({"dtype": "float16"}, "dtype")])
def test_dense_bad_constructor_arguments(kwargs, arg):
    with pytest.raises(ValueError, match=f"^{arg}: "):
        rk.Dense(3, 2, **kwargs)


@pytest.mark.parametrize("tokens", [np.array([[0.0, 1.0]]), np.array([[0.5]], np.float32), np.array([True])])
def test_embedding_float_tokens(tokens):
    with pytest.raises(TypeError, match=r"^tokens: expected an integer array"):
        rk.Embedding(5, 2)(tokens)


@pytest.mark.parametrize("bad", [5, -1, 100])
def test_embedding_tokens_out_of_range(bad):
    tokens = np.array([[0, 1], [bad, 2]])
    with pytest.raises(ValueError, match=r"^tokens: expected values in 0\.\.4") as info:
        rk.Embedding(5, 2)(tokens)
    assert str(bad) in str(info.value)


def test_dropout_bad_probability():
    for p in (1.0, -0.1):
        with pytest.raises(ValueError, match=r"^p: "):
            rk.Dropout(p)


def test_last_step_bad_input():
    with pytest.raises(ValueError, match=r"^directions: "):
        rk.LastStep(directions=3)
    with pytest.raises(ValueError, match=r"^x: "):
        rk.LastStep()(np.zeros((3, 4), np.float32))
    with pytest.raises(ValueError, match=r"^x: expected features divisible by 2"):
        rk.LastStep(directions=2)(np.zeros((3, 2, 5), np.float32))
    with pytest.raises(ValueError, match=r"^lengths: "):
        rk.LastStep()(np.zeros((3, 2, 4), np.float32), lengths=[1, 4])


# --------------------------------------------------------------------------
# losses
# --------------------------------------------------------------------------

@pytest.mark.parametrize("loss", [rk.losses.MSE(), rk.losses.BCEWithLogits()], ids=["mse", "bce"])
@pytest.mark.parametrize("target_shape", [(4, 2), (3, 3), (4, 3, 1), (12,)])
def test_float_losses_target_shape_mismatch(loss, target_shape):
    pred = np.zeros((4, 3), np.float32)
    with pytest.raises(ValueError, match=r"^target: expected shape \(4, 3\)"):
        loss(pred, np.zeros(target_shape, np.float32))


def test_float_loss_target_dtype_mismatch():
    with pytest.raises(TypeError, match=r"^target: expected a float32 array"):
        rk.losses.MSE()(np.zeros((4, 3), np.float32), np.zeros((4, 3)))


def test_loss_mask_shape_mismatch():
    with pytest.raises(ValueError, match=r"^mask: expected shape \(4,\)"):
        rk.losses.MSE()(np.zeros((4, 3), np.float32), np.zeros((4, 3), np.float32), mask=np.ones((4, 3), bool))


def test_loss_bad_prediction():
    with pytest.raises(TypeError, match=r"^pred: "):
        rk.losses.MSE()(np.zeros((4, 3), np.int64), np.zeros((4, 3)))
    with pytest.raises(TypeError, match=r"^logits: "):
        rk.losses.CrossEntropy()(np.zeros((4, 3), np.int32), np.zeros(4, np.int64))


@pytest.mark.parametrize("target_shape", [(4, 1), (3,), (4, 3)])
def test_cross_entropy_target_shape_mismatch(target_shape):
    with pytest.raises(ValueError, match=r"^target: expected shape \(4,\)"):
        rk.losses.CrossEntropy()(np.zeros((4, 3), np.float32), np.zeros(target_shape, np.int64))


def test_cross_entropy_float_targets():
    with pytest.raises(TypeError, match=r"^target: expected integer class indices, got dtype float"):
        rk.losses.CrossEntropy()(np.zeros((4, 3), np.float32), np.array([0.0, 1.0, 2.0, 1.0]))


@pytest.mark.parametrize("bad", [3, -1, 1000])
def test_cross_entropy_class_out_of_range(bad):
    target = np.array([0, 1, bad, 2])
    with pytest.raises(ValueError, match=r"^target: expected class indices in 0\.\.2") as info:
        rk.losses.CrossEntropy()(np.zeros((4, 3), np.float32), target)
    assert str(bad) in str(info.value)


def test_loss_names():
    assert isinstance(rk.losses.get("MSE"), rk.losses.MSE)
    assert isinstance(rk.losses.get("cross_entropy"), rk.losses.CrossEntropy)
    with pytest.raises(ValueError, match=r"^loss: expected one of"):
        rk.losses.get("hinge")
    with pytest.raises(TypeError, match=r"^loss: "):
        rk.losses.get(3)


# --------------------------------------------------------------------------
# optimizers and schedules
# --------------------------------------------------------------------------

OPTIMIZER_CLASSES = [rk.optim.SGD, rk.optim.Adam, rk.optim.AdamW, rk.optim.RMSprop, rk.optim.Adagrad]


@pytest.mark.parametrize("lr", [0, 0.0, -1e-3, float("nan"), float("inf"), True, "0.1"])
@pytest.mark.parametrize("cls", OPTIMIZER_CLASSES, ids=lambda c: c.__name__)
def test_optimizer_bad_lr(cls, lr):
    with pytest.raises(ValueError, match=r"^lr: "):
        cls(small_model(), lr=lr)


@pytest.mark.parametrize("betas,arg", [((1.0, 0.999), r"betas\[0\]"), ((0.9, 1.0), r"betas\[1\]"),
                                       ((-0.1, 0.999), r"betas\[0\]"), ((0.9, 1.5), r"betas\[1\]"),
                                       ((0.9,), "betas"), (0.9, "betas"), ((0.9, 0.99, 0.9), "betas")])
@pytest.mark.parametrize("cls", [rk.optim.Adam, rk.optim.AdamW], ids=lambda c: c.__name__)
def test_adam_betas_out_of_range(cls, betas, arg):
    with pytest.raises(ValueError, match=f"^{arg}: "):
        cls(small_model(), betas=betas)


@pytest.mark.parametrize("cls,kwargs,arg", [
    (rk.optim.SGD, {"momentum": -0.5}, "momentum"),
    (rk.optim.SGD, {"weight_decay": -1}, "weight_decay"),
    (rk.optim.SGD, {"nesterov": True}, "nesterov"),            # nesterov needs momentum
    (rk.optim.RMSprop, {"alpha": -0.1}, "alpha"),
    (rk.optim.Adagrad, {"lr_decay": -1.0}, "lr_decay"),
    (rk.optim.Adam, {"eps": float("nan")}, "eps"),
])
def test_optimizer_bad_hyperparameters(cls, kwargs, arg):
    with pytest.raises(ValueError, match=f"^{arg}: "):
        cls(small_model(), **kwargs)


def test_optimizer_needs_a_model():
    with pytest.raises(TypeError, match=r"^model: "):
        rk.optim.Adam([np.zeros(3)])
    with pytest.raises(ValueError, match=r"^optimizer: expected one of"):
        rk.optim.get("lbfgs", small_model())


def test_schedule_bad_arguments():
    opt = rk.optim.SGD(small_model())
    with pytest.raises(ValueError, match=r"^step_size: "):
        rk.optim.StepLR(opt, 0)
    with pytest.raises(ValueError, match=r"^T_max: "):
        rk.optim.CosineAnnealingLR(opt, 0)
    with pytest.raises(ValueError, match=r"^factor: "):
        rk.optim.ReduceLROnPlateau(opt, factor=1.0)
    with pytest.raises(TypeError, match=r"^optimizer: "):
        rk.optim.StepLR(small_model(), 2)


def test_clip_bad_arguments():
    model = small_model()
    for bad in (0, -1.0, float("nan")):
        with pytest.raises(ValueError, match=r"^max_norm: "):
            rk.clip_grad_norm(model, bad)
        with pytest.raises(ValueError, match=r"^clip_value: "):
            rk.clip_grad_value(model, bad)


# --------------------------------------------------------------------------
# Sequential and the training loop
# --------------------------------------------------------------------------

def test_sequential_needs_layers():
    with pytest.raises(ValueError, match=r"^layers: expected at least one layer"):
        rk.Sequential([])


@pytest.mark.parametrize("bad", [object(), "dense", np.zeros(3), lambda x: x])
def test_sequential_rejects_non_layers(bad):
    with pytest.raises(TypeError, match=r"^layers\[1\]: expected an rnnkit layer"):
        rk.Sequential([rk.Dense(2, 2), bad])


def test_sequential_mixed_dtypes():
    with pytest.raises(ValueError, match=r"dtype.*float32.*float64"):
        rk.Sequential([rk.LSTM(3, 4, dtype="float64"), rk.LastStep(), rk.Dense(4, 2, dtype="float32")])


def _data(n=8, ny=None):
    rng = np.random.default_rng(0)
    return rng.standard_normal((5, n, 3)).astype(np.float32), rng.standard_normal((ny or n, 2)).astype(np.float32)


@pytest.mark.parametrize("ny", [7, 9])
def test_fit_mismatched_sample_counts(ny):
    x, y = _data(8, ny)
    with pytest.raises(ValueError, match=r"^y: expected 8 samples") as info:
        small_model().fit(x, y, verbose=0)
    assert str(ny) in str(info.value)
    with pytest.raises(ValueError, match=r"^y: expected 8 samples"):
        small_model().evaluate(x, y)


def test_fit_batch_first_mismatched_sample_counts():
    x = np.zeros((6, 5, 3), np.float32)  # (N, T, F): 6 samples
    y = np.zeros((5, 2), np.float32)     # 5 would match x.shape[1] (time), not the batch axis
    with pytest.raises(ValueError, match=r"^y: expected 6 samples"):
        small_model(batch_first=True).fit(x, y, verbose=0)


@pytest.mark.parametrize("epochs", [0, -1, 1.5, True, None])
def test_fit_bad_epochs(epochs):
    x, y = _data()
    model = small_model()
    before = model.state_dict()
    with pytest.raises(ValueError, match=r"^epochs: expected a positive integer"):
        model.fit(x, y, epochs=epochs, verbose=0)
    for k, v in model.parameters().items():  # nothing was trained
        np.testing.assert_array_equal(v, before[k])


@pytest.mark.parametrize("kwargs,exc,arg", [
    ({"batch_size": 0}, ValueError, "batch_size"),
    ({"clip_norm": -1.0}, ValueError, "clip_norm"),
    ({"loss": "l7"}, ValueError, "loss"),
    ({"optimizer": "newton"}, ValueError, "optimizer"),
    ({"validation_data": np.zeros(3)}, TypeError, "validation_data"),
    ({"callbacks": [object()]}, TypeError, "callbacks"),
    ({"lengths": [5] * 7}, ValueError, "lengths"),
])
def test_fit_bad_arguments(kwargs, exc, arg):
    x, y = _data()
    with pytest.raises(exc, match=f"^{arg}: "):
        small_model().fit(x, y, verbose=0, **kwargs)


def test_early_stopping_without_monitored_value():
    x, y = _data()
    with pytest.raises(ValueError, match=r"val_loss.*validation_data"):
        small_model().fit(x, y, epochs=2, callbacks=[rk.EarlyStopping()], verbose=0)


@pytest.mark.parametrize("kwargs,exc,arg", [
    ({"monitor": 3}, TypeError, "monitor"), ({"min_delta": -0.1}, ValueError, "min_delta"),
    ({"min_delta": "0.1"}, ValueError, "min_delta"), ({"patience": 0}, ValueError, "patience")])
def test_early_stopping_bad_arguments(kwargs, exc, arg):
    with pytest.raises(exc, match=f"^{arg}: expected"):
        rk.EarlyStopping(**kwargs)


def test_reduce_lr_on_plateau_bad_arguments():
    opt = rk.optim.SGD(small_model())
    with pytest.raises(TypeError, match=r"^monitor: expected .* got list"):
        rk.optim.ReduceLROnPlateau(opt, monitor=["val_loss"])
    with pytest.raises(ValueError, match=r"^min_lr: expected .* got -1"):
        rk.optim.ReduceLROnPlateau(opt, min_lr=-1.0)


def test_backward_without_training_forward():
    model = small_model()
    d = np.zeros((8, 2), np.float32)
    with pytest.raises(RuntimeError, match=r"^backward: "):
        model.backward(d)
    x, _ = _data()
    model(x, training=False)
    with pytest.raises(RuntimeError, match=r"^backward: "):
        model.backward(d)
    model(x)
    model.backward(d)
    with pytest.raises(RuntimeError, match=r"^backward: "):  # each training forward backpropagates once
        model.backward(d)


def test_backward_without_forward_recurrent_only_model():
    model = rk.Sequential([rk.GRU(3, 2)])
    with pytest.raises(RuntimeError, match=r"^backward: "):
        model.backward(np.zeros((5, 4, 2), np.float32))


def test_predict_bad_input():
    with pytest.raises(ValueError, match=r"^x: "):
        small_model().predict(np.zeros((5,), np.float32))
    with pytest.raises(ValueError, match=r"^batch_size: "):
        small_model().predict(np.zeros((5, 2, 3), np.float32), batch_size=0)
    with pytest.raises(TypeError, match=r"^x: expected a float32 array, got dtype float64"):
        small_model().predict(np.zeros((5, 2, 3)))


def test_load_state_dict_errors_name_the_key():
    model = small_model()
    sd = model.state_dict()
    del sd["2.bias"]
    with pytest.raises(ValueError, match=r"2\.bias"):
        model.load_state_dict(sd)
    sd = model.state_dict()
    sd["2.weight"] = np.zeros((3, 3))
    with pytest.raises(ValueError, match=r"2\.weight"):
        model.load_state_dict(sd)
