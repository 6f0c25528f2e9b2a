#!/usr/bin/env bash
# Fuzz the Python loaders of untrusted files with atheris (fuzz/python/fuzz_loaders.py), each for a bounded time on
# its seed corpus:
#   bash fuzz/run_python.sh [SECONDS per harness, default 60] [extra libFuzzer flags...]
#   FUZZ_RUNS=N bash fuzz/run_python.sh    N executions per harness from a fixed seed instead (what CI runs)
# A finding stops the run with the input written to build/fuzz-python/findings/ (make it a regression test).
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-60}"; shift || true
if [ -n "${FUZZ_RUNS:-}" ]; then budget="-runs=$FUZZ_RUNS -seed=1"; else budget="-max_total_time=$seconds"; fi
mkdir -p build/fuzz-python/findings
# target and its seed corpus
for pair in load:model_load metadata:model_load checkpoint:python_checkpoint onnx:python_onnx keras:python_keras \
    keras-members:python_keras_members; do
  target="${pair%%:*}"; seeds="fuzz/corpus/${pair#*:}"
  work="build/fuzz-python/corpus-$target"
  mkdir -p "$work"
  echo "fuzz (python): $target ($budget)"
  KERAS_BACKEND="${KERAS_BACKEND:-torch}" python fuzz/python/fuzz_loaders.py "$target" $budget -timeout=20 \
    -rss_limit_mb=4096 -max_len=20000 -len_control=0 -dict=fuzz/rnnkit.dict -artifact_prefix="build/fuzz-python/findings/$target-" \
    -print_final_stats=1 "$@" "$work" "$seeds" 2>&1 \
    | grep -E "^(#[0-9]+ +DONE|stat::number_of_executed_units|stat::peak_rss|=== Uncaught|.*Error|.*deadly signal)" || true
  if [ -n "$(ls build/fuzz-python/findings 2>/dev/null)" ]; then
    echo "fuzz (python): $target found an input that fails: build/fuzz-python/findings/" >&2
    exit 1
  fi
done
