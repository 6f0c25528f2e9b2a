"""rnnkit's command line (also `python -m rnnkit`):

  rnnkit demo      train a stacked LSTM on weekly Mauna Loa CO2, compare with the seasonal-naive baseline
  rnnkit train     the same on your own CSV column; saves a model file
  rnnkit predict   forecast the next steps of a CSV column with a saved model
"""
from __future__ import annotations

import argparse
import os
import sys
from importlib.resources import as_file, files

import numpy as np

from . import cmake_dir, forecast


def _report(name, report, season):
    better = report["rmse"] < report["baseline_rmse"]
    print(f"{name}: {report['test_windows']} test windows, {report['epochs_run']} epochs in "
          f"{report['train_seconds']:.1f} s")
    print(f"  LSTM RMSE            {report['rmse']:.4f}")
    print(f"  seasonal naive RMSE  {report['baseline_rmse']:.4f}   (value one season = {season} steps earlier)")
    if better:
        print(f"  the LSTM beats the baseline: {report['baseline_rmse'] / report['rmse']:.2f}x lower error")
    else:
        print("  the LSTM does NOT beat the baseline (try more --epochs, another --lookback or --hidden)")
    return better


def _train_and_report(series, args, name, out_model, out_plot):
    model, report, starts, pred = forecast.evaluate_split(series, args.lookback, args.horizon, args.season, args.epochs,
                                                          verbose=args.verbose, seed=args.seed,
                                                          hidden_size=args.hidden)
    better = _report(name, report, args.season)
    model.save(out_model, column=getattr(args, "column", None))
    print(f"  model saved to {out_model}")
    if out_plot:
        if forecast.plot(series, starts, pred, out_plot, f"{name}: LSTM forecast vs actual"):
            print(f"  plot written to {out_plot}")
        else:
            print("  (install matplotlib for a plot of forecast vs actual)")
    return better


def _demo(args) -> int:
    data = files("rnnkit") / "data" / "co2_mauna_loa_weekly.csv"
    with as_file(data) as path:
        series = forecast.read_series(path, "co2")
    os.makedirs(args.out, exist_ok=True)
    print(f"Mauna Loa weekly CO2 (ppm), {len(series)} weeks 1958-2001 (Scripps/CDIAC, public domain)")
    ok = _train_and_report(series, args, "co2", os.path.join(args.out, "co2_lstm.safetensors"),
                           os.path.join(args.out, "co2_forecast.png"))
    return 0 if ok else 1


def _train(args) -> int:
    series = forecast.read_series(args.csv, args.column)
    print(f"{args.csv} [{args.column}]: {len(series)} values")
    _train_and_report(series, args, args.column, args.out, args.plot)
    return 0


def _predict(args) -> int:
    model = forecast.Forecaster.load(args.model)
    series = forecast.read_series(args.csv, args.column)
    if len(series) < model.lookback:
        raise ValueError(f"csv: {len(series)} values, but the model needs the last {model.lookback}")
    pred = model.predict_windows(series[None, -model.lookback:])[0]
    print(f"forecast of the next {model.horizon} value(s) of {args.column!r} after its last value "
          f"{series[-1]:.6g}:")
    for k, v in enumerate(np.atleast_1d(pred), start=1):
        print(f"  t+{k}: {v:.6g}")
    return 0


def _positive(text):
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text}")
    return value


def _common(p, lookback, season, epochs):
    p.add_argument("--lookback", type=_positive, default=lookback, help=f"input window length (default {lookback})")
    p.add_argument("--horizon", type=_positive, default=1, help="steps to forecast (default 1)")
    p.add_argument("--season", type=_positive, default=season,
                   help=f"season length for the seasonal-naive baseline (default {season})")
    p.add_argument("--epochs", type=_positive, default=epochs, help=f"maximum epochs (default {epochs})")
    p.add_argument("--hidden", type=_positive, default=32, help="LSTM hidden size (default 32)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--verbose", type=int, default=1, help="0 hides the progress bar")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="rnnkit", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("--cmake-dir", action="store_true",
                        help="print the prefix for CMAKE_PREFIX_PATH to use rnnkit from C++ (find_package(rnnkit))")
    sub = parser.add_subparsers(dest="command")
    demo = sub.add_parser("demo", help="train an LSTM forecaster on weekly Mauna Loa CO2")
    _common(demo, lookback=52, season=52, epochs=30)
    demo.add_argument("--out", default="rnnkit-demo", help="folder for the model and plot (default ./rnnkit-demo)")
    demo.set_defaults(run=_demo)
    train = sub.add_parser("train", help="train a forecaster on a CSV column")
    train.add_argument("--csv", required=True, help="CSV file with a header row")
    train.add_argument("--column", required=True, help="name of the numeric column")
    _common(train, lookback=24, season=12, epochs=30)
    train.add_argument("--out", default="model.safetensors", help="model file to write (default model.safetensors)")
    train.add_argument("--plot", default=None, help="optional PNG of forecast vs actual on the test part")
    train.set_defaults(run=_train)
    predict = sub.add_parser("predict", help="forecast the next values of a CSV column with a saved model")
    predict.add_argument("--model", required=True, help="model file written by `rnnkit train`")
    predict.add_argument("--csv", required=True, help="CSV file with a header row")
    predict.add_argument("--column", required=True, help="name of the numeric column")
    predict.set_defaults(run=_predict)
    args = parser.parse_args(argv)
    if args.cmake_dir:
        print(cmake_dir())
        return 0
    if args.command is None:
        parser.print_help()
        return 2
    try:
        return args.run(args)
    except (ValueError, OSError) as exc:
        print(f"rnnkit {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
