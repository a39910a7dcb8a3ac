"""Small builders for the dashboard view tests."""

from __future__ import annotations

from promptreg.models import PRODUCTION, MoveVia, ReviewDecision
from promptreg.services import Actor, label_move, review_submit, version_publish, version_submit_for_review


def as_user(user) -> Actor:
    return Actor(via=MoveVia.BUTTON, user=user)


def publish_as(user, name: str = "support-system", body: str = "Hello {{ name }}", **kwargs):
    kwargs.setdefault("commit_message", "first draft")
    kwargs.setdefault("kind", "text")
    return version_publish(name=name, body=body, actor=as_user(user), **kwargs)


def approved(author, reviewer, **kwargs):
    version = publish_as(author, **kwargs)
    version_submit_for_review(version=version, actor=as_user(author))
    review_submit(version=version, actor=as_user(reviewer), decision=ReviewDecision.APPROVE)
    version.refresh_from_db()
    return version


def activate(version, deployer, reason: str = "ship it"):
    return label_move(
        name=version.prompt.name, label=PRODUCTION, version=version.number, actor=as_user(deployer), reason=reason
    )
