from promptreg.demo import DEMO_PROMPT, seed_demo
from promptreg.models import PRODUCTION, LabelMove, Prompt
from promptreg.services import rollback_target


def test_demo_tells_the_story_once(db):
    assert seed_demo("pw-for-demo-123") is True
    prompt = Prompt.objects.get(name=DEMO_PROMPT)
    assert list(prompt.versions.order_by("number").values_list("number", flat=True)) == [1, 2, 3, 4, 5, 6]
    assert prompt.label_version(PRODUCTION).number == 5
    moves = list(LabelMove.objects.filter(prompt=prompt).order_by("id").values_list("to_version__number", "is_rollback"))
    assert moves == [(1, False), (2, False), (3, False), (5, False), (6, False), (5, True)]
    # v4 was never live, so a further rollback skips it.
    assert rollback_target(prompt).number == 3
    assert seed_demo("pw-for-demo-123") is False
    assert prompt.versions.count() == 6


def test_demo_versions_carry_sample_values_for_the_preview(db):
    seed_demo("pw-for-demo-123")
    v5 = Prompt.objects.get(name=DEMO_PROMPT).versions.get(number=5)
    assert v5.compile(**v5.sample_values).prompt.startswith("You are the support assistant for Acme Outdoor.")
