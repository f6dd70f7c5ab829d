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
- `output_guard` (in the proxy's callbacks only when the endpoint's `guardrails.output` is
  redact or block): finds secrets (API keys, cloud and chat tokens, JWTs, bearer tokens,
  private keys) and personal data (e-mail addresses, phone numbers, the endpoint's own
  `outputPatterns`) in answers, whole and streamed, and replaces each with
  `[REDACTED:<kind>]` (redact) or refuses the answer with 400 (block), counted in
  `llmfleet_gateway_output_guard_total{model,action,kind}`. A streamed answer is held back by
  at most what a secret could still be part of (see `HeldText`). With the guard on, the
  gateway serves only the calls whose answers it reads (chat completions, completions) and
  embeddings.

Settings come from the environment the operator renders; nothing here is secret:
- `LLMFLEET_WAKES`: JSON `{"<model group>": ["<LLMDeployment>", ...]}`, the LLMDeployments
  whose request counter a request for the group increments;
- `LLMFLEET_STARTING`: JSON `{"<model group>": "<message>"}`, the groups answered with 503
  and that message;
- `LLMFLEET_RETRY_AFTER_SECONDS`: the 503's `Retry-After` (10 by default);
- `LLMFLEET_OUTPUT_GUARD`: redact or block (off when unset);
- `LLMFLEET_OUTPUT_PATTERNS`: JSON `[{"name": "<kind>", "regex": "<expression>"}, ...]`, the
  endpoint's own patterns (checked by the operator: bounded, no backtracking blow-up);
- `LLMFLEET_MODEL_ALIAS`: the endpoint's model name, whose output-guard series exist from the
  start.
