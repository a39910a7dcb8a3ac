"""Registry actions. One function per action; every entry point (dashboard, API,
CLI, monitors, experiments) calls these, so rules and records are the same everywhere.

Writes to one prompt serialise on its row (`select_for_update`; on SQLite the
IMMEDIATE transaction mode does the same), which keeps version numbers gap-free
and label moves linear under concurrency.

Who acts and what every action shares: `services.base`; by idea: `versions`, `labels` (moves and rollbacks),
`reviews`, `policy`, `keys`, `prompts` (retire, restore). Import the actions from here.
"""

from promptreg.services.base import POLICY, REVIEW, Actor, event_emit
from promptreg.services.keys import api_key_issue, api_key_revoke
from promptreg.services.labels import label_move, live_span, rollback, rollback_target
from promptreg.services.policy import POLICY_FIELDS, policy_change_record, prompt_set_type, review_policy_update
from promptreg.services.prompts import prompt_restore, prompt_retire
from promptreg.services.reviews import review_submit, version_submit_for_review
from promptreg.services.versions import (
    MAX_MODEL_CHARS,
    validate_content,
    version_publish,
    version_tags_set,
)
from promptreg.templating import MAX_BODY_CHARS

__all__ = [
    "REVIEW",
    "POLICY",
    "Actor",
    "event_emit",
    "policy_change_record",
    "prompt_set_type",
    "POLICY_FIELDS",
    "review_policy_update",
    "MAX_BODY_CHARS",
    "MAX_MODEL_CHARS",
    "version_tags_set",
    "validate_content",
    "version_publish",
    "label_move",
    "rollback_target",
    "live_span",
    "rollback",
    "version_submit_for_review",
    "review_submit",
    "api_key_issue",
    "api_key_revoke",
    "prompt_retire",
    "prompt_restore",
]
