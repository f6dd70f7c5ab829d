#!/usr/bin/env bash
# Gives the operator its least-privilege access to a member cluster and prints the
# kubeconfig it registers that member with.
#
#   hack/member-kubeconfig.sh ADMIN_KUBECONFIG [--name NAME] [--server URL] > member.kubeconfig
#
# With the member's admin kubeconfig (its current context), applies config/member-rbac/
# (ServiceAccount llmfleet-member in llmfleet-system, its ClusterRoles and bindings, a
# long-lived token Secret), waits for the token and prints a self-contained kubeconfig: the
# admin kubeconfig's server and CA, the ServiceAccount's token. --server replaces the server
# when the operator reaches the member at another address than the admin does; --name names
# the cluster and context (default: the admin context's cluster name). Put the output into the
# member's registration Secret in the hub (README: "Registering member clusters").
# Needs kubectl. Progress goes to stderr; only the kubeconfig goes to stdout.
set -euo pipefail

usage() {
  sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

[[ $# -ge 1 ]] || usage
admin=$1
shift
name=""
server=""
while [[ $# -gt 0 ]]; do
  case $1 in
    --name) name=${2:?--name needs a value}; shift 2 ;;
    --server) server=${2:?--server needs a value}; shift 2 ;;
    -h|--help) usage ;;
    *) echo "unknown argument: $1" >&2; usage ;;
  esac
done
[[ -r $admin ]] || { echo "cannot read kubeconfig $admin" >&2; exit 2; }

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
manifest=$here/../config/member-rbac
namespace=llmfleet-system
secret=llmfleet-member-token
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

k() { kubectl --kubeconfig "$admin" "$@"; }

# The admin context's cluster entry, with its CA inlined.
k config view --raw --minify --flatten > "$work/admin"
field() { kubectl --kubeconfig "$work/admin" config view --raw -o "jsonpath={.clusters[0].$1}"; }
[[ -n $name ]] || name=$(field name)
[[ -n $server ]] || server=$(field cluster.server)
ca_data=$(field 'cluster.certificate-authority-data')
insecure=$(field 'cluster.insecure-skip-tls-verify')
[[ -n $name && -n $server ]] || { echo "no cluster in the current context of $admin" >&2; exit 1; }

echo "applying $manifest to $(field cluster.server)" >&2
k apply --server-side --field-manager=llmfleet-member-access -f "$manifest" >&2

token=""
for _ in $(seq 60); do
  token=$(k -n "$namespace" get secret "$secret" -o 'jsonpath={.data.token}' 2>/dev/null || true)
  [[ -n $token ]] && break
  sleep 1
done
if [[ -z $token ]]; then
  echo "Secret $namespace/$secret has no token after 60 s: is the token controller of" \
    "kube-controller-manager running (--service-account-private-key-file)?" >&2
  exit 1
fi
token=$(printf '%s' "$token" | base64 -d)
# Without a CA in the admin kubeconfig, the one the token controller stored beside the token.
[[ -n $ca_data || $insecure == true ]] ||
  ca_data=$(k -n "$namespace" get secret "$secret" -o 'jsonpath={.data.ca\.crt}')

out=$work/member
kc() { kubectl --kubeconfig "$out" config "$@" >/dev/null; }
if [[ -n $ca_data ]]; then
  printf '%s' "$ca_data" | base64 -d > "$work/ca.crt"
  kc set-cluster "$name" --server="$server" --certificate-authority="$work/ca.crt" --embed-certs=true
elif [[ $insecure == true ]]; then  # as the admin kubeconfig does: say so in the output
  echo "warning: $admin skips TLS verification; so does the printed kubeconfig" >&2
  kc set-cluster "$name" --server="$server" --insecure-skip-tls-verify=true
else  # a server certificate signed by a publicly trusted CA
  kc set-cluster "$name" --server="$server"
fi
kc set-credentials llmfleet-member --token="$token"
kc set-context "$name" --cluster="$name" --user=llmfleet-member
kc use-context "$name"
cat "$out"
