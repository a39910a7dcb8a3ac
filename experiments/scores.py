"""Score ingestion: validate a batch, store it in one statement, keep experiment sums current.

Everything in a batch is checked before anything is written, so a bad item
means a 400 naming its index and nothing stored. A re-post of the same client
`id` (per metric) is a no-op, also under concurrent retries: the insert is
`ON CONFLICT DO NOTHING RETURNING`, and only rows really inserted reach the
running sums.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

from django.db import connection, transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from experiments.bulk import bulk_insert, upsert
from experiments.models import (
    Experiment,
    ExperimentSession,
    ExperimentState,
    ExperimentTotal,
    Score,
)
from experiments.samples import samples_pick, samples_store
from promptreg.exceptions import InvalidInput
from promptreg.models import PromptVersion, Scope
from promptreg.services import Actor

MAX_BATCH = 1000
MAX_METRICS = 50
MAX_ABS_VALUE = 1e9
MAX_FUTURE = timedelta(minutes=5)
METRIC_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_.:-]{0,63}$")


@dataclass(frozen=True)
class IngestResult:
    scores: int
    values_stored: int
    values_duplicate: int

    def to_dict(self) -> dict[str, int]:
        return {"scores": self.scores, "values_stored": self.values_stored, "values_duplicate": self.values_duplicate}


def _bad(index: int, message: str, code: str = "invalid_score") -> InvalidInput:
    return InvalidInput(
        f"scores[{index}]: {message}; nothing from this request was stored.", code=code, details={"index": index}
    )


def _text(item: dict, key: str, index: int, *, max_length: int, required: bool = True) -> str:
    value = item.get(key)
    if value is None or value == "":
        if required:
            raise _bad(index, f"'{key}' is required")
        return ""
    if not isinstance(value, str):
        raise _bad(index, f"'{key}' must be a string")
    if len(value) > max_length:
        raise _bad(index, f"'{key}' is longer than {max_length} characters")
    return value


def _int(item: dict, key: str, index: int, *, required: bool) -> int | None:
    value = item.get(key)
    if value is None:
        if required:
            raise _bad(index, f"'{key}' is required")
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise _bad(index, f"'{key}' must be a positive integer")
    return value


def _metrics(item: dict, index: int, known: set[str]) -> dict[str, float]:
    """The score's metrics as floats; `known` holds the names already checked in this batch."""
    metrics = item.get("metrics")
    if not isinstance(metrics, dict) or not metrics:
        raise _bad(index, "'metrics' must be a non-empty object of name → number")
    if len(metrics) > MAX_METRICS:
        raise _bad(index, f"at most {MAX_METRICS} metrics per score")
    clean: dict[str, float] = {}
    for name, value in metrics.items():
        if name not in known:
            if not METRIC_RE.match(name):
                raise _bad(
                    index,
                    f"metric name {name!r} must start with a letter and use letters, digits, '_', '.', ':' or '-'"
                    " (≤64)",
                    "invalid_metric",
                )
            known.add(name)
        if type(value) is float and -MAX_ABS_VALUE <= value <= MAX_ABS_VALUE:  # the usual case; NaN fails it
            clean[name] = value
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _bad(index, f"metric '{name}' must be a number, got {type(value).__name__}", "invalid_metric")
        if not math.isfinite(value) or abs(value) > MAX_ABS_VALUE:
            raise _bad(
                index, f"metric '{name}' = {value} is out of range (finite, |x| ≤ {MAX_ABS_VALUE:g})", "invalid_metric"
            )
        clean[name] = float(value)
    return clean


def _timestamp(item: dict, index: int, now: datetime) -> datetime:
    value = item.get("timestamp")
    if value is None:
        return now
    if isinstance(value, str):
        try:
            parsed = parse_datetime(value)
        except ValueError as exc:  # well formed but impossible: month 13, an offset of 99 hours
            raise _bad(index, f"'timestamp' is not a valid date-time ({exc})") from None
        if parsed is None:
            raise _bad(index, "'timestamp' must be an ISO 8601 date-time")
        value = parsed
    if not isinstance(value, datetime):
        raise _bad(index, "'timestamp' must be an ISO 8601 date-time")
    if timezone.is_naive(value):
        value = timezone.make_aware(value, UTC)
    if value > now + MAX_FUTURE:
        raise _bad(index, "'timestamp' is in the future")
    return value


class _Row(NamedTuple):
    """One metric value of one score: a Score row, fields named and ordered as its columns."""

    client_id: str
    prompt_id: int
    version_id: int
    session_id: str
    experiment_id: int | None
    variant: str
    metric: str
    value: float
    timestamp: Any  # as the database driver takes it (`adapt_datetimefield_value`)


