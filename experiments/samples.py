"""Production samples: kept from score ingestion at a per-prompt rate, listed worst first, purged after retention,
and turned into evaluation cases.

A score may carry `"sample": {"variables": {...}, "output": "…"}`. Ingestion validates every sample (shape and
size, so a bad one is a 400 like any bad score), decides which to keep before writing anything, and stores the kept
ones with one INSERT in the scores' transaction. The decision is a hash of the score's `id`, not a coin flip: a
retried batch keeps exactly the samples the first post kept, so retries do not raise the kept share.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import OuterRef, QuerySet, Subquery
from django.utils import timezone

from experiments.bulk import bulk_insert
from experiments.datasets import CaseData, RowErrors, validate_cases, variables_problem
from experiments.eval_datasets import dataset_create, dataset_import, gated_by, prompt_dataset
from experiments.models import Dataset, Sample, SamplingPolicy, Score
from promptreg.exceptions import InvalidInput, NotFound
from promptreg.history import set_change_reason
from promptreg.models import Prompt, PromptVersion, Scope
from promptreg.services import Actor

ORDERS = ("worst", "best", "recent")
FROM_SAMPLE_TAG = "from-sample"


def _bad(index: int, message: str, code: str = "invalid_sample") -> InvalidInput:
    return InvalidInput(
        f"scores[{index}].sample: {message}; nothing from this request was stored.", code=code, details={"index": index}
    )


def sample_validate(value: Any, index: int) -> tuple[dict[str, Any], str]:
    """One score's `sample`: `{"variables": {name: JSON}, "output": text}`, at most `SAMPLE_MAX_BYTES` (the variables
    as JSON plus the output, UTF-8). Returns the variables and the output."""
    if not isinstance(value, dict) or set(value) - {"variables", "output"}:
        raise _bad(index, "must be an object with 'variables' and 'output'")
    variables, output = value.get("variables"), value.get("output")
    problem = variables_problem(variables)
    if problem:
        raise _bad(index, problem)
    assert isinstance(variables, dict), "variables_problem accepts only an object"
    if not isinstance(output, str):
        raise _bad(index, "'output' must be text")
    size = len(json.dumps(variables, ensure_ascii=False).encode()) + len(output.encode())
    if size > settings.SAMPLE_MAX_BYTES:
        raise _bad(
            index,
            f"is {size:,} bytes (variables as JSON plus output); at most {settings.SAMPLE_MAX_BYTES:,}",
            code="sample_too_large",
        )
    return variables, output


def sample_kept(client_id: str, rate: float) -> bool:
    """Whether the sample of score `client_id` is kept at `rate`: the first 8 bytes of SHA-256(id) as a number in
    [0, 1) below the rate. Uniform over distinct ids, so the kept count over n ids is Binomial(n, rate)."""
    if rate >= 1.0:
        return True
    digest = hashlib.sha256(client_id.encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < rate


def sampling_rates(prompt_ids: Iterable[int]) -> dict[int, float]:
    """Each prompt's sampling rate (the `SAMPLE_RATE` setting unless its policy sets one)."""
    ids = set(prompt_ids)
    rates = dict.fromkeys(ids, settings.SAMPLE_RATE)
    rates.update(SamplingPolicy.objects.filter(prompt_id__in=ids).values_list("prompt_id", "rate"))
    return rates


_COLUMNS = ("client_id", "prompt_id", "version_id", "variables", "output", "timestamp")
_PG_TYPES = ("text", "bigint", "bigint", "jsonb", "text", "timestamptz")


def samples_pick(items: list[Any], rows: Iterable[Any]) -> list[tuple[Any, ...]]:
    """The samples of an already validated batch to keep, as rows for `samples_store`. `rows` are the validated
    score rows (`client_id`, `prompt_id`, `version_id`, and `timestamp` as the driver takes it). `"sample": null` is
    no sample. Raises InvalidInput for a bad sample, kept or not."""
    carried = [(i, item) for i, item in enumerate(items) if isinstance(item, dict) and item.get("sample") is not None]
    if not carried:
        return []
    checked = [(item["id"], *sample_validate(item["sample"], i)) for i, item in carried]
    wanted = {client_id for client_id, _, _ in checked}
    where = {r.client_id: r for r in rows if r.client_id in wanted}
    rates = sampling_rates({where[c].prompt_id for c in wanted})
    kept: dict[str, tuple[Any, ...]] = {}
    for client_id, variables, output in checked:
        row = where[client_id]
        if client_id not in kept and sample_kept(client_id, rates[row.prompt_id]):
            kept[client_id] = (client_id, row.prompt_id, row.version_id, variables, output, row.timestamp)
    return list(kept.values())


def samples_store(samples: list[tuple[Any, ...]]) -> None:
    """One INSERT (COPY through a staging table on PostgreSQL, as scores); a sample already stored (a retried
    score) is skipped."""
    if connection.vendor != "postgresql":  # PostgreSQL's COPY takes the variables as an object for jsonb; SQLite, text
        samples = [(c, p, v, json.dumps(variables), o, t) for c, p, v, variables, o, t in samples]
    if samples:
        bulk_insert(Sample, _COLUMNS, _PG_TYPES, samples, "ON CONFLICT (client_id) DO NOTHING")


