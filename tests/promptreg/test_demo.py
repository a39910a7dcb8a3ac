from promptreg.audit import AuditFilter, audit_page
from promptreg.demo import DEMO_PROMPT, seed_demo
from promptreg.models import PRODUCTION, LabelMove, Prompt, PromptVersion, Review
from promptreg.services import rollback_target


def test_demo_tells_the_story_once(db):
    assert seed_demo("pw-for-demo-123") is True
    prompt = Prompt.objects.get(name=DEMO_PROMPT)
    assert list(prompt.versions.order_by("number").values_list("number", flat=True)) == [1, 2, 3, 4, 5, 6]
    assert prompt.label_version(PRODUCTION).number == 5
    moves = list(
        LabelMove.objects.filter(prompt=prompt).order_by("id").values_list("to_version__number", "is_rollback")
    )
    assert moves == [(1, False), (2, False), (3, False), (5, False), (6, False), (5, True)]
    # v4 was never live, so a further rollback skips it.
    assert rollback_target(prompt).number == 3
    assert seed_demo("pw-for-demo-123") is False
    assert prompt.versions.count() == 6


def test_demo_versions_carry_sample_values_for_the_preview(db):
    seed_demo("pw-for-demo-123")
    v5 = Prompt.objects.get(name=DEMO_PROMPT).versions.get(number=5)
    assert v5.compile(**v5.sample_values).prompt.startswith("You are the support assistant for Acme Outdoor.")


def test_demo_history_is_in_order_published_submitted_approved_then_live(db):
    seed_demo("pw-for-demo-123")
    prompt = Prompt.objects.get(name=DEMO_PROMPT)
    for move in LabelMove.objects.filter(prompt=prompt, is_rollback=False):
        version = move.to_version
        dates = list(
            PromptVersion.history.filter(id=version.pk).order_by("history_id").values_list("history_date", flat=True)
        )
        review = Review.history.get(version_id=version.pk).history_date
        assert dates == sorted(dates) and dates[0] == version.created_at
        assert dates[-1] <= review < move.created_at, f"v{version.number} approved after it went live"
    events, _ = audit_page(AuditFilter(prompt=prompt), 1, size=200)
    sentences = [e.sentence for e in events]
    assert "rita approved v6" in sentences and "dave rolled back production from v6 to v5" in sentences
    assert "alice submitted v6 for review" in sentences and "v6 is approved: it may be activated" in sentences
    assert sentences.index("dave activated v6 in production (was v5)") < sentences.index(
        "rita approved v6"
    )  # newest first
