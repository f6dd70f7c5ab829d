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
  dir=$(GOMODCACHE=${GOMODCACHE_OVERRIDE:-$CACHE_ROOT/gomod} GOFLAGS=-mod=mod GOWORK=off \
    GOTOOLCHAIN=local go mod download -json "$module" | sed -n 's/.*"Dir": "\(.*\)".*/\1/p')
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

command -v apt-get >/dev/null \
  || die "missing ${missing[*]}; install the packages ${PACKAGES[*]} (or put the binaries on PATH)"
[[ $(id -u) -eq 0 ]] \
  || die "missing ${missing[*]}; run as root, or: sudo apt-get install -y --no-install-recommends ${PACKAGES[*]}"

log "installing ${PACKAGES[*]} (Debian packages, about 20 seconds)"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${PACKAGES[@]}" >/dev/null
# The packages enable services; where an init system starts them, stop them: the tests run
# their own Prometheus on a free port and nothing must hold the default ports (9090, 9093).
if command -v systemctl >/dev/null && [[ -d /run/systemd/system ]]; then
  systemctl disable --now prometheus prometheus-alertmanager prometheus-node-exporter \
    >/dev/null 2>&1 || true
elif command -v service >/dev/null; then
  for service in prometheus prometheus-alertmanager prometheus-node-exporter; do
    service "$service" stop >/dev/null 2>&1 || true
  done
fi

for tool in "${TOOLS[@]}"; do
  command -v "$tool" >/dev/null || die "$tool is still missing after installing ${PACKAGES[*]}"
done
log "installed: $(prometheus --version 2>&1 | head -1)"
