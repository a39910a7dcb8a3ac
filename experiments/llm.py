"""A client for any OpenAI-compatible chat-completions endpoint (OpenAI, vLLM, Ollama, llama.cpp server).

The endpoint and key come from the environment (`LLM_BASE_URL`, `LLM_API_KEY`,
`LLM_MODEL`) when set, else from what an Admin saved on the Evaluation provider
page (`provider_effective`); a version's config may choose the model and
sampling parameters but never where the key is sent. Calls time out, retry with exponential
backoff on 429 / 5xx / network errors (honouring `Retry-After`), and at most
`concurrency` run at once per client.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx
from django.conf import settings

# Keys of a version's config that are passed to the provider as request parameters.
REQUEST_PARAMS = (
    "temperature",
    "top_p",
    "max_tokens",
    "stop",
    "seed",
    "presence_penalty",
    "frequency_penalty",
    "response_format",
)
# The numeric request parameters' ranges (OpenAI's); a value outside is refused before anything is sent.
PARAM_RANGES: dict[str, tuple[type, float, float]] = {
    "temperature": (float, 0, 2),
    "top_p": (float, 0, 1),
    "max_tokens": (int, 1, 1_000_000),
    "seed": (int, -(2**63), 2**63 - 1),
    "presence_penalty": (float, -2, 2),
    "frequency_penalty": (float, -2, 2),
}
RETRY_STATUSES = {408, 409, 429, 500, 502, 503, 504}
MAX_RETRY_AFTER = 30.0
NO_PROVIDER = (
    "No LLM provider is configured: an Admin sets it on the Evaluation provider page "
    "(/experiments/provider/), or set LLM_BASE_URL."
)


def param_problem(key: str, value: Any) -> str | None:
    """What is wrong with a model or request parameter's value, as a sentence; None when it can be sent."""
    if key in PARAM_RANGES:
        kind, low, high = PARAM_RANGES[key]
        number = isinstance(value, int) or (kind is float and isinstance(value, float))
        if isinstance(value, bool) or not number or not low <= value <= high:
            what = "a whole number" if kind is int else "a number"
            return f"'{key}' must be {what} from {low:,} to {high:,}, not {json.dumps(value)[:40]}"
    elif key == "model" and not (isinstance(value, str) and value.strip()):
        return "'model' must be a model name (text)"
    elif key == "stop" and not (
        isinstance(value, str) or (isinstance(value, list) and all(isinstance(s, str) for s in value))
    ):
        return "'stop' must be text or a list of text"
    elif key == "response_format" and not isinstance(value, dict):
        return '\'response_format\' must be an object, like {"type": "json_object"}'
    return None


def shown_url(base_url: str) -> str:
    """Where the provider is, for messages anyone may read: scheme://host[:port] only, never the credentials or the
    query a base URL may carry (`https://user:pass@host/v1?key=…`)."""
    try:
        parts = urlsplit(base_url)
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "(its configured address)"
    host = f"[{parts.hostname}]" if parts.hostname and ":" in parts.hostname else parts.hostname
    return f"{parts.scheme}://{host}{port}" if parts.scheme and host else "(its configured address)"


class ProviderError(Exception):
    """The provider could not give an answer, after retries where retrying made sense."""


class ProviderTimeout(ProviderError):
    """The last attempt ran out of time (the playground's API answers it with a 504)."""


@dataclass(frozen=True)
class ChatResult:
    content: str
    latency_ms: float
    prompt_tokens: int | None
    completion_tokens: int | None


@dataclass(frozen=True)
class Provider:
    base_url: str
    api_key: str
    model: str
    source: str  # "environment", "dashboard" or "" (none)


def provider_effective() -> Provider:
    """The provider evaluations use: the environment's when `LLM_BASE_URL` is set (it wins), else the dashboard's."""
    if settings.LLM_BASE_URL:
        return Provider(settings.LLM_BASE_URL, settings.LLM_API_KEY, settings.LLM_MODEL, "environment")
    from experiments.models import ProviderSettings  # models import nothing from here; llm stays importable alone

    stored = ProviderSettings.load()
    if stored.base_url:
        return Provider(stored.base_url, stored.api_key(), stored.model or settings.LLM_MODEL, "dashboard")
    return Provider("", "", settings.LLM_MODEL, "")


