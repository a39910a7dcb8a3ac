"""OpenAPI examples of the datasets and evaluation runs (merged into `rollout.api_examples.EXAMPLES`)."""

from __future__ import annotations

from typing import Any

from rollout.api_examples_prompts import NAME, PROMPT

RUN = "/api/v1/evaluations/{run_id}"
DATASET_OUT = {
    "id": 1,
    "name": "support-regression",
    "description": "Tickets that went wrong before",
    "scorers": [
        {"name": "reference_f1"},
        {"name": "contains_any", "keywords": ["refund", "password"]},
        {"name": "length_window", "min": 20, "max": 600},
    ],
    "primary_metric": None,
    "cases": 2,
}
RUN_OUT = {
    "id": 1,
    "state": "running",
    "prompt": NAME,
    "version": 2,
    "dataset": 1,
    "model": "gpt-4o-mini",
    "progress": {"done": 40, "total": 120},
    "metrics": {
        "reference_f1": {"mean": 0.71, "ci": [0.65, 0.77], "n": 40},
        "contains_any": {"mean": 0.9, "ci": [0.81, 0.99], "n": 40},
        "length_window": {"mean": 0.95, "ci": [0.88, 1.0], "n": 40},
        "quality_score": {"mean": 0.853, "ci": [0.8, 0.9], "n": 40},
    },
    "primary_metric": "quality_score",
    "baseline": None,
    "error": None,
    "created_at": "2026-11-24T18:09:36.042Z",
    "finished_at": None,
}

EVALUATION_EXAMPLES: dict[tuple[str, str], dict[str, Any]] = {
    ("post", "/api/v1/datasets"): {
        "params": {},
        "request": {
            "name": "support-regression",
            "description": "Tickets that went wrong before",
            "scorers": [
                "reference_f1",
                {"name": "contains_any", "keywords": ["refund", "password"]},
                {"name": "length_window", "min": 20, "max": 600},
            ],
            "cases": [
                {"variables": {"company": "Acme"}, "expected": "refund within 30 days", "tags": ["refunds"]},
                {"variables": {"company": "Acme"}, "expected": "reset your password", "tags": ["accounts"]},
            ],
        },
        "status": 201,
        "response": DATASET_OUT,
    },
    ("get", "/api/v1/datasets/{ref}"): {
        "params": {"ref": "support-regression"},
        "request": None,
        "status": 200,
        "response": {
            **DATASET_OUT,
            "case_list": [
                {
                    "id": 1,
                    "position": 1,
                    "variables": {"company": "Acme"},
                    "expected": "refund within 30 days",
                    "tags": ["refunds"],
                },
                {
                    "id": 2,
                    "position": 2,
                    "variables": {"company": "Acme"},
                    "expected": "reset your password",
                    "tags": ["accounts"],
                },
            ],
        },
    },
    ("put", PROMPT + "/dataset"): {
        "params": {"name": NAME},
        "request": {"dataset": "support-regression"},
        "status": 200,
        "response": {"prompt": NAME, "dataset": {"id": 1, "name": "support-regression"}},
    },
    ("post", "/api/v1/evaluations"): {
        "params": {},
        "request": {"prompt": NAME, "version": 2, "dataset": "support-regression"},
        "status": 202,
        "response": {**RUN_OUT, "state": "queued", "progress": {"done": 0, "total": 120}, "metrics": {}},
    },
    ("get", RUN): {"params": {"run_id": 1}, "request": None, "status": 200, "response": RUN_OUT},
    ("post", RUN + "/cancel"): {
        "params": {"run_id": 1},
        "request": None,
        "status": 200,
        "response": {**RUN_OUT, "state": "cancelled", "finished_at": "2026-11-24T18:10:02.511Z"},
    },
}
