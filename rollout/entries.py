"""What a fetch answers, resolved from the database: the serialized entry (status, ETag, body and a running
experiment's block) and the API key's verdict. Caching them is `rollout.serving`.

A/B seam: a label entry may carry an experiment block (JSON). `set_experiment_router`
lets the experiments code say, on a cache miss, which block a (prompt, label)
has, and how a session id picks a variant's (ETag, body) from the block, which
is arithmetic on cached data: no database work on a warm fetch.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from promptreg import composition
from promptreg.models import LATEST, ApiKey, Prompt, PromptVersion, Scope

SEP = b"\x1f"


# Verdicts on an API key for fetching.
CAN_READ, NO_READ, UNKNOWN_KEY = b"r", b"n", b"x"


@dataclass(frozen=True)
class Entry:
    """A resolved fetch: status, ETag and JSON body (or an experiment block to pick them from)."""

    status: int
    etag: str
    body: bytes
    experiment: dict[str, Any] | None = None

    def pack(self, generation: bytes) -> bytes:
        block = json.dumps(self.experiment, separators=(",", ":")).encode() if self.experiment else b""
        return SEP.join((generation, str(self.status).encode(), self.etag.encode(), block, self.body))

    @classmethod
    def unpack(cls, raw: bytes) -> tuple[bytes, Entry]:
        generation, status, etag, block, body = raw.split(SEP, 4)
        return generation, cls(int(status), etag.decode(), body, json.loads(block) if block else None)

    def for_session(self, session_id: str | None) -> tuple[str, bytes]:
        """The (ETag, body) this session gets: the experiment's variant when one is running."""
        if self.experiment is not None and _experiment_assign is not None:
            return _experiment_assign(self.experiment, session_id)
        return self.etag, self.body


ExperimentResolve = Callable[[Prompt, str, PromptVersion], "dict[str, Any] | None"]
ExperimentAssign = Callable[[dict[str, Any], "str | None"], "tuple[str, bytes]"]
_experiment_resolve: ExperimentResolve | None = None
_experiment_assign: ExperimentAssign | None = None


def set_experiment_router(resolve: ExperimentResolve, assign: ExperimentAssign) -> None:
    """`resolve(prompt, label, version)` returns the JSON block of a running experiment on
    that label (or None), built with `payload()`/`encode()` for each variant; `assign(block,
    session_id)` returns the (ETag, body) of the session's variant, without I/O."""
    global _experiment_resolve, _experiment_assign
    _experiment_resolve, _experiment_assign = resolve, assign


def payload(version: PromptVersion, label: str | None, experiment: dict[str, Any] | None = None) -> dict[str, Any]:
    """The fetch response for a version (the public contract's fields first, then extras), its includes resolved
    (`composition.CompositionError` when one does not resolve)."""
    prompt = version.prompt
    resolved = composition.resolve(version)
    return {
        "name": prompt.name,
        "version": version.number,
        "label": label,
        "type": version.kind,
        "prompt": resolved.body,
        "config": version.config,
        "variables": resolved.variables,
        "experiment": experiment,
        "dependencies": resolved.dependencies,
        "labels": sorted(version.labels.values_list("name", flat=True)),
        "prompt_type": prompt.prompt_type,
        "commit_message": version.commit_message,
        "created_at": version.created_at.isoformat(),
    }


def encode(data: dict[str, Any], status: int = 200) -> Entry:
    body = json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode()
    etag = '"' + hashlib.blake2b(body, digest_size=16).hexdigest() + '"' if status == 200 else ""
    return Entry(status, etag, body)


def _error(status: int, code: str, message: str) -> Entry:
    return encode({"error": {"code": code, "message": message}}, status)


def resolve(name: str, label: str | None, version: int | None) -> Entry:
    """Resolve a fetch from the database. Unknown or retired prompts, and includes that do not resolve, resolve to
    error entries, which are cached like any other (a publish, restore or label move invalidates them)."""
    try:
        return _resolve(name, label, version)
    except composition.CompositionError as exc:
        return _error(409, "dependency_unresolved", f"'{name}' cannot be served: {exc.message}")


def _resolve(name: str, label: str | None, version: int | None) -> Entry:
    prompt = Prompt.objects.filter(name=name).first()
    if prompt is None:
        return _error(404, "prompt_not_found", f"No prompt named '{name}'.")
    if prompt.is_retired:
        return _error(410, "prompt_retired", f"'{name}' is retired and no longer served; restore it to serve it again.")
    if version is not None:
        found = prompt.versions.filter(number=version).first()
        if found is None:
            return _error(404, "version_not_found", f"'{name}' has no version {version}.")
        return encode(payload(found, None))
    assert label is not None, "a fetch names a label or a version"
    found = prompt.label_version(label)
    if found is None:
        hint = " (it has no versions yet)" if label == LATEST else ""
        return _error(404, "label_not_found", f"'{name}' has no label '{label}'{hint}.")
    entry = encode(payload(found, label))
    if _experiment_resolve is not None:
        block = _experiment_resolve(prompt, label, found)
        if block is not None:
            return Entry(entry.status, entry.etag, entry.body, block)
    return entry


def key_verdict(secret: str) -> bytes:
    return verdict_for(ApiKey.find(secret))


def verdict_for(key: ApiKey | None) -> bytes:
    """`CAN_READ` or `NO_READ` followed by the key's public id (the Langfuse route's Basic auth
    names it), or `UNKNOWN_KEY`; `verdict[:1]` is the verdict."""
    if key is None or key.revoked_at is not None:
        return UNKNOWN_KEY
    return (CAN_READ if key.has_scope(Scope.READ) else NO_READ) + key.public_id.encode()
