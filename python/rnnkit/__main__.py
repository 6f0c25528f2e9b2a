"""rnnkit's command line (also `python -m rnnkit`):

  rnnkit demo      train a stacked LSTM on weekly Mauna Loa CO2 to forecast the next 52 weeks; score it per horizon
                   next to persistence, seasonal naive, drift, a least-squares linear AR and ETS
  rnnkit train     the same on your own CSV column; saves a model file (under mpiexec: data parallel)
  rnnkit predict   forecast the next steps of a CSV column with a saved model
  rnnkit convert   convert a model between .safetensors, .onnx and .keras (by extension)
  rnnkit seq2seq   train an attentive encoder-decoder on the Keras addition task; greedy and beam accuracy,
                   the model file and a heatmap of attention weights
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from importlib.resources import as_file, files

import numpy as np

from . import cmake_dir, distributed, forecast, from_keras, from_onnx, optim, tasks, to_keras
from . import load as rk_load
from .seq2seq import Seq2Seq


def _horizon_columns(horizon):
    """The horizons shown in the table: 1, a few in between, and the last."""
    picks = [1, 2, 4, 8, 13, 26, 52, 104]
    return [h for h in picks if h < horizon] + [horizon]


def _report(name, report, season):
    """Per horizon, the LSTM next to every baseline (RMSE; MAE and MASE averaged over the horizon). Returns whether
    the LSTM beats every baseline on RMSE averaged over the horizon, and says so either way."""
    methods, H = report["methods"], report["horizon"]
    print(f"{name}: {report['test_windows']} forecast origins (rolling over the test part), horizon {H}, season "
          f"{season}; {report['epochs_run']} epochs in {report['train_seconds']:.1f} s")
    cols = _horizon_columns(H)
    print("  RMSE by steps ahead:")
    print("    " + f"{'method':16s}" + "".join(f"{'t+' + str(h):>9s}" for h in cols) + f"{'mean':>9s}{'MAE':>9s}{'MASE':>8s}")
    for method, m in methods.items():
        print("    " + f"{method:16s}" + "".join(f"{m['rmse'][h - 1]:9.4f}" for h in cols) +
              f"{m['rmse_mean']:9.4f}{m['mae_mean']:9.4f}{m['mase_mean']:8.3f}")
    lstm = methods["LSTM"]["rmse_mean"]
    # the lines the report has always had: the LSTM and the seasonal-naive baseline, RMSE over all horizons
    print(f"  LSTM RMSE            {lstm:.4f}")
    if "seasonal naive" in methods:
        print(f"  seasonal naive RMSE  {methods['seasonal naive']['rmse_mean']:.4f}   (value one season = {season} "
              "steps earlier)")
    others = {k: v["rmse_mean"] for k, v in methods.items() if k != "LSTM"}
    best = min(others, key=others.get)
    if lstm < others[best]:
        print(f"  the LSTM beats every baseline on RMSE over the horizon (best baseline: {best}, "
              f"{others[best] / lstm:.2f}x its error)")
        return True
    beaten = [k for k, v in others.items() if v <= lstm]
    print(f"  the LSTM does NOT beat every baseline: {', '.join(beaten)} "
          f"{'is' if len(beaten) == 1 else 'are'} as good or better on RMSE over the horizon "
          f"(best: {best}, {others[best]:.4f})")
    return False


def _train_and_report(series, args, name, out_model, out_plot):
    season = args.season if args.season is not None else forecast.detect_season(series[:int(0.8 * len(series))])
    model, report, starts, pred = forecast.evaluate(series, args.lookback, args.horizon, season, args.epochs,
                                                    verbose=args.verbose, seed=args.seed, hidden_size=args.hidden,
                                                    distributed=getattr(args, "distributed", False))
    better = _report(name, report, season)
    model.save(out_model, column=getattr(args, "column", None))
    print(f"  model saved to {out_model}")
    if out_plot and not getattr(args, "quiet_rank", False):
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
    _train_and_report(series, args, "co2", os.path.join(args.out, "co2_lstm.safetensors"),
                      os.path.join(args.out, "co2_forecast.png"))
    return 0


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


def _seq2seq(args) -> int:
    n_test = max(1, args.examples // 10)
    questions, answers, src, tgt = tasks.addition(args.examples + n_test, digits=args.digits, reverse=args.reverse,
                                                  seed=args.seed)
    n_val = max(1, args.examples // 10)
    n_train = args.examples - n_val
    split = {"train": slice(0, n_train), "val": slice(n_train, args.examples), "test": slice(args.examples, None)}
    print(f"addition, {args.digits}-digit numbers{' (questions reversed)' if args.reverse else ''}: "
          f"{n_train} training, {n_val} validation, {n_test} test questions, e.g. "
          f"{questions[0]!r} -> {answers[0]!r}")
    model = Seq2Seq(tasks.VOCAB_SIZE, tasks.VOCAB_SIZE, args.embed, args.hidden, cell=args.cell,
                    attention=None if args.attention == "none" else args.attention, seed=args.seed)
    opt = optim.Adam(model, lr=args.lr)
    plateau = optim.ReduceLROnPlateau(opt, factor=0.5, patience=0)  # halve lr when validation errors stop falling

    def exact(part, **kw):
        pred = model.predict(src[split[part]], **kw)
        return float(np.mean([tasks.decode(p) == a for p, a in zip(pred, answers[split[part]])]))

    start, epoch = time.perf_counter(), 0
    for epoch in range(1, args.epochs + 1):
        history = model.fit(src[split["train"]], tgt[split["train"]], epochs=1, batch_size=args.batch,
                            optimizer=opt, verbose=args.verbose, seed=args.seed + epoch)
        val = exact("val")
        print(f"  epoch {epoch:3d}: loss {history['loss'][-1]:.4f}, validation exact match (greedy) {val:.4f}, "
              f"lr {opt.lr:.2g}, {time.perf_counter() - start:.1f} s")
        plateau.step(1.0 - val)
        if val >= args.target:
            break
    train_seconds = time.perf_counter() - start
    greedy = exact("test")
    t0 = time.perf_counter()
    beam = exact("test", method="beam", beam_width=args.beam)
    beam_seconds = time.perf_counter() - t0
    print(f"test exact match after {epoch} epochs ({train_seconds:.1f} s of training): greedy {greedy:.4f}, "
          f"beam (width {args.beam}) {beam:.4f} ({n_test / beam_seconds:.0f} sentences/s)")
    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, "addition_seq2seq.safetensors")
    model.save(path, metadata={"task": "addition", "digits": args.digits, "reverse": args.reverse,
                               "chars": tasks.CHARS})
    print(f"  model saved to {path}")
    if model.attention is not None:
        png = os.path.join(args.out, "attention.png")
        if _attention_heatmap(model, questions[split["test"]][:4], src[split["test"]][:4], png):
            print(f"  attention heatmap written to {png}")
        else:
            print("  (install matplotlib for a heatmap of the attention weights)")
    return 0 if greedy >= args.target or beam >= args.target else 1


def _convert(args) -> int:
    src, dst = args.input, args.output
    kinds = {".safetensors": "safetensors", ".onnx": "onnx", ".keras": "keras"}
    ext_in, ext_out = (os.path.splitext(p)[1].lower() for p in (src, dst))
    for name, ext in (("input", ext_in), ("output", ext_out)):
        if ext not in kinds:
            raise ValueError(f"{name}: expected a .safetensors, .onnx or .keras file, got {ext or 'no extension'!r}")
    if ext_in == ".safetensors":
        model = rk_load(src)
    elif ext_in == ".onnx":
        model = from_onnx(src).model
        if model is None:
            raise ValueError(f"{src}: the graph does not record an rnnkit model (only files rnnkit exported convert; "
                             "run others with rk.from_onnx)")
    else:
        model = from_keras(src)
    if ext_out == ".safetensors":
        model.save(dst)
    elif ext_out == ".onnx":
        if not hasattr(model, "export_onnx"):
            raise ValueError(f"{src}: a {type(model).__name__} has no ONNX export")
        model.export_onnx(dst)
    else:
        to_keras(model).save(dst)
    print(f"{src} -> {dst}")
    return 0


def _attention_heatmap(model, questions, src, path) -> bool:
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    seqs, _, attn = model.predict(src, return_scores=True, return_attention=True)
    fig, axes = plt.subplots(1, len(seqs), figsize=(3.2 * len(seqs), 3.4))
    for ax, q, s, a in zip(np.atleast_1d(axes), questions, seqs, attn):
        ax.imshow(a, cmap="viridis", vmin=0, vmax=1)
        ax.set_xticks(range(a.shape[1]), list(q))
        out = list(tasks.decode(s)) + ["<end>"]
        ax.set_yticks(range(a.shape[0]), out[:a.shape[0]])
        ax.set_xlabel("source")
        ax.set_ylabel("output")
    fig.suptitle("rnnkit Seq2Seq: attention weights per output step")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True


def _positive(text):
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text}")
    return value


def _common(p, lookback, season, epochs, horizon):
    p.add_argument("--lookback", type=_positive, default=lookback, help=f"input window length (default {lookback})")
    p.add_argument("--horizon", type=_positive, default=horizon,
                   help=f"steps to forecast; the report scores every step from 1 to it (default {horizon})")
    p.add_argument("--season", type=_positive, default=season,
                   help="season length for the seasonal-naive and ETS baselines and the MASE scale (default " +
                        (f"{season})" if season else "the lag the training part's changes correlate with most, "
                                                      "or none)"))
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
    _common(demo, lookback=52, season=52, epochs=30, horizon=52)
    demo.add_argument("--out", default="rnnkit-demo", help="folder for the model and plot (default ./rnnkit-demo)")
    demo.set_defaults(run=_demo)
    train = sub.add_parser("train", help="train a forecaster on a CSV column")
    train.add_argument("--csv", required=True, help="CSV file with a header row")
    train.add_argument("--column", required=True, help="name of the numeric column")
    _common(train, lookback=24, season=None, epochs=30, horizon=1)
    train.add_argument("--out", default="model.safetensors", help="model file to write (default model.safetensors)")
    train.add_argument("--plot", default=None, help="optional PNG of forecast vs actual on the test part")
    train.set_defaults(run=_train)
    predict = sub.add_parser("predict", help="forecast the next values of a CSV column with a saved model")
    predict.add_argument("--model", required=True, help="model file written by `rnnkit train`")
    predict.add_argument("--csv", required=True, help="CSV file with a header row")
    predict.add_argument("--column", required=True, help="name of the numeric column")
    predict.set_defaults(run=_predict)
    convert = sub.add_parser("convert", help="convert a model between .safetensors, .onnx and .keras")
    convert.add_argument("input", help="model file to read (.safetensors, .onnx written by rnnkit, .keras)")
    convert.add_argument("output", help="model file to write (.safetensors, .onnx, .keras)")
    convert.set_defaults(run=_convert)
    s2s = sub.add_parser("seq2seq", help="train an attentive encoder-decoder on the Keras addition task")
    s2s.add_argument("--examples", type=_positive, default=50000,
                     help="training + validation questions (default 50000, as the Keras example); 10%% more for test")
    s2s.add_argument("--digits", type=_positive, default=3, help="digits per number (default 3)")
    s2s.add_argument("--reverse", action="store_true", help="reverse the questions (as the Keras example)")
    s2s.add_argument("--epochs", type=_positive, default=30, help="maximum epochs (default 30)")
    s2s.add_argument("--target", type=float, default=0.99,
                     help="stop once validation exact match reaches it (default 0.99)")
    s2s.add_argument("--cell", choices=["lstm", "gru"], default="lstm")
    s2s.add_argument("--attention", choices=["bahdanau", "luong_general", "luong_concat", "none"],
                     default="bahdanau")
    s2s.add_argument("--embed", type=_positive, default=32, help="embedding size (default 32)")
    s2s.add_argument("--hidden", type=_positive, default=128, help="hidden size (default 128)")
    s2s.add_argument("--batch", type=_positive, default=64, help="batch size (default 64)")
    s2s.add_argument("--lr", type=float, default=3e-3, help="Adam learning rate (default 3e-3)")
    s2s.add_argument("--beam", type=_positive, default=4, help="beam width for the beam-search score (default 4)")
    s2s.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    s2s.add_argument("--verbose", type=int, default=1, help="0 hides the progress bar")
    s2s.add_argument("--out", default="rnnkit-seq2seq", help="folder for the model and heatmap")
    s2s.set_defaults(run=_seq2seq)
    args = parser.parse_args(argv)
    if args.cmake_dir:
        print(cmake_dir())
        return 0
    if args.command is None:
        parser.print_help()
        return 2
    if args.command in ("train", "demo") and distributed.launched():
        # under mpiexec: data parallel over the ranks; rank 0 prints, saves and plots
        args.distributed = True
        args.quiet_rank = distributed.rank() != 0
        if args.quiet_rank:
            sys.stdout = open(os.devnull, "w")
    try:
        return args.run(args)
    except (ValueError, OSError) as exc:
        print(f"rnnkit {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
