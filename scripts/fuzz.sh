#!/usr/bin/env bash
# Builds the libFuzzer harnesses (tests/fuzz, clang-16 with ASan + UBSan)
# and runs each for SECONDS (default 30) from its seed corpus, then replays
# every saved input once. Fails on any crash, leak, sanitizer report or
# broken invariant; the crashing input is left in $FUZZ_WORK/<harness>/
# (add it to tests/fuzz/corpus/<harness>/ with the fix).
#   bash scripts/fuzz.sh [SECONDS] [HARNESS...]   (default: all six)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
SECONDS_EACH="${1:-30}"
shift || true
HARNESSES=("$@")
[ ${#HARNESSES[@]} -gt 0 ] || HARNESSES=(graph ir program safetensors datasets onnx)
BUILD_DIR="${IGRC_FUZZ_BUILD_DIR:-build-fuzz}"
WORK="${FUZZ_WORK:-$BUILD_DIR/fuzz-work}"
command -v clang-16 >/dev/null || { echo "fuzz.sh: clang-16 is missing (scripts/setup.sh installs it)" >&2; exit 1; }
CC=clang-16 cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DIGRC_FUZZ=ON -DIGRC_TESTS=OFF >/dev/null
cmake --build "$BUILD_DIR" --target $(printf 'fuzz_%s ' "${HARNESSES[@]}")
export ASAN_OPTIONS="detect_leaks=1:allocator_may_return_null=1"
for h in "${HARNESSES[@]}"; do
    bin="$BUILD_DIR/tests/fuzz/fuzz_$h"
    mkdir -p "$WORK/$h"
    echo "== fuzz_$h: regression inputs (tests/fuzz/corpus/$h)"
    "$bin" -runs=0 "tests/fuzz/corpus/$h" >"$WORK/$h.replay.log" 2>&1 ||
        { cat "$WORK/$h.replay.log" >&2; echo "fuzz.sh: fuzz_$h fails on its corpus" >&2; exit 1; }
    echo "== fuzz_$h: ${SECONDS_EACH} s"
    rc=0
    (cd "$WORK/$h" && "$OLDPWD/$bin" -max_total_time="$SECONDS_EACH" -print_final_stats=1 \
        -max_len=65536 -timeout=10 -rss_limit_mb=4096 . "$OLDPWD/tests/fuzz/corpus/$h") \
        >"$WORK/$h.log" 2>&1 || rc=$?
    grep -E "^stat::(number_of_executed_units|average_exec_per_sec|new_units_added)|^#[0-9]+ *DONE" \
        "$WORK/$h.log" || true
    if [ "$rc" -ne 0 ]; then
        grep -E "ERROR|SUMMARY|crash-|leak-|timeout-|Test unit written" "$WORK/$h.log" >&2 || tail -n 30 "$WORK/$h.log" >&2
        echo "fuzz.sh: fuzz_$h failed (exit $rc); the input is in $WORK/$h" >&2
        exit 1
    fi
done
echo "fuzz.sh: no findings"
