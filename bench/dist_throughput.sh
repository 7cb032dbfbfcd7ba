#!/usr/bin/env bash
# Data-parallel throughput on this machine (docs/distributed.md): for the
# standard and the TRADES+IGR SmallCNN at batch 128, img/s of
#   1x2  one process, 2 threads, train_step (no micro-batches)
#   dp1  one process, 2 threads, the data-parallel path (2 micro-batches of 64)
#   2x1  mpirun -np 2, 1 thread per rank (one micro-batch of 64 each)
#   late the same, the gradient sums started after the call
#        (IGRC_DP_OVERLAP=0) instead of at train_grads' reduce steps
# in interleaved rounds, median per row, plus the bytes rank 0 sends per step
# and the milliseconds per step rank 0 waits for the sums after its backward
# pass (2x1 and late).
# img/s is last.json's (the epoch's images over its wall time, start-up
# excluded). Run it on a quiet machine: bash bench/dist_throughput.sh [ROUNDS]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROUNDS="${1:-3}"
IGRC="${IGRC:-build/tools/igrc/igrc}"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/igrc-dist-XXXXXX")"
MPI=(mpirun --allow-run-as-root --oversubscribe --mca btl_vader_single_copy_mechanism none)
command -v mpirun >/dev/null || { echo "dist_throughput.sh: no mpirun (openmpi-bin)" >&2; exit 1; }
declare -A STEPS=([standard]=40 [trades_igr]=4)
for m in standard trades_igr; do
    "$IGRC" compile "models/mnist_smallcnn_$m.json" -o "$WORK/$m" >/dev/null
    "$IGRC" compile "models/mnist_smallcnn_$m.json" -o "$WORK/$m-dp" -D train.micro_batch=64 >/dev/null
done
wait_ms() { sed -n 's/^data-parallel: .* waited \([0-9.]*\) ms per step.*$/\1/p'; }
ips() { python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['images_per_second'])" "$1/last.json"; }
declare -A R
BYTES=""
for ((k = 0; k < ROUNDS; k++)); do
    for m in standard trades_igr; do
        a=(train --data mnist --epochs 1 --batches "${STEPS[$m]}")
        "$WORK/$m" "${a[@]}" --threads 2 --out "$WORK/r" >/dev/null
        R[$m/1x2]+="$(ips "$WORK/r") "
        "$WORK/$m-dp" "${a[@]}" --threads 2 --out "$WORK/r" >/dev/null
        R[$m/dp1]+="$(ips "$WORK/r") "
        out="$("${MPI[@]}" -np 2 "$WORK/$m-dp" "${a[@]}" --threads 1 --out "$WORK/r")"
        R[$m/2x1]+="$(ips "$WORK/r") "
        R[$m/wait]+="$(wait_ms <<<"$out") "
        BYTES+="$m $(sed -n 's/^data-parallel: rank 0 sent \([0-9]*\) bytes per step.*$/\1/p' <<<"$out")"$'\n'
        out="$(IGRC_DP_OVERLAP=0 "${MPI[@]}" -np 2 "$WORK/$m-dp" "${a[@]}" --threads 1 --out "$WORK/r")"
        R[$m/late]+="$(ips "$WORK/r") "
        R[$m/latewait]+="$(wait_ms <<<"$out") "
    done
done
median() { tr ' ' '\n' | grep . | sort -g | awk '{v[NR]=$1} END {print (NR%2 ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2)}'; }
echo "| model | 1 process x 2 threads | 1 process, 2 micro-batches | 2 ranks x 1 thread (wait ms) | 2 ranks, sums after the call (wait ms) | bytes sent per step (rank 0) |"
echo "| --- | --- | --- | --- | --- | --- |"
for m in standard trades_igr; do
    b="$(grep "^$m " <<<"$BYTES" | head -1 | cut -d' ' -f2)"
    printf '| %s | %.1f | %.1f | %.1f (%.2f) | %.1f (%.2f) | %s |\n' "$m" "$(median <<<"${R[$m/1x2]}")" \
        "$(median <<<"${R[$m/dp1]}")" "$(median <<<"${R[$m/2x1]}")" "$(median <<<"${R[$m/wait]}")" \
        "$(median <<<"${R[$m/late]}")" "$(median <<<"${R[$m/latewait]}")" "$b"
done
echo "(img/s, median of $ROUNDS interleaved rounds; load average $(cut -d' ' -f1-3 /proc/loadavg))"
rm -rf "$WORK"
