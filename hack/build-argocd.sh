#!/usr/bin/env bash
# Builds Argo CD's application-controller, repo-server and applicationset-controller from
# Go modules into one multi-call binary (argocd-lite) in a versioned cache outside the repo,
# with Argo CD's CRDs next to it, and installs redis-server (which Argo CD requires) when it
# is missing. The UI, API server and CLI are not built. Put the directory on PATH when running
# the repo-server (it runs git-verify-wrapper.sh from there).
#
#   hack/build-argocd.sh                  build (or reuse) and print the binary directory
#   hack/build-argocd.sh --print-bin-dir  print the directory only
#   hack/build-argocd.sh --no-redis       do not install redis-server
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# Argo CD's go.mod needs a newer Go than the rest of the build: the go command fetches the
# pinned toolchain through the module proxy (into GOMODCACHE).
export GOWORK=off GOTOOLCHAIN=$ARGOCD_GOTOOLCHAIN CGO_ENABLED=0 GOFLAGS=-mod=mod
export GOMODCACHE=${GOMODCACHE_OVERRIDE:-$CACHE_ROOT/gomod}
export GOCACHE=${GOCACHE_OVERRIDE:-$CACHE_ROOT/gocache}
export GOPROXY=${GOPROXY:-https://proxy.golang.org}
BUILD_ROOT=$CACHE_ROOT/build
ARGOCD_BIN_DIR=$CACHE_ROOT/bin/argocd-${ARGOCD_VERSION}_${ARGOCD_GOTOOLCHAIN}
MODULE=github.com/argoproj/argo-cd/v3
ENGINE=github.com/argoproj/argo-cd/gitops-engine/v3

install_redis=1
case ${1:-} in
  --print-bin-dir) echo "$ARGOCD_BIN_DIR"; exit 0 ;;
  --no-redis) install_redis=0 ;;
  "") ;;
  *) die "usage: $0 [--print-bin-dir|--no-redis]" ;;
esac

ensure_redis() {
  if command -v redis-server >/dev/null; then
    log "redis-server is installed"
    return
  fi
  apt_install "the Argo CD tests" redis-server
  command -v redis-server >/dev/null || die "redis-server is still missing after installing it"
  log "installed: $(redis-server --version)"
}

