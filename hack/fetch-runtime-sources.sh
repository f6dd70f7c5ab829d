#!/usr/bin/env bash
# Fetches the sources that define the command lines of the model servers the operator renders
# for but the tests cannot run (tests/integration/test_runtime_args.py checks the rendered
# arguments against them). The versions come from the image tags in
# operator/llmfleet/render/runtimes.py, so a bumped image fetches its own sources.
#
#   vllm    the vllm wheel from PyPI (193 MB, deleted after use): only its argument parsers
#           (engine/arg_utils.py, entrypoints/openai/cli_args.py) and the image's entrypoint
#           module (entrypoints/openai/api_server.py) are kept
#   ollama  the Go module github.com/ollama/ollama through the module proxy (17 MB, kept in
#           the shared module cache): cmd/cmd.go (the serve command), envconfig/config.go (the
#           environment it reads) and the Dockerfile (entrypoint and command of the image)
#
#   hack/fetch-runtime-sources.sh                     fetch (or reuse) both, print their dirs
#   hack/fetch-runtime-sources.sh --print-dir RUNTIME print one directory only (may be empty)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

SOURCES_ROOT=$CACHE_ROOT/runtime-sources
RUNTIMES_PY=$REPO_ROOT/operator/llmfleet/render/runtimes.py
PYTHON=${PYTHON:-}
if [[ -z $PYTHON ]]; then
  if [[ -x $REPO_ROOT/.venv/bin/python ]]; then PYTHON=$REPO_ROOT/.venv/bin/python; else PYTHON=python3; fi
fi

# image_tag RUNTIME: the tag of the runtime's default image. runtimes.py imports only the
# standard library, so it is run on its own, without the package.
image_tag() {
  "$PYTHON" - "$RUNTIMES_PY" "$1" <<'EOF'
import runpy, sys
image = runpy.run_path(sys.argv[1])["RUNTIMES"][sys.argv[2]].image
print(image.rpartition(":")[2])
EOF
}

# source_dir RUNTIME: the cache directory of the runtime's sources, named by its image tag.
source_dir() {
  local tag
  tag=$(image_tag "$1") || die "cannot read the $1 image tag from $RUNTIMES_PY"
  echo "$SOURCES_ROOT/$1-${tag#v}"
}

if [[ ${1:-} == --print-dir ]]; then
  [[ -n ${2:-} ]] || die "usage: $0 --print-dir vllm|ollama"
  source_dir "$2"
  exit 0
fi

mkdir -p "$SOURCES_ROOT"

fetch_vllm() {
  local dir version tmp wheel wheels
  dir=$(source_dir vllm)
  version=${dir##*/vllm-}
  if [[ -f $dir/.complete ]]; then
    log "vLLM $version sources cached in $dir"
    return
  fi
  [[ -x $REPO_ROOT/.venv/bin/pip ]] || die "no $REPO_ROOT/.venv/bin/pip; run make venv first"
  log "fetching vLLM $version's argument parsers (a 193 MB wheel from PyPI, deleted after use)"
  rm -rf "$dir"
  tmp=$(mktemp -d "$SOURCES_ROOT/.vllm.XXXXXX")
  # --platform: the wheel is x86-64 only, and nothing of it runs here. --no-cache-dir: pip
  # would otherwise keep a second copy of the wheel in its own cache.
  if ! "$REPO_ROOT/.venv/bin/pip" download --quiet --no-deps --no-cache-dir --only-binary :all: \
    --platform manylinux1_x86_64 --dest "$tmp" "vllm==$version" >&2; then
    rm -rf "$tmp"
    die "pip could not download vllm==$version from PyPI"
  fi
  wheels=("$tmp"/vllm-*.whl)
  wheel=${wheels[0]}
  [[ -f $wheel ]] || { rm -rf "$tmp"; die "pip saved no vllm wheel"; }
  if ! "$PYTHON" - "$wheel" "$tmp/out" <<'EOF'; then
import sys, zipfile
wheel, out = sys.argv[1], sys.argv[2]
wanted = [
    "vllm/version.py",
    "vllm/engine/arg_utils.py",
    "vllm/entrypoints/openai/cli_args.py",
    "vllm/entrypoints/openai/api_server.py",
]
with zipfile.ZipFile(wheel) as archive:
    for name in wanted:
        archive.extract(name, out)
EOF
    rm -rf "$tmp"
    die "the vllm $version wheel lacks the files the check reads"
  fi
  mv "$tmp/out" "$dir"
  rm -rf "$tmp"
  touch "$dir/.complete"
  log "vLLM $version sources in $dir"
}

fetch_ollama() {
  local dir version module json moddir file
  dir=$(source_dir ollama)
  version=${dir##*/ollama-}
  if [[ -f $dir/.complete ]]; then
    log "ollama $version sources cached in $dir"
    return
  fi
  command -v go >/dev/null || die "go is not installed; ollama's sources come from its Go module"
  module=github.com/ollama/ollama@v$version
  log "fetching $module (17 MB through the Go module proxy)"
  json=$(GOMODCACHE=${GOMODCACHE_OVERRIDE:-$CACHE_ROOT/gomod} GOFLAGS=-mod=mod GOWORK=off \
    GOTOOLCHAIN=auto GOPROXY=${GOPROXY:-https://proxy.golang.org} \
    go mod download -json "$module" 2>&1) || die "could not download $module: $json"
  moddir=$(sed -n 's/.*"Dir": "\(.*\)".*/\1/p' <<<"$json")
  [[ -f $moddir/cmd/cmd.go ]] || die "could not download $module: $json"
  rm -rf "$dir"
  for file in cmd/cmd.go envconfig/config.go Dockerfile; do
    [[ -f $moddir/$file ]] || die "$module has no $file"
    mkdir -p "$dir/$(dirname "$file")"
    cp "$moddir/$file" "$dir/$file"
    chmod u+w "$dir/$file"  # the module cache is read-only
  done
  touch "$dir/.complete"
  log "ollama $version sources in $dir"
}

fetch_vllm
fetch_ollama
source_dir vllm
source_dir ollama