_PG_TYPES = {
    "client_id": "text",
    "prompt_id": "bigint",
    "version_id": "bigint",
    "session_id": "text",
    "experiment_id": "bigint",
    "variant": "text",
    "metric": "text",
    "value": "float8",
    "timestamp": "timestamptz",
}


class _Batch:
    """What a batch's scores refer to, looked up once: versions by (prompt, number), experiments by id,
    and each (prompt, version, experiment, session, variant) already resolved to its row fields."""

    def __init__(self, items: list[dict]) -> None:
        names = {i.get("prompt") for i in items if isinstance(i.get("prompt"), str)}
        self.versions = {
            (name, number): (prompt_id, version_id)
            for version_id, prompt_id, name, number in PromptVersion.objects.filter(prompt__name__in=names).values_list(
                "id", "prompt_id", "prompt__name", "number"
            )
        }
        self.prompt_names = {name for name, _ in self.versions}
        ids = {i["experiment"] for i in items if isinstance(i.get("experiment"), int)}
        self.experiments = {e.pk: e for e in Experiment.objects.filter(pk__in=ids)} if ids else {}
        self.resolved: dict[tuple, tuple[int, int, str]] = {}
        self.metric_names: set[str] = set()

    def resolve(
        self, index: int, prompt: str, number: int, experiment_id: int | None, session_id: str, sent_variant: str
    ) -> tuple[int, int, str]:
        """(prompt_id, version_id, variant) of one score, or the error naming its index."""
        key = (prompt, number, experiment_id, session_id, sent_variant)
        if key in self.resolved:  # a session's scores come in a few at a time
            return self.resolved[key]
        if (prompt, number) not in self.versions:
            if prompt not in self.prompt_names:
                raise _bad(index, f"no prompt named '{prompt}'", "prompt_not_found")
            raise _bad(index, f"'{prompt}' has no version {number}", "version_not_found")
        prompt_id, version_id = self.versions[(prompt, number)]
        variant = ""
        if experiment_id is not None:
            experiment = self.experiments.get(experiment_id)
            if experiment is None or experiment.prompt_id != prompt_id:
                raise _bad(index, f"no experiment {experiment_id} on '{prompt}'", "experiment_not_found")
            if experiment.state == ExperimentState.DRAFT:
                raise _bad(index, f"experiment {experiment_id} has not started", "experiment_not_started")
            if not session_id:
                raise _bad(index, "'session_id' is required for an experiment's scores (the variant comes from it)")
            variant = experiment.assign(session_id)
            if sent_variant and sent_variant != variant:
                raise _bad(index, f"session '{session_id}' is in {variant}, not {sent_variant}", "variant_mismatch")
            if experiment.version_id_for(variant) != version_id:
                served = experiment.version_for(variant).number
                raise _bad(
                    index,
                    f"session '{session_id}' is in {variant}, which serves v{served}, not v{number}",
                    "version_mismatch",
                )
        elif sent_variant:
            raise _bad(index, "'variant' needs an 'experiment'", "variant_mismatch")
        self.resolved[key] = (prompt_id, version_id, variant)
        return prompt_id, version_id, variant


def validate_scores(items: Any, *, now: datetime | None = None) -> list[_Row]:
    """Check a batch and turn it into one row per metric value; raises InvalidInput naming the index."""
    if not isinstance(items, list) or not items:
        raise InvalidInput("'scores' must be a non-empty list.", code="invalid_score")
    if len(items) > MAX_BATCH:
        raise InvalidInput(f"At most {MAX_BATCH:,} scores per request; got {len(items):,}.", code="too_many_scores")
    now = now or timezone.now()
    batch = _Batch([i for i in items if isinstance(i, dict)])
    adapt = connection.ops.adapt_datetimefield_value
    rows: list[_Row] = []
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            raise _bad(index, "each score must be an object")
        client_id = _text(item, "id", index, max_length=100)
        prompt = _text(item, "prompt", index, max_length=200)
        number = _int(item, "version", index, required=True)
        session_id = _text(item, "session_id", index, max_length=200, required=False)
        experiment_id = _int(item, "experiment", index, required=False)
        sent_variant = _text(item, "variant", index, max_length=12, required=False)
        metrics = _metrics(item, index, batch.metric_names)
        timestamp = adapt(_timestamp(item, index, now))
        assert number is not None  # required=True
        prompt_id, version_id, variant = batch.resolve(index, prompt, number, experiment_id, session_id, sent_variant)
        rows.extend(
            _Row(client_id, prompt_id, version_id, session_id, experiment_id, variant, metric, value, timestamp)
            for metric, value in metrics.items()
        )
    return rows


