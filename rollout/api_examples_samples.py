"""OpenAPI examples of the production-samples operations (merged into `rollout.api_examples.EXAMPLES`)."""

from __future__ import annotations

from typing import Any

from rollout.api_examples_prompts import NAME, PROMPT

SAMPLE_OUT = {
    "id": 1,
    "version": 2,
    "variables": {"company": "Acme"},
    "output": "Refunds take 5 days at Acme.",
    "metrics": {"quality_score": 0.8, "latency_ms": 420.0},
    "timestamp": "2026-11-24T18:00:00+00:00",
}
SAMPLING_OUT = {"prompt": NAME, "rate": 0.25, "retention_days": 14}
CASES_REQUEST = {
    "cases": [{"variables": {"company": "Acme"}, "expected": "Refunds take 5 days", "tags": ["from-sample"]}]
}

SAMPLE_EXAMPLES: dict[tuple[str, str], dict[str, Any]] = {
    ("get", PROMPT + "/samples"): {
        "params": {"name": NAME, "version": 2, "metric": "quality_score", "order": "worst", "limit": 20},
        "request": None,
        "status": 200,
        "response": {"data": [SAMPLE_OUT]},
    },
    ("put", PROMPT + "/sampling"): {
        "params": {"name": NAME},
        "request": {"rate": 0.25, "retention_days": 14},
        "status": 200,
        "response": SAMPLING_OUT,
    },
    ("get", PROMPT + "/sampling"): {"params": {"name": NAME}, "request": None, "status": 200, "response": SAMPLING_OUT},
    ("post", "/api/v1/datasets/{ref}/cases"): {
        "params": {"ref": "support-regression"},
        "request": CASES_REQUEST,
        "status": 201,
        "response": {
            "id": 1,
            "name": "support-regression",
            "description": "Tickets that went wrong before",
            "scorers": [{"name": "reference_f1"}],
            "primary_metric": None,
            "cases": 3,
            "added": 1,
        },
    },
}
