"""Examples for the OpenAPI document of /api/v1: one request and one response per operation.

They tell one story, in order, and `tests/rollout/test_api_examples.py` runs it
against a fresh database and checks every answer against the document, so the
examples stay true. Keyed by (method, path template); `params` are example
values for path and query parameters.
"""

from __future__ import annotations

from typing import Any

from rollout.api_examples_samples import SAMPLE_EXAMPLES

NAME = "customer-support-system"
PROMPT = "/api/v1/prompts/{name}"
EXPERIMENT = "/api/v1/experiments/{experiment_id}"
RUN = "/api/v1/evaluations/{run_id}"

EXPERIMENT_BODY = {
    "prompt": NAME,
    "label": "production",
    "control_version": 1,
    "treatment_version": 2,
    "traffic_fraction": 0.5,
    "primary_metric": "quality_score",
    "guardrails": [{"metric": "latency_ms", "direction": "lower_is_better", "margin": 50}],
    "alpha": 0.05,
    "min_samples_per_variant": 200,
    "mode": "sequential",
    "hypothesis": "Shorter answers raise the quality score",
}

PROMPT_OUT = {
    "name": NAME,
    "version": 2,
    "label": "production",
    "type": "text",
    "prompt": "You are the support assistant for {{ company }}. Answer in at most three sentences.",
    "config": {"model": "gpt-4o-mini", "temperature": 0.2},
    "variables": ["company"],
    "experiment": None,
    "dependencies": [],
    "labels": ["production"],
    "prompt_type": "system",
    "commit_message": "Shorter answers: users skim",
    "created_at": "2026-11-24T18:09:35.978Z",
}
MOVE_OUT = {
    "id": 2,
    "name": NAME,
    "label": "production",
    "version": 2,
    "previous_version": 1,
    "is_rollback": False,
    "is_override": False,
    "bypassed_gates": [],
    "reason": "Approved and eval passed",
    "via": "api",
    "actor": "API key deploy-pipeline",
    "created_at": "2026-11-24T18:09:35.992Z",
    "dependents": [],
    "impact": "",
}
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
SIDE = {"n": 0, "mean": None}
EXPERIMENT_OUT: dict[str, Any] = {
    "id": 1,
    "kind": "experiment",
    **EXPERIMENT_BODY,
    "primary_direction": "higher_is_better",
    "primary_kind": "mean",
    "power": 0.8,
    "minimum_detectable_effect": None,
    "baseline_sd": None,
    "min_runtime_hours": 0.0,
    "state": "running",
    "created_at": "2026-11-24T18:09:36.069Z",
    "started_at": "2026-11-24T18:09:36.076Z",
    "ended_at": None,
    "end_reason": "",
    "shipped": False,
    "required_n_per_variant": None,
    "analysis": {
        "decision": "insufficient_data",
        "explanation": "Not enough data yet: 0 control and 0 treatment sessions have a 'quality_score' score; "
        "each variant needs at least 200 before anything is concluded.",
        "primary": {
            "metric": "quality_score",
            "control": SIDE,
            "treatment": SIDE,
            "absolute_lift": None,
            "absolute_ci": None,
            "relative_lift": None,
            "relative_ci": None,
            "p_value": None,
        },
        "guardrails": [
            {
                "metric": "latency_ms",
                "margin": 50.0,
                "direction": "lower_is_better",
                "control": SIDE,
                "treatment": SIDE,
                "effect": None,
                "bound": None,
                "p_value": None,
                "non_inferior": False,
                "degraded": False,
            }
        ],
        "srm": {"p_value": 1.0, "ok": True, "observed": [0, 0], "expected_fraction": 0.5},
        "required_n_per_variant": None,
        "required_n": None,
        "progress": None,
        "mode": "sequential",
    },
}
MONITOR_BODY = {
    "metric": "quality_score",
    "interval_seconds": 300,
    "consecutive_failures": 2,
    "floor": {"threshold": 0.7, "window_minutes": 30, "min_samples": 50},
    "relative": {"margin": 0.05, "alpha": 0.01, "window_minutes": 60, "min_samples": 100},
    "enabled": True,
}
MONITOR_OUT = {
    "prompt": NAME,
    "label": "production",
    "canary": None,  # on a canary's monitor: {"experiment", "state", "version", "control_version", "traffic_fraction"}
    **MONITOR_BODY,
    "direction": "higher_is_better",
    "inconclusive_before_page": 10,
    "cooldown_minutes": 30,
    "state": "healthy",
    "watched_version": 1,
    "failure_streak": 0,
    "inconclusive_streak": 0,
    "last_checked_at": "2026-11-24T18:15:00Z",
    "checks": [
        {
            "id": 7,
            "at": "2026-11-24T18:15:00Z",
            "version": 1,
            "outcome": "successful",
            "action": "none",
            "summary": "quality_score 0.84 over the last 30 minutes (n=212) is above the floor 0.7.",
            "evidence": {"mean": 0.84, "n": 212, "threshold": 0.7},
        }
    ],
    "canaries": [],  # the monitors of the label's running canaries, each shaped like this one
}
ENDED = {
    "ended_at": "2026-11-25T09:00:00Z",
    "analysis": {**EXPERIMENT_OUT["analysis"], "decision": "no_significant_difference"},
}