"""

from __future__ import annotations

import copy
import hmac
import importlib
import json
import logging
import math
import os
import re
from collections.abc import AsyncGenerator, AsyncIterator, Hashable, Iterator, Sequence
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


def counter(name: str, documentation: str, labels: Sequence[str]) -> Counter:
    """A counter, registered once in the default registry, the one the proxy's `/metrics/`
    serves. LiteLLM loads this file once per setting that names it (the auth hook and each
    callback), so a second load finds the counter the first one registered."""
    try:
        return Counter(name, documentation, list(labels))
    except ValueError:  # already registered by another load of this file
        existing = REGISTRY._names_to_collectors[name]
        if not isinstance(existing, Counter):
            raise
        return existing


def requests_counter() -> Counter:
    return counter(
        REQUESTS_METRIC,
        "Requests for a model group that passed auth and the guard (a starting group's 503s"
        " included), by LLMDeployment behind the group",
        ["llmdeployment"],
    )


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


# ---------------------------------------------------------------------------------------------
# Output guard: secrets and personal data in answers.

OUTPUT_METRIC = "llmfleet_gateway_output_guard_total"
ACTIONS = {"redact": "redacted", "block": "blocked"}
# Calls whose answers the output guard reads, and embeddings (vectors: no text to guard).
GUARDED_CALLS = frozenset(
    {"completion", "acompletion", "text_completion", "atext_completion", "embedding", "aembedding"}
)
_KEY_CHAR = r"[A-Za-z0-9_-]"
_PEM_LABEL = r"[A-Z0-9 ]{0,40}PRIVATE KEY(?: BLOCK)?-----"
# (kind, expression). Secrets first, then personal data: where two start at the same character
# the first wins. Each starts with a literal or a character class behind a lookbehind and has
# no nested quantifier, so a text is scanned in time proportional to its length. Where a
# `value` group is present, only it is replaced (the label before it stays).
BUILTIN_PATTERNS: tuple[tuple[str, str], ...] = (
    (
        "private-key",
        # The BEGIN line, the body (base64, PEM headers, escaped newlines) and the END line if
        # it follows; a body without its END line is taken as far as it goes.
        (
            rf"-----BEGIN{_PEM_LABEL}(?:[A-Za-z0-9+/=\s:,\\]|-(?!----)){{0,16384}}"
            rf"(?:-----END{_PEM_LABEL})?"
        ),
    ),
    # OpenAI (sk-, sk-proj-, sk-svcacct-), Anthropic (sk-ant-) and the like.
    ("api-key", rf"(?<!{_KEY_CHAR})sk-{_KEY_CHAR}{{32,}}"),
    ("aws-access-key", r"(?<![A-Za-z0-9])(?:AKIA|ASIA)[A-Z0-9]{16}(?![A-Za-z0-9])"),
    (
        "aws-secret-key",
        (
            r"(?i:aws_?secret_?(?:access_?)?key)[\"']?[ \t]{0,4}[:=][ \t]{0,4}[\"']?"
            r"(?P<value>[A-Za-z0-9/+]{40})(?![A-Za-z0-9/+])"
        ),
    ),
    (
        "github-token",
        r"(?<![A-Za-z0-9_])(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{22,})",
    ),
    ("slack-token", r"(?<![A-Za-z0-9-])xox[abposr]-[A-Za-z0-9-]{10,}"),
    ("google-api-key", rf"(?<!{_KEY_CHAR})AIza{_KEY_CHAR}{{35}}(?!{_KEY_CHAR})"),
    ("jwt", rf"(?<!{_KEY_CHAR})eyJ{_KEY_CHAR}{{8,}}\.eyJ{_KEY_CHAR}{{8,}}\.{_KEY_CHAR}*"),
    ("bearer-token", r"\b(?i:bearer)[ \t]{1,8}(?P<value>[A-Za-z0-9._~+/-]{20,}=*)"),
    (
        "email",
        (
            r"(?<![A-Za-z0-9._%+-])[A-Za-z0-9._%+-]{1,64}@(?:[A-Za-z0-9-]{1,63}\.){1,8}"
            r"[A-Za-z]{2,24}(?![A-Za-z0-9-])"
        ),
    ),
    (
        "phone",
        # International (+ and a country code), and North American (555-123-4567,
        # (555) 123-4567) numbers.
        (
            r"(?<![A-Za-z0-9+])(?:\+[1-9][0-9]{0,2}[ .-]?(?:\([0-9]{1,4}\)[ .-]?)?[0-9]{2,4}"
            r"(?:[ .-]?[0-9]{2,4}){2,4}"
            r"|(?:\([0-9]{3}\)[ .-]?|[0-9]{3}[ .-])[0-9]{3}[ .-][0-9]{4}(?![0-9]))"
        ),
    ),
)
# The longest text with whitespace in it that a built-in pattern reads before it matches (a
# private key's BEGIN line, an AWS secret key with its label, a phone number): a streamed
# answer holds back this much, plus the word being written and any match that may still grow.
# An endpoint's own patterns raise it to their longest match.
HOLD_CHARS = 80
# Held text is looked at again once this much more has arrived (or, for a long hold, once it
# has doubled): text goes out in steps of about this many characters, and each character is
# scanned a bounded number of times (about (HOLD_CHARS + RELEASE_STEP) / RELEASE_STEP).
RELEASE_STEP = 16
# Held text beyond this is released anyway (a match that long is redacted as it stands).
MAX_HELD_CHARS = 32_768


def output_patterns_setting(raw: str) -> tuple[tuple[str, str], ...]:
    """`LLMFLEET_OUTPUT_PATTERNS`: the endpoint's own patterns, each a kind and an expression."""
    value = json.loads(raw or "[]")
    if not isinstance(value, list) or not all(
        isinstance(p, dict)
        and isinstance(p.get("name"), str)
        and p["name"]
        and isinstance(p.get("regex"), str)
        and p["regex"]
        for p in value
    ):
        raise ValueError(f"LLMFLEET_OUTPUT_PATTERNS must list names and regexes: {raw!r}")
    return tuple((p["name"], p["regex"]) for p in value)


def longest_match(regex: str) -> int:
    """The most characters `regex` can match."""
    return int(importlib.import_module("re._parser").parse(regex).getwidth()[1])


