#!/usr/bin/env bash
# The project's one test command, shared by the README and CI: configure with
# warnings-as-errors and sanitizers, build, and run every test.
# IGRC_BUILD_DIR picks the build tree (default build-test).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
BUILD_DIR="${IGRC_BUILD_DIR:-build-test}"
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DIGRC_WERROR=ON -DIGRC_SANITIZE=ON &&
    cmake --build "$BUILD_DIR" &&
    ctest --test-dir "$BUILD_DIR" --output-on-failure --verbose
