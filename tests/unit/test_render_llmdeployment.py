"""The model-server builders: GPU scheduling, hardening, runtimes, segmentation objects."""

from __future__ import annotations

from typing import Any

import pytest

from llmfleet.api import LLMDeploymentSpec
from llmfleet.render import llmdeployment as render
from llmfleet.render.common import Owner, owner_label
from llmfleet.render.runtimes import RUNTIMES
from llmfleet.segmentation import roles

OWNER = Owner("LLMDeployment", "team-a", "llama", "uid-1")


def spec(**fields: Any) -> LLMDeploymentSpec:
    base: dict[str, Any] = {
        "model": {"name": "meta-llama/Llama-3.1-8B-Instruct"},
        "placement": {"location": "onprem"},
    }
    return LLMDeploymentSpec.model_validate(base | fields)


def by_kind(objects: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    kinds: dict[str, list[dict[str, Any]]] = {}
    for obj in objects:
        kinds.setdefault(obj["kind"], []).append(obj)
    return kinds


def pod_spec(s: LLMDeploymentSpec, location: str = "onprem") -> dict[str, Any]:
    return render.deployment(s, OWNER, location, in_owner_cluster=True)["spec"]["template"]["spec"]  # type: ignore[no-any-return]


def test_gpu_requests_equal_limits_with_taint_toleration_and_product_affinity() -> None:
    pod = pod_spec(spec(gpu={"count": 2, "product": ["NVIDIA-L40S", "NVIDIA-L4"]}))
    resources = pod["containers"][0]["resources"]
    assert resources["requests"] == resources["limits"] == {"nvidia.com/gpu": "2"}
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in pod[
        "tolerations"
    ]
    terms = pod["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    expressions = terms["nodeSelectorTerms"][0]["matchExpressions"]
    assert {"key": "llmfleet.io/location", "operator": "In", "values": ["onprem"]} in expressions
    assert {
        "key": "nvidia.com/gpu.product",
        "operator": "In",
        "values": ["NVIDIA-L40S", "NVIDIA-L4"],
    } in expressions


def test_cpu_only_model_gets_no_gpu_and_no_gpu_toleration() -> None:
    pod = pod_spec(
        spec(runtime="llamacpp", gpu={"count": 0}, resources={"cpu": "4", "memory": "8Gi"}), "edge"
    )
    assert pod["containers"][0]["resources"]["limits"] == {"cpu": "4", "memory": "8Gi"}
    assert pod["tolerations"] == []
    assert all(v["name"] != "shm" for v in pod["volumes"])


def test_pods_meet_pod_security_restricted() -> None:
    pod = pod_spec(spec())
    assert pod["automountServiceAccountToken"] is False
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    container = pod["containers"][0]["securityContext"]
    assert container["allowPrivilegeEscalation"] is False
    assert container["capabilities"] == {"drop": ["ALL"]}
    assert container["readOnlyRootFilesystem"] is True
    mounts = {m["mountPath"] for m in pod["containers"][0]["volumeMounts"]}
    assert {"/cache", "/tmp", "/dev/shm"} <= mounts
    shm = next(v for v in pod["volumes"] if v["name"] == "shm")
    assert shm["emptyDir"]["medium"] == "Memory"


@pytest.mark.parametrize(
    ("runtime", "image_part", "port", "health", "arg"),
    [
        ("vllm", "vllm/vllm-openai", 8000, "/health", "--tensor-parallel-size"),
        ("tgi", "text-generation-inference", 8080, "/health", "--num-shard"),
        ("ollama", "ollama/ollama", 11434, "/", "serve"),
        ("llamacpp", "ggml-org/llama.cpp", 8080, "/health", "--hf-repo"),
        ("triton", "tritonserver", 8000, "/v2/health/ready", "tritonserver"),
    ],
)
def test_runtime_presets(
    runtime: str, image_part: str, port: int, health: str, arg: str | None
) -> None:
    container = pod_spec(spec(runtime=runtime, gpu={"count": 2}))["containers"][0]
    assert image_part in container["image"]
    assert container["ports"][0]["containerPort"] == port
    assert container["readinessProbe"]["httpGet"]["path"] == health
    if arg:
        assert arg in container["args"]


def test_only_ollama_fetches_its_model_before_the_server_starts() -> None:
    for runtime in RUNTIMES:
        pod = pod_spec(spec(runtime=runtime))
        assert ("initContainers" in pod) == (runtime == "ollama"), runtime


@pytest.mark.parametrize(
    ("model", "pulled"),
    [
        ({"name": "llama3.1:8b"}, "llama3.1:8b"),
        (
            {"name": "acme/chat", "uri": "hf://bartowski/Llama-3.2-1B-Instruct-GGUF:Q4_K_M"},
            "hf.co/bartowski/Llama-3.2-1B-Instruct-GGUF:Q4_K_M",
        ),
    ],
)
def test_ollama_serves_from_the_cache_what_an_init_container_pulled(
    model: dict[str, str], pulled: str
) -> None:
    pod = pod_spec(spec(runtime="ollama", model=model, gpu={"count": 1}))
    (server,) = pod["containers"]
    # The image's entrypoint is /bin/ollama: the arguments are its command, `serve`.
    assert "command" not in server
    assert server["args"] == ["serve"]
    env = {e["name"]: e["value"] for e in server["env"] if "value" in e}
    cache = next(m["mountPath"] for m in server["volumeMounts"] if m["name"] == "cache")
    assert env["OLLAMA_MODELS"].startswith(cache + "/")
    assert env["OLLAMA_HOST"] == "0.0.0.0:11434"
    (fetch,) = pod["initContainers"]
    assert fetch["image"] == server["image"]
    # The references are parameters of the script, never part of it.
    assert fetch["command"][:2] == ["/bin/sh", "-c"]
    assert fetch["command"][3:] == ["pull", pulled, model["name"]]
    assert 'ollama pull "$1"' in fetch["command"][2]
    assert {e["name"]: e.get("value") for e in fetch["env"]} == {
        e["name"]: e.get("value") for e in server["env"]
    }
    assert {m["mountPath"] for m in fetch["volumeMounts"]} >= {cache, "/tmp"}
    assert fetch["resources"]["limits"] == {}  # pulling needs no GPU
    assert fetch["securityContext"] == server["securityContext"]
    assert fetch["securityContext"]["allowPrivilegeEscalation"] is False


def test_vllm_shards_over_the_gpus_and_serves_the_model_name() -> None:
    args = pod_spec(spec(gpu={"count": 4}, args=["--max-model-len", "8192"]))["containers"][0][
        "args"
    ]
    assert args[args.index("--tensor-parallel-size") + 1] == "4"
    assert args[args.index("--served-model-name") + 1] == "meta-llama/Llama-3.1-8B-Instruct"
    assert args[-2:] == ["--max-model-len", "8192"]


def test_credentials_come_from_the_secret_by_reference() -> None:
    container = pod_spec(
        spec(model={"name": "m", "credentialsSecretRef": {"name": "hf", "key": "token"}})
    )["containers"][0]
    token = next(e for e in container["env"] if e["name"] == "HF_TOKEN")
    assert token == {
        "name": "HF_TOKEN",
        "valueFrom": {"secretKeyRef": {"name": "hf", "key": "token"}},
    }


def test_pvc_models_are_mounted_read_only() -> None:
    pod = pod_spec(spec(model={"name": "m", "uri": "pvc://models/llama/8b"}))
    assert {
        "name": "model",
        "persistentVolumeClaim": {"claimName": "models", "readOnly": True},
    } in pod["volumes"]
    args = pod["containers"][0]["args"]
    assert args[args.index("--model") + 1] == "/models/llama/8b"


@pytest.mark.parametrize(
    ("location", "expected_roles"),
    [
        ("cloud", roles.ALL),
        (
            "onprem",
            (roles.WORKLOAD_SEGMENTATION, roles.KERNEL_MINIMIZATION, roles.MODEL_ROBUSTNESS),
        ),
    ],
)
def test_self_managed_objects_and_roles(location: str, expected_roles: tuple[str, ...]) -> None:
    s = spec(replicas=2, placement={"location": location})
    rendered = render.self_managed(
        s, OWNER, location, in_owner_cluster=False, metrics_namespace="monitoring"
    )
    kinds = by_kind(rendered.objects)
    assert sorted(kinds) == [
        "Deployment",
        "NetworkPolicy",
        "PodDisruptionBudget",
        "Service",
        "ServiceAccount",
    ]
    assert {p["metadata"]["name"] for p in kinds["NetworkPolicy"]} == {
        "llama-default-deny", "llama-ingress", "llama-egress",
    }  # fmt: skip
    assert rendered.roles == expected_roles
    assert set(rendered.role_objects) == set(expected_roles)
    for obj in rendered.objects:  # a member cluster: label ownership, no ownerReferences
        assert obj["metadata"]["labels"]["llmfleet.io/owner"] == "LLMDeployment.team-a.llama"
        assert "ownerReferences" not in obj["metadata"]
    assert rendered.url == "http://llama.team-a.svc:8000/v1"


def test_hub_children_carry_owner_references() -> None:
    rendered = render.self_managed(
        spec(), OWNER, "onprem", in_owner_cluster=True, metrics_namespace="m"
    )
    for obj in rendered.objects:
        assert obj["metadata"]["ownerReferences"][0]["uid"] == "uid-1"


def test_ingress_only_from_gateways_declared_namespaces_and_the_scraper() -> None:
    s = spec(segmentation={"allowedNamespaces": ["frontend"], "extraEgressCIDRs": ["10.9.0.0/16"]})
    rendered = render.self_managed(
        s, OWNER, "onprem", in_owner_cluster=True, metrics_namespace="monitoring"
    )
    policies = {
        p["metadata"]["name"]: p["spec"] for p in by_kind(rendered.objects)["NetworkPolicy"]
    }
    assert policies["llama-default-deny"]["policyTypes"] == ["Ingress", "Egress"]
    sources = policies["llama-ingress"]["ingress"][0]["from"]
    # Only gateways that call this model: not every gateway of the namespace.
    assert {
        "podSelector": {
            "matchLabels": {"llmfleet.io/role": "gateway", "backend.llmfleet.io/llama": "true"}
        }
    } in sources
    # ... and its pipeline's drift monitor.
    assert {
        "podSelector": {
            "matchLabels": {
                "llmfleet.io/role": "drift-monitor",
                "backend.llmfleet.io/llama": "true",
            }
        }
    } in sources
    # ... and its validation scans.
    assert {
        "podSelector": {
            "matchLabels": {
                "llmfleet.io/role": "validation",
                "backend.llmfleet.io/llama": "true",
            }
        }
    } in sources
    namespaces = [
        s["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"] for s in sources[3:]
    ]
    assert namespaces == ["frontend", "monitoring"]
    egress = policies["llama-egress"]["egress"]
    assert egress[0]["ports"][0]["port"] == 53  # DNS
    assert egress[1]["to"][0]["ipBlock"]["cidr"] == "0.0.0.0/0"  # hf:// over public HTTPS
    assert "10.0.0.0/8" in egress[1]["to"][0]["ipBlock"]["except"]
    assert egress[2]["to"] == [{"ipBlock": {"cidr": "10.9.0.0/16"}}]


def test_managed_mode_runs_no_pods() -> None:
    s = LLMDeploymentSpec.model_validate(
        {
            "model": {"name": "gpt-4o"},
            "placement": {"location": "cloud", "management": "managed"},
            "managed": {
                "provider": "azure-openai",
                "url": "https://a.openai.azure.com/x",
                "deployment": "d",
            },
        }
    )
    rendered = render.managed(s, OWNER)
    assert [o["kind"] for o in rendered.objects] == ["Service"]  # no egress CIDRs: no policy
    assert rendered.objects[0]["spec"]["externalName"] == "a.openai.azure.com"
    assert rendered.roles == (roles.NETWORK_BOUNDARY,)


def test_long_owner_labels_stay_valid_and_distinct() -> None:
    long_a = owner_label(
        "LLMDeployment", "a-very-long-namespace-name-for-a-team", "model-" + "x" * 40
    )
    long_b = owner_label(
        "LLMDeployment", "a-very-long-namespace-name-for-a-team", "model-" + "y" * 40
    )
    assert len(long_a) <= 63
    assert long_a != long_b
    assert long_a[-1].isalnum()


def test_a_model_cache_claim_replaces_the_scratch_cache() -> None:
    pod = pod_spec(spec(modelCache={"claimName": "llm-cache"}))
    cache = next(v for v in pod["volumes"] if v["name"] == "cache")
    assert cache == {"name": "cache", "persistentVolumeClaim": {"claimName": "llm-cache"}}
    assert next(v for v in pod_spec(spec())["volumes"] if v["name"] == "cache") == {
        "name": "cache",
        "emptyDir": {},
    }


@pytest.mark.parametrize(
    ("model", "source"),
    [
        ("/models/tiny.gguf", ["--model", "/models/tiny.gguf"]),
        ("Qwen/Qwen2.5-1.5B-Instruct-GGUF", ["--hf-repo", "Qwen/Qwen2.5-1.5B-Instruct-GGUF"]),
        (
            "Qwen/Qwen2.5-1.5B-Instruct-GGUF/qwen2.5-1.5b-instruct-q4_k_m.gguf",
            [
                "--hf-repo",
                "Qwen/Qwen2.5-1.5B-Instruct-GGUF",
                "--hf-file",
                "qwen2.5-1.5b-instruct-q4_k_m.gguf",
            ],
        ),
    ],
)
def test_llamacpp_args_name_the_model_source_and_serve_metrics(
    model: str, source: list[str]
) -> None:
    args = RUNTIMES["llamacpp"].args(model, "chat", 0)
    assert args[: len(source)] == source
    assert args[len(source) :] == [
        "--alias", "chat",
        "--host", "0.0.0.0",  # noqa: S104 - in the pod, behind its NetworkPolicy
        "--port", "8080", "--n-gpu-layers", "0", "--metrics",
    ]  # fmt: skip
    assert RUNTIMES["llamacpp"].args(model, "chat", 1)[-2] == "999"
