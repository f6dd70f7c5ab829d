"""`llmfleet explain` and `llmfleet fleet` (also `kubectl llmfleet ...`): the operator's
decisions on the live fleet, for people and GitOps reviews, without applying anything.

`explain` runs a manifest through the same gather, plan and report stages as the operator
(reads only: nothing is applied, no status is written) and prints where it would run, why
each cluster was taken or not, what it would create where, and the conditions it would
report. It exits non-zero when the manifest would not be placed.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, TextIO

import yaml
from kubernetes import client, config
from pydantic import ValidationError

from llmfleet import labels
from llmfleet.kube.cluster import Cluster
from llmfleet.kube.federation import Federation, gpu_rows
from llmfleet.kube.policies import PolicyWatch
from llmfleet.kube.rest import KubeClient, KubeError
from llmfleet.placement.clusters import IN_CLUSTER, MemberCluster
from llmfleet.reconcile import engine
from llmfleet.reconcile.engine import Executed, SpecError, Subject
from llmfleet.reconcile.kinds import KINDS
from llmfleet.reconcile.prober import Prober
from llmfleet.reconcile.reads import Context, Reads
from llmfleet.render.common import Owner
from llmfleet.settings import Settings, parse

USAGE = """usage: llmfleet explain -f FILE [-n NAMESPACE] [-o text|yaml] [operator flags]
       llmfleet fleet [operator flags]
       llmfleet run [--help]

