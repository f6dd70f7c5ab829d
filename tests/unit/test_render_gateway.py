"""The gateway builders: LiteLLM config, model groups, secrets by reference, policies."""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from llmfleet.api import ChatEndpoint, ChatEndpointSpec, crd
from llmfleet.api.chatendpoint import BUILTIN_OUTPUT_KINDS
from llmfleet.api.common import SecretKeyRef
from llmfleet.render import gateway
from llmfleet.render.common import Owner
from llmfleet.segmentation import roles
from llmfleet.segmentation.policies import backend_label

OWNER = Owner("ChatEndpoint", "team-a", "chat", "uid-9")
KEY = SecretKeyRef(name="chat-keys", key="master")


def backend(
    name: str, location: str, weight: int = 1, fallback: bool = False, **extra: Any
) -> gateway.ResolvedBackend:
    fields: dict[str, Any] = {"model": f"hosted_vllm/{name}", "api_base": f"http://{name}:8000/v1"}
    return gateway.ResolvedBackend(
        name=name, location=location, weight=weight, fallback_only=fallback, **(fields | extra)
    )


def spec(**fields: Any) -> ChatEndpointSpec:
    base = {
        "modelAlias": "chat",
        "sites": [{"location": "onprem"}],
        "backends": [{"llmDeploymentRef": {"name": "x"}}],
    }
    return ChatEndpointSpec.model_validate(base | fields)


@pytest.mark.parametrize(
    ("location", "prefer_local", "groups", "chain"),
    [
        (
            "onprem",
            True,
            {"chat": [1], "chat--remote": [0], "chat--fallback": [2]},
            ["chat--remote", "chat--fallback"],
        ),
        (
            "cloud",
            True,
            {"chat": [0], "chat--remote": [1], "chat--fallback": [2]},
            ["chat--remote", "chat--fallback"],
        ),
        ("onprem", False, {"chat": [0, 1], "chat--fallback": [2]}, ["chat--fallback"]),
        (
            "edge",
            True,
            {"chat": [0, 1], "chat--fallback": [2]},
            ["chat--fallback"],
        ),  # nothing local
    ],
)
def test_model_groups_prefer_local_backends_then_remote_then_fallbacks(
    location: str, prefer_local: bool, groups: dict[str, list[int]], chain: list[str]
) -> None:
    backends = [
        backend("cloud-llm", "cloud", 3),
        backend("hci-llm", "onprem", 1),
        backend("aoai", "cloud", 1, True),
    ]
    found, fallbacks = gateway.model_groups("chat", location, backends, prefer_local)
    assert found == groups
    assert fallbacks == [{"chat": chain}]


def test_litellm_config_carries_routing_guard_and_auth_hook() -> None:
    s = spec(
        routing={"strategy": "least-busy", "retries": 4, "timeoutSeconds": 30},
        guardrails={"promptInjection": "block"},
    )
    keyed = backend(
        "aoai", "cloud", key=SecretKeyRef(name="aoai", key="api-key"), api_version="2024-10-21"
    )
    config = gateway.litellm_config(s, "onprem", [backend("hci-llm", "onprem", 2), keyed])
    entries = {e["model_info"]["id"]: e for e in config["model_list"]}
    assert entries["hci-llm"]["model_name"] == "chat"
    assert entries["hci-llm"]["litellm_params"]["weight"] == 2
    assert entries["aoai"]["model_name"] == "chat--remote"
    assert entries["aoai"]["litellm_params"]["api_key"] == "os.environ/LLMFLEET_BACKEND_1_API_KEY"
    assert entries["aoai"]["litellm_params"]["api_version"] == "2024-10-21"
    assert config["router_settings"]["routing_strategy"] == "least-busy"
    assert config["router_settings"]["num_retries"] == 4
    # LiteLLM's heuristic injection check is never on: its time grows with the prompt.
    assert config["litellm_settings"]["callbacks"] == ["llmfleet_gateway.guard", "prometheus"]
    assert "prompt_injection_params" not in config["litellm_settings"]
    assert config["general_settings"] == {
        "master_key": "os.environ/LITELLM_MASTER_KEY",
        "custom_auth": "llmfleet_gateway.user_api_key_auth",
    }


