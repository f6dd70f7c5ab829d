"""Member clusters from Secrets: llmfleet's format and Argo CD's, and clear errors otherwise."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
import yaml

from llmfleet.placement.clusters import (
    MemberSecretError,
    argocd_kubeconfig,
    is_member_secret,
    member_from_secret,
)

KUBECONFIG = {
    "apiVersion": "v1",
    "kind": "Config",
    "clusters": [{"name": "hci-1", "cluster": {"server": "https://127.0.0.1:6443"}}],
    "users": [{"name": "admin", "user": {"token": "t"}}],
    "contexts": [{"name": "hci-1", "context": {"cluster": "hci-1", "user": "admin"}}],
    "current-context": "hci-1",
}


def secret(data: dict[str, str], **secret_labels: str) -> dict[str, Any]:
    return {
        "metadata": {"name": "member", "namespace": "llmfleet-system", "labels": secret_labels},
        "data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()},
    }


LLMFLEET = {"llmfleet.io/cluster": "true", "llmfleet.io/location": "onprem", "region": "eu"}
ARGOCD = {"argocd.argoproj.io/secret-type": "cluster", "llmfleet.io/location": "cloud"}


def test_llmfleet_format_keeps_labels_and_kubeconfig() -> None:
    member = member_from_secret(secret({"kubeconfig": yaml.safe_dump(KUBECONFIG)}, **LLMFLEET))
    assert member.name == "hci-1"  # from the kubeconfig when the Secret has no `name`
    assert member.location == "onprem"
    assert member.labels["region"] == "eu"
    assert member.kubeconfig == KUBECONFIG
    assert member.source == "secret/llmfleet-system/member"


def test_explicit_name_wins_over_the_kubeconfig_cluster_name() -> None:
    data = {"kubeconfig": yaml.safe_dump(KUBECONFIG), "name": "frankfurt-hci"}
    assert member_from_secret(secret(data, **LLMFLEET)).name == "frankfurt-hci"


def test_argocd_format_is_accepted_as_is() -> None:
    config = {
        "bearerToken": "abc",
        "tlsClientConfig": {"insecure": False, "caData": "Q0E=", "serverName": "aks"},
    }
    data = {"name": "aks-west", "server": "https://aks.example:443", "config": json.dumps(config)}
    member = member_from_secret(secret(data, **ARGOCD))
    assert member.name == "aks-west"
    assert member.location == "cloud"
    assert member.kubeconfig is not None
    cluster = member.kubeconfig["clusters"][0]["cluster"]
    assert cluster == {
        "server": "https://aks.example:443",
        "certificate-authority-data": "Q0E=",
        "tls-server-name": "aks",
    }
    assert member.kubeconfig["users"][0]["user"] == {"token": "abc"}


@pytest.mark.parametrize(
    ("config", "expected_user", "expected_cluster_extra"),
    [
        ({"username": "u", "password": "p"}, {"username": "u", "password": "p"}, {}),
        (
            {"tlsClientConfig": {"certData": "Qw==", "keyData": "Sw==", "insecure": True}},
            {"client-certificate-data": "Qw==", "client-key-data": "Sw=="},
            {"insecure-skip-tls-verify": True},
        ),
        (
            {
                "execProviderConfig": {
                    "command": "kubelogin",
                    "args": ["get-token"],
                    "env": {"A": "1"},
                }
            },
            {
                "exec": {
                    "apiVersion": "client.authentication.k8s.io/v1beta1",
                    "command": "kubelogin",
                    "args": ["get-token"],
                    "env": [{"name": "A", "value": "1"}],
                    "interactiveMode": "Never",
                }
            },
            {},
        ),
    ],
    ids=["basic-auth", "client-certificate", "exec-plugin"],
)
def test_argocd_credentials_map_to_kubeconfig_users(
    config: dict[str, Any], expected_user: dict[str, Any], expected_cluster_extra: dict[str, Any]
) -> None:
    kubeconfig = argocd_kubeconfig("c", "https://c:6443", config)
    assert kubeconfig["users"][0]["user"] == expected_user
    assert (
        kubeconfig["clusters"][0]["cluster"]
        == {"server": "https://c:6443"} | expected_cluster_extra
    )
    assert kubeconfig["current-context"] == "c"


@pytest.mark.parametrize(
    ("data", "secret_labels", "message"),
    [
        (
            {"kubeconfig": yaml.safe_dump(KUBECONFIG)},
            {"llmfleet.io/cluster": "true"},
            "label llmfleet.io/location is 'missing'; set it to one of cloud, onprem, edge, mixed",
        ),
        (
            {"kubeconfig": yaml.safe_dump(KUBECONFIG)},
            LLMFLEET | {"llmfleet.io/location": "moon"},
            "label llmfleet.io/location is 'moon'",
        ),
        ({"token": "x"}, LLMFLEET, "holds neither a `kubeconfig` key"),
        ({"kubeconfig": "clusters: []"}, LLMFLEET, "key `kubeconfig` has no clusters"),
        ({"kubeconfig": "a: [b"}, LLMFLEET, "key `kubeconfig` is not valid YAML"),
        ({"server": "https://x", "config": "{nope"}, ARGOCD, "key `config` is not JSON"),
        ({"server": "https://x", "config": "[1]"}, ARGOCD, "key `config` must be a JSON object"),
    ],
    ids=[
        "no-location",
        "bad-location",
        "no-credentials",
        "empty-kubeconfig",
        "bad-yaml",
        "bad-json",
        "json-not-object",
    ],
)
def test_unusable_secrets_say_what_to_fix(
    data: dict[str, str], secret_labels: dict[str, str], message: str
) -> None:
    with pytest.raises(MemberSecretError, match="Secret llmfleet-system/member") as error:
        member_from_secret(secret(data, **secret_labels))
    assert message in str(error.value)


def test_non_base64_data_is_reported() -> None:
    bad = {"metadata": {"name": "m", "namespace": "ns", "labels": LLMFLEET}, "data": {"k": "***"}}
    with pytest.raises(MemberSecretError, match="not base64"):
        member_from_secret(bad)


@pytest.mark.parametrize(
    ("secret_labels", "expected"),
    [(LLMFLEET, True), (ARGOCD, True), ({"llmfleet.io/cluster": "false"}, False), ({}, False)],
)
def test_member_secrets_are_recognised_by_label(
    secret_labels: dict[str, str], expected: bool
) -> None:
    assert is_member_secret(secret_labels) is expected


def test_a_member_names_its_own_prometheus_by_annotation() -> None:
    found = secret({"kubeconfig": yaml.safe_dump(KUBECONFIG)}, **LLMFLEET)
    assert member_from_secret(found).prometheus_url == ""  # the operator's --prometheus-url
    found["metadata"]["annotations"] = {"llmfleet.io/prometheus-url": " http://prom.hci:9090 "}
    assert member_from_secret(found).prometheus_url == "http://prom.hci:9090"
    found["metadata"]["annotations"] = {"llmfleet.io/prometheus-url": "prom.hci:9090"}
    with pytest.raises(MemberSecretError, match=r"annotation llmfleet\.io/prometheus-url is"):
        member_from_secret(found)
