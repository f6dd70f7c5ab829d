#!/usr/bin/env bash
# Checks Grafana dashboards against Grafana's generated dashboard schema (@grafana/schema) with
# the TypeScript compiler: each dashboard JSON becomes
#   export const dashboard = (<json>) satisfies StrictDashboard;
# (hack/dashboard-check/dashboard.ts) and `tsc --noEmit --strict` must accept it. A misspelled
# key or a value of the wrong type anywhere, panels, queries and field config included, fails
# with the dashboard's file, line and column.
#
# Usage: hack/check-dashboard.sh [dashboard.json ...]   (default: charts/llmfleet/dashboards/*.json)
#
# The pinned packages (hack/dashboard-check/package-lock.json) are installed once with `npm ci`
# into the cache outside the repo, keyed by the lock file's hash. Needs Node.js and npm; as
# root on Debian or Ubuntu, installs the distribution's nodejs and npm when they are missing.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

CHECK_DIR=$HACK_DIR/dashboard-check

ensure_node() {
  command -v node >/dev/null && command -v npm >/dev/null && return
  apt_install "the dashboard check" nodejs npm
  command -v node >/dev/null && command -v npm >/dev/null \
    || die "node or npm is still missing after installing nodejs and npm"
}

# The pinned packages, installed once per lock file; prints their node_modules directory.
install_packages() {
  local hash root tmp
  hash=$(sha256sum "$CHECK_DIR/package-lock.json" | cut -c1-16)
  root=$CACHE_ROOT/dashboard-check
  if [[ ! -f $root/$hash/.installed ]]; then
    mkdir -p "$root"
    tmp=$(mktemp -d "$root/.install.XXXXXX")
    cp "$CHECK_DIR/package.json" "$CHECK_DIR/package-lock.json" "$tmp/"
    log "installing @grafana/schema and typescript (npm ci) into $root/$hash"
    (cd "$tmp" && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error >&2) \
      || { rm -rf "$tmp"; die "npm ci failed in $tmp"; }
    touch "$tmp/.installed"
    rm -rf "${root:?}/$hash"
    mv "$tmp" "$root/$hash"
  fi
  printf '%s\n' "$root/$hash/node_modules"
}

main() {
  local dashboards=("$@")
  if [[ ${#dashboards[@]} -eq 0 ]]; then
    dashboards=("$REPO_ROOT"/charts/llmfleet/dashboards/*.json)
  fi
  for dashboard in "${dashboards[@]}"; do
    [[ -f $dashboard ]] || die "no such dashboard: $dashboard"
  done
  ensure_node
  local modules work
  modules=$(install_packages)
  work=$(mktemp -d)
  # shellcheck disable=SC2064 # expand now: work is local
  trap "rm -rf '$work'" EXIT
  ln -s "$modules" "$work/node_modules"
  cp "$CHECK_DIR/dashboard.ts" "$work/"

  # One module per dashboard: its first line is the import and the opening parenthesis, so
  # line N of the dashboard is line N+1 of the module.
  local sources=() i=0
  for dashboard in "${dashboards[@]}"; do
    node -e 'JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"))' "$dashboard" \
      || die "$dashboard is not valid JSON"
    i=$((i + 1))
    local source="dashboard$i.ts"
    {
      printf "import type { StrictDashboard } from './dashboard.js'; export const dashboard = (\n"
      cat "$dashboard"
      printf '\n) satisfies StrictDashboard;\n'
    } >"$work/$source"
    sources+=("$source")
  done

  local output status=0
  output=$(cd "$work" && node node_modules/typescript/bin/tsc --noEmit --strict --skipLibCheck \
    --target es2022 --module nodenext --moduleResolution nodenext --pretty false \
    "${sources[@]}" 2>&1) || status=$?
  if [[ $status -ne 0 ]]; then
    # Name the dashboard and the line in its JSON: path:line:column: error ...
    printf '%s\n' "$output" | DASHBOARDS=$(printf '%s\n' "${dashboards[@]}") awk '
      BEGIN { split(ENVIRON["DASHBOARDS"], path, "\n") }
      match($0, /^dashboard[0-9]+\.ts\([0-9]+,[0-9]+\)/) {
        split(substr($0, 1, RLENGTH), at, /[^0-9]+/)
        $0 = path[at[2]] ":" (at[3] - 1) ":" at[4] substr($0, RLENGTH + 1)
      }
      { print }' >&2
    die "the dashboard check failed: ${dashboards[*]}"
  fi
  log "dashboards match Grafana's schema (@grafana/schema, tsc --strict): ${dashboards[*]}"
}

main "$@"