def _insert(rows: list[_Row]) -> tuple[int, list[tuple[int, str, str, str, float]]]:
    """Insert, skipping (client_id, metric) pairs already stored; returns how many were
    stored and the experiment rows among them."""
    returned = bulk_insert(
        Score,
        _Row._fields,
        [_PG_TYPES[c] for c in _Row._fields],
        rows,
        "ON CONFLICT (client_id, metric) DO NOTHING RETURNING experiment_id, session_id, variant, metric, value",
    )
    return len(returned), [row for row in returned if row[0] is not None]


def _accumulate(inserted: Iterable[tuple[int, str, str, str, float]]) -> None:
    """Fold new values into the per-session sums, then move each variant's
    Σ mean and Σ mean² by the change of that session's mean.

    One upsert adds (Δn, Δtotal) to each session row and returns its new sums;
    the sums before are new − Δ. The row lock the upsert takes orders concurrent
    batches touching the same session, so each sees the state the previous one
    left. The variant totals then take one upsert of increments, which commute."""
    per_session: dict[tuple[int, str, str], list] = {}
    for experiment_id, session_id, variant, metric, value in inserted:
        entry = per_session.setdefault((experiment_id, metric, session_id), [variant, 0, 0.0])
        entry[1] += 1
        entry[2] += value
    if not per_session:
        return
    updated = upsert(
        ExperimentSession,
        ("experiment_id", "metric", "session_id", "variant", "n", "total"),
        ("bigint", "text", "text", "text", "integer", "float8"),
        ("experiment_id", "metric", "session_id"),
        ("n", "total"),
        [(e, m, s, v[0], v[1], v[2]) for (e, m, s), v in per_session.items()],
        returning="experiment_id, metric, session_id, variant, n, total",
    )
    deltas: dict[tuple[int, str, str], list] = defaultdict(lambda: [0, 0.0, 0.0, 0])
    for experiment_id, metric, session_id, variant, n, total in updated:
        _, dn, dtotal = per_session[(experiment_id, metric, session_id)]
        new_mean = total / n
        old_n = n - dn
        old_mean = (total - dtotal) / old_n if old_n else 0.0
        delta = deltas[(experiment_id, variant, metric)]
        delta[0] += 0 if old_n else 1
        delta[1] += new_mean - old_mean
        delta[2] += new_mean * new_mean - old_mean * old_mean
        delta[3] += dn
    upsert(
        ExperimentTotal,
        ("experiment_id", "variant", "metric", "sessions", "sum", "sum_sq", "scores"),
        ("bigint", "text", "text", "bigint", "float8", "float8", "bigint"),
        ("experiment_id", "variant", "metric"),
        ("sessions", "sum", "sum_sq", "scores"),
        [(e, v, m, *deltas[(e, v, m)]) for e, v, m in deltas],
    )


def scores_ingest(*, scores: Any, actor: Actor) -> IngestResult:
    """Store a batch of scores (up to 1,000): all or nothing, idempotent on each score's `id`.

    Each item: `{"id", "prompt", "version", "session_id", "experiment", "variant", "metrics": {name: number},
    "timestamp", "sample"}`; `sample` (`{"variables", "output"}`) is kept at the prompt's sampling rate;
    `experiment`, `variant`, `session_id` and `timestamp` are optional (an experiment needs a session).
    """
    actor.require(Scope.WRITE, "Posting scores")
    rows = validate_scores(scores)
    kept = samples_pick(scores, rows)  # every sample checked and the rate applied before anything is written
    with transaction.atomic():
        stored, inserted = _insert(rows)
        _accumulate(inserted)
        samples_store(kept)
    return IngestResult(scores=len(scores), values_stored=stored, values_duplicate=len(rows) - stored)


@transaction.atomic
def experiment_totals_rebuild(experiment: Experiment) -> None:
    """Recompute the running sums of one experiment from its stored scores (repair, and a check in tests)."""
    Experiment.objects.select_for_update().get(pk=experiment.pk)
    ExperimentSession.objects.filter(experiment=experiment).delete()
    ExperimentTotal.objects.filter(experiment=experiment).delete()
    values = Score.objects.filter(experiment=experiment).values_list(
        "experiment_id", "session_id", "variant", "metric", "value"
    )
    _accumulate(values.iterator(chunk_size=5000))
