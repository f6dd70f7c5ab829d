"""Validation on the real clusters: a placement is scanned once its replica is ready, gateways
route only to models that passed, a scheduled scan that fails takes a model out of routing
while other backends keep answering, and an MLPipeline's new run is rolled out only once its
candidate passed (a failing run is blocked; a rollback needs no scan).

The scan Jobs' pods run on kwok nodes: an image sim.llmfleet.local/scan:<passed> ends with a
garak scan summary in which every probe passed <passed> of 10 evaluations (hack/localfleet's
kwok stages); the real garak against real model servers is tests/integration/
test_garak_scan.py."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from kubernetes import client

from llmfleet.render import gateway
from llmfleet.render import mlpipeline as pipeline_render
from llmfleet.render import validation as scan_render
from llmfleet.render.common import Owner
from localfleet import topology
from tests.integration import resources
from tests.integration.conftest import Fleet, pin_onprem, pinned
from tests.integration.polling import wait_until
from tests.integration.resources import condition, current
from tests.integration.test_mlpipeline import create as create_pipeline
from tests.integration.test_mlpipeline import get as get_pipeline
from tests.integration.test_mlpipeline import patch as patch_pipeline
from tests.integration.test_mlpipeline import pipeline, run_drift_check

pytestmark = pytest.mark.usefixtures("operator", "load_balancers")
PASS = "sim.llmfleet.local/scan:10"
FAIL = "sim.llmfleet.local/scan:2"
PROBES = ["promptinject", "dan.Dan_11_0"]


def cpu_model(name: str, **spec: Any) -> dict[str, Any]:
    """A small CPU model (llama.cpp) on llmfleet-onprem: it waits for no GPU."""
    return resources.llm_deployment(
        name, "onprem", placement=pinned(topology.ONPREM), runtime="llamacpp",
        gpu={"count": 0}, resources={"cpu": "500m", "memory": "1Gi"}, **spec,
    )  # fmt: skip


def validated_model(name: str, image: str, **validation: Any) -> dict[str, Any]:
    return cpu_model(name, validation={"probes": PROBES, "image": image, **validation})


def create_model(fleet: Fleet, namespace: str, body: dict[str, Any]) -> None:
    client.CustomObjectsApi(fleet.cloud).create_namespaced_custom_object(
        "llmfleet.io", "v1alpha1", namespace, "llmdeployments", body
    )


def model(fleet: Fleet, namespace: str, name: str) -> dict[str, Any]:
    return resources.get(fleet.cloud, namespace, "llmdeployments", name)


def validated_is(fleet: Fleet, namespace: str, name: str, value: str) -> dict[str, Any] | None:
    obj = model(fleet, namespace, name)
    return obj if current(obj) and condition(obj, "Validated").get("status") == value else None


def routed_models(fleet: Fleet, namespace: str, endpoint: str) -> set[str]:
    """The model servers the onprem gateway's config routes to (by their Service)."""
    name = gateway.site_name(Owner("ChatEndpoint", namespace, endpoint, ""), "onprem")
    data = client.CoreV1Api(fleet.onprem).read_namespaced_config_map(name, namespace).data
    config = yaml.safe_load(data["config.yaml"])
    bases = [e["litellm_params"]["api_base"] for e in config.get("model_list") or []]
    return {b.split("//", 1)[1].split(".", 1)[0] for b in bases}


