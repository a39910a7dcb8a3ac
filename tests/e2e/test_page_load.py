"""Page weight: the on-call page and the experiment dashboard fully load in Chromium within a second, with
production settings (DEBUG off, static files collected: hashed names, gzip, cached for ever) under gunicorn.

"Fully loaded" is the `load` event and every Plotly chart drawn, timed from navigation start by the page
itself (`performance.now()`): a first visit (empty browser cache: every static file downloaded and compiled) then
five returning visits (static files are cached for ever, so a returning visitor downloads nothing again). Both the
first visit and the median returning visit are held to the budget. The server is warm, as a deployed one is: each
page is requested a few times before the browser visits, so a worker's first-request imports are not counted.

The machine is shared: the budget is stretched by the contention measured in the same run (wall time over CPU
time of a busy loop in this process, before and after the visits: 1.0 on an idle machine), never shrunk.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time

import httpx
import pytest
from django.conf import settings
from django.db import connection
from django.test import Client
from playwright.sync_api import sync_playwright

from experiments.services import experiment_start
from rollout.services import monitor_configure
from tests.conftest import make_user
from tests.e2e.conftest import CHROMIUM_ARGS
from tests.e2e.test_experiments_dashboard import add_data, experiment_with_data
from tests.gunicorn_server import BASE_DIR, database_url, gunicorn
from tests.rollout.monitor_story import CLI, activate, add_scores, noisy, publish

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
    pytest.mark.timeout(240),
]

BUDGET_MS = 1000
ROUNDS = 5
CHARTS_DRAWN = "[...document.querySelectorAll('[data-plotly]')].every(e => e.querySelector('.main-svg'))"


def contention(seconds: float = 0.3) -> float:
    """Wall time over CPU time of a busy loop: 1.0 when this process has a core to itself, 3.0 when it gets a third."""
    wall, cpu = time.perf_counter(), time.process_time()
    while time.process_time() - cpu < seconds:
        pass
    return (time.perf_counter() - wall) / (time.process_time() - cpu)


def oncall_prompts(count: int = 5) -> None:
    """Production prompts with a day of scores (one every 5 minutes) and a monitor each."""
    for i in range(count):
        name = f"feature{i}-system"
        (version,) = publish(1, name)
        activate(1, name)
        add_scores(version, noisy(0.8, 288, seed=i), spacing=300)
        monitor_configure(name=name, actor=CLI, changes={"floor_threshold": 0.6, "interval_seconds": 60})


def collect_static(env: dict[str, str]) -> None:
    subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--noinput", "--verbosity", "0"],
        cwd=BASE_DIR,
        env={**os.environ, **env},
        check=True,
        timeout=120,
    )


def test_oncall_and_experiment_pages_fully_load_within_a_second(tmp_path):
    experiment = experiment_with_data()
    experiment_start(experiment_id=experiment.pk, actor=CLI)
    add_data(experiment)
    oncall_prompts()
    client = Client()
    client.force_login(make_user("dave", "Deployer"))  # a session in the database gunicorn reads
    session = client.cookies["sessionid"].value
    env = {
        "DATABASE_URL": database_url(connection.settings_dict),
        "PROMPTREG_VAR_DIR": str(tmp_path),
        "DEBUG": "false",
        "SECRET_KEY": settings.SECRET_KEY,
        "HTTPS_ONLY": "false",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
    }
    if settings.REDIS_URL:
        env["REDIS_URL"] = settings.REDIS_URL
    collect_static(env)
    pages = {"on-call": "/oncall/", "experiment": f"/experiments/ab/{experiment.pk}/"}
    timings: dict[str, list[float]] = {name: [] for name in pages}
    first_visit: dict[str, list[float]] = {name: [] for name in pages}
    server_time: dict[str, list[float]] = {name: [] for name in pages}
    with gunicorn(env, tmp_path, workers=2, threads=2, ready_path="/accounts/login/") as server, sync_playwright() as p:
        for path in [*pages.values()] * 4:
            assert httpx.get(server.url + path, cookies={"sessionid": session}, timeout=30).status_code == 200
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        try:
            signed_in = {
                "cookies": [
                    {
                        "name": "sessionid",
                        "value": session,
                        "domain": "127.0.0.1",
                        "path": "/",
                        "expires": -1,
                        "httpOnly": True,
                        "secure": False,
                        "sameSite": "Lax",
                    }
                ],
                "origins": [],
            }
            static_responses: list[tuple[str, dict]] = []
            stretch = [contention()]
            for name, path in pages.items():
                # One browser profile per page: a first visit (empty cache), then returning visits.
                context = browser.new_context(
                    base_url=server.url, storage_state=signed_in, viewport={"width": 1366, "height": 900}
                )
                page = context.new_page()
                page.on("response", lambda r: "/static/" in r.url and static_responses.append((r.url, r.all_headers())))
                for visit in range(1 + ROUNDS):
                    response = page.goto(path, wait_until="load")
                    assert response.status == 200
                    page.wait_for_function(CHARTS_DRAWN, timeout=10_000)
                    assert page.locator("[data-plotly] .main-svg").count() >= 1
                    loaded, first_byte = page.evaluate(
                        "[performance.now(), performance.getEntriesByType('navigation')[0].responseStart]"
                    )
                    if visit:
                        server_time[name].append(first_byte)
                        timings[name].append(loaded)
                    else:
                        first_visit[name].append(loaded)
                context.close()
            stretch.append(contention())
        finally:
            browser.close()
    medians = {name: statistics.median(values) for name, values in timings.items()}
    allowed = BUDGET_MS * max(1.0, statistics.mean(stretch))
    print(
        "\nfully loaded (ms): first visit",
        {name: round(v[0]) for name, v in first_visit.items()},
        "returning visits",
        {name: [round(t) for t in v] for name, v in timings.items()},
        "of which waiting for the server",
        {name: [round(t) for t in v] for name, v in server_time.items()},
        f"; contention {[round(c, 2) for c in stretch]}, budget {allowed:.0f} ms",
    )
    plotly = [headers for url, headers in static_responses if "plotly" in url]
    assert plotly and all(
        h.get("content-encoding") == "gzip" and "immutable" in h.get("cache-control", "") for h in plotly
    )
    assert all(medians[name] <= allowed for name in pages), (medians, allowed)
    assert all(first_visit[name][0] <= allowed for name in pages), (first_visit, allowed)
