#!/usr/bin/env bash
# The integration tests in two processes side by side: the suite that uses the local clusters
# (one suite at a time against them) and the tests that use none (a real Prometheus and
# Alertmanager, promtool, tsc, llama-server on their own). Arguments go to both pytest runs;
# a filter that leaves one side without tests is fine, one that leaves both is not.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 1
pytest=${VENV:-.venv}/bin/pytest
NO_TESTS=5  # pytest's exit code when nothing was collected
clusterless_log=$(mktemp)
clusterless=""

stop_clusterless() {
  if [[ -n $clusterless ]] && kill -0 "$clusterless" 2>/dev/null; then
    kill -TERM "$clusterless" 2>/dev/null
    wait "$clusterless" 2>/dev/null
  fi
  rm -f "$clusterless_log"
}
trap stop_clusterless EXIT
trap 'exit 130' INT TERM

"$pytest" -m "integration and clusterless" tests/integration "$@" >"$clusterless_log" 2>&1 &
clusterless=$!
"$pytest" -m "integration and not clusterless" tests/integration --durations=15 "$@"
clusters_status=$?
wait "$clusterless"
clusterless_status=$?
clusterless=""

echo
echo "=== the integration tests that use no cluster (run alongside) ==="
cat "$clusterless_log"
if (( clusters_status == NO_TESTS && clusterless_status == NO_TESTS )); then
  echo "no integration test matches the arguments: $*" >&2
  exit 1
fi
for status in "$clusters_status" "$clusterless_status"; do
  if (( status != 0 && status != NO_TESTS )); then
    echo "integration tests failed (with clusters: exit $clusters_status;" \
      "without: exit $clusterless_status)" >&2
    exit 1
  fi
done
