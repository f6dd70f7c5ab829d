"""Dividing replicas over the fleet: Pack, Spread, overflow and its way back, stickiness,
scale-in order, failover, and bursts in any order."""

from __future__ import annotations

import itertools
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llmfleet.placement.capacity import Assumption, NodeInfo, PodUse, Room, Shape, room
from llmfleet.placement.fleet import Candidate, Current, Request, decide
from llmfleet.placement.ledger import Ledger


def pref(name: str, fits: int, location: str = "onprem") -> Candidate:
    return Candidate(name, location, "preferred", Room(fits=fits))


def over(name: str, fits: int) -> Candidate:
    return Candidate(name, "cloud", "overflow", Room(fits=fits))


def down(name: str, pool: str = "preferred") -> Candidate:
    return Candidate(name, "onprem", pool, None, error="connection refused")  # type: ignore[arg-type]


def placed(decision_allocations: object) -> dict[str, tuple[str, int]]:
    return {a.cluster: (a.role, a.replicas) for a in decision_allocations}  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("request_", "candidates", "current", "expected", "unplaced"),
    [
        # Pack: the roomiest cluster takes all it can.
        (Request(3), [pref("a", 2), pref("b", 4)], [], {"b": ("preferred", 3)}, 0),
        # Pack splits when no single cluster fits them.
        (
            Request(5),
            [pref("a", 2), pref("b", 4)],
            [],
            {"b": ("preferred", 4), "a": ("preferred", 1)},
            0,
        ),
        # Spread: evenly, the roomiest first.
        (
            Request(4, "Spread"),
            [pref("a", 4), pref("b", 4)],
            [],
            {"a": ("preferred", 2), "b": ("preferred", 2)},
            0,
        ),
        (
            Request(3, "Spread", max_clusters=2),
            [pref("a", 4), pref("b", 4), pref("c", 4)],
            [],
            {"a": ("preferred", 2), "b": ("preferred", 1)},
            0,
        ),
        # Overflow takes what the preferred location cannot fit, up to maxReplicas.
        (
            Request(4, overflow_max=4),
            [pref("a", 1), over("cloud", 8)],
            [],
            {"a": ("preferred", 1), "cloud": ("overflow", 3)},
            0,
        ),
        (
            Request(4, overflow_max=2),
            [pref("a", 1), over("cloud", 8)],
            [],
            {"a": ("preferred", 1), "cloud": ("overflow", 2)},
            1,
        ),
        # No overflow configured: the rest waits.
        (Request(4), [pref("a", 1), over("cloud", 8)], [], {"a": ("preferred", 1)}, 3),
        # Sticky: a running placement stays though another cluster is emptier now.
        (
            Request(2),
            [pref("a", 0), pref("b", 8)],
            [Current("a", "preferred", 2, 2)],
            {"a": ("preferred", 2)},
            0,
        ),
        # Scale-in: overflow goes first.
        (
            Request(2, overflow_max=4),
            [pref("a", 0), over("cloud", 8)],
            [Current("a", "preferred", 2), Current("cloud", "overflow", 2)],
            {"a": ("preferred", 2)},
            0,
        ),
        # An unreachable member's replicas stay put without failover...
        (
            Request(2),
            [down("a"), pref("b", 8)],
            [Current("a", "preferred", 2, unreachable_for=999)],
            {"a": ("preferred", 2)},
            0,
        ),
        # ...and before afterSeconds.
        (
            Request(2, failover_after=300),
            [down("a"), pref("b", 8)],
            [Current("a", "preferred", 2, unreachable_for=10)],
            {"a": ("preferred", 2)},
            0,
        ),
        # After afterSeconds they are replaced elsewhere.
        (
            Request(2, failover_after=300),
            [down("a"), pref("b", 8)],
            [Current("a", "preferred", 2, unreachable_for=301)],
            {"b": ("failover", 2)},
            0,
        ),
        # The member is back: its replicas count again and the replacements are dropped.
        (
            Request(2, failover_after=300),
            [pref("a", 0), pref("b", 6)],
            [Current("a", "preferred", 2), Current("b", "failover", 2)],
            {"a": ("preferred", 2)},
            0,
        ),
        # Overflow moves back once the preferred location has had room long enough...
        (
            Request(2, overflow_max=2, move_back_after=300),
            [pref("a", 4), over("cloud", 8)],
            [Current("a", "preferred", 1), Current("cloud", "overflow", 1, room_for=400)],
            {"a": ("preferred", 2)},
            0,
        ),
        # ...and not before.
        (
            Request(2, overflow_max=2, move_back_after=300),
            [pref("a", 4), over("cloud", 8)],
            [Current("a", "preferred", 1), Current("cloud", "overflow", 1, room_for=100)],
            {"a": ("preferred", 1), "cloud": ("overflow", 1)},
            0,
        ),
        # Zero replicas keep a home for the model's objects.
        (Request(0), [pref("a", 1), pref("b", 3)], [], {"b": ("preferred", 0)}, 0),
        (
            Request(0),
            [pref("a", 1), pref("b", 3)],
            [Current("a", "preferred", 1)],
            {"a": ("preferred", 0)},
            0,
        ),
    ],
)
def test_decide(
    request_: Request,
    candidates: list[Candidate],
    current: list[Current],
    expected: dict[str, tuple[str, int]],
    unplaced: int,
) -> None:
    decision = decide(request_, candidates, current)
    assert placed(decision.allocations) == expected
    assert decision.unplaced == unplaced
    # The next pass: the placed replicas hold room now, lost members still recorded.
    taken = {a.cluster: a.replicas for a in decision.allocations}
    later = [
        replace(c, room=Room(fits=c.room.fits - taken.get(c.cluster, 0))) if c.room else c
        for c in candidates
    ]
    kept = [Current(a.cluster, a.role, a.replicas) for a in decision.allocations]
    kept += [c for c in current if c.cluster in decision.lost]
    again = decide(request_, later, kept)
    assert placed(again.allocations) == expected, "a second decision over the first moves nothing"


