"""JSON API for online experiments: score ingestion and experiments as code."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from ninja import Router, Schema

from experiments.scores import MAX_BATCH, scores_ingest
from promptreg.api_auth import ApiKeyAuth, api_actor
from promptreg.models import Scope

router = Router(tags=["experiments"])


class ScoresIn(Schema):
    scores: list[dict[str, Any]]


class ScoresOut(Schema):
    scores: int
    values_stored: int
    values_duplicate: int


@router.post(
    "/scores",
    auth=ApiKeyAuth(Scope.WRITE),
    response=ScoresOut,
    summary="Post scores (up to 1,000 per request)",
    description=(
        f"Up to {MAX_BATCH:,} scores: `{{\"id\",\"prompt\",\"version\",\"session_id\",\"experiment\",\"variant\","
        "\"metrics\": {\"quality_score\": 0.8},\"timestamp\"}`. Idempotent on `id` (per metric). All or nothing: "
        "a bad item is a 400 whose `error.index` names it, and nothing from the request is stored. "
        "An experiment's variant comes from the session; a `variant` that disagrees is a 400."
    ),
)
def post_scores(request: HttpRequest, payload: ScoresIn):
    return scores_ingest(scores=payload.scores, actor=api_actor(request)).to_dict()
