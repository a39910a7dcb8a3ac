"""README command 1, minus the install: `manage.py up` on the embedded default."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def read_until(proc: subprocess.Popen, pattern: str, timeout: float) -> tuple[re.Match, str]:
    seen = ""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            if proc.poll() is not None:
                break
            continue
        seen += line
        match = re.search(pattern, seen)
        if match:
            return match, seen
    raise AssertionError(f"{pattern!r} not printed in {timeout}s; output so far:\n{seen}")


@pytest.mark.slow
def test_up_starts_everything_on_sqlite_and_the_demo_works(tmp_path):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "DJANGO_SETTINGS_MODULE")}
    env.update(PROMPTREG_VAR_DIR=str(tmp_path), PYTHONUNBUFFERED="1")
    proc = subprocess.Popen(
        [sys.executable, "manage.py", "up", "--port", str(port)],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        admin, _ = read_until(proc, r"Admin account: (\S+) / (\S+)", 120)
        key, _ = read_until(proc, r"Bearer (sk-pr-[\w-]+)' (http://\S+)api/v1/prompts/customer-support-system", 60)
        base = key.group(2)
        assert base == f"http://127.0.0.1:{port}/"
        with httpx.Client(base_url=base, timeout=5) as client:
            deadline = time.monotonic() + 60
            while True:
                try:
                    login = client.get("/accounts/login/")
                    break
                except httpx.TransportError:
                    assert time.monotonic() < deadline, "web server never answered"
                    time.sleep(0.3)
            assert login.status_code == 200
            token = client.cookies["csrftoken"]
            signed_in = client.post(
                "/accounts/login/",
                data={"username": admin.group(1), "password": admin.group(2), "csrfmiddlewaretoken": token},
                headers={"Referer": base},
            )
            assert signed_in.status_code == 302
            assert "sessionid" in client.cookies
            fetched = client.get(
                "/api/v1/prompts/customer-support-system", headers={"Authorization": f"Bearer {key.group(1)}"}
            )
        assert fetched.status_code == 200
        body = fetched.json()
        assert (body["name"], body["version"], body["label"]) == ("customer-support-system", 5, "production")
        assert (tmp_path / "db.sqlite3").exists()
        assert proc.poll() is None, "a process of the system exited"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
    assert proc.returncode == 0