@dataclass(frozen=True)
class LLMConfig:
    base_url: str
    api_key: str = ""
    model: str = ""
    timeout: float = 30.0
    max_retries: int = 3
    backoff: float = 0.5
    concurrency: int = 16
    params: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def for_version(cls, version_config: dict[str, Any] | None = None) -> LLMConfig:
        """The provider in use, with the model and request parameters a version's config names."""
        version_config = version_config or {}
        provider = provider_effective()
        return cls(
            base_url=provider.base_url,
            api_key=provider.api_key,
            model=str(version_config.get("model") or provider.model),
            timeout=settings.LLM_TIMEOUT,
            max_retries=settings.LLM_MAX_RETRIES,
            backoff=settings.LLM_BACKOFF,
            concurrency=settings.LLM_CONCURRENCY,
            params={k: version_config[k] for k in REQUEST_PARAMS if k in version_config},
        )


class LLMClient:
    """Thread-safe: one client is shared by the threads of an evaluation run."""

    def __init__(self, config: LLMConfig):
        if not config.base_url:
            raise ProviderError(NO_PROVIDER)
        self.config = config
        self.url = config.base_url.rstrip("/") + "/chat/completions"
        self._slots = threading.BoundedSemaphore(config.concurrency)
        headers = {"Authorization": f"Bearer {config.api_key}"} if config.api_key else {}
        self._http = httpx.Client(
            headers=headers,
            timeout=httpx.Timeout(config.timeout, connect=min(config.timeout, 5.0)),
            limits=httpx.Limits(max_connections=config.concurrency, max_keepalive_connections=config.concurrency),
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> LLMClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def chat(self, messages: list[dict[str, Any]], **params: Any) -> ChatResult:
        """One completion; latency covers the successful attempt only."""
        body = {"model": self.config.model, "messages": messages, **self.config.params, **params}
        last_error, retry_after, timed_out = "", None, False
        for attempt in range(self.config.max_retries + 1):
            if attempt:
                delay = self.config.backoff * 2 ** (attempt - 1)
                time.sleep(max(delay, min(retry_after or 0.0, MAX_RETRY_AFTER)))
                retry_after = None
            with self._slots:
                started = time.perf_counter()
                try:
                    response = self._http.post(self.url, json=body)
                except httpx.TimeoutException:
                    last_error, timed_out = f"timed out after {self.config.timeout:g} s", True
                    continue
                except httpx.TransportError as exc:
                    reason = self._scrub(f"{exc.__class__.__name__}: {exc}")
                    last_error, timed_out = f"could not connect ({reason})", False
                    continue
                latency_ms = (time.perf_counter() - started) * 1000
            if response.status_code in RETRY_STATUSES:
                last_error, timed_out = f"HTTP {response.status_code}", False
                retry_after = _retry_after(response)
                continue
            if response.status_code >= 400:
                raise ProviderError(
                    f"The LLM provider refused the request: HTTP {response.status_code} {_short(response.text)}"
                )
            return _parse(response, latency_ms)
        attempts = self.config.max_retries + 1
        tries = f"failed {attempts} times; last error" if attempts > 1 else "failed"
        raise (ProviderTimeout if timed_out else ProviderError)(
            f"The LLM provider at {shown_url(self.config.base_url)} {tries}: {last_error}."
        )

    def _scrub(self, text: str) -> str:
        """`text` without the base URL's secrets: the URL itself, its password and its query."""
        parts = urlsplit(self.config.base_url)
        for secret in (self.config.base_url, parts.password, parts.query):
            if secret:
                text = text.replace(secret, "…")
        return text


def _retry_after(response: httpx.Response) -> float | None:
    try:
        return float(response.headers.get("Retry-After", ""))
    except ValueError:
        return None


def _short(text: str, limit: int = 200) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit] + "…"


def _parse(response: httpx.Response, latency_ms: float) -> ChatResult:
    try:
        data = response.json()
        content = data["choices"][0]["message"]["content"]
    except (ValueError, KeyError, IndexError, TypeError):
        raise ProviderError(
            f"The LLM provider sent a malformed response (not a chat completion): {_short(response.text)}"
        ) from None
    if content is None:
        content = ""
    if not isinstance(content, str):
        raise ProviderError("The LLM provider sent a malformed response: message content is not text.")
    usage = data.get("usage") if isinstance(data.get("usage"), dict) else {}
    return ChatResult(
        content=content,
        latency_ms=round(latency_ms, 2),
        prompt_tokens=_int_or_none(usage.get("prompt_tokens")),
        completion_tokens=_int_or_none(usage.get("completion_tokens")),
    )


def _int_or_none(value: Any) -> int | None:
    return value if isinstance(value, int) and value >= 0 else None
