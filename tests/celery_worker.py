"""Start a real `celery -A promptreg worker` process for tests and benchmarks.

The worker gets the database the caller uses (the test database under
pytest), the broker from settings (Redis when REDIS_URL is set, else the
embedded broker in var/broker, promptreg/embedded_broker.py), and any extra environment. Waits are
bounded; stopping kills the whole process group.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from django.conf import settings
from django.db import connection

ROOT = Path(__file__).resolve().parent.parent


def database_url() -> str:
    """A DATABASE_URL for the database this process is connected to."""
    db = connection.settings_dict
    if db["ENGINE"] == "django.db.backends.sqlite3":
        return f"sqlite:///{Path(db['NAME']).resolve()}"
    auth = db["USER"] + (f":{db['PASSWORD']}" if db["PASSWORD"] else "")
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


def purge_queue() -> None:
    """Drop messages left on the broker by earlier tests, so a new worker only sees this test's tasks."""
    from promptreg.celery import app

    app.control.purge()


class Worker:
    def __init__(self, env: dict[str, str], concurrency: int = 2):
        full_env = {
            **os.environ,
            "DATABASE_URL": database_url(),
            "PROMPTREG_VAR_DIR": str(settings.VAR_DIR),
            "PYTHONUNBUFFERED": "1",
            **env,
        }
        if settings.REDIS_URL:
            full_env["REDIS_URL"] = settings.REDIS_URL
        command = [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "promptreg",
            "worker",
            "-P",
            "threads",
            "-c",
            str(concurrency),
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            "-l",
            "info",
            "-n",
            f"test-{os.getpid()}-{time.monotonic_ns()}@%h",
        ]
        self.process = subprocess.Popen(
            command,
            cwd=ROOT,
            env=full_env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        self.lines: list[str] = []
        self.ready = threading.Event()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.process.stdout:
            self.lines.append(line)
            if " ready." in line:
                self.ready.set()

    def wait_ready(self, timeout: float = 30) -> Worker:
        if not self.ready.wait(timeout):
            self.kill()
            raise TimeoutError("the celery worker did not start:\n" + "".join(self.lines[-40:]))
        return self

    def kill(self) -> None:
        """SIGKILL the worker's whole process group: a crash, not a shutdown."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        """Cold shutdown (SIGQUIT): no waiting for scheduled tasks; acks-late tasks go back to the queue."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGQUIT)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()


def wait_for(predicate, timeout: float, what: str, interval: float = 0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout:g} s waiting for {what}")
