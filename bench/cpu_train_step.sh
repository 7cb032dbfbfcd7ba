#!/usr/bin/env bash
# CPU benchmark: igrc-compiled SmallCNN against PyTorch doing the same work,
# on the same CPU, the same threads, the same data and the same weights:
# train_step img/s of the standard, AT, TRADES and TRADES+IGR objectives,
# eval (PGD-20) and the IFIA attack (attrib) in seconds per image, peak
# memory. R interleaved rounds per row (igrc, PyTorch best, PyTorch default,
# igrc, ...); medians, ranges and the ratios of the medians; the machine's
# load before and after every round. Not part of CI. See docs/performance.md.
#
#   bash bench/cpu_train_step.sh [options]
#     --rounds R (5)  --steps N (10)  --warmup W (2)  --threads T (all cores)
#     --rows standard,at,trades,trades_igr,eval,ifia (all)
#     --torch-configs best,default (both)
#     --torch-alloc tunables|jemalloc|tcmalloc (tunables: glibc malloc kept
#         warm with GLIBC_TUNABLES; jemalloc / tcmalloc: Debian's library,
#         LD_PRELOADed, installed with apt-get here if missing)
#     --ifia-images 16 --ifia-batch 16 --ifia-steps 200 --ifia-m 10
#     --eval-batches 4 --weights-steps 100 --no-pin --json FILE
#     --build-dir DIR (build-bench)
#   quick check of the script (under 2 minutes once built):
#   bash bench/cpu_train_step.sh --rounds 1 --steps 2 --warmup 1 --threads 1 \
#        --rows standard,eval,ifia --eval-batches 1 --ifia-steps 2
# Installs Debian's python3-torch for /usr/bin/python3 if it is missing, and
# runs scripts/setup.sh if MNIST is not in data/mnist.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
BUILD=build-bench
ALLOC=tunables
ARGS=()
while [ $# -gt 0 ]; do
  case "$1" in
    --build-dir) BUILD="$2"; shift 2 ;;
    --torch-alloc) ALLOC="$2"; ARGS+=("$1" "$2"); shift 2 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | grep '^#' | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) ARGS+=("$1"); shift ;;
  esac
done
if ! /usr/bin/python3 -c "import torch" 2>/dev/null; then
  apt-get install -y python3-torch >/dev/null
fi
case "$ALLOC" in
  jemalloc) LIB=libjemalloc.so.2; PKG=libjemalloc2 ;;
  tcmalloc) LIB=libtcmalloc_minimal.so.4; PKG=libtcmalloc-minimal4 ;;
  *) LIB= ;;
esac
if [ -n "$LIB" ]; then
  P="$(ldconfig -p | awk -v l="$LIB" '$1 == l && !p {print $NF; p = 1}')"
  if [ -z "$P" ]; then
    echo "installing $PKG for PyTorch's best configuration ..."
    apt-get install -y "$PKG" >/dev/null
    P="$(ldconfig -p | awk -v l="$LIB" '$1 == l && !p {print $NF; p = 1}')"
  fi
  [ -n "$P" ] || { echo "cannot find $LIB after installing $PKG" >&2; exit 1; }
  ARGS+=(--alloc-path "$P")
fi
# MNIST and the build's Debian packages: scripts/setup.sh, only when needed
if [ ! -e data/mnist/t10k-labels-idx1-ubyte ] && [ ! -e data/mnist/t10k-labels-idx1-ubyte.gz ]; then
  bash scripts/setup.sh >/dev/null
fi
if ! { cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DIGRC_TESTS=OFF >/dev/null &&
       cmake --build "$BUILD" >/dev/null; }; then
  echo "building igrc in $BUILD failed (missing packages? see scripts/setup.sh)" >&2
  exit 1
fi
exec /usr/bin/python3 bench/run_cpu_bench.py --igrc "$BUILD/tools/igrc/igrc" --work "$BUILD/cpu-bench" "${ARGS[@]}"
