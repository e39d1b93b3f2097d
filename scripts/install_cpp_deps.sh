#!/usr/bin/env bash
# Install what deploy/cpp needs to build and run, on Debian 12 as root. Idempotent: re-running
# skips what is already there.
#
#   1. Debian packages: compiler, CMake, OpenCV (image decoding + resizing), nlohmann-json.
#   2. ONNX Runtime into $CRNN_ORT_ROOT (default /opt/crnn/onnxruntime), as include/ + lib/:
#      - lib/libonnxruntime.so.1: from the official `onnxruntime` PyPI wheel (version $ORT_VERSION,
#        the same one the Python recognizer runs, so both compute the same logits);
#      - include/: the official, unmodified C/C++ API headers. Debian 12 has no libonnxruntime-dev and
#        the wheel ships no headers, so they are taken from the npm package com.github.asus4.onnxruntime
#        (MIT), which repackages Microsoft's release (the headers are platform-independent). The header's
#        C API version (29) is older than the library's, which ONNX Runtime's stable C ABI allows.
#
# Usage, as root (or with sudo): scripts/install_cpp_deps.sh   (env: CRNN_ORT_ROOT, ORT_VERSION, ORT_HEADERS_NPM)
# Quiet: one line per step; apt/pip/npm output goes to a log shown only on failure (VERBOSE=1 shows it all).
set -euo pipefail
. "$(dirname "$0")/quiet_run.sh"

ORT_ROOT="${CRNN_ORT_ROOT:-/opt/crnn/onnxruntime}"
ORT_VERSION="${ORT_VERSION:-1.32.0}"
ORT_HEADERS_NPM="${ORT_HEADERS_NPM:-com.github.asus4.onnxruntime@0.4.9}"
APT_PKGS=(cmake g++ make pkg-config libopencv-dev nlohmann-json3-dev)

if [ "$(id -u)" != 0 ]; then
    echo "install_cpp_deps.sh: run as root, or with sudo (it installs Debian packages)" >&2
    exit 1
fi

missing=()
for p in "${APT_PKGS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# pip and npm only fetch ONNX Runtime below; any install of them will do (e.g. nodejs from elsewhere).
python3 -m pip --version >/dev/null 2>&1 || missing+=(python3-pip)
command -v npm >/dev/null 2>&1 || missing+=(npm)
if [ ${#missing[@]} -gt 0 ]; then
    echo "apt-get install ${missing[*]}"
    quiet apt-get update -qq
    quiet env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

lib="$ORT_ROOT/lib/libonnxruntime.so.$ORT_VERSION"
if [ ! -f "$lib" ]; then
    echo "onnxruntime $ORT_VERSION library -> $ORT_ROOT/lib"
    quiet python3 -m pip download -q --no-deps --only-binary=:all: -d "$tmp/wheel" "onnxruntime==$ORT_VERSION"
    mkdir -p "$ORT_ROOT/lib"
    python3 - "$tmp"/wheel/onnxruntime-*.whl "$ORT_ROOT/lib" "$ORT_VERSION" <<'EOF'
import sys, zipfile
wheel, out, version = sys.argv[1:]
name = f"onnxruntime/capi/libonnxruntime.so.{version}"
with zipfile.ZipFile(wheel) as z:
    with z.open(name) as src, open(f"{out}/libonnxruntime.so.{version}", "wb") as dst:
        dst.write(src.read())
EOF
fi
# The library's SONAME is libonnxruntime.so.1; the linker looks for libonnxruntime.so.
ln -sfn "libonnxruntime.so.$ORT_VERSION" "$ORT_ROOT/lib/libonnxruntime.so.1"
ln -sfn "libonnxruntime.so.1" "$ORT_ROOT/lib/libonnxruntime.so"

if [ ! -f "$ORT_ROOT/include/onnxruntime_cxx_api.h" ]; then
    echo "onnxruntime C/C++ headers ($ORT_HEADERS_NPM) -> $ORT_ROOT/include"
    (cd "$tmp" && quiet npm pack -q "$ORT_HEADERS_NPM")
    headers='package/Plugins/iOS~/onnxruntime.xcframework/ios-arm64_x86_64-maccatalyst/onnxruntime.framework/Versions/A/Headers'
    tar -xzf "$tmp"/*.tgz -C "$tmp" --wildcards "$headers/*.h" package/LICENSE
    mkdir -p "$ORT_ROOT/include"
    cp "$tmp/$headers"/*.h "$ORT_ROOT/include/"
    cp "$tmp/package/LICENSE" "$ORT_ROOT/include/LICENSE.npm-package"
fi
grep -q "define ORT_API_VERSION" "$ORT_ROOT/include/onnxruntime_c_api.h" \
    || { echo "install_cpp_deps.sh: $ORT_ROOT/include/onnxruntime_c_api.h is not an ONNX Runtime header" >&2; exit 1; }
echo "ready: cmake -S deploy/cpp -B build/cpp -DONNXRUNTIME_ROOT=$ORT_ROOT"