@pytest.mark.parametrize(
    ("mode", "callbacks"),
    [
        ("flag", ["llmfleet_gateway.guard", "prometheus"]),
        ("off", ["llmfleet_gateway.guard", "prometheus"]),
    ],
)
def test_only_block_mode_adds_litellms_rejecting_guard(mode: str, callbacks: list[str]) -> None:
    config = gateway.litellm_config(
        spec(guardrails={"promptInjection": mode}), "onprem", [backend("b", "onprem")]
    )
    assert config["litellm_settings"]["callbacks"] == callbacks


def site_objects(
    s: ChatEndpointSpec, backends: list[gateway.ResolvedBackend], **kwargs: Any
) -> dict[str, Any]:
    rendered = gateway.self_managed_site(
        s, OWNER, s.sites[0], backends, cluster="hci-1", in_owner_cluster=False, master_key=KEY,
        metrics_namespace="monitoring", **kwargs,
    )  # fmt: skip
    return {f"{o['kind']}/{o['metadata']['name']}": o for o in rendered.objects} | {
        "_rendered": rendered
    }


def test_secrets_reach_the_gateway_by_reference_only() -> None:
    keyed = backend("aoai", "cloud", key=SecretKeyRef(name="aoai", key="api-key"))
    objects = site_objects(
        spec(rateLimit={"requestsPerMinute": 60}), [backend("hci", "onprem"), keyed]
    )
    env = {
        e["name"]: e
        for e in objects["Deployment/chat-onprem"]["spec"]["template"]["spec"]["containers"][0][
            "env"
        ]
    }
    assert env["LITELLM_MASTER_KEY"]["valueFrom"]["secretKeyRef"] == {
        "name": "chat-keys",
        "key": "master",
    }
    assert env["LLMFLEET_BACKEND_1_API_KEY"]["valueFrom"]["secretKeyRef"] == {
        "name": "aoai",
        "key": "api-key",
    }
    assert env["LLMFLEET_RPM_LIMIT"]["value"] == "60"
    config = yaml.safe_load(objects["ConfigMap/chat-onprem"]["data"]["config.yaml"])
    assert all("valueFrom" not in str(e) for e in config["model_list"])
    assert "llmfleet_gateway.py" in objects["ConfigMap/chat-onprem"]["data"]


def test_gateway_pods_are_hardened_labelled_for_their_backends_and_segmented() -> None:
    same = backend("hci-llm", "onprem", llm_deployment="hci-llm", cluster="hci-1", port=8000)
    remote = backend(
        "cloud-llm", "cloud", llm_deployment="cloud-llm", cluster="in-cluster", port=8000
    )
    provider = backend(
        "aoai", "cloud", egress_cidrs=("20.61.0.0/16",), api_base="https://a.openai.azure.com"
    )
    s = spec(exposure={"allowedNamespaces": ["frontend"], "ingress": {"host": "chat.example.com"}})
    objects = site_objects(s, [same, remote, provider])
    pod = objects["Deployment/chat-onprem"]["spec"]["template"]
    assert pod["metadata"]["labels"][backend_label("hci-llm")] == "true"
    assert pod["metadata"]["labels"][backend_label("cloud-llm")] == "true"
    assert pod["spec"]["automountServiceAccountToken"] is False
    assert pod["spec"]["containers"][0]["securityContext"]["readOnlyRootFilesystem"] is True
    ingress = objects["NetworkPolicy/chat-onprem-ingress"]["spec"]["ingress"][0]["from"]
    namespaces = [
        s["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"]
        for s in ingress
        if "namespaceSelector" in s
    ]
    assert namespaces == ["frontend", "ingress-nginx", "monitoring"]
    egress = objects["NetworkPolicy/chat-onprem-egress"]["spec"]["egress"]
    assert (
        egress[1]["to"][0]["podSelector"]["matchLabels"]["llmfleet.io/owner"]
        == "LLMDeployment.team-a.hci-llm"
    )
    assert egress[2] == {
        "to": [{"ipBlock": {"cidr": "20.61.0.0/16"}}],
        "ports": [{"protocol": "TCP", "port": 443}],
    }
    assert len(egress) == 3  # the other cluster's model server gets no blanket rule
    assert objects["Ingress/chat-onprem"]["spec"]["rules"][0]["host"] == "chat.example.com"
    rendered = objects["_rendered"]
    assert rendered.roles == roles.ENDPOINT_ROLES[("onprem", "self-managed")]
    assert rendered.url == "http://chat-onprem.team-a.svc:4000/v1"
    for ref, obj in objects.items():
        if ref != "_rendered":
            assert "ownerReferences" not in obj["metadata"]  # a member cluster: label ownership


