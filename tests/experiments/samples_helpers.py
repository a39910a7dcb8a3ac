"""Build production samples for tests: a Sample with the Score rows of the score that carried it."""

from __future__ import annotations

import itertools
from datetime import datetime

from django.utils import timezone

from experiments.models import Sample, Score
from promptreg.models import PromptVersion

_ids = itertools.count()


def make_sample(
    version: PromptVersion,
    variables: dict,
    output: str,
    metrics: dict[str, float] | None = None,
    *,
    at: datetime | None = None,
) -> Sample:
    client_id = f"sample-{next(_ids)}"
    at = at or timezone.now()
    for metric, value in (metrics if metrics is not None else {"quality_score": 0.5}).items():
        Score.objects.create(
            client_id=client_id,
            prompt_id=version.prompt_id,
            version=version,
            metric=metric,
            value=value,
            timestamp=at,
        )
    return Sample.objects.create(
        client_id=client_id,
        prompt_id=version.prompt_id,
        version=version,
        variables=variables,
        output=output,
        timestamp=at,
    )
