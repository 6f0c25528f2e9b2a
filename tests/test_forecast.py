"""Forecast baselines and errors (rnnkit.baselines) against hand-computed values on tiny series, and the rolling-
origin evaluation that `rnnkit demo` / `train` report."""
import numpy as np
import pytest

from rnnkit import baselines, forecast

S = np.array([1.0, 2.0, 4.0, 3.0, 5.0, 7.0, 6.0, 8.0, 10.0, 9.0])


def test_persistence_repeats_the_last_value():
    np.testing.assert_array_equal(baselines.persistence(S, [5, 6], 2), [[5, 5], [7, 7]])


def test_seasonal_naive_takes_the_last_season():
    # origin 6, season 3: s[3], s[4], s[5], then s[3] again (two seasons back for the 4th step)
    np.testing.assert_array_equal(baselines.seasonal_naive(S, [6], 4, 3), [[3, 5, 7, 3]])
    with pytest.raises(ValueError, match="season"):
        baselines.seasonal_naive(S, [2], 1, 3)


def test_drift_extends_the_mean_change():
    # origin 5: last s[4] = 5, mean change (5 - 1) / 4 = 1
    np.testing.assert_allclose(baselines.drift(S, [5], 3), [[6, 7, 8]])


def test_linear_ar_recovers_a_noise_free_process():
    # a sinusoid plus a constant is an exact AR(2) with intercept: s_t = 2 cos(w) s_{t-1} - s_{t-2} + c (2 - 2 cos w),
    # so every step ahead is an exact linear function of the last two values and 1
    t = np.arange(200)
    s = 5 + 2 * np.sin(0.3 * t)
    ar = baselines.LinearAR(2, 3).fit(s[:150])
    pred = ar.predict(s, [160, 170])
    expected = np.array([[s[160], s[161], s[162]], [s[170], s[171], s[172]]])
    np.testing.assert_allclose(pred, expected, atol=1e-9)


def test_errors_follow_their_definitions():
    pred, actual = np.array([[1.0, 2.0], [3.0, 5.0]]), np.array([[2.0, 2.0], [1.0, 5.0]])
    assert baselines.rmse(pred, actual) == pytest.approx(np.sqrt((1 + 0 + 4 + 0) / 4))
    assert baselines.mae(pred, actual) == pytest.approx(0.75)
    train = np.array([1.0, 3.0, 2.0, 6.0])  # |3-1|, |2-3|, |6-2| -> 7/3 at lag 1; |2-1|, |6-3| -> 2 at lag 2
    assert baselines.mase_scale(train, 1) == pytest.approx(7 / 3)
    assert baselines.mase(pred, actual, train, 2) == pytest.approx(0.75 / 2)
    with pytest.raises(ValueError, match="MASE"):
        baselines.mase_scale(np.ones(5), 1)


def test_ets_forecasts_equal_statsmodels_refitted_at_each_origin():
    holt = pytest.importorskip("statsmodels.tsa.holtwinters")
    t = np.arange(160)
    s = 10 + 0.05 * t + 2 * np.sin(2 * np.pi * t / 12) + np.random.default_rng(0).normal(0, 0.1, t.size)
    starts = np.array([120, 133, 150])
    fast = baselines.ets(s, 120, starts, 8, 12)
    fitted = holt.ExponentialSmoothing(s[:120], trend="add", seasonal="add", seasonal_periods=12,
                                       initialization_method="estimated").fit()
    params = {k: fitted.params[k] for k in ("smoothing_level", "smoothing_trend", "smoothing_seasonal")}
    for r, e in enumerate(starts):
        slow = holt.ExponentialSmoothing(
            s[:e], trend="add", seasonal="add", seasonal_periods=12, initialization_method="known",
            initial_level=fitted.params["initial_level"], initial_trend=fitted.params["initial_trend"],
            initial_seasonal=fitted.params["initial_seasons"]).fit(optimized=False, **params).forecast(8)
        np.testing.assert_allclose(fast[r], slow, rtol=1e-10, atol=1e-10)


def test_detect_season():
    t = np.arange(300)
    s = 0.1 * t + 3 * np.sin(2 * np.pi * t / 12) + np.random.default_rng(1).normal(0, 0.1, t.size)
    assert forecast.detect_season(s) == 12
    assert forecast.detect_season(np.cumsum(np.random.default_rng(2).normal(size=300))) == 1


def test_evaluate_scores_every_method_per_horizon():
    t = np.arange(260)
    s = 10 + 0.05 * t + 3 * np.sin(2 * np.pi * t / 12) + np.random.default_rng(0).normal(0, 0.2, t.size)
    _, report, starts, pred = forecast.evaluate(s, 24, 6, 12, epochs=2, verbose=0)
    assert pred.shape == (len(starts), 6) and report["horizon"] == 6
    expected = {"LSTM", "persistence", "seasonal naive", "drift", "linear AR"}
    assert expected <= set(report["methods"])
    actual = s[starts[:, None] + np.arange(6)]
    pers = report["methods"]["persistence"]
    np.testing.assert_allclose(pers["rmse"], np.sqrt(np.mean((s[starts - 1][:, None] - actual) ** 2, axis=0)))
    assert pers["mase_mean"] == pytest.approx(pers["mae_mean"] / baselines.mase_scale(s[:208], 12))
    assert report["rmse"] == report["methods"]["LSTM"]["rmse_mean"]
