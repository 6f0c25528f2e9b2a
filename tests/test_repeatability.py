"""Training from a seed is repeatable bit for bit (same thread count), dropout and recurrent dropout included."""
import numpy as np
import pytest

import rnnkit as rk


def train(cls, kw):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((48, 20, 6)).astype(np.float32)
    y = rng.standard_normal((48, 1)).astype(np.float32)
    model = rk.Sequential([cls(6, 40, num_layers=2, batch_first=True, seed=1, dropout=0.2, **kw), rk.LastStep(),
                           rk.Dense(40, 1, seed=2)])
    model.fit(x, y, epochs=2, batch_size=16, seed=3, verbose=0)
    return model.state_dict()


@pytest.mark.parametrize("cls,kw", [(rk.LSTM, dict(recurrent_dropout=0.1, zoneout=0.1)), (rk.GRU, dict(layer_norm=True)),
                                    (rk.sLSTM, dict(num_heads=4)), (rk.mLSTM, dict(num_heads=4)), (rk.minLSTM, {})],
                         ids=["lstm", "gru-ln", "slstm", "mlstm", "minlstm"])
@pytest.mark.parametrize("threads", [1, 2, 3])
def test_same_seed_same_threads_same_parameters(cls, kw, threads):
    before = rk.get_num_threads()
    rk.set_num_threads(threads)
    try:
        a, b = train(cls, kw), train(cls, kw)
    finally:
        rk.set_num_threads(before)
    for name in a:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)
