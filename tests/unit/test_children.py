"""The declaration of each kind's children drives apply, prune, watches, the REST client's URL
table and the chart's RBAC: a child kind added in one place and forgotten in another fails
here."""

from __future__ import annotations

import re

import pytest

from llmfleet import children
from llmfleet.kube.cache import MEMBER_WATCHED_KINDS, WATCHED_KINDS
from llmfleet.kube.rest import KINDS
from llmfleet.reconcile.kinds import KINDS as RECONCILED
from localfleet.paths import REPO_ROOT

CHILD_KINDS = sorted({k for c in children.BY_OWNER.values() for k in c.every_kind()})
# Verbs a child kind needs: server-side apply (create, patch), reads from a watch (get, list,
# watch), prune (delete).
CHILD_VERBS = {"get", "list", "watch", "create", "patch", "delete"}


def cluster_role_rules() -> dict[tuple[str, str], set[str]]:
    """(apiGroup, resource) -> verbs of the chart's operator ClusterRole (its first document)."""
    text = (REPO_ROOT / "charts/llmfleet/templates/rbac.yaml").read_text()
    first = text.split("\n---", 1)[0]
    granted: dict[tuple[str, str], set[str]] = {}
    for groups, resources, verbs in re.findall(
        r"- apiGroups: \[([^\]]*)\]\s+resources: \[([^\]]*)\]\s+verbs: \[([^\]]*)\]", first
    ):
        for group in (g.strip().strip('"') for g in groups.split(",")):
            for resource in (r.strip() for r in resources.split(",")):
                granted.setdefault((group, resource), set()).update(
                    v.strip() for v in verbs.split(",")
                )
    return granted


def test_every_reconciled_kind_declares_its_children() -> None:
    assert set(RECONCILED) == set(children.BY_OWNER)
    for name, kind in RECONCILED.items():
        assert kind.children is children.BY_OWNER[name]


@pytest.mark.parametrize("kind", CHILD_KINDS)
def test_every_child_kind_has_a_url(kind: str) -> None:
    assert kind in KINDS, f"add {kind} to llmfleet.kube.rest.KINDS"
    assert KINDS[kind].namespaced


@pytest.mark.parametrize("kind", CHILD_KINDS)
def test_every_child_kind_but_secrets_is_watched(kind: str) -> None:
    assert (kind in WATCHED_KINDS) == (kind not in children.UNWATCHED)


def test_members_watch_no_hub_only_kind() -> None:
    hub_only = {
        k for c in children.BY_OWNER.values() for p in c.parts if p.hub_only for k in p.kinds
    }
    assert hub_only == {"LLMDeployment", "ChatEndpoint"}
    assert not hub_only & MEMBER_WATCHED_KINDS
    assert WATCHED_KINDS - hub_only == MEMBER_WATCHED_KINDS


@pytest.mark.parametrize("kind", sorted(set(CHILD_KINDS) - children.UNWATCHED))
def test_the_chart_grants_what_each_child_kind_needs(kind: str) -> None:
    path = KINDS[kind]
    group = "" if path.prefix == "/api/v1" else path.prefix.split("/")[2]
    verbs = cluster_role_rules().get((group, path.plural), set())
    if kind in {"LLMDeployment", "ChatEndpoint"}:
        # The operator's own kinds are watched through kopf; owned ones are also created.
        assert {"get", "list", "watch", "patch", "create", "delete"} <= verbs
        return
    assert verbs >= CHILD_VERBS, f"the chart's ClusterRole lacks {CHILD_VERBS - verbs} on {kind}"


def test_parts_of_a_kind_name_distinct_kinds_or_carry_stages() -> None:
    """Parts sharing a cluster tell their children apart by stage; at most one part has no
    stage (it leaves the staged parts' children alone)."""
    for declared in children.BY_OWNER.values():
        names = [p.name for p in declared.parts]
        assert len(names) == len(set(names))
        shared = [p for p in declared.parts if not p.hub_only]
        if len(shared) > 1:
            assert sum(not p.staged for p in shared) <= 1, declared.owner