# (method, path): {"params": {...}, "request": body or None, "status": the 2xx it answers, "response": body}
WEBHOOK = "/api/v1/webhooks/{webhook_id}"
WEBHOOK_OUT = {
    "id": 1,
    "url": "https://ci.example.com/hooks/promptreg",
    "events": ["version.created", "label.moved"],
    "prompts": [NAME],
    "created_by": "API key deploy-pipeline",
    "created_at": "2026-11-24T18:09:30.120Z",
}

EXAMPLES: dict[tuple[str, str], dict[str, Any]] = {
    ("post", PROMPT + "/versions"): {
        "params": {"name": NAME},
        "request": {
            "type": "text",
            "prompt": "You are the support assistant for {{ company }}. Answer in at most three sentences.",
            "config": {"model": "gpt-4o-mini", "temperature": 0.2},
            "commit_message": "Shorter answers: users skim",
            "purpose": "Answers support tickets",
        },
        "status": 201,
        "response": {**PROMPT_OUT, "label": None, "labels": []},
    },
    ("post", PROMPT + "/labels/{label}"): {
        "params": {"name": NAME, "label": "production"},
        "request": {"version": 2, "reason": "Approved and eval passed", "override": False},
        "status": 200,
        "response": MOVE_OUT,
    },
    ("get", PROMPT): {
        "params": {"name": NAME, "label": "production", "session_id": "user-42"},
        "request": None,
        "status": 200,
        "response": PROMPT_OUT,
    },
    ("put", "/api/v1/prompts/{name}/versions/{number}/tags"): {
        "params": {"name": NAME, "number": 2},
        "request": {"tags": ["legal-approved", "short-answers"]},
        "status": 200,
        "response": {"name": NAME, "version": 2, "tags": ["legal-approved", "short-answers"]},
    },
    ("get", "/api/v1/prompts"): {
        "params": {"search": "support", "tag": "legal-approved", "label": "production", "page": 1, "limit": 20},
        "request": None,
        "status": 200,
        "response": {
            "data": [
                {
                    "name": NAME,
                    "type": "text",
                    "prompt_type": "system",
                    "tags": [],
                    "labels": {"production": 2},
                    "latest_version": 2,
                    "updated_at": "2026-11-24T18:09:35.992Z",
                }
            ],
            "meta": {"page": 1, "limit": 20, "total": 1},
        },
    },
    ("post", "/api/v1/scores"): {
        "params": {},
        "request": {
            "scores": [
                {
                    "id": "req-8f2c41",
                    "prompt": NAME,
                    "version": 2,
                    "session_id": "user-42",
                    "experiment": None,
                    "metrics": {"quality_score": 0.8, "latency_ms": 420},
                    "timestamp": "2026-11-24T18:00:00Z",
                    "sample": {"variables": {"company": "Acme"}, "output": "Refunds take 5 days at Acme."},
                }
            ]
        },
        "status": 200,
        "response": {"scores": 1, "values_stored": 2, "values_duplicate": 0},
    },
    ("post", PROMPT + "/rollback"): {
        "params": {"name": NAME},
        "request": {"reason": "Quality score dropped after v2", "label": "production"},
        "status": 200,
        "response": {
            **MOVE_OUT,
            "id": 3,
            "version": 1,
            "previous_version": 2,
            "is_rollback": True,
            "reason": "Quality score dropped after v2",
        },
    },
    ("put", PROMPT + "/monitor"): {
        "params": {"name": NAME},
        "request": MONITOR_BODY,
        "status": 200,
        "response": {**MONITOR_OUT, "state": "waiting", "watched_version": None, "last_checked_at": None, "checks": []},
    },
    ("get", PROMPT + "/monitor"): {"params": {"name": NAME}, "request": None, "status": 200, "response": MONITOR_OUT},
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
    ("post", PROMPT + "/run"): {
        "params": {"name": NAME},
        "request": {"label": "production", "variables": {"company": "Acme"}, "config": {"temperature": 0}},
        "status": 200,
        "response": {
            "output": "Hello! I'm the Acme support assistant. How can I help?",
            "model": "gpt-4o-mini",
            "latency_ms": 412.7,
            "usage": {"input_tokens": 31, "output_tokens": 14},
            "cost_usd": 0.0000131,
            "version": 2,
        },
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
    ("post", "/api/v1/experiments"): {
        "params": {},
        "request": EXPERIMENT_BODY,
        "status": 201,
        "response": {**EXPERIMENT_OUT, "state": "draft", "started_at": None, "analysis": None},
    },
    ("post", EXPERIMENT + "/start"): {
        "params": {"experiment_id": 1},
        "request": {"override": False, "reason": "Planned test of approved v2"},
        "status": 200,
        "response": EXPERIMENT_OUT,
    },
    ("get", EXPERIMENT): {"params": {"experiment_id": 1}, "request": None, "status": 200, "response": EXPERIMENT_OUT},
    ("post", EXPERIMENT + "/stop"): {
        "params": {"experiment_id": 1},
        "request": {"reason": "Guardrail alert from on-call"},
        "status": 200,
        "response": {**EXPERIMENT_OUT, **ENDED, "state": "stopped", "end_reason": "Guardrail alert from on-call"},
    },
    ("post", EXPERIMENT + "/conclude"): {
        "params": {"experiment_id": 1},
        "request": {"reason": "Keep the control: no lift"},
        "status": 200,
        "response": {**EXPERIMENT_OUT, **ENDED, "state": "concluded", "end_reason": "Keep the control: no lift"},
    },
    ("post", EXPERIMENT + "/ship"): {
        "params": {"experiment_id": 2},
        # Without an override this answers 400 `ship_blocked` until the analysis says `ship_treatment`; the
        # story ships before any score arrives, so it overrides (an `admin` key; recorded with its reason).
        "request": {
            "reason": "Treatment wins on quality in the offline eval; shipping before the A/B verdict",
            "override": True,
        },
        "status": 200,
        "response": {
            **EXPERIMENT_OUT,
            **ENDED,
            "id": 2,
            "state": "concluded",
            "shipped": True,
            "end_reason": "shipped: Treatment wins on quality in the offline eval; shipping before the A/B verdict",
        },
    },
    ("post", "/api/v1/webhooks"): {
        "params": {},
        "request": {
            "url": "https://ci.example.com/hooks/promptreg",
            "events": ["version.created", "label.moved"],
            "prompts": [NAME],
            "secret": "9f86d081884c7d659a2feaa0c55ad015",
        },
        "status": 201,
        "response": WEBHOOK_OUT,
    },
    ("get", "/api/v1/webhooks"): {"params": {}, "request": None, "status": 200, "response": {"data": [WEBHOOK_OUT]}},
    ("post", WEBHOOK + "/test"): {
        "params": {"webhook_id": 1},
        "request": None,
        "status": 202,
        "response": {
            "id": "0f6c1f0e-3b7a-4d55-9a51-2f1d1c8e6a42",
            "event": "webhook.test",
            "created_at": "2026-11-24T18:09:30.388Z",
            "prompt": None,
            "data": {"message": "Test event from promptreg.", "webhook": 1, "actor": "API key deploy-pipeline"},
        },
    },
    ("delete", WEBHOOK): {"params": {"webhook_id": 1}, "request": None, "status": 200, "response": WEBHOOK_OUT},
}
EXAMPLES.update(SAMPLE_EXAMPLES)
