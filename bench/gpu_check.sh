#!/usr/bin/env bash
# Verifies and times igrc's CUDA backend on a GPU machine against PyTorch, in
# one run: build (or use a carried build), the conformance suite with the
# compiled side on the GPU, a TRADES+IGR training run on cuda against the CPU
# backend, then throughput and peak memory of igrc vs PyTorch eager vs
# torch.compile. Prints a short table last; with $OUT set, writes the logs
# and the table as JSON there. See --help and docs/performance.md.
# shellcheck disable=SC2317  # the stage_* functions run through run_stage
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

STAGES="env,build,conformance,check,evalcheck,selftest,bench"
DEVICE=cuda
MODELS=smallcnn,resnet18
CONF_FILTER=""
BUILD_DIR=build-gpu
CARRY=.gpu-carry/igrc-build.tar.xz
GPU_ARCH=""
TF32=0
QUICK=0
PACK=0
TABLES_ARGS=""
TORCH_MODES=both
PY="${PYTHON:-python3}"
JOBS="$(nproc)"

usage() {
    cat <<EOF
usage: bash bench/gpu_check.sh [options]
       bash bench/gpu_check.sh --pack          (on the build machine)

Stages (--stages, comma-separated, in this order):
  env          GPU, driver, nvcc, Python and PyTorch as found
  build        use the carried build ($CARRY) if present, else binaries in
               --build-dir, else build there (Release, tests on); names every
               missing prerequisite when it cannot build
  conformance  test_conformance with IGRC_CONFORMANCE_DEVICE=DEVICE: the
               compiled side of every op and entry point runs through
               'igrc exec --backend DEVICE' against the interpreter
  check        bench/gpu_train_check.py: SmallCNN TRADES+IGR (1 step) and
               standard (2 steps), --device cpu against --device DEVICE from
               one executable and one initialisation: every checkpoint tensor
               within 1e-3 relative; mean loss of 3 TRADES+IGR steps too
  evalcheck    bench/gpu_eval_check.py: every eval attack (AutoAttack's too)
               on cpu and on DEVICE from one executable, counts within 2
               images; data-parallel training on DEVICE, 1 process vs
               mpirun -np 2 (when mpirun is there) within 1e-3
  selftest     the PyTorch peer's objective checks and the scripts' parsers
  bench        bench/gpu_bench.py: img/s (median of 3, warm-up excluded) and
               peak memory, igrc vs torch eager vs torch.compile, batch 128
  tables       (not in the default) bench/paper_tables.py on DEVICE with the
               carried build, into \$OUT/tables (or the log folder), with the
               arguments of --tables-args (e.g. '--schedule medium --datasets
               mnist --methods standard,trades --autoattack --jobs 3'); data
               from ./data as paper_tables finds it
Default: $STAGES. A failing stage is reported and the next ones still run
(except build); the exit status is non-zero if any stage failed.

options:
  --stages LIST          stages to run (default $STAGES)
  --models LIST          bench models: smallcnn,resnet18 (default both)
  --device cuda|cpu      cpu: a dry run of this script on a machine without a
                         GPU (CPU-built executables, no CUDA flags)
  --conformance-filter P Criterion --filter for test_conformance (e.g. 'entry/*')
  --build-dir DIR        where to find or make the build (default $BUILD_DIR)
  --gpu-arch sm_NN       igrc compile --gpu-arch (default: from nvidia-smi)
  --tf32                 compile with --tf32 (the check's tolerances become 1e-2)
  --torch-modes M        eager, compile or both (default both)
  --tables-args ARGS     paper_tables.py's arguments for the tables stage
  --quick                tiny sizes (batch 8-16, 1-2 steps, 1 repeat): checks the
                         script, not the speed
  --pack                 build here (Release, tests on) and write $CARRY:
                         the binaries, the runtime's static libraries and every
                         shared library they need beyond glibc, to carry to a
                         machine without LLVM 16, cJSON, OpenBLAS or Criterion
  -h, --help             this help

environment: PYTHON (the Python with torch and numpy; default python3),
OUT (if set: logs, summary.txt and gpu_bench.json are written there).
EOF
}

die() {
    echo "gpu_check.sh: error: $*" >&2
    exit 1
}

while [ $# -gt 0 ]; do
    case "$1" in
        -h | --help) usage; exit 0 ;;
        --stages) STAGES="${2:?--stages needs a list}"; shift ;;
        --models) MODELS="${2:?--models needs a list}"; shift ;;
        --device) DEVICE="${2:?--device needs cuda or cpu}"; shift ;;
        --conformance-filter) CONF_FILTER="${2:?--conformance-filter needs a pattern}"; shift ;;
        --build-dir) BUILD_DIR="${2:?--build-dir needs a directory}"; shift ;;
        --gpu-arch) GPU_ARCH="${2:?--gpu-arch needs sm_NN}"; shift ;;
        --torch-modes) TORCH_MODES="${2:?--torch-modes needs eager, compile or both}"; shift ;;
        --tables-args) TABLES_ARGS="${2?--tables-args needs arguments}"; shift ;;
        --tf32) TF32=1 ;;
        --quick) QUICK=1 ;;
        --pack) PACK=1 ;;
        *) die "unknown argument '$1' (see --help)" ;;
    esac
    shift
