"""The thread-safety contract (README, "Threads"): each rnnkit object runs one call at a time (a mutex per object,
the GIL released while C++ works); different objects run in parallel; results never depend on the concurrency."""
import threading

import numpy as np

import rnnkit as rk


def run_threads(n, target):
    errors = []

    def guarded(i):
        try:
            target(i)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=guarded, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors


def model():
    return rk.Sequential([rk.LSTM(6, 32, num_layers=2, batch_first=True, seed=0), rk.LastStep(),
                          rk.Dense(32, 3, seed=1)])


def test_eight_threads_predicting_with_one_model_get_single_thread_results(rng, tmp_path):
    m = model()
    xs = [rng.standard_normal((5, 30, 6)).astype(np.float32) for _ in range(8)]
    expected = [m.predict(x) for x in xs]
    path = tmp_path / "m.safetensors"
    m.save(path)
    cpp = rk._core.Model.load(str(path))
    cpp_expected = [cpp.predict(x) for x in xs]
    out, cpp_out = [None] * 8, [None] * 8

    def work(i):
        for _ in range(5):
            out[i] = m.predict(xs[i])
            cpp_out[i] = cpp.predict(xs[i])

    run_threads(8, work)
    for i in range(8):
        np.testing.assert_array_equal(out[i], expected[i])
        np.testing.assert_array_equal(cpp_out[i], cpp_expected[i])


def test_training_one_model_while_others_predict_with_a_copy(rng):
    m = model()
    copy = rk.Sequential.from_config(m.get_config())
    copy.load_state_dict(m.state_dict())
    x = rng.standard_normal((64, 30, 6)).astype(np.float32)
    y = rng.standard_normal((64, 3)).astype(np.float32)
    frozen = copy.predict(x[:8])
    seen = []

    def work(i):
        if i == 0:
            m.fit(x, y, epochs=3, batch_size=16, verbose=0, seed=0)
        else:
            for _ in range(10):
                seen.append(copy.predict(x[:8]))

    run_threads(4, work)
    for s in seen:
        np.testing.assert_array_equal(s, frozen)
    reference = model()
    reference.fit(x, y, epochs=3, batch_size=16, verbose=0, seed=0)
    for name, value in reference.parameters().items():
        np.testing.assert_array_equal(m.parameters()[name], value, err_msg=name)
