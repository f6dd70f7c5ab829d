#!/usr/bin/env bash
# The integration tests in two processes side by side: the suite that uses the local clusters
# (one suite at a time against them) and the tests that use none (a real Prometheus and
# Alertmanager, promtool, tsc, llama-server on their own). Arguments go to both pytest runs.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
pytest=${VENV:-.venv}/bin/pytest
clusterless_log=$(mktemp)
trap 'rm -f "$clusterless_log"' EXIT

"$pytest" -m "integration and clusterless" tests/integration "$@" >"$clusterless_log" 2>&1 &
clusterless=$!
"$pytest" -m "integration and not clusterless" tests/integration --durations=15 "$@"
clusters_status=$?
wait "$clusterless"
clusterless_status=$?

echo
echo "=== the integration tests that use no cluster (run alongside) ==="
cat "$clusterless_log"
if (( clusters_status != 0 || clusterless_status != 0 )); then
  echo "integration tests failed (with clusters: exit $clusters_status; without: exit $clusterless_status)" >&2
  exit 1
fi
