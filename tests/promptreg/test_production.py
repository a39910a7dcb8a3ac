"""README "Running in production", followed line by line in a fresh folder with DEBUG=false.

The settings lines are pointed at this test's database (PostgreSQL when the suite runs on it, else SQLite) and
Redis, with HTTPS_ONLY=false because the test speaks plain HTTP; gunicorn binds an ephemeral port. Every other
line runs as written. Then an admin signs in and opens every dashboard page reachable from the prompt list.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from django.conf import settings

from tests.up_process import free_port

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.slow, pytest.mark.timeout(400)]
MAX_PAGES = 150


def readme_steps() -> list[str]:
    section = (ROOT / "README.md").read_text().split("## Running in production", 1)[1]
    block = re.search(r"```sh\n(.*?)```", section, re.S).group(1)
    return [line.split("  # ")[0].strip() for line in block.splitlines() if line.strip() and not line.startswith("#")]


def fresh_checkout(target: Path) -> Path:
    ignore = shutil.ignore_patterns(
        ".git", ".venv", "var", "__pycache__", "*.egg-info", "test-artifacts", "staticfiles", "node_modules"
    )
    shutil.copytree(ROOT, target, ignore=ignore)
    return target


def database_url(tmp_path: Path):
    """A new, empty database beside the test database, and a function that drops it."""
    db = settings.DATABASES["default"]
    if not db["ENGINE"].endswith("postgresql"):
        return f"sqlite:///{tmp_path / 'production.sqlite3'}", lambda: None
    import psycopg

    name = f"{db['NAME']}_production"[:63]
    server = psycopg.connect(
        host=db["HOST"] or "127.0.0.1",
        port=db["PORT"] or 5432,
        user=db["USER"],
        password=db["PASSWORD"] or None,
        dbname="postgres",
        autocommit=True,
    )
    server.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    server.execute(f'CREATE DATABASE "{name}"')
    auth = db["USER"] + (f":{db['PASSWORD']}" if db["PASSWORD"] else "")

    def drop():
        server.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        server.close()

    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{name}", drop


def crawl(client: httpx.Client, start: str = "/") -> dict[str, int]:
    """GET every same-site dashboard link reachable from `start` (breadth first); path → status."""
    seen: dict[str, int] = {}
    todo = [start]
    while todo and len(seen) < MAX_PAGES:
        path = todo.pop(0)
        if path in seen:
            continue
        response = client.get(path)
        seen[path] = response.status_code
        if response.status_code != 200 or "text/html" not in response.headers.get("Content-Type", ""):
            continue
        for link in re.findall(r'href="(/[^"#]*)"', response.text):
            link = link.replace("&amp;", "&")
            if not link.startswith(("/static/", "/api/", "/accounts/logout", "/admin/")) and link not in seen:
                todo.append(link)
    return seen


def test_the_production_steps_from_the_readme_work_in_a_fresh_folder(tmp_path):
    app = fresh_checkout(tmp_path / "app")
    port = free_port()
    url, drop_database = database_url(tmp_path)
    ours = {
        "ALLOWED_HOSTS": "127.0.0.1",
        "DATABASE_URL": url,
        "PROMPTREG_VAR_DIR": str(tmp_path / "var"),
        "REDIS_URL": settings.REDIS_URL,
    }
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DATABASE_URL", "REDIS_URL", "DJANGO_SETTINGS_MODULE", "DEBUG", "SECRET_KEY")
    }
    env.update(PATH=f"{Path(sys.executable).parent}:{env['PATH']}", HTTPS_ONLY="false", PYTHONUNBUFFERED="1")
    if settings.REDIS_URL:
        import redis

        redis.Redis.from_url(settings.REDIS_URL).delete("celery", "unacked", "unacked_index")  # other tests' tasks
    processes: list[subprocess.Popen] = []
    outputs: list[str] = []
    try:
        for line in readme_steps():
            if line.startswith("export "):
                name, value = shlex.split(line.removeprefix("export "))[0].split("=", 1)
                value = ours.get(name, value)
                if value:
                    env[name] = value
            elif line.endswith("&"):
                command = line.removesuffix("&").strip().replace("0.0.0.0:8000", f"127.0.0.1:{port}")
                log = open(tmp_path / f"process-{len(processes)}.log", "w")  # noqa: SIM115 — held open for the subprocess's whole life
                processes.append(
                    subprocess.Popen(
                        ["bash", "-c", f"exec {command}"],
                        cwd=app,
                        env=env,
                        stdout=log,
                        stderr=subprocess.STDOUT,
                        start_new_session=True,
                    )
                )
            else:
                done = subprocess.run(
                    ["bash", "-c", line], cwd=app, env=env, capture_output=True, text=True, timeout=180
                )
                assert done.returncode == 0, f"{line}\n{done.stdout}\n{done.stderr}"
                outputs.append(done.stdout)
        assert env["DEBUG"] == "false" and (tmp_path / "var" / "staticfiles" / "staticfiles.json").exists()
        app_key = json.loads(outputs[-1])
        assert app_key["scopes"] == ["read"] and app_key["secret"].startswith("sk-pr-")
        admin_password = re.search(r"DJANGO_SUPERUSER_PASSWORD='([^']+)'", "\n".join(readme_steps()))[1]

        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(base + "/accounts/login/", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline and all(p.poll() is None for p in processes), "gunicorn never answered"
            time.sleep(0.3)

        # Something to look at: a pipeline key (as the README suggests) publishes two versions, a dataset, an
        # experiment.
        pipeline = subprocess.run(
            [sys.executable, "manage.py", "create_api_key", "pipeline", "--scopes", "read,write,deploy", "--json"],
            cwd=app,
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        api = httpx.Client(
            base_url=base, headers={"Authorization": f"Bearer {json.loads(pipeline.stdout)['secret']}"}, timeout=10
        )
        for text in ("Answer {{ question }} briefly.", "Answer {{ question }} briefly and kindly."):
            api.post(
                "/api/v1/prompts/support-answer/versions",
                json={"type": "text", "prompt": text, "commit_message": "from the pipeline"},
            ).raise_for_status()
        api.post(
            "/api/v1/datasets",
            json={
                "name": "support-golden",
                "scorers": ["exact_match"],
                "cases": [{"variables": {"question": "hi"}, "expected": "hello"}],
            },
        ).raise_for_status()
        api.post(
            "/api/v1/experiments",
            json={
                "prompt": "support-answer",
                "label": "production",
                "control_version": 1,
                "treatment_version": 2,
                "traffic_fraction": 0.5,
                "primary_metric": "quality_score",
            },
        ).raise_for_status()
        fetched = httpx.get(
            base + "/api/v1/prompts/support-answer?label=latest",
            headers={"Authorization": f"Bearer {app_key['secret']}"},
        )
        assert fetched.status_code == 200 and fetched.json()["version"] == 2

        browser = httpx.Client(base_url=base, timeout=20)
        browser.get("/accounts/login/")
        signed_in = browser.post(
            "/accounts/login/",
            data={"username": "admin", "password": admin_password, "csrfmiddlewaretoken": browser.cookies["csrftoken"]},
            headers={"Referer": base + "/"},
        )
        assert signed_in.status_code == 302, signed_in.text
        pages = crawl(browser)
        pages.update(crawl(browser, "/admin/"))
        print(f"\n{len(pages)} pages, all 200:", " ".join(sorted(pages)))
        assert len(pages) >= 15, pages
        assert {path: status for path, status in pages.items() if status != 200} == {}
        for must in (
            "/",
            "/reviews/",
            "/audit/",
            "/oncall/",
            "/prompts/support-answer/",
            "/experiments/ab/1/",
            "/admin/",
        ):
            assert must in pages
        assert all(p.poll() is None for p in processes), "a process of the deployment exited"
    finally:
        for process in processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in processes:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        drop_database()


def test_the_image_and_compose_file_run_the_readme_commands():
    import yaml

    steps = readme_steps()
    web, worker, beat = (line.removesuffix("&").strip() for line in steps if line.endswith("&"))
    services = yaml.safe_load((ROOT / "compose.yaml").read_text())["services"]
    assert (services["web"]["command"], services["worker"]["command"], services["beat"]["command"]) == (
        web,
        worker,
        beat,
    )
    assert services["migrate"]["command"] in steps
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert json.loads(re.search(r"^CMD (.*)$", dockerfile, re.M)[1]) == shlex.split(web)
    assert "python manage.py collectstatic --noinput" in steps
    assert re.search(r"^RUN .*python manage.py collectstatic --noinput$", dockerfile, re.M)