done
case "$DEVICE" in cuda | cpu) ;; *) die "--device must be cuda or cpu, got '$DEVICE'" ;; esac
for s in ${STAGES//,/ }; do
    case "$s" in env | build | conformance | check | evalcheck | selftest | bench | tables) ;;
        *) die "unknown stage '$s' (env, build, conformance, check, evalcheck, selftest, bench, tables)" ;;
    esac
done
want() { [[ ",$STAGES," == *",$1,"* ]]; }

LOG="${OUT:-}"
if [ -z "$LOG" ]; then
    LOG="$(mktemp -d "${TMPDIR:-/tmp}/igrc-gpu-check-XXXXXX")"
fi
mkdir -p "$LOG"

# ---- build: prerequisites, carrying, building ------------------------------

# One line per prerequisite of a build here that is missing.
missing_prereqs() {
    command -v cc >/dev/null 2>&1 || command -v gcc >/dev/null 2>&1 || echo "C compiler (cc or gcc)"
    command -v cmake >/dev/null 2>&1 || echo "cmake (>= 3.20)"
    command -v ninja >/dev/null 2>&1 || echo "ninja"
    command -v pkg-config >/dev/null 2>&1 || echo "pkg-config"
    [ -e /usr/lib/llvm-16/lib/cmake/llvm/LLVMConfig.cmake ] || command -v llvm-config-16 >/dev/null 2>&1 ||
        echo "LLVM 16 (Debian llvm-16-dev: /usr/lib/llvm-16/lib/cmake/llvm)"
    pkg-config --exists libcjson 2>/dev/null || echo "cJSON (libcjson-dev, pkg-config libcjson)"
    pkg-config --exists criterion 2>/dev/null || echo "Criterion (libcriterion-dev, pkg-config criterion)"
    pkg-config --exists openblas 2>/dev/null || compgen -G "/usr/lib/*/openblas*/libopenblas.so" >/dev/null ||
        compgen -G "/usr/lib/*/libopenblas.so" >/dev/null || echo "OpenBLAS (libopenblas-dev)"
    [ -e /usr/include/zlib.h ] || echo "zlib headers (zlib1g-dev)"
}

# Shared libraries of the binaries that a glibc system does not provide;
# the CUDA toolkit's and driver's (NVRTC, cudart, libcuda) come from the GPU
# machine's own CUDA installation instead (and would not fit the carry limit).
carried_libs() {
    ldd "$@" | awk '$2 == "=>" && $3 ~ /^\// {print $1, $3}' | sort -u |
        grep -Ev '^(linux-vdso|ld-linux|libc|libm|libpthread|libdl|librt|libresolv|libutil|libstdc\+\+|libgcc_s)\.' |
        grep -Ev '^lib(cuda|cudart|nvrtc|nvrtc-builtins|nvJitLink|nvptxcompiler)[.-]' || true
}