def test_every_candidate_is_explained() -> None:
    candidates = [
        pref("a", 0),
        pref("b", 2),
        over("cloud", 8),
        down("c"),
        Candidate("edge-1", "edge", None, excluded="location edge, not onprem"),
    ]
    decision = decide(Request(3), candidates, [])
    reasons = {c.cluster: c.reason for c in decision.choices}
    assert reasons["a"].startswith("no room")
    assert reasons["b"].startswith("taken, preferred")
    assert reasons["c"].startswith("unreachable")
    assert reasons["edge-1"] == "location edge, not onprem"
    assert decision.unplaced == 1


def test_the_overflow_room_is_reported_for_its_stabilisation() -> None:
    decision = decide(
        Request(2, overflow_max=2),
        [pref("a", 1), over("cloud", 8)],
        [Current("a", "preferred", 1), Current("cloud", "overflow", 1)],
    )
    assert [a.room for a in decision.allocations if a.role == "overflow"] == [True]
    full = decide(
        Request(2, overflow_max=2),
        [pref("a", 0), over("cloud", 8)],
        [Current("a", "preferred", 1), Current("cloud", "overflow", 1)],
    )
    assert [a.room for a in full.allocations if a.role == "overflow"] == [False]


NODES = {
    "hci-1": [NodeInfo(f"h1-{i}", "onprem", "L40S", {"nvidia.com/gpu": "4"}) for i in range(2)],
    "hci-2": [NodeInfo(f"h2-{i}", "onprem", "A100", {"nvidia.com/gpu": "2"}) for i in range(2)],
}


def burst(order: list[tuple[str, int, int]]) -> tuple[dict[str, int], dict[str, int], Ledger]:
    """Each (owner, replicas, GPUs per replica) decides in turn against the ledger; returns
    GPUs placed per cluster, unplaced replicas per owner, and the ledger."""
    ledger = Ledger()
    used = dict.fromkeys(NODES, 0)
    unplaced = {}
    for owner, replicas, gpus in order:
        with ledger.deciding():
            candidates = []
            for name, nodes in NODES.items():
                shape = Shape("onprem", gpus)
                found = room(nodes, [], shape, owner=owner, assumed=ledger.assumed(name))
                candidates.append(Candidate(name, "onprem", "preferred", found))
            decision = decide(Request(replicas), candidates, [])
            ledger.assume(
                owner,
                {
                    a.cluster: Assumption(owner, a.replicas, gpus, "nvidia.com/gpu")
                    for a in decision.allocations
                },
            )
        for allocation in decision.allocations:
            used[allocation.cluster] += allocation.replicas * gpus
        unplaced[owner] = decision.unplaced
    return used, unplaced, ledger


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.tuples(st.integers(1, 3), st.sampled_from([1, 2, 4])), min_size=1, max_size=8),
    st.randoms(use_true_random=False),
)
def test_a_burst_never_over_commits_whatever_the_order(
    sizes: list[tuple[int, int]], rng: object
) -> None:
    owners = [(f"m{i}", replicas, gpus) for i, (replicas, gpus) in enumerate(sizes)]
    rng.shuffle(owners)  # type: ignore[attr-defined]
    used, unplaced, ledger = burst(owners)
    capacity = {name: sum(n.gpus("nvidia.com/gpu") for n in nodes) for name, nodes in NODES.items()}
    assert all(used[name] <= capacity[name] for name in NODES)
    # Room only shrinks during a burst: what waits finds no room for one replica at the end.
    for owner, _, gpus in owners:
        if unplaced[owner]:
            for name, nodes in NODES.items():
                left = room(
                    nodes,
                    [],
                    Shape("onprem", gpus),
                    owner="someone-else",
                    assumed=ledger.assumed(name),
                )
                assert left.fits == 0, (owner, name)


def test_four_4_gpu_models_on_8_gpus_place_two_in_any_order() -> None:
    only_hci1 = {"hci-1": NODES["hci-1"]}
    for order in itertools.permutations(["a", "b", "c", "d"]):
        ledger = Ledger()
        placed_ = []
        for owner in order:
            with ledger.deciding():
                found = room(
                    only_hci1["hci-1"],
                    [],
                    Shape("onprem", 4),
                    owner=owner,
                    assumed=ledger.assumed("hci-1"),
                )
                decision = decide(
                    Request(1), [Candidate("hci-1", "onprem", "preferred", found)], []
                )
                ledger.assume(
                    owner,
                    {
                        a.cluster: Assumption(owner, a.replicas, 4, "nvidia.com/gpu")
                        for a in decision.allocations
                    },
                )
            if decision.placed:
                placed_.append(owner)
        assert placed_ == list(order[:2])


def test_pods_that_appear_confirm_assumptions_without_double_counting() -> None:
    nodes = NODES["hci-1"]
    assumed = [Assumption("a", 1, 4, "nvidia.com/gpu")]
    bound = [PodUse("t/a-0", "h1-0", {"nvidia.com/gpu": 4}, "a")]
    assert room(nodes, bound, Shape("onprem", 4), owner="b", assumed=assumed).fits == 1