class Scanner:
    """Every pattern in one expression: one pass over a text finds them all."""

    def __init__(self, extra: Sequence[tuple[str, str]] = ()) -> None:
        patterns = [*BUILTIN_PATTERNS, *extra]
        self.expression = re.compile(
            "|".join(
                f"(?P<k{i}>{regex.replace('(?P<value>', f'(?P<v{i}>')})"
                for i, (_, regex) in enumerate(patterns)
            )
        )
        index = self.expression.groupindex
        self.kinds = {index[f"k{i}"]: kind for i, (kind, _) in enumerate(patterns)}
        self.values = {index[f"k{i}"]: index.get(f"v{i}") for i in range(len(patterns))}
        self.names = tuple(dict.fromkeys(kind for kind, _ in patterns))
        self.hold = max([HOLD_CHARS, *(longest_match(regex) for _, regex in extra)])

    def find(self, text: str, start: int = 0) -> list[re.Match[str]]:
        return list(self.expression.finditer(text, start))

    def kind(self, match: re.Match[str]) -> str:
        return self.kinds[match.lastindex or 0]

    def redact(self, text: str, matches: Sequence[re.Match[str]], start: int, end: int) -> str:
        """text[start:end] with each match (or its value) replaced by [REDACTED:<kind>]."""
        parts, at = [], start
        for match in matches:
            value = self.values[match.lastindex or 0]
            first, last = match.span(value) if value and match.start(value) >= 0 else match.span()
            parts += [text[at:first], f"[REDACTED:{self.kind(match)}]"]
            at = last
        parts.append(text[at:end])
        return "".join(parts)


class OutputBlocked(ProxyException):  # type: ignore[misc]
    """An answer refused by the output guard: 400, the status of a refused request that a
    retry will not change. `status_code` is what the proxy puts in the error that ends a
    stream (or in the 400 that replaces one whose first chunk never went out)."""

    def __init__(self, kind: str) -> None:
        super().__init__(
            message=f"the answer was withheld: it contains a secret or personal data ({kind}),"
            " which this endpoint's output guard blocks",
            type="content_policy_violation",
            param=None,
            code=400,
        )
        self.status_code = 400


class HeldText:
    """One streamed text (a choice's content, reasoning or tool-call arguments), released as
    soon as no secret can still begin in it.

    Held back: the last `hold` characters (what a pattern with whitespace in it reads before
    it matches), the word being written (keys, tokens and addresses have no whitespace, so a
    split one is whole before it goes out), and any match that may still grow (a private key
    until its END line). Everything else goes out redacted, or, in block mode, the first match
    stops the stream before any of it has gone out. Held text is looked at again once
    RELEASE_STEP more characters have arrived, or a long hold has doubled: each character is
    scanned a bounded number of times."""

    def __init__(self, guard: OutputGuard, model: str, call: Any = None) -> None:
        self.guard, self.model, self.call = guard, model, call
        self.pending = ""
        self.before = ""  # the last character released: what the patterns' lookbehinds see
        self.scan_at = guard.scanner.hold + RELEASE_STEP

    def feed(self, text: str) -> str:
        self.pending += text
        if not self.pending or len(self.pending) < self.scan_at:
            return ""
        return self._release(final=False)

    def flush(self) -> str:
        return self._release(final=True) if self.pending else ""

    def _release(self, final: bool) -> str:
        scanner = self.guard.scanner
        text = self.before + self.pending
        start, end = len(self.before), len(text)
        matches = scanner.find(text, start)
        if self.guard.blocks:
            # A match at the very end may still turn out not to be one (AKIA... followed by
            # more letters): it is held, and decides once the text after it has arrived.
            settled = [m for m in matches if final or m.end() < end]
            if settled:
                raise self.guard.blocked(self.model, scanner.kind(settled[0]))
        cut = end if final else self._cut(text, start, matches)
        done = [m for m in matches if m.end() <= cut]
        self.guard.count(self.model, [scanner.kind(m) for m in done])
        released = scanner.redact(text, done, start, cut)
        if cut > start:
            self.before = text[cut - 1]
        self.pending = text[cut:]
        held = len(self.pending)
        self.scan_at = held + max(RELEASE_STEP, held - scanner.hold)
        return released

    def _cut(self, text: str, start: int, matches: Sequence[re.Match[str]]) -> int:
        """Where the text that can go out ends."""
        end = len(text)
        cut = end - self.guard.scanner.hold
        forced = end - start > MAX_HELD_CHARS
        if not forced:
            word = end
            while word > start and not text[word - 1].isspace():
                word -= 1
            cut = min(cut, word)
        cut = max(cut, start)
        for match in matches:
            if match.start() < cut < match.end():
                cut = match.end() if forced else match.start()
        return cut