pack() {
    local pr
    pr="$(missing_prereqs)"
    [ -z "$pr" ] || die "--pack builds here, but this machine lacks:"$'\n'"$pr"
    echo "== pack: building $BUILD_DIR (Release, tests on)"
    cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release -DIGRC_TESTS=ON >"$LOG/pack-cmake.log" ||
        die "cmake configure failed (log: $LOG/pack-cmake.log)"
    cmake --build "$BUILD_DIR" -j "$JOBS" --target igrc test_conformance >>"$LOG/pack-cmake.log" ||
        die "the build failed (log: $LOG/pack-cmake.log)"
    local st bins=("$BUILD_DIR/tools/igrc/igrc" "$BUILD_DIR/tests/test_conformance")
    st="$(mktemp -d)"
    mkdir -p "$st/build/tools/igrc" "$st/build/tests" "$st/lib"
    cp "${bins[0]}" "$st/build/tools/igrc/"
    cp "${bins[1]}" "$st/build/tests/"
    (cd "$BUILD_DIR" && find . -name '*.a' -exec cp --parents {} "$st/build/" \;)
    local name path
    while read -r name path; do
        cp -L "$path" "$st/lib/$name"
    done < <(carried_libs "${bins[@]}")
    # unversioned names for -lcjson -lz -lopenblas when linking executables there
    for name in libcjson libz libopenblas; do
        path="$(compgen -G "$st/lib/$name.so.*" | head -1)" || true
        [ -z "$path" ] || ln -sf "${path##*/}" "$st/lib/$name.so"
    done
    (cd "$BUILD_DIR" && pwd) >"$st/ORIGIN"
    mkdir -p "$(dirname "$CARRY")"
    echo "== pack: compressing $(du -sh "$st" | cut -f1) into $CARRY"
    XZ_OPT="-6 -T0" tar -cJf "$CARRY" -C "$st" .
    rm -rf "$st"
    local mib=$(($(stat -c %s "$CARRY") / 1048576))
    [ "$mib" -lt 60 ] || die "$CARRY is $mib MiB; the device tool carries 64 MiB in all"
    echo "== pack: $CARRY ($mib MiB). Carry it: run(command='bash bench/gpu_check.sh', carry=['.gpu-carry'])"
}

# A C compiler front that points the link lines igrc compile builds (absolute
# paths of the packing machine's build tree and libraries) at the carried copies.
write_cc_wrapper() {
    local dir="$1" origin="$2" real_cc="${CC:-cc}"
    cat >"$dir/cc-wrap" <<EOF
#!/usr/bin/env bash
args=()
for a in "\$@"; do
    if [[ "\$a" == $(printf %q "$origin")/* ]]; then
        a=$(printf %q "$dir/build")/\${a#$(printf %q "$origin")/}
    elif [[ "\$a" == /* && ! -e "\$a" && -e $(printf %q "$dir/lib")/\${a##*/} ]]; then
        a=$(printf %q "$dir/lib")/\${a##*/}
    fi
    args+=("\$a")
done
exec $real_cc -L$(printf %q "$dir/lib") "\${args[@]}"
EOF
    chmod +x "$dir/cc-wrap"
}

use_carried() {
    local dir="${TMPDIR:-/tmp}/igrc-carry"
    rm -rf "$dir" && mkdir -p "$dir"
    tar -xJf "$CARRY" -C "$dir" || { echo "cannot unpack $CARRY" >&2; return 1; }
    write_cc_wrapper "$dir" "$(cat "$dir/ORIGIN")"
    local cuda_lib=/usr/local/cuda/lib64
    [ -d "$cuda_lib" ] || cuda_lib=""
    export LD_LIBRARY_PATH="$dir/lib${cuda_lib:+:$cuda_lib}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    export LIBRARY_PATH="$dir/lib${LIBRARY_PATH:+:$LIBRARY_PATH}"
    export CC="$dir/cc-wrap"
    IGRC="$dir/build/tools/igrc/igrc"
    TEST_CONF="$dir/build/tests/test_conformance"
    echo "using the carried build $CARRY (unpacked in $dir; links through $CC)"
}

