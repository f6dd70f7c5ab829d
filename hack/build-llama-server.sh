#!/usr/bin/env bash
# Builds llama.cpp's `llama-server` (CPU only) from the llama-cpp-python source
# distribution on PyPI, which vendors llama.cpp, into a versioned cache outside the repo.
# The binary is statically linked against llama.cpp/ggml; it serves the tiny test models
# written by hack/localfleet/llamacpp.py with the arguments the operator renders.
#
#   hack/build-llama-server.sh                  build (or reuse) and print the bin dir
#   hack/build-llama-server.sh --print-bin-dir  print the bin dir only
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

LLAMA_STAMP="llama-cpp-python-${LLAMA_CPP_PYTHON_VERSION:?missing in hack/versions.env}"
LLAMA_BIN_DIR=$CACHE_ROOT/llama-server/$LLAMA_STAMP
BUILD_DIR=$CACHE_ROOT/build/$LLAMA_STAMP
JOBS=${LLAMA_BUILD_JOBS:-2}

if [[ ${1:-} == --print-bin-dir ]]; then
  echo "$LLAMA_BIN_DIR"
  exit 0
fi
if [[ -f $LLAMA_BIN_DIR/.complete && -x $LLAMA_BIN_DIR/llama-server ]]; then
  log "llama-server cached in $LLAMA_BIN_DIR"
  echo "$LLAMA_BIN_DIR"
  exit 0
fi

# Build tools: cmake and a C++17 compiler.
missing=()
command -v cmake >/dev/null || missing+=(cmake)
command -v g++ >/dev/null || command -v c++ >/dev/null || missing+=(g++)
command -v make >/dev/null || command -v ninja >/dev/null || missing+=(make)
if [[ ${#missing[@]} -gt 0 ]]; then
  apt_install "building llama-server" "${missing[@]}"
fi

PYTHON=${PYTHON:-}
if [[ -z $PYTHON ]]; then
  if [[ -x $REPO_ROOT/.venv/bin/python ]]; then PYTHON=$REPO_ROOT/.venv/bin/python; else PYTHON=python3; fi
fi
"$PYTHON" -m pip --version >/dev/null 2>&1 || die "$PYTHON has no pip; set PYTHON to an interpreter with pip"

log "building llama-server ($LLAMA_STAMP) into $LLAMA_BIN_DIR"
log "a cold build takes about 12 CPU-minutes (6 minutes on 2 idle cores, 77 MB download, 630 MB of RAM); later runs reuse it"
started=$SECONDS
rm -rf "$BUILD_DIR" "$LLAMA_BIN_DIR"
mkdir -p "$BUILD_DIR"

log "step 1/3: downloading the llama-cpp-python $LLAMA_CPP_PYTHON_VERSION source distribution"
# --no-binary keeps pip from picking a wheel; pip prepares the package metadata in an
# isolated environment (scikit-build-core), which does not compile anything.
"$PYTHON" -m pip download --quiet --no-binary :all: --no-deps \
  --dest "$BUILD_DIR" "llama-cpp-python==$LLAMA_CPP_PYTHON_VERSION"
sdist=$(ls "$BUILD_DIR"/llama_cpp_python-*.tar.gz 2>/dev/null | head -1)
[[ -f $sdist ]] || die "pip did not save a source distribution of llama-cpp-python==$LLAMA_CPP_PYTHON_VERSION"
tar -xzf "$sdist" -C "$BUILD_DIR"
src=$BUILD_DIR/llama_cpp_python-$LLAMA_CPP_PYTHON_VERSION/vendor/llama.cpp
[[ -f $src/CMakeLists.txt ]] || die "no vendored llama.cpp in $sdist"
log "step 1/3 done in $(( SECONDS - started ))s"

log "step 2/3: configuring (CPU only, static, portable x86-64-v3 / armv8 baseline)"
# GGML_NATIVE=OFF: no -march=native, so a cached binary runs on any comparable CPU; on
# x86-64 ggml then enables SSE4.2/AVX/AVX2/BMI2/FMA/F16C, which every current runner has.
# BUILD_SHARED_LIBS=OFF and GGML_OPENMP=OFF: one binary that needs only libc and libstdc++.
# No HTTPS (LLAMA_OPENSSL=OFF), no web UI (nothing is fetched at build time), and none of
# the tests, examples or other tools.
cmake -S "$src" -B "$BUILD_DIR/cmake" \
  -DCMAKE_BUILD_TYPE=Release \
  -DBUILD_SHARED_LIBS=OFF \
  -DGGML_NATIVE=OFF \
  -DGGML_OPENMP=OFF \
  -DGGML_CCACHE=OFF \
  -DLLAMA_OPENSSL=OFF \
  -DLLAMA_BUILD_UI=OFF \
  -DLLAMA_USE_PREBUILT_UI=OFF \
  -DLLAMA_BUILD_TESTS=OFF \
  -DLLAMA_BUILD_EXAMPLES=OFF \
  -DLLAMA_BUILD_TOOLS=ON \
  -DLLAMA_BUILD_SERVER=ON \
  >"$BUILD_DIR/configure.log" 2>&1 \
  || { tail -30 "$BUILD_DIR/configure.log" >&2; die "cmake configure failed (log: $BUILD_DIR/configure.log)"; }
log "step 2/3 done (total $(( SECONDS - started ))s)"

log "step 3/3: compiling llama-server with $JOBS jobs (the long part)"
cmake --build "$BUILD_DIR/cmake" --target llama-server --parallel "$JOBS" \
  >"$BUILD_DIR/build.log" 2>&1 \
  || { tail -30 "$BUILD_DIR/build.log" >&2; die "compiling llama-server failed (log: $BUILD_DIR/build.log)"; }
built=$BUILD_DIR/cmake/bin/llama-server
[[ -x $built ]] || die "the build produced no $built"
log "step 3/3 done (total $(( SECONDS - started ))s)"

mkdir -p "$LLAMA_BIN_DIR"
install -m 0755 "$built" "$LLAMA_BIN_DIR/llama-server"
strip "$LLAMA_BIN_DIR/llama-server" 2>/dev/null || true
"$LLAMA_BIN_DIR/llama-server" --version >"$LLAMA_BIN_DIR/VERSION" 2>&1 \
  || die "the built llama-server does not run: $(cat "$LLAMA_BIN_DIR/VERSION")"
# The build tree (about 600 MB) is not needed any more.
rm -rf "$BUILD_DIR"
touch "$LLAMA_BIN_DIR/.complete"
log "llama-server built in $(( SECONDS - started ))s: $(grep -m1 -i version "$LLAMA_BIN_DIR/VERSION" || true)"
echo "$LLAMA_BIN_DIR"
