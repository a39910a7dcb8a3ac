"""Who did it, as people read it: a user or an API key."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from promptreg.models.keys import ApiKey

if TYPE_CHECKING:
    from django.contrib.auth.base_user import AbstractBaseUser


class _HasActor(Protocol):
    @property
    def actor(self) -> AbstractBaseUser | None: ...
    @property
    def api_key(self) -> ApiKey | None: ...


class ActorNamed:
    """For records with an `actor` (a user) and an `api_key`: who did it, as people read it."""

    @property
    def actor_name(self: _HasActor) -> str:
        user, key = self.actor, self.api_key  # None without a query when unset
        if user is not None:
            return user.get_username()
        if key is not None:
            return f"API key {key.name}"
        return "promptreg"
