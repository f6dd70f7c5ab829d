"""`python -m localfleet up|down|show|kind-up|kind-down`: the local federated test clusters."""

from __future__ import annotations

import argparse
import sys

from localfleet import fleet, kind, seed, show, topology
from localfleet.paths import REPO_ROOT, kubeconfig_path


def cmd_up(args: argparse.Namespace) -> int:
    kubeconfigs = kind.up() if args.command == "kind-up" else fleet.up()
    print("\nkubeconfigs:")
    for cluster in topology.FLEET:
        role = "hub" if cluster.is_hub else "member"
        print(f"  {cluster.name:<18} {role:<7} {kubeconfigs[cluster.short_name]}")
    print(f"\n  export KUBECONFIG={kubeconfigs[topology.HUB.short_name]}")
    return 0


def cmd_down(args: argparse.Namespace) -> int:
    if args.command == "kind-down":
        kind.down()
    else:
        fleet.down()
    return 0


def cmd_show(_: argparse.Namespace) -> int:
    kubeconfigs = fleet.external_kubeconfigs() or {
        c.short_name: kubeconfig_path(c.short_name) for c in topology.FLEET
    }
    hub_kubeconfig = kubeconfigs[topology.HUB.short_name]
    if not fleet.is_ready(hub_kubeconfig):
        print(f"the hub cluster is not reachable through {hub_kubeconfig}; run `make cluster-up`")
        return 1
    with fleet.api_client(hub_kubeconfig) as hub:
        rows, problems = show.federation_rows(hub)
    print(show.fleet_table(rows))
    for problem in problems:
        print(f"warning: {problem}", file=sys.stderr)
    return 1 if problems else 0


def cmd_crds(_: argparse.Namespace) -> int:
    with fleet.api_client(kubeconfig_path(topology.HUB.short_name)) as hub:
        for name in seed.install_crds(hub, REPO_ROOT / "crds"):
            print(f"established {name}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="localfleet", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("up", help="start (or reuse) the clusters and seed nodes and members")
    commands.add_parser("down", help="stop and delete the clusters")
    commands.add_parser("show", help="print the federation: clusters, nodes and GPUs")
    commands.add_parser("kind-up", help="the same clusters on kind (needs Docker and kind)")
    commands.add_parser("kind-down", help="delete the kind clusters")
    commands.add_parser("crds", help="server-side apply the CRDs to the hub")
    handlers = {
        "up": cmd_up,
        "down": cmd_down,
        "show": cmd_show,
        "kind-up": cmd_up,
        "kind-down": cmd_down,
        "crds": cmd_crds,
    }
    args = parser.parse_args(argv)
    try:
        return handlers[args.command](args)
    except RuntimeError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
