#!/usr/bin/env bash
# Build the libFuzzer harnesses (clang, ASan + UBSan) and run each for a bounded time on its seed corpus.
#   bash fuzz/run.sh [SECONDS per harness, default 60] [extra libFuzzer flags...]
#   FUZZ_RUNS=N bash fuzz/run.sh    N executions per harness from a fixed seed instead (repeatable: what CI runs)
# A finding stops the run with the crashing input written to build/fuzz/findings/ (make it a regression test).
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-60}"; shift || true
CC=clang CXX=clang++ cmake -S . -B build/fuzz -G Ninja -DRNNKIT_FUZZ=ON -DRNNKIT_OPENMP=OFF \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo > /dev/null
cmake --build build/fuzz --target rnnkit_fuzz_model_load rnnkit_fuzz_json
mkdir -p build/fuzz/findings
# inputs that once failed: each must now load or be refused cleanly
for target in model_load; do
  ASAN_OPTIONS=detect_leaks=1 "build/fuzz/rnnkit_fuzz_$target" fuzz/regressions/$target/* 2>&1 | tail -1
done
if [ -n "${FUZZ_RUNS:-}" ]; then budget="-runs=$FUZZ_RUNS -seed=1"; else budget="-max_total_time=$seconds"; fi
for target in model_load json; do
  work="build/fuzz/corpus-$target"
  mkdir -p "$work"
  echo "fuzz: $target ($budget)"
  ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
    "build/fuzz/rnnkit_fuzz_$target" $budget -timeout=10 -rss_limit_mb=2048 \
    -dict=fuzz/rnnkit.dict -artifact_prefix=build/fuzz/findings/ -print_final_stats=1 "$@" \
    "$work" "fuzz/corpus/$target" 2>&1 | grep -E "^(#[0-9]+ +DONE|stat::number_of_executed_units|stat::peak_rss|==[0-9]+==ERROR|SUMMARY|.*deadly signal)" || true
  if [ -n "$(ls build/fuzz/findings 2>/dev/null)" ]; then
    echo "fuzz: $target found an input that crashes or hangs: build/fuzz/findings/" >&2
    exit 1
  fi
done
