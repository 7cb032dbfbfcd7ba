#!/usr/bin/env bash
# The main job: set up, build igrc, compile the default model into an
# executable, train it briefly on real MNIST, evaluate it (natural, FGSM,
# PGD-20, CW-inf) and print the table.
# Environment: IGRC_MODEL (default models/mnist_smallcnn_trades_igr.json),
# IGRC_STEPS (training steps of batch 128, default 12), IGRC_EVAL_N (test
# images evaluated, default 500), IGRC_BUILD_DIR (default build),
# IGRC_RUN_DIR (checkpoint and results, default run/main).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
MODEL="${IGRC_MODEL:-models/mnist_smallcnn_trades_igr.json}"
STEPS="${IGRC_STEPS:-12}"
EVAL_N="${IGRC_EVAL_N:-500}"
BUILD_DIR="${IGRC_BUILD_DIR:-build}"
RUN_DIR="${IGRC_RUN_DIR:-run/main}"

bash scripts/setup.sh
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release -DIGRC_TESTS=OFF >/dev/null
cmake --build "$BUILD_DIR"
IGRC="$BUILD_DIR/tools/igrc/igrc"
EXE="$BUILD_DIR/$(basename "${MODEL%.json}")"

echo
echo "== igrc check $MODEL"
"$IGRC" check "$MODEL" | head -n 12
echo "  ..."
echo
echo "== igrc compile $MODEL -o $EXE"
"$IGRC" compile "$MODEL" -o "$EXE" --time-passes 2>&1 | grep -E "compile total|kernels"
echo
"$EXE" info | head -n 4
echo
echo "== train: $STEPS steps of batch 128 on MNIST (the paper's schedule is 90 epochs)"
rm -rf "$RUN_DIR"
"$EXE" train --data mnist --epochs 1 --batches "$STEPS" --out "$RUN_DIR" --log-every 4
echo
echo "== eval on $EVAL_N MNIST test images"
"$EXE" eval --out "$RUN_DIR" --data mnist --n "$EVAL_N"
