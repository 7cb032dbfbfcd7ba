#!/usr/bin/env bash
# The project's one test command, shared by the README and CI: configure with
# warnings-as-errors and sanitizers, build, run every test, then fuzz each
# reader for a bounded time (scripts/fuzz.sh).
# IGRC_BUILD_DIR picks the build tree (default build-test).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
BUILD_DIR="${IGRC_BUILD_DIR:-build-test}"
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DIGRC_WERROR=ON -DIGRC_SANITIZE=ON &&
    cmake --build "$BUILD_DIR" &&
    # Two at a time (IGRC_TEST_JOBS): the long binaries are mostly one
    # long-running test each, so a second test binary fills the other core.
    # `ctest -L fast` is the quick subset (tests/CMakeLists.txt).
    ctest --test-dir "$BUILD_DIR" --output-on-failure -j "${IGRC_TEST_JOBS:-2}"
# The readers under libFuzzer for a bounded time each (IGRC_FUZZ_SECONDS,
# default 30): any crash or sanitizer report fails the suite.
bash scripts/fuzz.sh "${IGRC_FUZZ_SECONDS:-30}"