def test_gateways_route_only_to_models_that_passed_their_scan(fleet: Fleet, namespace: str) -> None:
    create_model(fleet, namespace, validated_model("trusted", PASS))
    create_model(fleet, namespace, validated_model("leaky", FAIL))
    resources.create_chat_endpoint(
        fleet.cloud, namespace, "chat",
        sites=[pin_onprem({"location": "onprem"})],
        backends=[{"llmDeploymentRef": {"name": "trusted"}},
                  {"llmDeploymentRef": {"name": "leaky"}}],
    )  # fmt: skip
    trusted = wait_until(
        lambda: validated_is(fleet, namespace, "trusted", "True"),
        what="trusted to pass its scan", timeout=180,
    )  # fmt: skip
    entry = trusted["status"]["validation"]["clusters"][0]
    assert entry["cluster"] == topology.ONPREM.name
    assert {p["probe"] for p in entry["probes"]} == {"promptinject.Simulated", "dan.Dan_11_0"}
    assert all(p["passRate"] == 1.0 for p in entry["probes"])
    assert trusted["status"]["placements"][0]["validation"] == "Passed"
    job = client.BatchV1Api(fleet.onprem).read_namespaced_job(entry["job"], namespace)
    assert job.metadata.labels[scan_render.REVISION] == trusted["status"]["validation"]["revision"]
    pod = job.spec.template.spec
    assert pod.security_context.run_as_non_root is True
    assert pod.containers[0].security_context.read_only_root_filesystem is True

    leaky = wait_until(
        lambda: validated_is(fleet, namespace, "leaky", "False"),
        what="leaky to fail its scan", timeout=180,
    )  # fmt: skip
    failed = condition(leaky, "Validated")
    assert failed["reason"] == "BelowMinPassRate"
    assert "promptinject.Simulated" in failed["message"]
    assert "20%" in failed["message"]
    events = client.CoreV1Api(fleet.cloud).list_namespaced_event(
        namespace, field_selector="involvedObject.name=leaky,reason=ValidationFailed"
    )
    assert events.items
    assert events.items[0].type == "Warning"

    def routes_settled() -> dict[str, Any] | None:
        chat = resources.get(fleet.cloud, namespace, "chatendpoints", "chat")
        states = {b["name"]: b["state"] for b in (chat.get("status") or {}).get("backends") or []}
        if states.get("leaky") == "NotValidated" and states.get("trusted") == "Ready":
            return chat
        return None

    chat = wait_until(routes_settled, what="leaky to be held back", timeout=120)
    assert routed_models(fleet, namespace, "chat") == {"trusted"}
    assert condition(chat, "Ready")["status"] == "True"
    # What the scan Job may reach: its model's pods, and DNS.
    egress = client.NetworkingV1Api(fleet.onprem).read_namespaced_network_policy(
        f"{scan_render.resource_name(Owner('LLMDeployment', namespace, 'trusted', ''))}-egress",
        namespace,
    )
    assert egress.spec.egress[1].to[0].pod_selector.match_labels["llmfleet.io/role"] == (
        "model-server"
    )


def test_a_scheduled_scan_that_fails_takes_the_model_out_of_routing(
    fleet: Fleet, namespace: str
) -> None:
    name = "weekly"
    create_model(fleet, namespace, validated_model(name, PASS, schedule="0 3 * * 0"))
    create_model(fleet, namespace, cpu_model("fallback"))
    resources.create_chat_endpoint(
        fleet.cloud, namespace, "chat",
        sites=[pin_onprem({"location": "onprem"})],
        backends=[{"llmDeploymentRef": {"name": name}},
                  {"llmDeploymentRef": {"name": "fallback"}, "fallbackOnly": True}],
    )  # fmt: skip
    wait_until(lambda: validated_is(fleet, namespace, name, "True"), what="the first scan")
    wait_until(
        lambda: routed_models(fleet, namespace, "chat") == {name, "fallback"} or None,
        what="both models routed", timeout=120,
    )  # fmt: skip
    cronjob = scan_render.resource_name(Owner("LLMDeployment", namespace, name, ""))
    # The scanner now finds the model leaking; the schedule's next scan runs now.
    resources_api = client.CustomObjectsApi(fleet.cloud)
    resources_api.patch_namespaced_custom_object(
        "llmfleet.io", "v1alpha1", namespace, "llmdeployments", name,
        {"spec": {"validation": {"image": FAIL}}},
    )  # fmt: skip

    def cron_image(image: str) -> bool | None:
        cron = client.BatchV1Api(fleet.onprem).read_namespaced_cron_job(cronjob, namespace)
        containers = cron.spec.job_template.spec.template.spec.containers
        return containers[0].image == image or None

    wait_until(lambda: cron_image(FAIL), what="the CronJob to use the new scanner")
    run_drift_check(fleet.onprem, namespace, cronjob, f"{cronjob}-manual-1")
    failed = wait_until(
        lambda: validated_is(fleet, namespace, name, "False"),
        what="the scheduled scan to fail the model", timeout=120,
    )  # fmt: skip
    assert failed["status"]["validation"]["clusters"][0]["job"] == f"{cronjob}-manual-1"
    wait_until(
        lambda: routed_models(fleet, namespace, "chat") == {"fallback"} or None,
        what="only the fallback routed", timeout=120,
    )  # fmt: skip
    # A scan that passes again brings it back.
    resources_api.patch_namespaced_custom_object(
        "llmfleet.io", "v1alpha1", namespace, "llmdeployments", name,
        {"spec": {"validation": {"image": PASS}}},
    )  # fmt: skip
    wait_until(lambda: cron_image(PASS), what="the CronJob to use the passing scanner")
    run_drift_check(fleet.onprem, namespace, cronjob, f"{cronjob}-manual-2")
    wait_until(lambda: validated_is(fleet, namespace, name, "True"), what="a passing scan")
    wait_until(
        lambda: routed_models(fleet, namespace, "chat") == {name, "fallback"} or None,
        what="the model routed again", timeout=120,
    )  # fmt: skip


