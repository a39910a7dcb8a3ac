"""Long reasons are kept whole in the history (they carry a rollback's evidence)."""

from __future__ import annotations

from promptreg.models import PRODUCTION, Label, LabelMove, Prompt, ReviewPolicy
from promptreg.services import label_move, prompt_retire

LONG = ("Quality dropped for Spanish-speaking customers after the change; " * 5).strip()


def test_long_reasons_are_kept_in_full(publish, cli):
    ReviewPolicy.objects.update(requires_review=False, requires_eval=False)
    publish()
    label_move(name="support-system", label=PRODUCTION, version=1, actor=cli, reason=LONG)
    assert LabelMove.objects.get().reason == LONG
    assert Label.history.get().history_change_reason == LONG

    prompt_retire(name="support-system", actor=cli, reason=LONG)
    assert Prompt.objects.get().is_retired
    assert Prompt.history.first().history_change_reason == f"retired: {LONG}"
