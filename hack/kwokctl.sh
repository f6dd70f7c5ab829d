#!/usr/bin/env bash
# kwokctl from the local cache, with the fleet's work directory: `hack/kwokctl.sh get clusters`.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
[[ -x $BIN_DIR/kwokctl ]] || die "kwokctl is not built yet; run hack/build-binaries.sh (or make cluster-up)"
exec "$BIN_DIR/kwokctl" "$@"
