"""llmfleet's hooks for the LiteLLM proxy in a ChatEndpoint gateway pod.

- `user_api_key_auth`: the bearer key must equal the endpoint's master key (401 otherwise,
  with no database), and carries the endpoint's requests/tokens-per-minute limits (429 past
  them, enforced in memory by the proxy). `GET /metrics` stays open to the scraper.
- `guard`: rejects prompts over `maxInputTokens`, and prompt-injection attempts when the
  endpoint's mode is `block` (`flag` logs them and lets them through). A request it lets
  through counts as demand for the LLMDeployments behind its model group
  (`llmfleet_gateway_requests_total{llmdeployment}` on `/metrics/`, what scales a model up
  from zero), and a request for a model group that is starting is answered at once with 503
  and `Retry-After`: that request is the wake-up, it does not wait for the model.

Settings come from the environment the operator renders; nothing here is secret:
- `LLMFLEET_WAKES`: JSON `{"<model group>": ["<LLMDeployment>", ...]}`, the LLMDeployments
  whose request counter a request for the group increments;
- `LLMFLEET_STARTING`: JSON `{"<model group>": "<message>"}`, the groups answered with 503
  and that message;
- `LLMFLEET_RETRY_AFTER_SECONDS`: the 503's `Retry-After` (10 by default).
"""

from __future__ import annotations

import hmac
import json
import logging
import math
import os
import re
from typing import Any

from fastapi import HTTPException, Request
from litellm.integrations.custom_logger import CustomLogger
from litellm.proxy._types import ProxyException, UserAPIKeyAuth
from prometheus_client import REGISTRY, Counter

log = logging.getLogger("llmfleet.gateway")

AUTH_REQUIRED = os.environ.get("LLMFLEET_AUTH_REQUIRED", "false") == "true"
RPM_LIMIT = int(os.environ.get("LLMFLEET_RPM_LIMIT", "0")) or None
TPM_LIMIT = int(os.environ.get("LLMFLEET_TPM_LIMIT", "0")) or None
MAX_INPUT_TOKENS = int(os.environ.get("LLMFLEET_MAX_INPUT_TOKENS", "0")) or None
PROMPT_INJECTION = os.environ.get("LLMFLEET_PROMPT_INJECTION", "block")
# About four characters per token for English text: a bound, not a tokenizer.
CHARS_PER_TOKEN = 4
REQUESTS_METRIC = "llmfleet_gateway_requests_total"


def wakes_setting(raw: str) -> dict[str, tuple[str, ...]]:
    """`LLMFLEET_WAKES`: the LLMDeployments behind each model group, each named once."""
    value = json.loads(raw or "{}")
    if not isinstance(value, dict) or not all(
        isinstance(names, list) and all(isinstance(n, str) and n for n in names)
        for names in value.values()
    ):
        raise ValueError(f"LLMFLEET_WAKES must map model groups to lists of names: {raw!r}")
    return {str(group): tuple(dict.fromkeys(names)) for group, names in value.items()}


def starting_setting(raw: str) -> dict[str, str]:
    """`LLMFLEET_STARTING`: the message of each model group that is starting."""
    value = json.loads(raw or "{}")
    if not isinstance(value, dict) or not all(isinstance(m, str) for m in value.values()):
        raise ValueError(f"LLMFLEET_STARTING must map model groups to messages: {raw!r}")
    return {str(group): message for group, message in value.items()}


def requests_counter() -> Counter:
    """The counter, registered once in the default registry, the one the proxy's `/metrics/`
    serves. LiteLLM loads this file once per setting that names it (the auth hook and the
    callback), so a second load finds the counter the first one registered."""
    try:
        return Counter(
            REQUESTS_METRIC,
            "Requests for a model group that passed auth and the guard (a starting group's 503s"
            " included), by LLMDeployment behind the group",
            ["llmdeployment"],
        )
    except ValueError:  # already registered by another load of this file
        existing = REGISTRY._names_to_collectors[REQUESTS_METRIC]
        if not isinstance(existing, Counter):
            raise
        return existing


WAKES = wakes_setting(os.environ.get("LLMFLEET_WAKES", ""))
STARTING = starting_setting(os.environ.get("LLMFLEET_STARTING", ""))
RETRY_AFTER_SECONDS = max(int(os.environ.get("LLMFLEET_RETRY_AFTER_SECONDS", "") or 10), 1)
REQUESTS = requests_counter()
# Every series exists from the start at 0, so the first request shows as an increase.
for _names in WAKES.values():
    for _name in _names:
        REQUESTS.labels(llmdeployment=_name)

INJECTION = re.compile(
    r"\b(ignore|disregard|forget)\b.{0,20}\b(previous|prior|above|earlier|all)\b.{0,20}"
    r"\b(instructions?|prompts?|rules)\b"
    r"|\breveal\b.{0,20}\bsystem prompt\b"
    r"|\byou are now\b.{0,20}\b(DAN|jailbroken|in developer mode)\b",
    re.IGNORECASE | re.DOTALL,
)


async def user_api_key_auth(request: Request, api_key: str) -> UserAPIKeyAuth:
    presented = (api_key or "").removeprefix("Bearer ").strip()
    # Metrics are for the scraper, which the NetworkPolicy already limits to its namespace.
    is_metrics = request.method == "GET" and request.url.path.startswith("/metrics")
    if AUTH_REQUIRED and not is_metrics:
        expected = os.environ.get("LITELLM_MASTER_KEY", "")
        if not presented or not hmac.compare_digest(presented.encode(), expected.encode()):
            raise HTTPException(status_code=401, detail="missing or invalid API key")
    return UserAPIKeyAuth(
        api_key=presented or "anonymous", rpm_limit=RPM_LIMIT, tpm_limit=TPM_LIMIT
    )


def prompt_text(data: dict[str, Any]) -> str:
    parts: list[str] = []
    for message in data.get("messages") or []:
        content = message.get("content")
        if isinstance(content, str):
            parts.append(content)
        elif isinstance(content, list):
            parts += [c.get("text", "") for c in content if isinstance(c, dict)]
    prompt = data.get("prompt")
    if isinstance(prompt, str):
        parts.append(prompt)
    return "\n".join(parts)


class Guard(CustomLogger):  # type: ignore[misc]
    async def async_pre_call_hook(
        self, user_api_key_dict: UserAPIKeyAuth, cache: Any, data: dict[str, Any], call_type: str
    ) -> dict[str, Any]:
        text = prompt_text(data)
        if MAX_INPUT_TOKENS and math.ceil(len(text) / CHARS_PER_TOKEN) > MAX_INPUT_TOKENS:
            raise HTTPException(
                status_code=400,
                detail=f"the prompt is over this endpoint's limit of {MAX_INPUT_TOKENS} tokens",
            )
        if PROMPT_INJECTION != "off" and INJECTION.search(text):
            if PROMPT_INJECTION == "block":
                raise HTTPException(status_code=400, detail="rejected: prompt injection detected")
            log.warning("prompt injection suspected (flag mode: request passed)")
            data.setdefault("metadata", {})["llmfleet_prompt_injection"] = "flagged"
        group = str(data.get("model") or "")
        for name in WAKES.get(group, ()):
            REQUESTS.labels(llmdeployment=name).inc()
        if group in STARTING:
            # The proxy's own error type: every route answers with its status, message and
            # headers as they are (an HTTPException loses its headers on /v1/completions).
            raise ProxyException(
                message=STARTING[group],
                type="service_unavailable",
                param=None,
                code=503,
                headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
            )
        return data


guard = Guard()
