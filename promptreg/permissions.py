"""Roles are Django groups (created by a data migration); superusers have every role."""

from __future__ import annotations

AUTHOR, REVIEWER, DEPLOYER, ADMIN = "Author", "Reviewer", "Deployer", "Admin"
ROLES = (AUTHOR, REVIEWER, DEPLOYER, ADMIN)


def has_role(user, role: str) -> bool:
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return False
    if user.is_superuser:
        return True
    roles = getattr(user, "_promptreg_roles", None)
    if roles is None:
        roles = set(user.groups.values_list("name", flat=True))
        user._promptreg_roles = roles
    return role in roles or ADMIN in roles


def can_author(user) -> bool:
    return has_role(user, AUTHOR)


def can_review(user) -> bool:
    return has_role(user, REVIEWER)


def can_deploy(user) -> bool:
    return has_role(user, DEPLOYER)


def can_admin(user) -> bool:
    return has_role(user, ADMIN)