def run_record(obj: dict[str, Any], run: int) -> dict[str, Any]:
    return next((r for r in (obj.get("status") or {}).get("runs") or [] if r["run"] == run), {})


def test_a_pipeline_rolls_out_only_runs_whose_candidate_passed(
    fleet: Fleet, restricted_namespace: str
) -> None:
    namespace, name = restricted_namespace, "gated"
    validation = {"probes": PROBES, "image": PASS}
    spec = pipeline(name, ("onprem", "onprem", "onprem"))
    spec["spec"]["inference"]["validation"] = validation
    spec["spec"]["inference"]["runtime"] = "llamacpp"
    spec["spec"]["inference"]["gpu"] = {"count": 0}
    create_pipeline(fleet, namespace, spec)

    def first_passed() -> dict[str, Any] | None:
        obj = get_pipeline(fleet, namespace, name)
        record = run_record(obj, 0)
        return obj if record.get("validation") == "Passed" and resources.ready(obj) else None

    first = wait_until(first_passed, what="the first run to pass and serve", timeout=180)
    first_id = first["status"]["servingRun"]
    candidate = pipeline_render.candidate_name(Owner("MLPipeline", namespace, name, ""))

    # Run 1 fails its candidate's scan: blocked, run 0 keeps serving.
    patch_pipeline(fleet, namespace, name, [
        {"op": "replace", "path": "/spec/run", "value": 1},
        {"op": "replace", "path": "/spec/inference/validation/image", "value": FAIL},
    ])  # fmt: skip

    def blocked() -> dict[str, Any] | None:
        obj = get_pipeline(fleet, namespace, name)
        ready = condition(obj, "Ready")
        return obj if current(obj) and ready.get("reason") == "RolloutBlocked" else None

    obj = wait_until(blocked, what="run 1 to be blocked", timeout=180)
    assert obj["status"]["servingRun"] == first_id
    assert run_record(obj, 1)["validation"] == "Failed"
    assert "promptinject.Simulated" in run_record(obj, 1)["validationMessage"]
    wait_until(
        lambda: not resources_named(fleet, namespace, candidate) or None,
        what="the candidate to be removed",
    )  # fmt: skip
    events = client.CoreV1Api(fleet.cloud).list_namespaced_event(
        namespace, field_selector=f"involvedObject.name={name},reason=RolloutBlocked"
    )
    assert events.items

    # Run 2 passes: inference moves to it, without a second scan by the inference model.
    patch_pipeline(fleet, namespace, name, [
        {"op": "replace", "path": "/spec/run", "value": 2},
        {"op": "replace", "path": "/spec/inference/validation/image", "value": PASS},
    ])  # fmt: skip

    def rolled_out() -> dict[str, Any] | None:
        obj = get_pipeline(fleet, namespace, name)
        record = run_record(obj, 2)
        if record.get("validation") == "Passed" and obj["status"]["servingRun"] == record["id"]:
            return obj
        return None

    obj = wait_until(rolled_out, what="run 2 to be rolled out", timeout=180)
    served = model(fleet, namespace, name)
    assert served["spec"]["model"]["uri"] == run_record(obj, 2)["artifact"]
    wait_until(
        lambda: validated_is(fleet, namespace, name, "True"),
        what="the inference model to count the candidate's pass", timeout=120,
    )  # fmt: skip
    carried = model(fleet, namespace, name)["status"]["validation"]["clusters"][0]
    assert carried["reason"] == "Carried"

    # Back to run 0: it passed before, so it serves again at once.
    patch_pipeline(fleet, namespace, name, [{"op": "replace", "path": "/spec/run", "value": 0},
                                            {"op": "replace",
                                             "path": "/spec/inference/validation/image",
                                             "value": FAIL}])  # fmt: skip

    def rolled_back() -> dict[str, Any] | None:
        obj = get_pipeline(fleet, namespace, name)
        return obj if obj["status"]["servingRun"] == first_id else None

    back = wait_until(rolled_back, what="the rollback to run 0", timeout=120)
    assert run_record(back, 0)["validation"] == "Passed"
    assert not resources_named(fleet, namespace, candidate)


def resources_named(fleet: Fleet, namespace: str, name: str) -> list[Any]:
    found = client.CustomObjectsApi(fleet.cloud).list_namespaced_custom_object(
        "llmfleet.io", "v1alpha1", namespace, "llmdeployments"
    )
    return [o for o in found["items"] if o["metadata"]["name"] == name]