build_argocd() {
  local dir=$BUILD_ROOT/argocd
  rm -rf "$dir" && mkdir -p "$dir" && cd "$dir"
  go mod init llmfleet.local/build/argocd >/dev/null 2>&1
  log "  downloading $MODULE@$ARGOCD_VERSION (and the $ARGOCD_GOTOOLCHAIN toolchain)"
  local json upstream_gomod upstream_dir
  json=$(go mod download -json "$MODULE@$ARGOCD_VERSION")
  upstream_gomod=$(sed -n 's/.*"GoMod": "\(.*\)".*/\1/p' <<<"$json")
  upstream_dir=$(sed -n 's/.*"Dir": "\(.*\)".*/\1/p' <<<"$json")
  [[ -f $upstream_gomod && -d $upstream_dir ]] || die "could not download $MODULE@$ARGOCD_VERSION: $json"
  local go_directive
  go_directive=$(sed -n 's/^go \([0-9.]*\)$/\1/p' "$upstream_gomod")
  go mod edit -go="$go_directive" -require="$MODULE@$ARGOCD_VERSION"
  # One change to the source: the application-controller's metrics server listens on
  # 0.0.0.0 with no flag to change it; this build listens on
  # $ARGOCD_APPLICATION_CONTROLLER_METRICS_LISTEN_ADDRESS (default 127.0.0.1), like the
  # repo-server's --metrics-address. The patched copy is served through a local replace.
  cp -r "$upstream_dir" argo-cd && chmod -R u+w argo-cd
  local controller=argo-cd/controller/appcontroller.go
  grep -q 'metricsAddr := fmt.Sprintf("0.0.0.0:%d", metricsPort)' "$controller" \
    || die "$controller no longer sets metricsAddr to 0.0.0.0: review the patch"
  sed -i 's|metricsAddr := fmt.Sprintf("0.0.0.0:%d", metricsPort)|metricsAddr := fmt.Sprintf("%s:%d", env.StringFromEnv("ARGOCD_APPLICATION_CONTROLLER_METRICS_LISTEN_ADDRESS", "127.0.0.1"), metricsPort)|' "$controller"
  go mod edit -replace="$MODULE=./argo-cd"
  # Upstream's replace lines only apply inside its own repository: copy the ones that name
  # a module version; the in-tree ./gitops-engine is published as its own module, tagged
  # with the same version.
  local replaced=0 line
  while read -r line; do
    go mod edit -replace="$line"
    replaced=$((replaced + 1))
  done < <(awk '
    /^replace[[:space:]]*\($/ { block = 1; next }
    block && /^\)/ { block = 0; next }
    { sub(/\/\/.*/, "") }
    block || /^replace[[:space:]]/ {
      sub(/^replace[[:space:]]+/, "")
      if (NF == 4 && $2 == "=>" && $3 !~ /^\.\.?\//) print $1 "=" $3 "@" $4
      else if (NF == 5 && $3 == "=>" && $4 !~ /^\.\.?\//) print $1 "@" $2 "=" $4 "@" $5
    }' "$upstream_gomod")
  (( replaced > 20 )) || die "found only $replaced replace lines in $upstream_gomod"
  grep -q "^replace $ENGINE => ./gitops-engine" "$upstream_gomod" \
    || log "  note: upstream no longer replaces $ENGINE with ./gitops-engine"
  go mod edit -require="$ENGINE@$ARGOCD_VERSION" -replace="$ENGINE=$ENGINE@$ARGOCD_VERSION"
  log "  $replaced replace lines copied, $ENGINE pinned to $ARGOCD_VERSION; resolving dependencies"
  # A multi-call binary like upstream's cmd/main.go, with only the commands a local
  # GitOps loop needs (and git's askpass helper, which the repo-server execs as itself).
  cat > main.go <<'GO'
package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"
	"k8s.io/klog/v2"

	appcontroller "github.com/argoproj/argo-cd/v3/cmd/argocd-application-controller/commands"
	applicationset "github.com/argoproj/argo-cd/v3/cmd/argocd-applicationset-controller/commands"
	gitaskpass "github.com/argoproj/argo-cd/v3/cmd/argocd-git-ask-pass/commands"
	reposerver "github.com/argoproj/argo-cd/v3/cmd/argocd-repo-server/commands"
	"github.com/argoproj/argo-cd/v3/common"
	"github.com/argoproj/argo-cd/v3/util/log"
)

func init() {
	klog.SetLogger(log.NewLogrusLogger(log.NewWithCurrentConfig()))
}

var commands = map[string]func() *cobra.Command{
	common.CommandApplicationController:    appcontroller.NewCommand,
	common.CommandRepoServer:               reposerver.NewCommand,
	common.CommandApplicationSetController: applicationset.NewCommand,
	common.CommandGitAskPass:               gitaskpass.NewCommand,
}

// The command is chosen like upstream's: ARGOCD_BINARY_NAME, else the name the binary runs
// under (a symlink); else the first argument names it: argocd-lite argocd-repo-server --help.
// Upstream's main also turns off gRPC's DNS SRV lookups, which the grpclb balancer turns on
// when it is linked in; none of these commands links it, so they are off already (and
// upstream's switch would panic on finding them off).
func main() {
	name := os.Getenv("ARGOCD_BINARY_NAME")
	if name == "" {
		name = filepath.Base(os.Args[0])
	}
	newCommand, ok := commands[name]
	if !ok && len(os.Args) > 1 {
		if newCommand, ok = commands[os.Args[1]]; ok {
			os.Args = append(os.Args[:1], os.Args[2:]...)
		}
	}
	if !ok {
		fmt.Fprintf(os.Stderr, "usage: %s COMMAND [flags]; COMMAND is one of:\n", filepath.Base(os.Args[0]))
		for _, c := range []string{common.CommandApplicationController, common.CommandRepoServer, common.CommandApplicationSetController, common.CommandGitAskPass} {
			fmt.Fprintf(os.Stderr, "  %s\n", c)
		}
		os.Exit(2)
	}
	if err := newCommand().Execute(); err != nil {
		os.Exit(1)
	}
}
GO
  go mod tidy >/dev/null
  local pkg=github.com/argoproj/argo-cd/v3/common ldflags="-s -w"
  ldflags+=" -X $pkg.version=${ARGOCD_VERSION#v} -X $pkg.gitTag=$ARGOCD_VERSION -X $pkg.gitTreeState=clean"
  ldflags+=" -X $pkg.buildDate=1970-01-01T00:00:00Z"
  ldflags+=" -X $pkg.kubectlVersion=$(go list -m -f '{{.Version}}' k8s.io/kubectl)"
  log "  compiling argocd-lite (the long part)"
  go build -trimpath -ldflags "$ldflags" -o "$ARGOCD_BIN_DIR/argocd-lite" .
  rm -rf argo-cd
  mkdir -p "$ARGOCD_BIN_DIR/crds"
  local crd
  for crd in application-crd.yaml applicationset-crd.yaml appproject-crd.yaml; do
    install -m 0644 "$upstream_dir/manifests/crds/$crd" "$ARGOCD_BIN_DIR/crds/$crd"
  done
  # The repo-server runs git-verify-wrapper.sh (from PATH) on every revision it generates
  # manifests for, signed or not; Argo CD's image puts these two in /usr/local/bin.
  local wrapper
  for wrapper in git-verify-wrapper.sh gpg-wrapper.sh; do
    install -m 0755 "$upstream_dir/hack/$wrapper" "$ARGOCD_BIN_DIR/$wrapper"
  done
}

(( install_redis )) && ensure_redis
mkdir -p "$ARGOCD_BIN_DIR" "$BUILD_ROOT"
if [[ -f $ARGOCD_BIN_DIR/.complete ]]; then
  log "argocd-lite cached in $ARGOCD_BIN_DIR"
  echo "$ARGOCD_BIN_DIR"
  exit 0
fi
command -v go >/dev/null || die "go is not installed; install Go >= 1.24 (https://go.dev/dl/)"
log "building Argo CD $ARGOCD_VERSION (application-controller, repo-server, applicationset-controller) into $ARGOCD_BIN_DIR"
log "a cold build takes about 15-25 minutes on 2 cores; later runs reuse it"
started=$SECONDS
# Not `( ... ) || die`: a subshell tested by || runs with errexit off and would go on after
# a failed step.
set +e
( set -e; build_argocd ) >&2
status=$?
set -e
(( status == 0 )) || die "building Argo CD failed (see the go output above)"
for name in argocd-application-controller argocd-repo-server argocd-applicationset-controller argocd-git-ask-pass; do
  ln -sf argocd-lite "$ARGOCD_BIN_DIR/$name"
done
"$ARGOCD_BIN_DIR/argocd-repo-server" --help >/dev/null \
  || die "the built argocd-lite does not start: $ARGOCD_BIN_DIR/argocd-repo-server --help"
touch "$ARGOCD_BIN_DIR/.complete"
log "argocd-lite built in $(( SECONDS - started ))s: $ARGOCD_BIN_DIR"
echo "$ARGOCD_BIN_DIR"
