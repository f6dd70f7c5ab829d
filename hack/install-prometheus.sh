#!/usr/bin/env bash
# Installs Prometheus, promtool and Alertmanager from the Debian packages for the live tests,
# which run them on 127.0.0.1 (nothing when all three are already on PATH), and fetches
# prometheus-operator's CRDs from its Go module into the cache.
#   --print-operator-crds   print the directory of those CRDs (fetching them if needed)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# The module zip (4 MB) holds the CRDs under example/prometheus-operator-crd/.
operator_crds() {
  local module=github.com/prometheus-operator/prometheus-operator@$PROMETHEUS_OPERATOR_VERSION
  local dir
  command -v go >/dev/null || die "go is not installed; prometheus-operator's CRDs come from its Go module"
  # GOTOOLCHAIN=auto: the module needs a newer Go than the oldest this project builds with;
  # the proxy serves that toolchain.
  local json
  json=$(GOMODCACHE=${GOMODCACHE_OVERRIDE:-$CACHE_ROOT/gomod} GOFLAGS=-mod=mod GOWORK=off \
    GOTOOLCHAIN=auto GOPROXY=${GOPROXY:-https://proxy.golang.org} \
    go mod download -json "$module" 2>&1) || die "could not download $module: $json"
  dir=$(sed -n 's/.*"Dir": "\(.*\)".*/\1/p' <<<"$json")
  [[ -d $dir/example/prometheus-operator-crd ]] || die "could not download $module"
  echo "$dir/example/prometheus-operator-crd"
}

if [[ ${1:-} == --print-operator-crds ]]; then
  operator_crds
  exit 0
fi
operator_crds >/dev/null

TOOLS=(prometheus promtool prometheus-alertmanager)
PACKAGES=(prometheus prometheus-alertmanager)

missing=()
for tool in "${TOOLS[@]}"; do
  command -v "$tool" >/dev/null || missing+=("$tool")
done
if [[ ${#missing[@]} -eq 0 ]]; then
  log "prometheus, promtool and prometheus-alertmanager are installed"
  exit 0
fi

apt_install "the live Prometheus tests" "${PACKAGES[@]}"

for tool in "${TOOLS[@]}"; do
  command -v "$tool" >/dev/null || die "$tool is still missing after installing ${PACKAGES[*]}"
done
log "installed: $(prometheus --version 2>&1 | head -1)"
