"""The registry: prompts, immutable versions, labels and their move log, reviews, API keys."""

from promptreg.models.actor import ActorNamed
from promptreg.models.inclusion import DependentChange, Inclusion
from promptreg.models.keys import (
    PUBLIC_PREFIX,
    ROLE_FOR_SCOPE,
    SECRET_PREFIX,
    ApiKey,
    ApiKeyQuerySet,
    Scope,
    hash_secret,
    scopes_beyond,
)
from promptreg.models.label import Label, LabelMove, MoveVia
from promptreg.models.prompt import (
    LABEL_RE,
    LATEST,
    NAME_RE,
    PRODUCTION,
    RESERVED_SEGMENTS,
    Prompt,
    PromptQuerySet,
    PromptType,
    Tag,
    prompt_name_warnings,
    validate_label_name,
    validate_prompt_name,
)
from promptreg.models.review import PolicyArea, PolicyChange, Review, ReviewDecision, ReviewPolicy
from promptreg.models.version import CONTENT_FIELDS, PromptKind, PromptVersion, PromptVersionQuerySet, VersionStatus

__all__ = [
    "NAME_RE",
    "LABEL_RE",
    "PRODUCTION",
    "LATEST",
    "RESERVED_SEGMENTS",
    "validate_prompt_name",
    "prompt_name_warnings",
    "validate_label_name",
    "PromptType",
    "Tag",
    "PromptQuerySet",
    "Prompt",
    "VersionStatus",
    "PromptKind",
    "CONTENT_FIELDS",
    "PromptVersionQuerySet",
    "PromptVersion",
    "Label",
    "MoveVia",
    "LabelMove",
    "ActorNamed",
    "ReviewDecision",
    "Review",
    "ReviewPolicy",
    "PolicyArea",
    "PolicyChange",
    "Scope",
    "ROLE_FOR_SCOPE",
    "scopes_beyond",
    "SECRET_PREFIX",
    "PUBLIC_PREFIX",
    "hash_secret",
    "ApiKeyQuerySet",
    "ApiKey",
    "Inclusion",
    "DependentChange",
]
