"""Training from a seed is bitwise repeatable: across runs and across thread counts (1, 2, 3), dropout, recurrent
dropout and zoneout included.

Every reduction in the kernels has an order fixed by the sizes alone: Eigen's products run on fixed blocks of rows
(cpu/gemm.cpp), the row driver's weight shares and products go by fixed groups of rows (cpu/row_driver.hpp), the
parallel scan by fixed blocks of time (cpu/scan_driver.hpp), and the unit-team drivers never reduce across
threads. The sizes here are large enough to exercise each of those splits (T*B = 640 product rows, 48 batch rows,
T = 40 >= 32 scan steps)."""
import numpy as np
import pytest

import rnnkit as rk

T, B, I, H = 40, 48, 6, 40

CASES = {
    "lstm-dropouts": (rk.LSTM, dict(recurrent_dropout=0.1, zoneout=0.1, dropout=0.2)),
    "lstm-peephole-proj": (rk.LSTM, dict(peephole=True, proj_size=16, bidirectional=True)),
    "lstm-fgr": (rk.LSTM, dict(full_gate_recurrence=True)),
    "lstm-ln": (rk.LSTM, dict(layer_norm=True, recurrent_dropout=0.1)),
    "gru-ln": (rk.GRU, dict(layer_norm=True, dropout=0.2)),
    "gru-bi": (rk.GRU, dict(bidirectional=True)),
    "rnn": (rk.RNN, {}),
    "indrnn": (rk.IndRNN, {}),
    "slstm": (rk.sLSTM, dict(num_heads=4)),
    "mlstm": (rk.mLSTM, dict(num_heads=4)),
    "minlstm": (rk.minLSTM, {}),
    "mingru": (rk.minGRU, {}),
}


def train(cls, kw, threads):
    before = rk.get_num_threads()
    rk.set_num_threads(threads)
    try:
        rng = np.random.default_rng(0)
        x = rng.standard_normal((96, T, I)).astype(np.float32)
        lengths = rng.integers(1, T + 1, 96)
        x[np.arange(T)[None, :] >= lengths[:, None]] = 0.0
        y = rng.standard_normal((96, 1)).astype(np.float32)
        rnn = cls(I, H, num_layers=2, batch_first=True, seed=1, **kw)
        model = rk.Sequential([rnn, rk.LastStep(), rk.Dense(rnn.output_size, 1, seed=2)])
        model.fit(x, y, epochs=2, batch_size=B, seed=3, verbose=0)
        return model.state_dict()
    finally:
        rk.set_num_threads(before)


@pytest.mark.parametrize("case", list(CASES))
def test_same_seed_same_parameters_on_1_2_3_threads(case):
    cls, kw = CASES[case]
    ref = train(cls, kw, 1)
    again = train(cls, kw, 1)
    for name in ref:
        np.testing.assert_array_equal(ref[name], again[name], err_msg=f"rerun: {name}")
    for threads in (2, 3):
        got = train(cls, kw, threads)
        for name in ref:
            np.testing.assert_array_equal(ref[name], got[name], err_msg=f"{threads} threads: {name}")


def test_trained_parameters_moved():
    """The comparison above is of trained parameters, not of an untouched initialisation."""
    cls, kw = CASES["lstm-dropouts"]
    trained = train(cls, kw, 2)
    fresh = rk.LSTM(I, H, num_layers=2, batch_first=True, seed=1, **kw).state_dict()
    for name, value in fresh.items():
        assert not np.array_equal(value, trained["0." + name]), name