def _get(obj: Any, name: str) -> Any:
    return obj.get(name) if isinstance(obj, dict) else getattr(obj, name, None)


def _set(obj: Any, name: str, value: Any) -> None:
    if isinstance(obj, dict):
        obj[name] = value
    else:
        setattr(obj, name, value)


def _texts(choice: Any, streamed: bool) -> Iterator[tuple[Hashable, Any, str, Any]]:
    """The texts of one choice of an answer: (key, holder, attribute, tool call), for its
    content, reasoning, tool-call arguments (chat) and text (completions)."""
    message = _get(choice, "delta" if streamed else "message")
    if message is not None:
        yield "content", message, "content", None
        yield "reasoning_content", message, "reasoning_content", None
        for position, call in enumerate(_get(message, "tool_calls") or ()):
            function = _get(call, "function")
            if function is not None:
                index = _get(call, "index")
                yield ("tool", position if index is None else index), function, "arguments", call
    yield "text", choice, "text", None


def _place(choice: Any, key: Hashable, text: str, call: Any) -> None:
    """Adds released text to a streamed choice that does not carry that text itself."""
    if key == "text":
        _set(choice, "text", (_get(choice, "text") or "") + text)
        return
    delta = _get(choice, "delta")
    if not isinstance(key, tuple):
        _set(delta, str(key), (_get(delta, str(key)) or "") + text)
        return
    added = copy.deepcopy(call)  # the tool call's own delta, with only the arguments left
    _set(added, "id", None)
    function = _get(added, "function")
    _set(function, "name", None)
    _set(function, "arguments", text)
    _set(delta, "tool_calls", [*(_get(delta, "tool_calls") or ()), added])


def _clear(choice: Any) -> None:
    delta = _get(choice, "delta")
    if delta is not None:
        for name in ("content", "reasoning_content", "tool_calls"):
            if _get(delta, name) is not None:
                _set(delta, name, None)
    if _get(choice, "text") is not None:
        _set(choice, "text", None)


def _model(data: dict[str, Any]) -> str:
    return str(data.get("model") or MODEL_ALIAS)


