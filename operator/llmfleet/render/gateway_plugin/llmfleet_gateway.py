"""llmfleet's hooks for the LiteLLM proxy in a ChatEndpoint gateway pod.

- `user_api_key_auth`: the bearer key must equal the endpoint's master key (401 otherwise,
  with no database), and carries the endpoint's requests/tokens-per-minute limits (429 past
  them, enforced in memory by the proxy). `GET /metrics` stays open to the scraper.
- `guard`: rejects prompts over `maxInputTokens`, and prompt-injection attempts when the
  endpoint's mode is `block` (`flag` logs them and lets them through).

Settings come from the environment the operator renders; nothing here is secret.
"""

from __future__ import annotations

import hmac
import logging
import math
import os
import re
from typing import Any

from fastapi import HTTPException, Request
from litellm.integrations.custom_logger import CustomLogger
from litellm.proxy._types import UserAPIKeyAuth

log = logging.getLogger("llmfleet.gateway")

AUTH_REQUIRED = os.environ.get("LLMFLEET_AUTH_REQUIRED", "false") == "true"
RPM_LIMIT = int(os.environ.get("LLMFLEET_RPM_LIMIT", "0")) or None
TPM_LIMIT = int(os.environ.get("LLMFLEET_TPM_LIMIT", "0")) or None
MAX_INPUT_TOKENS = int(os.environ.get("LLMFLEET_MAX_INPUT_TOKENS", "0")) or None
PROMPT_INJECTION = os.environ.get("LLMFLEET_PROMPT_INJECTION", "block")
# About four characters per token for English text: a bound, not a tokenizer.
CHARS_PER_TOKEN = 4

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
        return data


guard = Guard()
