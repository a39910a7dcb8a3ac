"""API keys: issuing one (scopes no wider than its owner's roles) and revoking it."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from promptreg import permissions
from promptreg.exceptions import Forbidden, InvalidInput
from promptreg.history import set_change_reason
from promptreg.models import (
    ROLE_FOR_SCOPE,
    ApiKey,
    Scope,
    scopes_beyond,
)
from promptreg.services.base import Actor, require_text


def api_key_issue(*, actor: Actor, name: str, scopes: list[str], gate_override: bool = False) -> tuple[ApiKey, str]:
    """A key owned by the signed-in user (the dashboard's key page): versions published with it are
    theirs. Scopes beyond the user's roles, and gate overrides, are refused; `read` needs any role."""
    user = actor.user
    if user is None or not any(permissions.has_role(user, role) for role in permissions.ROLES):
        raise Forbidden("Issuing an API key needs a role (Author, Reviewer, Deployer or Admin).")
    name = require_text(name, "A name (what the key is for)")[:100]
    lacking = scopes_beyond(user, scopes)  # nobody issues a key stronger than themselves (they hold a role: `read`)
    if lacking:
        raise Forbidden(f"A key with the '{lacking[0]}' scope needs the {ROLE_FOR_SCOPE[lacking[0]]} role.")
    if gate_override and not permissions.has_role(user, permissions.ADMIN):
        raise Forbidden("A gate-override key bypasses the release gates: only an Admin issues one.")
    try:
        return ApiKey.issue(name=name, scopes=scopes, owner=user, created_by=user, gate_override=gate_override)
    except ValidationError as exc:
        raise InvalidInput(exc.messages[0], code="invalid_key") from None


@transaction.atomic
def api_key_revoke(*, actor: Actor, key: ApiKey) -> ApiKey:
    """Its owner or an Admin revokes a key; every server refuses it from the next request."""
    key = ApiKey.objects.select_for_update().get(pk=key.pk)
    is_owner = actor.user is not None and key.owner_id == actor.user.pk
    if not is_owner:
        actor.require(Scope.ADMIN, "Revoking someone else's API key")
    if key.revoked_at is not None:
        raise InvalidInput(f"API key '{key.name}' is already revoked.", code="invalid_state")
    key.revoked_at = timezone.now()
    set_change_reason(key, f"revoked by {actor.name}")
    key.save(update_fields=["revoked_at"])
    return key
