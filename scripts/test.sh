#!/usr/bin/env bash
# The project's one test command, shared by the README and CI: configure with
# warnings-as-errors and sanitizers, build, run every test, and fuzz each
# reader for a bounded time (scripts/fuzz.sh) alongside the tests.
# IGRC_BUILD_DIR picks the build tree (default build-test).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
BUILD_DIR="${IGRC_BUILD_DIR:-build-test}"
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DIGRC_WERROR=ON -DIGRC_SANITIZE=ON
cmake --build "$BUILD_DIR"
# The readers under libFuzzer for a bounded time each (IGRC_FUZZ_SECONDS,
# default 30; any crash or sanitizer report fails the suite). They build and
# run in the background while ctest runs: the suite's last minutes are one
# long test on one core, and the fuzzers fill the other.
mkdir -p "$BUILD_DIR"
FUZZ_LOG="$BUILD_DIR/fuzz.log"
bash scripts/fuzz.sh "${IGRC_FUZZ_SECONDS:-30}" >"$FUZZ_LOG" 2>&1 &
FUZZ_PID=$!
# Two at a time (IGRC_TEST_JOBS), longest first (the COST properties in
# tests/CMakeLists.txt). `ctest -L fast` is the quick subset.
rc=0
ctest --test-dir "$BUILD_DIR" --output-on-failure -j "${IGRC_TEST_JOBS:-2}" || rc=$?
frc=0
wait "$FUZZ_PID" || frc=$?
echo "== scripts/fuzz.sh (exit $frc)"
cat "$FUZZ_LOG"
[ "$rc" -eq 0 ] || { echo "test.sh: ctest failed (exit $rc)" >&2; exit "$rc"; }
[ "$frc" -eq 0 ] || { echo "test.sh: fuzzing failed (exit $frc)" >&2; exit "$frc"; }
