"""OpenAPI examples of the prompt operations: publish, label moves, fetch, tags, list, rollback, run, monitor.

Also the names every other area's examples share (merged into `rollout.api_examples.EXAMPLES`)."""

from __future__ import annotations

from typing import Any

NAME = "customer-support-system"
PROMPT = "/api/v1/prompts/{name}"

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

PROMPT_EXAMPLES: dict[tuple[str, str], dict[str, Any]] = {
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
}