build_here() {
    local pr line
    pr="$(missing_prereqs)"
    if [ -n "$pr" ]; then
        echo "cannot build igrc here; missing:" >&2
        while read -r line; do echo "  - $line"; done <<<"$pr" >&2
        echo "carry a build instead: on the build machine run 'bash bench/gpu_check.sh --pack'," >&2
        echo "then call the device tool with carry=['.gpu-carry'] (docs/performance.md)" >&2
        return 1
    fi
    echo "building $BUILD_DIR (Release, tests on; log $LOG/build.log)"
    { cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release -DIGRC_TESTS=ON &&
        cmake --build "$BUILD_DIR" -j "$JOBS"; } >"$LOG/build.log" 2>&1 ||
        { tail -20 "$LOG/build.log" >&2; echo "the build failed (log: $LOG/build.log)" >&2; return 1; }
    IGRC="$BUILD_DIR/tools/igrc/igrc"
    TEST_CONF="$BUILD_DIR/tests/test_conformance"
}

stage_build() {
    if [ -f "$CARRY" ]; then
        use_carried || return 1
    elif [ -x "$BUILD_DIR/tools/igrc/igrc" ] && [ -x "$BUILD_DIR/tests/test_conformance" ]; then
        IGRC="$BUILD_DIR/tools/igrc/igrc"
        TEST_CONF="$BUILD_DIR/tests/test_conformance"
        echo "using the binaries in $BUILD_DIR"
    else
        build_here || return 1
    fi
    IGRC="$(cd "$(dirname "$IGRC")" && pwd)/igrc"
    local bin
    for bin in "$IGRC" "$TEST_CONF"; do
        if ! "$bin" --help >/dev/null 2>&1; then
            echo "$bin does not start:" >&2
            ldd "$bin" 2>&1 | grep "not found" >&2 || "$bin" --help 2>&1 | tail -3 >&2
            return 1
        fi
    done
    if [ "$DEVICE" = cuda ] && ! "$IGRC" compile --help 2>&1 | grep -q cuda; then
        echo "note: '$IGRC compile --help' does not mention cuda; the CUDA target may be missing" >&2
    fi
    BUILD_OK=1
}

# ---- the other stages --------------------------------------------------------

stage_env() {
    echo "host $(uname -m), $JOBS cores; device $DEVICE"
    if command -v nvidia-smi >/dev/null 2>&1; then
        nvidia-smi --query-gpu=name,driver_version,memory.total,compute_cap --format=csv,noheader || true
        if [ -z "$GPU_ARCH" ]; then
            local cap
            cap="$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -1 | tr -d ' .')"
            [ -n "$cap" ] && GPU_ARCH="sm_$cap"
        fi
    elif [ "$DEVICE" = cuda ]; then
        echo "no nvidia-smi: no NVIDIA GPU on this machine (use --device cpu for a dry run)" >&2
        return 1
    fi
    echo "gpu arch: ${GPU_ARCH:-the igrc default}"
    if command -v nvcc >/dev/null 2>&1; then nvcc --version | tail -1; else echo "nvcc: not on PATH"; fi
    if command -v "${CC:-cc}" >/dev/null 2>&1; then
        echo "C compiler: $("${CC:-cc}" --version | head -1)"
    else
        echo "no C compiler '${CC:-cc}': igrc compile links executables with it" >&2
        return 1
    fi
    "$PY" -c "import sys, numpy, torch; print('python', sys.version.split()[0], 'torch', torch.__version__, \
'cuda available', torch.cuda.is_available(), 'torch.compile', hasattr(torch, 'compile'))" ||
        { echo "$PY cannot import torch and numpy (set PYTHON)" >&2; return 1; }
}

stage_conformance() {
    local args=(--jobs="$JOBS") rc=0
    [ -z "$CONF_FILTER" ] || args+=(--filter "$CONF_FILTER")
    echo "IGRC_CONFORMANCE_DEVICE=$DEVICE $TEST_CONF ${args[*]} (log $LOG/conformance.log)"
    IGRC_CONFORMANCE_DEVICE="$DEVICE" IGRC_SOURCE_DIR="$ROOT" IGRC_BIN="$IGRC" \
        "$TEST_CONF" "${args[@]}" >"$LOG/conformance.log" 2>&1 || rc=$?
    grep -E '^\[conformance\] (ops|entry)|Synthesis' "$LOG/conformance.log" || true
    if [ "$rc" -ne 0 ]; then
        grep -E '\[FAIL\]|^\[----\] .*(differ|error|exit)' "$LOG/conformance.log" | head -30 >&2 || true
        echo "test_conformance exited $rc (full log: $LOG/conformance.log)" >&2
        return 1
    fi
}

