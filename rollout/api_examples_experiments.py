"""OpenAPI examples of score ingestion and the A/B experiments (merged into `rollout.api_examples.EXAMPLES`)."""

from __future__ import annotations

from typing import Any

from rollout.api_examples_prompts import NAME

EXPERIMENT = "/api/v1/experiments/{experiment_id}"

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
ENDED = {
    "ended_at": "2026-11-25T09:00:00Z",
    "analysis": {**EXPERIMENT_OUT["analysis"], "decision": "no_significant_difference"},
}

EXPERIMENT_EXAMPLES: dict[tuple[str, str], dict[str, Any]] = {
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
}
