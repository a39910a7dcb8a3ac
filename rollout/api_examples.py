"""Examples for the OpenAPI document of /api/v1: one request and one response per operation.

They tell one story, in order, and `tests/rollout/test_api_examples.py` runs it
against a fresh database and checks every answer against the document, so the
examples stay true. Keyed by (method, path template); `params` are example
values for path and query parameters. One module per API area, merged here:

(method, path): {"params": {...}, "request": body or None, "status": the 2xx it answers, "response": body}
"""

from __future__ import annotations

from typing import Any

from rollout.api_examples_evaluations import EVALUATION_EXAMPLES
from rollout.api_examples_experiments import EXPERIMENT_EXAMPLES
from rollout.api_examples_prompts import PROMPT_EXAMPLES
from rollout.api_examples_samples import SAMPLE_EXAMPLES
from rollout.api_examples_webhooks import WEBHOOK_EXAMPLES

EXAMPLES: dict[tuple[str, str], dict[str, Any]] = {
    **PROMPT_EXAMPLES,
    **SAMPLE_EXAMPLES,
    **EVALUATION_EXAMPLES,
    **EXPERIMENT_EXAMPLES,
    **WEBHOOK_EXAMPLES,
}