class OutputGuard(CustomLogger):  # type: ignore[misc]
    """Redacts secrets and personal data in answers, or refuses the answers that have any."""

    def __init__(
        self, mode: str, patterns: Sequence[tuple[str, str]] = (), model: str = ""
    ) -> None:
        super().__init__()
        if mode not in ACTIONS:
            raise ValueError(f"LLMFLEET_OUTPUT_GUARD must be off, redact or block: {mode!r}")
        self.blocks = mode == "block"
        self.action = ACTIONS[mode]
        self.scanner = Scanner(patterns)
        # Every series exists from the start at 0, so the first finding shows as an increase.
        if model:
            for kind in self.scanner.names:
                OUTPUT.labels(model=model, action=self.action, kind=kind)

    def count(self, model: str, kinds: Sequence[str]) -> None:
        for kind in kinds:
            OUTPUT.labels(model=model, action=self.action, kind=kind).inc()
        if kinds:
            log.info("output guard: %s %s in an answer of %s", self.action, kinds, model)

    def blocked(self, model: str, kind: str) -> OutputBlocked:
        self.count(model, [kind])
        return OutputBlocked(kind)

    def guarded(self, text: str, model: str) -> str:
        """A whole text, redacted (or refused)."""
        matches = self.scanner.find(text)
        if not matches:
            return text
        if self.blocks:
            raise self.blocked(model, self.scanner.kind(matches[0]))
        self.count(model, [self.scanner.kind(m) for m in matches])
        return self.scanner.redact(text, matches, 0, len(text))

    async def async_pre_call_hook(
        self, user_api_key_dict: UserAPIKeyAuth, cache: Any, data: dict[str, Any], call_type: Any
    ) -> dict[str, Any]:
        kind = str(getattr(call_type, "value", call_type))
        if kind not in GUARDED_CALLS:
            raise HTTPException(
                status_code=400,
                detail=f"this endpoint guards its answers and serves chat completions, "
                f"completions and embeddings only, not {kind}",
            )
        return data

    async def async_post_call_success_hook(
        self, data: dict[str, Any], user_api_key_dict: UserAPIKeyAuth, response: Any
    ) -> Any:
        model = _model(data)
        for choice in _get(response, "choices") or ():
            for _, holder, name, _ in _texts(choice, streamed=False):
                text = _get(holder, name)
                if isinstance(text, str) and text:
                    _set(holder, name, self.guarded(text, model))
        return response

    async def async_post_call_streaming_iterator_hook(
        self,
        user_api_key_dict: UserAPIKeyAuth,
        response: AsyncIterator[Any],
        request_data: dict[str, Any],
    ) -> AsyncGenerator[Any, None]:
        model = _model(request_data)
        held: dict[tuple[int, Hashable], HeldText] = {}
        last = None
        # Chunks wait until some text has gone out: an answer refused before that is refused
        # with a plain 400, not a 200 whose stream ends with an error.
        waiting: list[Any] | None = []
        async for chunk in response:
            choices = _get(chunk, "choices") or ()
            for choice in choices:
                self._guard_choice(choice, held, model)
            if choices:
                last = chunk
            if waiting is None:
                yield chunk
                continue
            waiting.append(chunk)
            if any(stream.before for stream in held.values()):
                for item in waiting:
                    yield item
                waiting = None
        for item in waiting or ():
            yield item
        extra = _rest(last, held)
        if extra is not None:
            yield extra

    def _guard_choice(
        self, choice: Any, held: dict[tuple[int, Hashable], HeldText], model: str
    ) -> None:
        """Replaces the texts of a streamed choice with what may go out now; the choice's last
        chunk (the one with a finish reason) carries everything still held."""
        index = _get(choice, "index") or 0
        finished = _get(choice, "finish_reason") is not None
        carried = set()
        for key, holder, name, call in _texts(choice, streamed=True):
            text = _get(holder, name)
            if not isinstance(text, str):
                continue
            stream = held.get((index, key))
            if stream is None:
                stream = held[(index, key)] = HeldText(self, model, call)
            released = stream.feed(text)
            if finished:
                released += stream.flush()
            _set(holder, name, released)
            carried.add(key)
        if finished:
            for (owner, key), stream in held.items():
                if owner == index and key not in carried and stream.pending:
                    _place(choice, key, stream.flush(), stream.call)


def _rest(last: Any, held: dict[tuple[int, Hashable], HeldText]) -> Any:
    """For an answer that ended without a finish reason: one more chunk, a copy of the last
    one with only what is still held (None when nothing is)."""
    rest = [(index, key, s) for (index, key), s in held.items() if s.pending]
    if not rest or last is None:
        return None
    extra = copy.deepcopy(last)
    by_index = {(_get(c, "index") or 0): c for c in _get(extra, "choices")}
    for choice in by_index.values():
        _clear(choice)
    for index, key, stream in rest:
        if index in by_index:
            _place(by_index[index], key, stream.flush(), stream.call)
    return extra


OUTPUT_GUARD = os.environ.get("LLMFLEET_OUTPUT_GUARD", "") or "off"
MODEL_ALIAS = os.environ.get("LLMFLEET_MODEL_ALIAS", "")
OUTPUT = counter(
    OUTPUT_METRIC,
    "Secrets and personal data the output guard found in answers, by model, action (redacted:"
    " each occurrence; blocked: each refused answer) and kind",
    ["model", "action", "kind"],
)
# Only in the proxy's callbacks when the endpoint's output guard is on: off costs nothing.
output_guard = (
    OutputGuard(
        OUTPUT_GUARD,
        output_patterns_setting(os.environ.get("LLMFLEET_OUTPUT_PATTERNS", "")),
        MODEL_ALIAS,
    )
    if OUTPUT_GUARD != "off"
    else None
)