py_common_args() {
    PYARGS=(--igrc "$IGRC" --device "$DEVICE")
    [ -z "$GPU_ARCH" ] || [ "$DEVICE" != cuda ] || PYARGS+=(--gpu-arch "$GPU_ARCH")
    [ "$TF32" -eq 0 ] || PYARGS+=(--tf32)
}

stage_check() {
    py_common_args
    [ "$TF32" -eq 0 ] || PYARGS+=(--loss-rtol 1e-2 --weight-rtol 1e-2)
    [ "$QUICK" -eq 0 ] || PYARGS+=(--batch 16)
    "$PY" bench/gpu_train_check.py "${PYARGS[@]}" 2>&1 | tee "$LOG/check.log"
}

stage_evalcheck() {
    local args=(--igrc "$IGRC" --device "$DEVICE")
    [ -z "$GPU_ARCH" ] || [ "$DEVICE" != cuda ] || args+=(--gpu-arch "$GPU_ARCH")
    [ "$QUICK" -eq 0 ] || args+=(--n 32)
    "$PY" bench/gpu_eval_check.py "${args[@]}" 2>&1 | tee "$LOG/evalcheck.log"
}

stage_selftest() {
    "$PY" bench/torch_gpu.py --self-test && "$PY" bench/test_igrc_exe.py
}

stage_bench() {
    py_common_args
    PYARGS+=(--models "$MODELS" --torch-modes "$TORCH_MODES" --python "$PY" --json "$LOG/gpu_bench.json")
    [ "$QUICK" -eq 0 ] || PYARGS+=(--batch 8 --steps 1 --warmup 1 --repeats 1)
    "$PY" bench/gpu_bench.py "${PYARGS[@]}" 2>&1 | tee "$LOG/bench.log"
}

stage_tables() {
    local args
    read -r -a args <<<"$TABLES_ARGS"
    PYTHONUNBUFFERED=1 "$PY" bench/paper_tables.py --igrc "$IGRC" --device "$DEVICE" --out "$LOG/tables" \
        "${args[@]}" 2>&1 | tee "$LOG/tables.log"
}

# ---- main ------------------------------------------------------------------

if [ "$PACK" -eq 1 ]; then
    pack
    exit 0
fi

SUMMARY=()
FAILED=0
run_stage() {
    local name="$1" t0=$SECONDS rc=0
    want "$name" || return 0
    echo
    echo "=== $name"
    "stage_$name" || rc=$?
    if [ "$rc" -eq 0 ]; then
        SUMMARY+=("$name: ok ($((SECONDS - t0)) s)")
    else
        SUMMARY+=("$name: FAILED ($((SECONDS - t0)) s)")
        FAILED=1
        echo "gpu_check.sh: stage $name FAILED" >&2
    fi
}

IGRC="" TEST_CONF="" BUILD_OK=0
run_stage env
run_stage build
if [ "$BUILD_OK" -eq 0 ] && { want conformance || want check || want evalcheck || want bench || want tables; }; then
    want build || stage_build >/dev/null || true
    [ "$BUILD_OK" -eq 1 ] || die "no usable igrc build, so conformance, check and bench cannot run (see the build stage)"
fi
run_stage conformance
run_stage check
run_stage evalcheck
run_stage selftest
run_stage bench
run_stage tables

{
    echo
    echo "=== summary ($DEVICE; logs in $LOG)"
    printf '  %s\n' "${SUMMARY[@]}"
    if [ -f "$LOG/bench.log" ] && want bench; then
        echo
        sed -n '/^TRADES+IGR train step/,$p' "$LOG/bench.log"
    fi
} | tee "$LOG/summary.txt"
exit "$FAILED"