def test_managed_site_is_an_external_name_and_opens_the_path_to_its_backends() -> None:
    s = spec(sites=[{"location": "cloud", "management": "managed", "managed": {
        "provider": "azure-ml", "url": "https://e.westeurope.inference.ml.azure.com", "egressCIDRs": ["20.50.0.0/16"]}}])  # fmt: skip
    rendered = gateway.managed_site(OWNER, s.sites[0])
    assert rendered.objects[0]["spec"]["externalName"] == "e.westeurope.inference.ml.azure.com"
    assert rendered.roles == (roles.NETWORK_BOUNDARY, roles.MODEL_ROBUSTNESS)
    target = backend("hci-llm", "onprem", llm_deployment="hci-llm", cluster="hci-1", port=8000)
    policy = gateway.provider_ingress(OWNER, s.sites[0], target, in_owner_cluster=False)
    assert policy is not None
    assert policy["metadata"]["name"] == "chat-cloud-to-hci-llm"
    assert policy["spec"]["ingress"][0]["from"] == [{"ipBlock": {"cidr": "20.50.0.0/16"}}]


@pytest.mark.parametrize(
    ("site_image", "operator_image", "expected"),
    [
        (None, None, gateway.GATEWAY_IMAGE),
        (None, "mirror.example/litellm:1.106.2", "mirror.example/litellm:1.106.2"),
        ("team/litellm:custom", "mirror.example/litellm:1.106.2", "team/litellm:custom"),
    ],
)
def test_gateway_image_site_over_operator_over_pinned(
    site_image: str | None, operator_image: str | None, expected: str
) -> None:
    site: dict[str, Any] = {"location": "onprem"} | ({"image": site_image} if site_image else {})
    objects = site_objects(spec(sites=[site]), [backend("b", "onprem")], image=operator_image)
    container = objects["Deployment/chat-onprem"]["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == expected


def env_of(
    s: ChatEndpointSpec, backends: list[gateway.ResolvedBackend], location: str = "onprem"
) -> dict[str, Any]:
    return {
        e["name"]: e.get("value") for e in gateway.gateway_env(s, backends, KEY, location, None)
    }


def test_a_model_with_no_ready_replica_gets_no_request_and_its_fallback_takes_the_alias() -> None:
    asleep = backend(
        "hci-llm", "onprem", ready=0, llm_deployment="hci-llm", cluster="onprem", sleeps=True
    )
    provider = backend("aoai", "cloud", 1, True)
    groups, chain = gateway.model_groups("chat", "onprem", [asleep, provider], True)
    assert groups == {"chat": [1]}
    assert chain == []
    config = gateway.litellm_config(spec(), "onprem", [asleep, provider])
    assert [e["litellm_params"]["api_base"] for e in config["model_list"]] == [
        "http://aoai:8000/v1"
    ]
    env = env_of(spec(), [asleep, provider])
    assert json.loads(env["LLMFLEET_STARTING"]) == {}
    assert json.loads(env["LLMFLEET_WAKES"]) == {"chat": ["hci-llm"]}  # the request wakes it


def test_a_model_ready_elsewhere_keeps_its_waiting_route_as_standby_not_as_starting() -> None:
    here = backend("llm", "onprem", ready=0, llm_deployment="llm", cluster="onprem", sleeps=True)
    there = backend("llm", "cloud", ready=2, llm_deployment="llm", cluster="cloud", sleeps=True)
    groups, _ = gateway.model_groups("chat", "onprem", [here, there], True, "onprem")
    assert groups == {"chat": [1], "chat--standby": [0]}
    assert json.loads(env_of(spec(), [here, there])["LLMFLEET_STARTING"]) == {}


def test_when_nothing_can_answer_the_gateway_says_the_model_is_starting() -> None:
    asleep = backend(
        "hci-llm", "onprem", ready=0, llm_deployment="hci-llm", cluster="onprem", sleeps=True
    )
    env = env_of(spec(), [asleep])
    starting = json.loads(env["LLMFLEET_STARTING"])
    assert list(starting) == ["chat"]
    assert "hci-llm" in starting["chat"]
    assert "retry in 10 s" in starting["chat"]
    assert env["LLMFLEET_RETRY_AFTER_SECONDS"] == "10"


def test_fallback_only_models_are_not_woken_by_the_alias() -> None:
    primary = backend("a", "onprem", ready=1, llm_deployment="a")
    spare = backend("b", "cloud", 1, True, ready=1, llm_deployment="b")
    assert gateway.wakes("chat", [primary, spare]) == {"chat": ["a"]}
    assert gateway.wakes("chat", [backend("aoai", "cloud")]) == {}


def test_a_model_that_never_sleeps_keeps_its_route_while_it_loads() -> None:
    loading = backend("hci-llm", "onprem", ready=0, llm_deployment="hci-llm", cluster="onprem")
    groups, _ = gateway.model_groups("chat", "onprem", [loading], True)
    assert groups == {"chat": [0]}
    assert json.loads(env_of(spec(), [loading])["LLMFLEET_STARTING"]) == {}


def container_env(objects: dict[str, Any]) -> list[dict[str, Any]]:
    env: list[dict[str, Any]] = objects["Deployment/chat-onprem"]["spec"]["template"]["spec"][
        "containers"
    ][0]["env"]
    return env


def test_the_output_guard_is_off_by_default_and_off_changes_nothing() -> None:
    assert spec().guardrails is None
    default = site_objects(spec(), [backend("b", "onprem")])
    off = site_objects(spec(guardrails={"output": "off"}), [backend("b", "onprem")])
    assert container_env(off) == container_env(default)
    assert off["ConfigMap/chat-onprem"] == default["ConfigMap/chat-onprem"]
    assert not [e for e in container_env(off) if e["name"].startswith("LLMFLEET_OUTPUT")]
    config = yaml.safe_load(off["ConfigMap/chat-onprem"]["data"]["config.yaml"])
    assert config["litellm_settings"]["callbacks"] == ["llmfleet_gateway.guard", "prometheus"]


@pytest.mark.parametrize(
    ("guardrails", "env"),
    [
        (
            {"output": "redact"},
            {"LLMFLEET_OUTPUT_GUARD": "redact", "LLMFLEET_MODEL_ALIAS": "chat"},
        ),
        (
            {
                "output": "block",
                "promptInjection": "flag",
                "outputPatterns": [
                    {"name": "employee-id", "regex": "EMP-[0-9]{6}"},
                    {"name": "case", "regex": r"(?i:case)-\d{4}"},
                ],
            },
            {
                "LLMFLEET_OUTPUT_GUARD": "block",
                "LLMFLEET_MODEL_ALIAS": "chat",
                "LLMFLEET_OUTPUT_PATTERNS": json.dumps(
                    [
                        {"name": "employee-id", "regex": "EMP-[0-9]{6}"},
                        {"name": "case", "regex": r"(?i:case)-\d{4}"},
                    ]
                ),
            },
        ),
    ],
    ids=["redact", "block-with-patterns"],
)
def test_an_output_guard_that_is_on_reaches_the_plugin_as_a_callback_and_settings(
    guardrails: dict[str, Any], env: dict[str, str]
) -> None:
    objects = site_objects(spec(guardrails=guardrails), [backend("b", "onprem")])
    rendered = {e["name"]: e["value"] for e in container_env(objects) if "value" in e}
    assert {k: v for k, v in rendered.items() if k in env} == env
    assert ("LLMFLEET_OUTPUT_PATTERNS" in rendered) == ("outputPatterns" in guardrails)
    config = yaml.safe_load(objects["ConfigMap/chat-onprem"]["data"]["config.yaml"])
    assert config["litellm_settings"]["callbacks"] == [
        "llmfleet_gateway.guard",
        "llmfleet_gateway.output_guard",
        "prometheus",
    ]


@pytest.mark.parametrize(
    ("regex", "problem"),
    [
        ("EMP-[0-9", "not a regular expression"),
        ("(a+)+b", "single characters or classes only"),
        ("(?:ab){3}", "single characters or classes only"),
        ("EMP-[0-9]+", "longer than 128 characters"),
        ("[a-z]{0,20}[0-9]{0,20}x", "in 441 ways"),
        (r"(\w)\1", "backreferences"),
        ("EMP(?=-)", "lookahead and lookbehind"),
        ("^EMP-[0-9]{6}$", "anchors"),
        ("(?i)emp-[0-9]{6}", "set them on a group"),
        ("(?P<id>EMP-[0-9]{6})", "named groups"),
        ("x?", "matches empty text"),
    ],
)
def test_an_output_pattern_the_gateway_cannot_scan_in_linear_time_is_refused_naming_the_field(
    regex: str, problem: str
) -> None:
    guardrails = {"output": "redact", "outputPatterns": [{"name": "mine", "regex": regex}]}
    with pytest.raises(ValidationError) as refused:
        spec(guardrails=guardrails)
    message = str(refused.value)
    assert "guardrails.outputPatterns.0.regex" in message
    assert problem in message


@pytest.mark.parametrize(
    "regex",
    [
        "EMP-[0-9]{6}",
        r"\bEMP-\d{6}\b",
        "(?i:emp)-[0-9]{6}",
        "[A-Z]{2}[0-9]{2}[A-Z0-9]{11,30}",  # IBAN
        r"[0-9]{4}[ -]?[0-9]{4}[ -]?[0-9]{4}[ -]?[0-9]{1,4}",  # card number
        "(?:ACME|acme)-(?:prod|dev)-[a-f0-9]{32}",
    ],
)
def test_output_patterns_of_common_shapes_are_accepted(regex: str) -> None:
    guardrails = {"output": "block", "outputPatterns": [{"name": "mine", "regex": regex}]}
    parsed = spec(guardrails=guardrails).guardrails
    assert parsed is not None
    assert parsed.output_patterns[0].regex == regex


def test_the_crd_checks_output_modes_and_pattern_names_at_admission() -> None:
    schema = crd.openapi_schema(ChatEndpoint)
    guardrails = schema["properties"]["spec"]["properties"]["guardrails"]["properties"]
    assert guardrails["output"]["enum"] == ["off", "redact", "block"]
    assert guardrails["output"]["default"] == "off"
    patterns = guardrails["outputPatterns"]
    assert patterns["x-kubernetes-list-type"] == "map"
    assert patterns["x-kubernetes-list-map-keys"] == ["name"]
    assert patterns["maxItems"] == 16
    item = patterns["items"]
    assert item["required"] == ["name", "regex"]
    rule = item["x-kubernetes-validations"][0]["rule"]
    assert all(f"'{kind}'" in rule for kind in BUILTIN_OUTPUT_KINDS)
