"""Benchmark: server time of the dashboard's prompt list, prompt page and on-call page.

    python tests/bench/dashboard.py            # SQLite default
    DATABASE_URL=postgres://... python tests/bench/dashboard.py

Builds a throwaway test database, fills it (bulk inserts), and times requests
through Django's full stack in-process (middleware, views, templates; no
network), median of several runs after a warm-up. Baselines measured in the
same run: the same pages with 10 prompts / 5 versions. The on-call page lists
every production prompt, with a chart for each prompt that has scores: its
baseline is 10 prompts with a day of scores and a monitor each, then 1,000
production prompts of which 100 have scores and monitors. Target: under 300 ms.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "promptreg.settings")

import django  # noqa: E402

django.setup()

from django.contrib.auth.models import User  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext, setup_test_environment  # noqa: E402
from django.urls import reverse  # noqa: E402
from django.utils import timezone  # noqa: E402

RUNS = int(os.environ.get("BENCH_RUNS", 15))
TARGET_MS = 300


def seed_prompts(prefix: str, count: int, user: User) -> None:
    from promptreg.models import Label, Prompt, PromptVersion, Tag

    tags = [Tag.objects.get_or_create(name=n)[0] for n in ("support", "billing", "search")]
    prompts = Prompt.objects.bulk_create(
        Prompt(name=f"{prefix}{i}-system", description=f"Prompt number {i}", owner=user, prompt_type="system")
        for i in range(count)
    )
    Prompt.tags.through.objects.bulk_create(
        Prompt.tags.through(prompt=p, tag=tags[i % 3]) for i, p in enumerate(prompts)
    )
    versions = PromptVersion.objects.bulk_create(
        PromptVersion(
            prompt=p,
            number=n,
            kind="text",
            body=f"Hello {{{{ name }}}} #{i}.{n}",
            variables=["name"],
            commit_message="seed",
            content_hash=f"{i}-{n}",
            created_by=user,
            status="approved" if n == 1 else "in_review",
        )
        for i, p in enumerate(prompts)
        for n in (1, 2)
    )
    Label.objects.bulk_create(
        Label(prompt=v.prompt, name="production", version=v, updated_at=timezone.now())
        for v in versions
        if v.number == 1
    )


def seed_versions(name: str, count: int, user: User) -> None:
    from promptreg.models import Label, Prompt, PromptVersion

    prompt = Prompt.objects.create(name=name, owner=user)
    body = "You are a support agent for {{ company }}. " * 20
    versions = PromptVersion.objects.bulk_create(
        PromptVersion(
            prompt=prompt,
            number=n,
            kind="text",
            body=body + str(n),
            variables=["company"],
            config={"model": "m", "temperature": 0.2},
            sample_values={"company": "Acme"},
            commit_message=f"change {n}: tighter wording",
            content_hash=str(n),
            created_by=user,
            status="approved",
        )
        for n in range(1, count + 1)
    )
    Label.objects.bulk_create(
        [
            Label(prompt=prompt, name="production", version=versions[count // 2]),
            Label(prompt=prompt, name="staging", version=versions[-1]),
        ]
    )


def seed_scores(prefix: str, count: int, per_prompt: int = 288) -> None:
    """A day of quality scores (one every 5 minutes), a monitor and a check for `count` prompts named `prefix…`."""
    from experiments.models import Score
    from promptreg.models import Prompt, PromptVersion
    from rollout.models import Monitor, MonitorCheck

    now = timezone.now()
    prompts = list(Prompt.objects.filter(name__startswith=prefix).order_by("id")[:count])
    live = {v.prompt_id: v for v in PromptVersion.objects.filter(prompt__in=prompts, number=1)}
    Score.objects.bulk_create(
        Score(
            client_id=f"{p.pk}-{k}",
            prompt=p,
            version=live[p.pk],
            metric="quality_score",
            value=0.8 + (k % 7) / 100,
            timestamp=now - timedelta(minutes=5 * k),
        )
        for p in prompts
        for k in range(per_prompt)
    )
    monitors = Monitor.objects.bulk_create(Monitor(prompt=p, floor_threshold=0.6, state="healthy") for p in prompts)
    MonitorCheck.objects.bulk_create(
        MonitorCheck(monitor=m, version=live[m.prompt_id], outcome="successful", summary="fine") for m in monitors
    )


def measure(client: Client, url: str) -> tuple[float, int]:
    client.get(url)  # warm-up: template compilation, connection
    timings = []
    for _ in range(RUNS):
        start = time.perf_counter()
        response = client.get(url)
        timings.append((time.perf_counter() - start) * 1000)
        assert response.status_code == 200, (url, response.status_code)
    with CaptureQueriesContext(connection) as queries:
        client.get(url)
    return statistics.median(timings), len(queries.captured_queries)


def main() -> int:
    setup_test_environment()
    old_name = connection.creation.create_test_db(verbosity=0, autoclobber=True)
    try:
        user = User.objects.create_superuser("bench", "bench@example.com", "x")
        client = Client()
        client.force_login(user)
        seed_prompts("small", 10, user)
        seed_versions("few-versions-system", 5, user)
        rows = [
            ("prompt list, 10 prompts (baseline)", reverse("promptreg:prompt-list")),
            ("prompt page, 5 versions (baseline)", reverse("promptreg:prompt-detail", args=["few-versions-system"])),
        ]
        results = [(label, *measure(client, url)) for label, url in rows]
        seed_scores("small", 10)
        results.append(("on-call, 10 prompts with scores (baseline)", *measure(client, reverse("rollout:oncall"))))
        seed_prompts("big", 990, user)
        seed_versions("many-versions-system", 500, user)
        rows = [
            ("prompt list, 1,000 prompts", reverse("promptreg:prompt-list")),
            ("prompt list, 1,000 prompts, search", reverse("promptreg:prompt-list") + "?q=number+99"),
            ("prompt page, 500 versions", reverse("promptreg:prompt-detail", args=["many-versions-system"])),
        ]
        results += [(label, *measure(client, url)) for label, url in rows]
        seed_scores("big", 90)
        results.append(("on-call, 1,000 prompts (first page of 25)", *measure(client, reverse("rollout:oncall"))))
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)
    print(f"database: {connection.vendor}; median of {RUNS} requests, in-process through the full Django stack")
    print(f"{'page':<45} {'median ms':>10} {'queries':>8}")
    failed = False
    for label, ms, queries in results:
        flag = "" if ms < TARGET_MS else f"  OVER {TARGET_MS} ms"
        failed |= bool(flag)
        print(f"{label:<45} {ms:>10.1f} {queries:>8}{flag}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
