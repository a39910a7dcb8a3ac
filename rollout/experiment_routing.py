"""Experiment and canary routing on the fetch path (the `serving` A/B seam).

On a cache miss, `resolve` builds a block holding the experiment's id, its
traffic fraction and the finished (ETag, body) of each variant; the block is
cached with the label's entry. On every fetch, `assign` hashes the session id
into a bucket and picks a body: arithmetic on cached data, no database work.
Start, stop and ship send `serving_changed`, which drops the cached block.
"""

from __future__ import annotations

from experiments.models import CONTROL, VARIANTS, Experiment, assign_variant
from promptreg.models import Prompt, PromptVersion
from rollout.entries import encode, payload

NO_SESSION = "none"


def resolve(prompt: Prompt, label: str, version: PromptVersion) -> dict | None:
    """The running experiment's block for (prompt, label), or None."""
    experiment = (
        Experiment.objects.running()
        .filter(prompt=prompt, label=label)
        .select_related("control_version__prompt", "treatment_version__prompt")
        .first()
    )
    if experiment is None:
        return None
    bodies = {}
    for variant in VARIANTS:
        entry = encode(payload(experiment.version_for(variant), label, {"id": experiment.pk, "variant": variant}))
        bodies[variant] = [entry.etag, entry.body.decode()]
    # Without a session id the caller is in no experiment: the label's own version, experiment null.
    plain = encode(payload(version, label))
    bodies[NO_SESSION] = [plain.etag, plain.body.decode()]
    return {"id": experiment.pk, "fraction": experiment.traffic_fraction, "bodies": bodies}


def assign(block: dict, session_id: str | None) -> tuple[str, bytes]:
    """The (ETag, body) of the session's variant, by the team's hash (`Experiment.assign`)."""
    variant = assign_variant(session_id, block["id"], block["fraction"]) if session_id else NO_SESSION
    etag, body = block["bodies"][variant if variant in block["bodies"] else CONTROL]
    return etag, body.encode()
