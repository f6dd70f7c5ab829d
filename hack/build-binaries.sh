#!/usr/bin/env bash
# Builds the local control plane (kube-apiserver, kube-controller-manager, kube-scheduler,
# etcd, kwok, kwokctl, helm) from Go modules into a versioned cache outside the repo.
# Each tool has its own completion marker, so an interrupted build resumes where it
# stopped and a warm cache builds nothing.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

export GOWORK=off GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-mod=mod
export GOMODCACHE=${GOMODCACHE_OVERRIDE:-$CACHE_ROOT/gomod}
export GOCACHE=${GOCACHE_OVERRIDE:-$CACHE_ROOT/gocache}
export GOPROXY=${GOPROXY:-https://proxy.golang.org}
BUILD_ROOT=$CACHE_ROOT/build
mkdir -p "$BIN_DIR" "$BUILD_ROOT"

if [[ ${1:-} == --print-bin-dir ]]; then
  echo "$BIN_DIR"
  exit 0
fi
if [[ -f $BIN_DIR/.complete ]]; then
  log "binaries cached in $BIN_DIR"
  echo "$BIN_DIR"
  exit 0
fi

command -v go >/dev/null || die "go is not installed; install Go >= 1.24 (https://go.dev/dl/)"
log "building the local control plane into $BIN_DIR"
log "a cold build takes about 10 minutes on 2 cores (about 1.5 GB of modules); later runs reuse it"

step=0
total=4
started=$SECONDS
begin_step() { step=$((step + 1)); log "step $step/$total: $*"; }
done_step() { log "step $step/$total done in $(( SECONDS - step_started ))s (total $(( SECONDS - started ))s)"; }

new_module() {
  local dir=$BUILD_ROOT/$1
  rm -rf "$dir" && mkdir -p "$dir" && cd "$dir"
  go mod init "llmfleet.local/build/$1" >/dev/null 2>&1
}

build_kubernetes() {
  local minor=${K8S_VERSION#v1.}; minor=${minor%%.*}
  local staging=v0.${K8S_VERSION#v1.}
  new_module kubernetes
  go mod edit -go="$K8S_GO_DIRECTIVE" -require="k8s.io/kubernetes@$K8S_VERSION"
  log "  downloading k8s.io/kubernetes@$K8S_VERSION"
  local upstream_gomod
  upstream_gomod=$(go mod download -json "k8s.io/kubernetes@$K8S_VERSION" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
  [[ -f $upstream_gomod ]] || die "could not download k8s.io/kubernetes@$K8S_VERSION"
  # Upstream replaces every staging module with ./staging/...; point each at its tag.
  local replaced=0 mod
  for mod in $(sed -n 's#^[[:space:]]*\(k8s.io/[a-z0-9-]*\) => ./staging/.*#\1#p' "$upstream_gomod"); do
    go mod edit -replace="$mod=$mod@$staging"
    replaced=$((replaced + 1))
  done
  (( replaced > 20 )) || die "found only $replaced staging modules in $upstream_gomod"
  go mod edit -godebug=default=go1.${K8S_GO_DIRECTIVE#1.} 2>/dev/null || true
  log "  $replaced staging modules pinned to $staging; resolving dependencies"
  local pkgs="k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager k8s.io/kubernetes/cmd/kube-scheduler"
  cat > tools.go <<GO
//go:build tools

package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
)
GO
  go mod tidy >/dev/null
  local ldflags="-s -w" pkg
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldflags+=" -X $pkg.gitVersion=$K8S_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
    ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
  done
  log "  compiling kube-apiserver, kube-controller-manager, kube-scheduler (the long part)"
  # shellcheck disable=SC2086
  go build -trimpath -ldflags "$ldflags" -o "$BIN_DIR/" $pkgs
}

build_etcd() {
  new_module etcd
  go mod edit -require="go.etcd.io/etcd/server/v3@$ETCD_VERSION"
  # server/v3's own requirements pin its sibling modules (api, client, pkg, raft) to the
  # matching release; its relative replaces only apply inside etcd's repository.
  printf '//go:build tools\n\npackage tools\n\nimport _ "go.etcd.io/etcd/server/v3"\n' > tools.go
  go mod tidy >/dev/null
  go build -trimpath -ldflags "-s -w" -o "$BIN_DIR/etcd" go.etcd.io/etcd/server/v3
}

build_kwok() {
  local ldflags="-s -w -X sigs.k8s.io/kwok/pkg/consts.Version=${KWOK_VERSION#v}"
  ldflags+=" -X sigs.k8s.io/kwok/pkg/consts.KubeVersion=${K8S_VERSION#v}"
  GOBIN=$BIN_DIR go install -trimpath -ldflags "$ldflags" \
    "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION" "sigs.k8s.io/kwok/cmd/kwokctl@$KWOK_VERSION"
}

build_helm() {
  local minor=${K8S_VERSION#v1.}; minor=${minor%%.*}
  local ldflags="-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION"
  ldflags+=" -X helm.sh/helm/v3/internal/version.gitTreeState=clean"
  ldflags+=" -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor=$minor"
  ldflags+=" -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=$minor"
  GOBIN=$BIN_DIR go install -trimpath -ldflags "$ldflags" "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
}

run_step() {
  local name=$1 marker=$BIN_DIR/.done-$1
  step_started=$SECONDS
  if [[ -f $marker ]]; then
    step=$((step + 1)); log "step $step/$total: $name already built"
    return
  fi
  begin_step "building $name"
  # Not `( ... ) || die`: a subshell tested by || runs with errexit off and would go on
  # after a failed step.
  local status
  set +e
  ( set -e; "build_$name" ) >&2
  status=$?
  set -e
  (( status == 0 )) || die "building $name failed (see the go output above)"
  touch "$marker"
  done_step
}

run_step kubernetes
run_step etcd
run_step kwok
run_step helm

{
  "$BIN_DIR/kube-apiserver" --version
  "$BIN_DIR/etcd" --version | head -1
  "$BIN_DIR/kwokctl" --version
  "$BIN_DIR/helm" version --short
} >&2
touch "$BIN_DIR/.complete"
log "all binaries built in $(( SECONDS - started ))s: $BIN_DIR"
echo "$BIN_DIR"
