"""Promotion gates: what a version still needs before it may take a protected label
(`production`, plus the PROTECTED_LABELS setting and its type's `ReviewPolicy.protected_labels`).

The review gate lives here. Apps above the registry (the evaluation gate in
`experiments`) register their own checks at start-up, so the registry never
imports them.
"""

from __future__ import annotations

from collections.abc import Callable

from promptreg.models import PromptVersion, ReviewPolicy, VersionStatus

# A check returns None when satisfied, else a sentence saying what is missing.
GateCheck = Callable[[PromptVersion, ReviewPolicy], "str | None"]
_extra_checks: dict[str, GateCheck] = {}


def register_gate(name: str, check: GateCheck) -> None:
    _extra_checks[name] = check


def review_gate(version: PromptVersion, policy: ReviewPolicy) -> str | None:
    if not policy.requires_review:
        return None
    if version.status == VersionStatus.CHANGES_REQUESTED:
        return "peer review: a reviewer requested changes"
    approvals = version.approval_count()
    if version.status != VersionStatus.APPROVED or approvals < policy.min_approvals:
        need = policy.min_approvals
        return (
            f"peer review: needs {need} approval{'s' if need != 1 else ''} from someone other than the author "
            f"({approvals} so far)"
        )
    return None


def eval_gate_missing(version: PromptVersion, policy: ReviewPolicy) -> str | None:
    """Used when the policy asks for an eval gate but no evaluation app registered one."""
    return "eval gate: no evaluation has been run for this version"


def protected_labels(prompt_type: str) -> list[str]:
    return ReviewPolicy.for_type(prompt_type).gated_labels


def missing_gates(version: PromptVersion, label: str) -> list[str]:
    """Sentences naming each gate the version has not passed for `label` (empty for an unprotected label)."""
    policy = ReviewPolicy.for_type(version.prompt.prompt_type)
    if label not in policy.gated_labels:
        return []
    return policy_gaps(version, policy)


def policy_gaps(version: PromptVersion, policy: ReviewPolicy | None = None) -> list[str]:
    """Sentences naming each gate of its type's policy that the version has not passed, whatever the label."""
    policy = policy or ReviewPolicy.for_type(version.prompt.prompt_type)
    missing = [review_gate(version, policy)]
    if policy.requires_eval:
        missing.append(_extra_checks.get("eval", eval_gate_missing)(version, policy))
    for name, check in _extra_checks.items():
        if name != "eval":
            missing.append(check(version, policy))
    return [m for m in missing if m]
