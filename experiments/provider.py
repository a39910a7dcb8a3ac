"""Setting and testing the evaluation provider from the dashboard (Admins only).

Where evaluations send their calls is `experiments.llm.provider_effective()`: the environment's `LLM_BASE_URL`
(with `LLM_API_KEY`, `LLM_MODEL`) when set, else what an Admin saved here.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from django.db import transaction
from django.utils import timezone

from experiments.llm import LLMClient, LLMConfig, ProviderError, provider_effective
from experiments.models import ProviderSettings, encrypt_secret
from promptreg.exceptions import InvalidInput
from promptreg.history import set_change_reason
from promptreg.models import Scope
from promptreg.services import Actor

TEST_TIMEOUT = 10.0


def _base_url(value: str) -> str:
    value = (value or "").strip().rstrip("/")
    parts = urlsplit(value)
    if value and (parts.scheme not in ("http", "https") or not parts.netloc):
        raise InvalidInput(
            "base_url must be an http(s) URL such as https://api.openai.com/v1.",
            code="invalid_provider",
            details={"fields": {"base_url": ["Enter an http(s) URL such as https://api.openai.com/v1."]}},
        )
    return value


@transaction.atomic
def provider_update(
    *, actor: Actor, base_url: str, model: str = "", api_key: str = "", clear_key: bool = False
) -> tuple[ProviderSettings, bool]:
    """Save the provider. A new key is encrypted and bound to this base URL; with a changed base URL and no new key
    the stored key is dropped (returned flag), so a key is never sent to a server it was not entered for."""
    actor.require(Scope.ADMIN, "Setting the evaluation provider")
    base_url = _base_url(base_url)
    stored = ProviderSettings.objects.select_for_update().filter(pk=1).first() or ProviderSettings(pk=1)
    dropped = False
    if api_key.strip() and base_url:
        stored.api_key_encrypted, stored.key_for_url = encrypt_secret(api_key.strip()), base_url
    elif clear_key or not base_url or (stored.api_key_encrypted and stored.key_for_url != base_url):
        dropped = bool(stored.api_key_encrypted) and not clear_key
        stored.api_key_encrypted, stored.key_for_url = "", ""
    stored.base_url, stored.model = base_url, (model or "").strip()
    stored.updated_by, stored.updated_at = actor.user, timezone.now()
    set_change_reason(stored, f"set by {actor.name}" + ("; key dropped: the base URL changed" if dropped else ""))
    stored.save()
    return stored, dropped


def provider_test(*, actor: Actor) -> str:
    """One short chat call to the provider evaluations use now; what happened, in a sentence. Raises ProviderError."""
    actor.require(Scope.ADMIN, "Testing the evaluation provider")
    provider = provider_effective()
    config = LLMConfig(
        base_url=provider.base_url,
        api_key=provider.api_key,
        model=provider.model,
        timeout=TEST_TIMEOUT,
        max_retries=0,
        concurrency=1,
        params={"max_tokens": 5},
    )
    with LLMClient(config) as client:
        answer = client.chat([{"role": "user", "content": "Reply with the word OK."}])
    model = f"model {provider.model}" if provider.model else "the provider's default model"
    return f"Connected to {provider.base_url}: {model} answered in {answer.latency_ms:.0f} ms."


__all__ = ["ProviderError", "provider_test", "provider_update"]