# ---------------------------------------------------------------- settings and retention


def _retention_days(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 3650:
        raise InvalidInput("retention_days must be a whole number of days from 1 to 3650, or null.", code="invalid")
    return value


@transaction.atomic
def sampling_configure(*, prompt: Prompt, actor: Actor, rate: float, retention_days: int | None) -> SamplingPolicy:
    """Set a prompt's sampling rate (0–1) and retention in days (None: the `SAMPLE_RETENTION_DAYS` default)."""
    actor.require(Scope.DEPLOY, "Changing a prompt's sampling")
    if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0.0 <= rate <= 1.0:
        raise InvalidInput("rate must be a number from 0 (keep none) to 1 (keep every sample).", code="invalid")
    days = _retention_days(retention_days)
    policy, _ = SamplingPolicy.objects.select_for_update().get_or_create(prompt=prompt)
    policy.rate, policy.retention_days, policy.updated_at = float(rate), days, timezone.now()
    set_change_reason(policy, f"set by {actor.name}", user=actor.person)
    policy.save()
    return policy


def sampling_dict(prompt: Prompt) -> dict[str, Any]:
    policy = SamplingPolicy.objects.filter(prompt=prompt).first()
    return {
        "prompt": prompt.name,
        "rate": policy.rate if policy else settings.SAMPLE_RATE,
        "retention_days": (policy.retention_days if policy else None) or settings.SAMPLE_RETENTION_DAYS,
    }


def samples_purge(*, now: datetime | None = None) -> int:
    """Delete samples older than their prompt's retention (a day count per policy, else `SAMPLE_RETENTION_DAYS`)."""
    now = now or timezone.now()
    custom: dict[int, list[int]] = {}
    for policy in SamplingPolicy.objects.filter(retention_days__isnull=False).only("prompt_id", "retention_days"):
        custom.setdefault(policy.retention_days or settings.SAMPLE_RETENTION_DAYS, []).append(policy.prompt_id)
    deleted, _ = (
        Sample.objects.exclude(prompt_id__in=[p for ids in custom.values() for p in ids])
        .filter(timestamp__lt=now - timedelta(days=settings.SAMPLE_RETENTION_DAYS))
        .delete()
    )
    for days, prompt_ids in custom.items():
        deleted += Sample.objects.filter(prompt_id__in=prompt_ids, timestamp__lt=now - timedelta(days=days)).delete()[0]
    return deleted


# ---------------------------------------------------------------- reading


@dataclass(frozen=True)
class SampleView:
    sample: Sample
    metrics: dict[str, float]
    value: float | None  # of the metric it was ordered or filtered by

    def to_dict(self) -> dict[str, Any]:
        s = self.sample
        return {
            "id": s.pk,
            "version": s.version.number,
            "variables": s.variables,
            "output": s.output,
            "metrics": self.metrics,
            "timestamp": s.timestamp.isoformat(),
        }


def samples_of(
    *,
    prompt: Prompt,
    version: PromptVersion | None = None,
    metric: str = "",
    order: str = "recent",
    lower_is_better: bool = False,
    limit: int = 20,
) -> list[SampleView]:
    """A prompt's samples (of one version, if given) with their metric values.

    `worst` and `best` order by `metric` (lowest first is worst unless `lower_is_better`) and leave out samples
    without it; `recent` is newest first (only those with `metric`, if one is named)."""
    if order not in ORDERS:
        raise InvalidInput(f"order must be one of {', '.join(ORDERS)}.", code="invalid")
    if order != "recent" and not metric:
        raise InvalidInput(f"order={order} needs a metric.", code="invalid")
    if limit < 1:
        raise InvalidInput("limit must be at least 1.", code="invalid")
    samples: QuerySet[Sample] = Sample.objects.filter(prompt=prompt).select_related("version")
    if version is not None:
        samples = samples.filter(version=version)
    if metric:
        value = Score.objects.filter(client_id=OuterRef("client_id"), metric=metric).values("value")[:1]
        samples = samples.annotate(metric_value=Subquery(value)).filter(metric_value__isnull=False)
    if order == "recent":
        samples = samples.order_by("-timestamp", "-id")
    else:
        ascending = (order == "worst") != lower_is_better
        samples = samples.order_by("metric_value" if ascending else "-metric_value", "-timestamp", "-id")
    found = list(samples[:limit])
    metrics: dict[str, dict[str, float]] = {s.client_id: {} for s in found}
    for client_id, name, number in Score.objects.filter(client_id__in=list(metrics)).values_list(
        "client_id", "metric", "value"
    ):
        metrics[client_id][name] = number
    return [SampleView(s, metrics[s.client_id], getattr(s, "metric_value", None)) for s in found]


_WORD_RE = re.compile(r"\w+")


def _words(variables: dict[str, Any]) -> frozenset[str]:
    return frozenset(_WORD_RE.findall(json.dumps(list(variables.values()), ensure_ascii=False).lower()))


def most_similar(targets: list[Sample], candidates: list[Sample]) -> dict[int, tuple[Sample, float]]:
    """For each target, the candidate whose input is most alike: the Jaccard similarity |A ∩ B| / |A ∪ B| of the
    sets of words in the variables' values (1.0: the same words). Targets with no word in common are left out."""
    candidate_words = [(c, _words(c.variables)) for c in candidates]
    found: dict[int, tuple[Sample, float]] = {}
    for target in targets:
        words = _words(target.variables)
        best, score = None, 0.0
        for candidate, other in candidate_words:
            union = len(words | other)
            similarity = len(words & other) / union if union else 0.0
            if similarity > score:
                best, score = candidate, similarity
        if best is not None:
            found[target.pk] = (best, score)
    return found


# ---------------------------------------------------------------- samples become cases


@dataclass(frozen=True)
class CasesAdded:
    added: int
    already: int  # picked samples not added: the dataset (or an earlier pick) has their variables and expected


def _case_key(variables: dict[str, Any], expected: str) -> str:
    return json.dumps([variables, expected], sort_keys=True)


def _picked_samples(dataset: Dataset, ids: list[int]) -> dict[int, Sample]:
    """The picked samples; a 404 for an unknown id, a 400 for one whose prompt is not gated by `dataset` (when it
    is a gate dataset: its cases must fill those prompts' templates) or whose variables a case could not have."""
    found = Sample.objects.select_related("version", "prompt").in_bulk(ids)
    missing = [str(i) for i in ids if i not in found]
    if missing:
        raise NotFound(f"No sample {', '.join(missing)} (samples are purged after their retention).", code="not_found")
    gated = gated_by(dataset)
    gated_ids = {p.pk for p in gated}
    alien = [found[i] for i in ids if gated and found[i].prompt_id not in gated_ids]
    if alien:
        names = ", ".join(f"sample {s.pk} is of '{s.prompt.name}'" for s in alien)
        raise InvalidInput(
            f"'{dataset.name}' is the eval dataset of {', '.join(p.name for p in gated)}: only their samples can "
            f"become its cases ({names}).",
            code="sample_of_other_prompt",
            details={"samples": [s.pk for s in alien]},
        )
    for sample_id in ids:  # samples stored before a rule existed are checked again, like any case
        try:
            validate_cases([{"variables": found[sample_id].variables}])
        except RowErrors as exc:
            raise InvalidInput(
                f"Sample {sample_id} cannot become a case: {exc.problems[0][1]}.", code="invalid_sample"
            ) from None
    return found


@transaction.atomic
def cases_from_samples(*, dataset: Dataset, picks: list[tuple[int, str | None]], actor: Actor) -> CasesAdded:
    """Add one case per picked sample: its variables, and as `expected` the text given (a correction, or a better
    version's output) or else the sample's own output. All or nothing; unknown sample ids are a 404, samples of
    another prompt than the ones gated by the dataset a 400. A sample picked twice counts once (as first picked),
    and a case the dataset already has (same variables and expected) is not added again."""
    actor.require(Scope.WRITE, "Adding cases")
    if not picks:
        raise InvalidInput("Pick at least one sample.", code="invalid")
    dataset = Dataset.objects.select_for_update().get(pk=dataset.pk)  # no concurrent add between check and insert
    first: dict[int, str | None] = {}
    for sample_id, expected in picks:
        first.setdefault(sample_id, expected)
    found = _picked_samples(dataset, list(first))
    seen = {_case_key(c.variables, c.expected) for c in dataset.active_cases()}
    rows = []
    for sample_id, expected in first.items():
        sample = found[sample_id]
        case = CaseData(
            variables=sample.variables,
            expected=sample.output if expected is None else expected,
            tags=[FROM_SAMPLE_TAG, f"v{sample.version.number}"],
        )
        key = _case_key(case.variables, case.expected)
        if key not in seen:
            seen.add(key)
            rows.append(case)
    added = dataset_import(dataset=dataset, actor=actor, rows=rows) if rows else 0
    return CasesAdded(added, len(first) - added)


DEFAULT_SCORERS = ["reference_f1"]


@transaction.atomic
def samples_to_dataset(
    *, prompt: Prompt, picks: list[tuple[int, str | None]], actor: Actor, dataset: Dataset | None, new_name: str = ""
) -> tuple[Dataset, CasesAdded]:
    """Add picked samples to `dataset`, or to a new dataset named `new_name` that grades like the prompt's gate
    dataset (its scorers and primary metric; `reference_f1` against `expected` when the prompt has none)."""
    if dataset is None:
        model = prompt_dataset(prompt)
        dataset = dataset_create(
            name=new_name,
            scorers=model.scorers if model else DEFAULT_SCORERS,
            primary_metric=model.primary_metric if model else "",
            description=f"Production samples of {prompt.name}",
            actor=actor,
        )
    return dataset, cases_from_samples(dataset=dataset, picks=picks, actor=actor)
