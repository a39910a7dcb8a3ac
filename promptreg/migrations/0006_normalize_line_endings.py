"""Stored versions whose text arrived from a browser with `\\r\\n` (or `\\r`) get `\\n`, like every new version.

Versions are immutable for users; this rewrites only line endings, and recomputes the content hash (which
hashes the body) so a file import sees the version as unchanged. No constraint involves the text or the hash
(`content_hash` is indexed, not unique), so two versions that now have equal text stay two versions.
"""

import hashlib
import json

from django.db import migrations

TEXT_FIELDS = ("commit_message", "purpose", "known_edge_cases")


def _normalize(value):
    if isinstance(value, str):
        return value.replace("\r\n", "\n").replace("\r", "\n")
    if isinstance(value, list):
        return [_normalize(v) for v in value]
    if isinstance(value, dict):
        return {k: _normalize(v) for k, v in value.items()}
    return value


def _hash(kind, body, config):
    canonical = json.dumps([kind, body, config], sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def forwards(apps, schema_editor):
    PromptVersion = apps.get_model("promptreg", "PromptVersion")
    fields = ("id", "kind", "body", "config", "sample_values", *TEXT_FIELDS)
    for row in PromptVersion.objects.values(*fields).iterator(chunk_size=500):
        changes = {f: _normalize(row[f]) for f in ("body", "sample_values", *TEXT_FIELDS)}
        changes = {f: v for f, v in changes.items() if v != row[f]}
        if not changes:
            continue
        body = changes.get("body", row["body"])
        # .update(): the model's save() refuses content changes, and history keeps what was recorded then.
        PromptVersion.objects.filter(pk=row["id"]).update(
            **changes, content_hash=_hash(row["kind"], body, row["config"])
        )


class Migration(migrations.Migration):
    dependencies = [("promptreg", "0005_version_tags")]

    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
