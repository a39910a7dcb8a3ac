import pytest

from promptreg.exceptions import Forbidden, GateBlocked, InvalidInput
from promptreg.gates import missing_gates
from promptreg.models import PRODUCTION, Label, LabelMove, MoveVia, ReviewPolicy, VersionStatus
from promptreg.services import Actor, label_move, review_submit, version_publish, version_submit_for_review


def as_user(user):
    return Actor(via=MoveVia.BUTTON, user=user)


@pytest.fixture
def draft(author):
    return version_publish(
        name="support-system", kind="text", body="Hi {{ name }}", commit_message="first", actor=as_user(author)
    )


def test_reviewer_cannot_approve_own_version(reviewer):
    own = version_publish(name="support-system", kind="text", body="x", commit_message="m", actor=as_user(reviewer))
    version_submit_for_review(version=own, actor=as_user(reviewer))
    with pytest.raises(Forbidden):
        review_submit(version=own, actor=as_user(reviewer), decision="approve")
    own.refresh_from_db()
    assert own.status == VersionStatus.IN_REVIEW
    assert own.reviews.count() == 0


def test_approval_by_another_reviewer_opens_the_review_gate(draft, author, reviewer, deployer):
    with pytest.raises(GateBlocked) as exc:
        label_move(name="support-system", label=PRODUCTION, version=1, actor=as_user(deployer), reason="ship")
    assert "peer review" in exc.value.message
    assert not Label.objects.exists()
    version_submit_for_review(version=draft, actor=as_user(author))
    review_submit(version=draft, actor=as_user(reviewer), decision="approve", comment="ok")
    draft.refresh_from_db()
    assert draft.status == VersionStatus.APPROVED
    assert missing_gates(draft, PRODUCTION) == []
    move = label_move(name="support-system", label=PRODUCTION, version=1, actor=as_user(deployer), reason="ship")
    assert (move.actor, move.via, move.is_override) == (deployer, MoveVia.BUTTON, False)


def test_request_changes_needs_a_comment_and_blocks(draft, author, reviewer):
    version_submit_for_review(version=draft, actor=as_user(author))
    with pytest.raises(InvalidInput):
        review_submit(version=draft, actor=as_user(reviewer), decision="request_changes", comment=" ")
    review_submit(version=draft, actor=as_user(reviewer), decision="request_changes", comment="too long")
    draft.refresh_from_db()
    assert draft.status == VersionStatus.CHANGES_REQUESTED
    assert "requested changes" in missing_gates(draft, PRODUCTION)[0]


def test_eval_gate_without_any_evaluation_blocks(db, publish):
    ReviewPolicy.objects.filter(prompt_type="extraction").update(requires_review=False, requires_eval=True)
    version = publish(name="invoice-extraction", prompt_type="extraction")
    missing = missing_gates(version, PRODUCTION)
    assert len(missing) == 1 and missing[0].startswith("eval gate")


def test_admin_override_is_recorded_with_bypassed_gates(draft, admin_user, deployer):
    with pytest.raises(Forbidden):
        label_move(
            name="support-system", label=PRODUCTION, version=1, actor=as_user(deployer), reason="x", override=True
        )
    move = label_move(
        name="support-system", label=PRODUCTION, version=1, actor=as_user(admin_user), reason="hotfix", override=True
    )
    assert move.is_override and "peer review" in move.bypassed_gates[0]
    assert LabelMove.objects.count() == 1


def test_other_labels_are_not_gated(draft, deployer):
    label_move(name="support-system", label="staging", version=1, actor=as_user(deployer), reason="try")
    assert Label.objects.get(name="staging").version == draft


def test_roles_are_checked_by_the_services(draft, outsider, author):
    with pytest.raises(Forbidden):
        version_publish(name="support-system", kind="text", body="y", commit_message="m", actor=as_user(outsider))
    with pytest.raises(Forbidden):
        label_move(name="support-system", label="staging", version=1, actor=as_user(author), reason="x")
    assert draft.prompt.versions.count() == 1


def test_versions_are_immutable(draft):
    from django.core.exceptions import ValidationError

    draft.body = "changed"
    with pytest.raises(ValidationError):
        draft.save()
    draft.refresh_from_db()
    assert draft.body == "Hi {{ name }}"
