"""The evaluation provider an Admin sets in the dashboard: an OpenAI-compatible endpoint, its default model and key.

The key is stored encrypted (Fernet, with a key derived from SECRET_KEY) and bound to the base URL it was entered
with: the row keeps the URL it was encrypted for, so a later change of the base URL drops it instead of sending it
somewhere else. Environment variables (`LLM_BASE_URL`, `LLM_API_KEY`, `LLM_MODEL`) win when set.
"""

from __future__ import annotations

import base64

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings
from django.db import models
from django.utils import timezone
from simple_history.models import HistoricalRecords

__all__ = ["ProviderSettings", "encrypt_secret", "decrypt_secret"]


def _fernet() -> Fernet:
    """Fernet keyed by HKDF-SHA256 of SECRET_KEY (a fixed context string, so no other use of SECRET_KEY shares it)."""
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"promptreg evaluation provider key").derive(
        settings.SECRET_KEY.encode()
    )
    return Fernet(base64.urlsafe_b64encode(key))


def encrypt_secret(plain: str) -> str:
    return _fernet().encrypt(plain.encode()).decode()


def decrypt_secret(token: str) -> str | None:
    """The plain secret, or None when it cannot be read (SECRET_KEY changed since it was stored)."""
    try:
        return _fernet().decrypt(token.encode()).decode()
    except InvalidToken:
        return None


class ProviderSettings(models.Model):
    """One row (pk=1): the provider set in the dashboard."""

    base_url = models.URLField(max_length=500, blank=True)
    model = models.CharField(max_length=200, blank=True)
    api_key_encrypted = models.TextField(blank=True)
    key_for_url = models.URLField(max_length=500, blank=True)  # the base URL the stored key was entered for
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    updated_at = models.DateTimeField(default=timezone.now)
    history = HistoricalRecords(excluded_fields=["api_key_encrypted"])

    class Meta:
        verbose_name = "evaluation provider"

    def __str__(self) -> str:
        return self.base_url or "no provider"

    @classmethod
    def load(cls) -> ProviderSettings:
        return cls.objects.filter(pk=1).first() or cls(pk=1)

    @property
    def has_key(self) -> bool:
        return bool(self.api_key_encrypted) and self.key_for_url == self.base_url

    def api_key(self) -> str:
        """The decrypted key, only while the base URL is the one it was entered for ('' otherwise)."""
        if not self.has_key:
            return ""
        return decrypt_secret(self.api_key_encrypted) or ""
