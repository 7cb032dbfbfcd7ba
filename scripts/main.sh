#!/usr/bin/env bash
# The main job: set up, build, check the default model and run it through
# the reference interpreter on real MNIST test images.
# Environment: IGRC_MODEL (default models/mnist_smallcnn_trades_igr.json), IGRC_LIMIT
# (test images to run, default 1000), IGRC_BUILD_DIR (default build).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
MODEL="${IGRC_MODEL:-models/mnist_smallcnn_trades_igr.json}"
LIMIT="${IGRC_LIMIT:-1000}"
BUILD_DIR="${IGRC_BUILD_DIR:-build}"

bash scripts/setup.sh
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release -DIGRC_TESTS=OFF >/dev/null
cmake --build "$BUILD_DIR"
IGRC="$BUILD_DIR/tools/igrc/igrc"

echo
echo "== igrc check $MODEL"
"$IGRC" check "$MODEL"
echo
echo "== IR after the pass pipeline (first lines of predict)"
"$IGRC" dump "$MODEL" --after dce --batch 100 | sed -n '/^func @predict/,/^}/p' | head -n 16
echo "  ..."
echo
echo "== predict on $LIMIT MNIST test images, initial weights (reference interpreter)"
"$IGRC" exec "$MODEL" --fn predict --data mnist --limit "$LIMIT" --batch 100 --seed 0