operator flags: --kubeconfig, --members-namespace, --cluster-location, ... (llmfleet run --help)
"""


def api_client(settings: Settings) -> client.ApiClient:
    """The hub from --kubeconfig, else $KUBECONFIG or ~/.kube/config (kubectl's own)."""
    loaded: client.ApiClient = config.new_client_from_config(config_file=settings.kubeconfig)  # type: ignore[no-untyped-call]
    return loaded


def read_only_context(settings: Settings) -> Context:
    hub_client = KubeClient(api_client(settings), IN_CLUSTER, timeout=15)
    hub = Cluster(hub_client)
    federation = Federation.of(settings, hub, watch=False)
    reads = Reads(hub, Prober(enabled=False), PolicyWatch(hub_client))
    return Context(fleet=federation, settings=settings, reads=reads)


def load_documents(path: str) -> list[dict[str, Any]]:
    text = sys.stdin.read() if path == "-" else Path(path).read_text()
    return [doc for doc in yaml.safe_load_all(text) if isinstance(doc, dict)]


def explain_document(
    doc: Mapping[str, Any], namespace: str, ctx: Context
) -> tuple[bool, dict[str, Any]]:
    """Whether it would be placed, and what the operator would decide, create and report."""
    kind_name = str(doc.get("kind", ""))
    kind = KINDS.get(kind_name)
    meta = doc.get("metadata") or {}
    name = str(meta.get("name", ""))
    namespace = str(meta.get("namespace") or namespace)
    found: dict[str, Any] = {"kind": kind_name, "namespace": namespace, "name": name}
    if kind is None:
        found["error"] = f"kind {kind_name!r} is not one of {', '.join(sorted(KINDS))}"
        return False, found
    try:
        spec = kind.spec_model.model_validate(doc.get("spec") or {})
    except ValidationError as error:
        found["error"] = f"spec is not valid: {error}"
        return False, found
    subject = Subject(spec, Owner(kind.name, namespace, name, "explain"), {}, 1)
    try:
        facts = kind.gather(subject, ctx)
    except SpecError as error:
        found["conditions"] = [
            {"type": "Ready", "status": "False", "reason": error.reason, "message": error.message}
        ]
        return False, found
    plan = kind.plan(facts)
    status, _ = kind.report(facts, plan, Executed())
    found["status"] = status
    found["apply"] = {
        want.cluster: sorted(f"{o['kind']}/{o['metadata']['name']}" for o in want.objects)
        for want in plan.desired
        if want.objects
    }
    return _would_place(status), found


def _would_place(status: Mapping[str, Any]) -> bool:
    for condition in status.get("conditions") or []:
        if condition.get("type") == "Placed" and condition.get("status") == "False":
            return False
        if (
            condition.get("type") == "Ready"
            and condition.get("status") == "False"
            and condition.get("reason") not in engine.PROGRESS
        ):
            return False
    return True


def print_explained(found: Mapping[str, Any], out: TextIO) -> None:
    head = f"{found['kind']} {found['namespace']}/{found['name']}"
    status = found.get("status") or {}
    mode = status.get("mode") or status.get("option")
    out.write(head + (f"  ({mode})" if mode else "") + "\n")
    if "error" in found:
        out.write(f"  error: {found['error']}\n")
        return
    decision = status.get("decision") or []
    if decision:
        out.write("  decision:\n")
        width = max(len(d["cluster"]) for d in decision)
        for entry in decision:
            gpus = ""
            if entry.get("gpusTotal") is not None:
                gpus = f"  [{entry.get('gpusFree', 0)}/{entry['gpusTotal']} GPUs free]"
            taken = f"{entry.get('replicas', 0)} replica(s)" if "taken" in entry["reason"] else "-"
            out.write(
                f"    {entry['cluster']:<{width}}  {entry.get('location', ''):<6}  {taken:<12}  "
                f"{entry['reason']}{gpus}\n"
            )
    for cluster, objects in (found.get("apply") or {}).items():
        out.write(f"  would apply on {cluster}: {', '.join(objects)}\n")
    segmentation = status.get("segmentation") or {}
    if segmentation.get("roles"):
        out.write(f"  segmentation roles: {', '.join(segmentation['roles'])}\n")
    for condition in status.get("conditions") or found.get("conditions") or []:
        out.write(
            f"  {condition['type']}: {condition['status']} {condition.get('reason', '')}"
            f" - {condition.get('message', '')}\n"
        )


def explain(argv: Sequence[str], out: TextIO) -> int:
    parser = argparse.ArgumentParser(prog="llmfleet explain", add_help=True)
    parser.add_argument(
        "-f",
        "--filename",
        required=True,
        action="append",
        help="manifest file (YAML, several documents allowed; - for stdin)",
    )
    parser.add_argument(
        "-n",
        "--namespace",
        default="default",
        help="namespace for manifests that name none (default: default)",
    )
    parser.add_argument("-o", "--output", choices=["text", "yaml"], default="text")
    args, rest = parser.parse_known_args(argv)
    ctx = read_only_context(parse(list(rest)))
    placed_all = True
    results = []
    for path in args.filename:
        for doc in load_documents(path):
            placed, found = explain_document(doc, args.namespace, ctx)
            placed_all &= placed
            results.append(found)
    if args.output == "yaml":
        yaml.safe_dump_all(results, out, sort_keys=False)
    else:
        for found in results:
            print_explained(found, out)
    return 0 if placed_all else 1


def fleet(argv: Sequence[str], out: TextIO) -> int:
    ctx = read_only_context(parse(list(argv)))
    members, problems = ctx.fleet.members()
    models = ctx.fleet.hub.list("LLMDeployment")
    by_cluster: dict[str, list[str]] = {}
    for model in models:
        meta = model["metadata"]
        for placement in (model.get("status") or {}).get("placements") or []:
            if placement.get("state") in ("Placed", "Unknown", "Draining"):
                by_cluster.setdefault(str(placement.get("cluster")), []).append(
                    f"{meta['namespace']}/{meta['name']}={placement.get('replicas', 0)}"
                    f"({placement.get('role', 'preferred')})"
                )
    for member in members:
        _print_member(member, ctx, by_cluster.get(member.name, []), out)
    for problem in problems:
        out.write(f"unusable registration: {problem}\n")
    return 0


def _print_member(
    member: MemberCluster, ctx: Context, placements: Iterable[str], out: TextIO
) -> None:
    inventory = ctx.fleet.inventory(member)
    region = member.labels.get("region", "")
    out.write(
        f"{member.name}  location={member.location}" + (f" region={region}" if region else "")
    )
    if inventory.nodes is None:
        out.write(f"  UNREACHABLE ({inventory.error})\n")
    else:
        out.write("\n")
        for _, location, product, free, total in gpu_rows(
            member, list(inventory.nodes), list(inventory.pods)
        ):
            out.write(
                f"  GPUs {product} ({location}): {free} free, {total - free} used or offline, "
                f"{total} total\n"
            )
        waiting = sum(p.requests.get(labels.GPU_RESOURCE, 0) for p in inventory.pods if not p.node)
        if waiting:
            out.write(f"  GPUs requested by pods waiting for a node: {waiting}\n")
    for placement in sorted(placements):
        out.write(f"  runs {placement}\n")


def main(argv: Sequence[str] | None = None, out: TextIO = sys.stdout) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] not in ("explain", "fleet"):
        sys.stderr.write(USAGE)
        return 2
    try:
        return (explain if args[0] == "explain" else fleet)(args[1:], out)
    except KubeError as error:
        sys.stderr.write(f"llmfleet {args[0]}: the API server did not answer: {error.message}\n")
        return 3
    except (OSError, config.ConfigException) as error:
        sys.stderr.write(f"llmfleet {args[0]}: {error}\n")
        return 3
