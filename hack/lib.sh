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
