"""Reviews: submitting a version for review and a reviewer's decision on it."""

from __future__ import annotations

from functools import partial

from django.db import transaction

from promptreg import signals
from promptreg.exceptions import Forbidden, InvalidInput
from promptreg.history import set_change_reason
from promptreg.models import (
    PromptVersion,
    Review,
    ReviewDecision,
    ReviewPolicy,
    Scope,
    VersionStatus,
)
from promptreg.services.base import REVIEW, Actor, event_emit


@transaction.atomic
def version_submit_for_review(*, version: PromptVersion, actor: Actor) -> PromptVersion:
    actor.require(Scope.WRITE, "Submitting for review")
    version = PromptVersion.objects.select_for_update().get(pk=version.pk)
    if version.status not in (VersionStatus.DRAFT, VersionStatus.CHANGES_REQUESTED):
        raise InvalidInput(
            f"v{version.number} is {version.get_status_display().lower()}; only drafts can be submitted.",
            code="invalid_state",
        )
    version.status = VersionStatus.IN_REVIEW
    set_change_reason(version, f"submitted for review by {actor.name}", user=actor.person)
    version.save()
    transaction.on_commit(partial(signals.version_submitted.send, sender=PromptVersion, version=version))
    return version


@transaction.atomic
def review_submit(*, version: PromptVersion, actor: Actor, decision: str, comment: str = "") -> Review:
    """Record a review; approvals move the version to approved once the policy's count is met.

    Nobody approves their own change, whatever their role.
    """
    actor.require(REVIEW, "Reviewing")
    if decision not in ReviewDecision.values:
        raise InvalidInput(f"decision must be one of {', '.join(ReviewDecision.values)}.", code="invalid_decision")
    version = PromptVersion.objects.select_for_update().select_related("prompt").get(pk=version.pk)
    if decision != ReviewDecision.COMMENT:
        if version.created_by_id is not None and actor.user is not None and version.created_by_id == actor.user.pk:
            raise Forbidden("You cannot review your own version; ask another reviewer.", code="own_version")
        if version.status != VersionStatus.IN_REVIEW:
            raise InvalidInput(
                f"v{version.number} is not in review ({version.get_status_display().lower()}).", code="invalid_state"
            )
    if decision == ReviewDecision.REQUEST_CHANGES and not comment.strip():
        raise InvalidInput("Say what should change when requesting changes.", code="missing_field")
    review = Review.objects.create(version=version, reviewer=actor.user, decision=decision, comment=comment.strip())
    status = version.status
    if decision == ReviewDecision.REQUEST_CHANGES:
        status = VersionStatus.CHANGES_REQUESTED
    elif decision == ReviewDecision.APPROVE:
        policy = ReviewPolicy.for_type(version.prompt.prompt_type)
        if version.approval_count() >= policy.min_approvals:
            status = VersionStatus.APPROVED
    if status != version.status:
        version.status = status
        set_change_reason(version, f"{review.get_decision_display().lower()} by {actor.name}", user=actor.person)
        version.save()
    if decision != ReviewDecision.COMMENT:
        event_emit("review.decided", version.prompt, review, actor, review.comment)
    return review
