"""OpenAPI examples of the webhook subscriptions (merged into `rollout.api_examples.EXAMPLES`)."""

from __future__ import annotations

from typing import Any

from rollout.api_examples_prompts import NAME

WEBHOOK = "/api/v1/webhooks/{webhook_id}"
WEBHOOK_OUT = {
    "id": 1,
    "url": "https://ci.example.com/hooks/promptreg",
    "events": ["version.created", "label.moved"],
    "prompts": [NAME],
    "created_by": "API key deploy-pipeline",
    "created_at": "2026-11-24T18:09:30.120Z",
}

WEBHOOK_EXAMPLES: dict[tuple[str, str], dict[str, Any]] = {
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
