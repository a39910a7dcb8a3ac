"""Long reasons fit simple-history's 100-character column (PostgreSQL refused them with a 500)."""

from __future__ import annotations

from promptreg.models import PRODUCTION, Label, LabelMove, Prompt, ReviewPolicy
from promptreg.services import label_move, prompt_retire

LONG = ("Quality dropped for Spanish-speaking customers after the change; " * 5).strip()


def test_long_reasons_are_kept_in_full_where_they_matter(publish, cli):
    ReviewPolicy.objects.update(requires_review=False, requires_eval=False)
    publish()
    label_move(name="support-system", label=PRODUCTION, version=1, actor=cli, reason=LONG)
    assert LabelMove.objects.get().reason == LONG
    history_reason = Label.history.get().history_change_reason
    assert len(history_reason) == 100 and LONG.startswith(history_reason[:-1])

    prompt_retire(name="support-system", actor=cli, reason=LONG)
    assert Prompt.objects.get().is_retired
    assert Prompt.history.first().history_change_reason.startswith("retired: Quality dropped")
