# Shared settings of the hack/ scripts. Sourced, never run.
# shellcheck shell=bash

HACK_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$HACK_DIR/.." && pwd)
# shellcheck source=hack/versions.env
source "$HACK_DIR/versions.env"

CACHE_ROOT=${LLMFLEET_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/llmfleet}
VERSION_STAMP="k8s-${K8S_VERSION}_etcd-${ETCD_VERSION}_kwok-${KWOK_VERSION}_helm-${HELM_VERSION}"
BIN_DIR=$CACHE_ROOT/bin/$VERSION_STAMP
CLUSTER_DIR=${LLMFLEET_CLUSTER_DIR:-$REPO_ROOT/.cluster}
KWOK_WORKDIR=${KWOK_WORKDIR:-$CACHE_ROOT/kwok/$VERSION_STAMP}
export KWOK_WORKDIR

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# apt_install WHAT PACKAGE...: installs Debian packages that are missing, as root, and stops
# the services some of them enable (the tests run their own on free loopback ports). WHAT
# names what needs them in the error a non-root or non-Debian machine gets.
apt_install() {
  local what=$1 service
  shift
  command -v apt-get >/dev/null \
    || die "$what needs the packages $*; install them (or put their programs on PATH)"
  [[ $(id -u) -eq 0 ]] \
    || die "$what needs the packages $*; run as root, or: sudo apt-get install -y --no-install-recommends $*"
  log "installing $* (Debian packages, for $what)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "$@" >/dev/null
  for service in "$@"; do
    if command -v systemctl >/dev/null && [[ -d /run/systemd/system ]]; then
      systemctl disable --now "$service" >/dev/null 2>&1 || true
    elif command -v service >/dev/null; then
      service "$service" stop >/dev/null 2>&1 || true
    fi
  done
}
