#!/usr/bin/env bash
# CPU benchmark: train_step throughput and peak memory of igrc-compiled
# SmallCNN (standard, AT, TRADES, TRADES+IGR) against PyTorch on the same CPU
# with the same thread count, in one run. Not part of CI.
#   bash bench/cpu_train_step.sh [THREADS]   (default: all cores)
# Installs Debian's python3-torch for /usr/bin/python3 if it is missing.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
THREADS="${1:-$(nproc)}"
if ! /usr/bin/python3 -c "import torch" 2>/dev/null; then
  apt-get install -y python3-torch >/dev/null
fi
bash scripts/setup.sh >/dev/null
cmake -S . -B build-bench -G Ninja -DCMAKE_BUILD_TYPE=Release -DIGRC_TESTS=OFF >/dev/null
cmake --build build-bench >/dev/null
/usr/bin/python3 bench/run_cpu_bench.py build-bench/tools/igrc/igrc "$THREADS"
