"""Prompts as files in Git: export (one file per prompt, the newest version) and import (publish what changed).

The format, and reading and validating files, is `promptreg.file_format`. Import reads and validates every file first
and writes nothing if any file has a problem; then it publishes a new version only where the content (type, body,
config: `PromptVersion.content_hash`) differs from the newest version, so a second run does nothing. VERSION,
LAST_CHANGED, CHANGED_BY and EVAL_SCORE are written by export and ignored by import.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.db import transaction
from django.db.models import OuterRef, Subquery

from promptreg import composition
from promptreg.exceptions import RegistryError
from promptreg.file_format import CONTINUATION, SEPARATOR, FileErrors, Problem, leaves_directory, read_dir
from promptreg.models import LabelMove, MoveVia, Prompt, PromptKind, PromptVersion
from promptreg.services import Actor, label_move, version_publish

# The registry cannot import the evaluation app; it registers a function giving
# a version's headline score (or None), written as EVAL_SCORE on export.
EvalScore = Callable[[PromptVersion], "float | None"]
_eval_score: EvalScore | None = None


def register_eval_score(provider: EvalScore) -> None:
    global _eval_score
    _eval_score = provider


@dataclass
class ImportResult:
    published: list[PromptVersion] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    moves: list[LabelMove] = field(default_factory=list)
    source_commit: str = ""


def _header(version: PromptVersion) -> dict[str, Any]:
    score = _eval_score(version) if _eval_score else None
    return {
        "PROMPT": version.prompt.name,
        "VERSION": version.number,
        "PURPOSE": version.purpose,
        "LAST_CHANGED": version.created_at.replace(microsecond=0).isoformat(),
        "CHANGED_BY": version.author_name,
        "REASON": version.commit_message,
        "KNOWN_EDGE_CASES": version.known_edge_cases,
        "EVAL_SCORE": "" if score is None else round(score, 4),
        "PROMPT_TYPE": version.prompt.prompt_type,
        "CONFIG": version.config,
    }


def render(version: PromptVersion) -> str:
    """A version as file content (`.txt` for text, `.json` for chat)."""
    header = _header(version)
    if version.kind == PromptKind.CHAT:
        header["EVAL_SCORE"] = header["EVAL_SCORE"] if header["EVAL_SCORE"] != "" else None
        return json.dumps({**header, "messages": version.body}, indent=2, ensure_ascii=False) + "\n"
    lines = []
    for key, value in header.items():
        text = json.dumps(value, sort_keys=True, ensure_ascii=False) if key == "CONFIG" else str(value)
        first, *rest = text.split("\n")
        lines.append(f"{key}: {first}".rstrip())
        lines.extend((CONTINUATION + line).rstrip() for line in rest)
    # One newline is added after the body and removed on import, so a body that
    # ends with a newline survives the round trip.
    return "\n".join(lines) + f"\n{SEPARATOR}\n" + version.body + "\n"


def file_path(directory: Path, version: PromptVersion) -> Path:
    suffix = ".json" if version.kind == PromptKind.CHAT else ".txt"
    return directory / (version.prompt.name + suffix)


def export_dir(directory: Path) -> list[Path]:
    """Write the newest version of every active prompt; returns the paths written.

    Nothing is written when any file would go through a symlink out of `directory`."""
    versions = [
        v for v in (p.latest_version() for p in Prompt.objects.active().prefetch_related("versions")) if v is not None
    ]
    paths = [file_path(directory, version) for version in versions]
    problems = [problem for problem in (leaves_directory(directory, path) for path in paths) if problem]
    if problems:
        raise FileErrors(problems)
    for version, path in zip(versions, paths, strict=False):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(render(version), encoding="utf-8")
    return paths


def git_commit(directory: Path) -> str:
    """HEAD of the Git checkout holding `directory` (`-dirty` if files there changed since), or ''."""

    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(["git", "-C", str(directory), *args], capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            return None
        return done.stdout.strip() if done.returncode == 0 else None

    head = git("rev-parse", "HEAD")
    if not head:
        return ""
    return head + ("-dirty" if git("status", "--porcelain", "--", ".") else "")


def import_dir(
    directory: Path, *, label: str | None = None, message: str = "", actor: Actor | None = None
) -> ImportResult:
    """Publish every changed file as a new version, then optionally point `label` at each file's version.

    All or nothing: a bad file, a missing reason, or a label move the gates
    refuse raises FileErrors and leaves the registry unchanged.
    """
    actor = actor or Actor(via=MoveVia.PIPELINE)
    files = read_dir(directory)
    files = [files[i] for i in composition.included_first([(f.name, f.kind, f.body) for f in files])]
    newest = PromptVersion.objects.filter(prompt=OuterRef("prompt")).order_by("-number").values("number")[:1]
    latest = {
        v.prompt.name: v
        for v in PromptVersion.objects.filter(
            prompt__name__in=[f.name for f in files], number=Subquery(newest)
        ).select_related("prompt")
    }
    changed = {f.name for f in files if f.name not in latest or latest[f.name].content_hash != f.content_hash}
    missing_reason = [
        Problem(f.path, 1, "changed, but has no REASON and no --message was given")
        for f in files
        if f.name in changed and not (message or f.header.get("REASON"))
    ]
    if missing_reason:
        raise FileErrors(missing_reason)
    result = ImportResult(
        unchanged=[f.name for f in files if f.name not in changed], source_commit=git_commit(directory)
    )
    problems = []
    with transaction.atomic():
        for f in files:
            try:
                if f.name in changed:
                    latest[f.name] = version_publish(
                        name=f.name,
                        kind=f.kind,
                        body=f.body,
                        config=f.config,
                        commit_message=message or f.header["REASON"],
                        purpose=f.header.get("PURPOSE", ""),
                        known_edge_cases=f.header.get("KNOWN_EDGE_CASES", ""),
                        prompt_type=f.header.get("PROMPT_TYPE") or None,
                        source_commit=result.source_commit,
                        actor=actor,
                    )
                    result.published.append(latest[f.name])
                if label and latest[f.name].prompt.label_version(label) != latest[f.name]:
                    reason = message or f"imported from {f.path}" + (
                        f" at {result.source_commit}" if result.source_commit else ""
                    )
                    result.moves.append(
                        label_move(name=f.name, label=label, version=latest[f.name].number, actor=actor, reason=reason)
                    )
            except RegistryError as exc:
                problems.append(Problem(f.path, 1, exc.message))
        if problems:
            raise FileErrors(problems)  # rolls back every version and move of this run
    return result
