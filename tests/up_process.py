"""Run README command 1 (`manage.py up`) as a real process tree for tests: output, processes, the demo key."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Up:
    """`manage.py up` on the embedded default, with its own var/ folder; everything it prints is kept."""

    def __init__(self, var_dir: Path, *args: str, env: dict[str, str] | None = None):
        self.var_dir, self.port = var_dir, free_port()
        full_env = {
            k: v
            for k, v in os.environ.items()
            if k not in ("DATABASE_URL", "REDIS_URL", "DJANGO_SETTINGS_MODULE", "DEBUG", "SECRET_KEY")
        }
        full_env.update(PROMPTREG_VAR_DIR=str(var_dir), PYTHONUNBUFFERED="1", **(env or {}))
        self.process = subprocess.Popen(
            [sys.executable, "manage.py", "up", "--port", str(self.port), *args],
            cwd=ROOT,
            env=full_env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: list[str] = []
        self._changed = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()
        self.base_url = f"http://127.0.0.1:{self.port}"

    def _read(self) -> None:
        for line in self.process.stdout:
            with self._changed:
                self.lines.append(line)
                self._changed.notify_all()

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def wait_for_output(self, pattern: str, timeout: float, since: int = 0) -> re.Match:
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                match = re.search(pattern, "".join(self.lines[since:]))
                if match:
                    return match
                remaining = deadline - time.monotonic()
                if remaining <= 0 or (self.process.poll() is not None and not self._changed.wait(0.5)):
                    raise AssertionError(f"{pattern!r} not printed in {timeout}s; output:\n{self.output[-6000:]}")
                self._changed.wait(min(remaining, 0.5))

    def started(self, timeout: float = 180) -> Up:
        """Wait for the demo key and for the web server to answer; returns self."""
        self.key = self.wait_for_output(r"Bearer (sk-pr-[\w-]+)'", timeout).group(1)
        deadline = time.monotonic() + 60
        while True:
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(self.base_url + "/accounts/login/", timeout=2).status_code == 200:
                    return self
            assert time.monotonic() < deadline, f"the web server never answered; output:\n{self.output[-4000:]}"
            time.sleep(0.3)

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.base_url, headers={"Authorization": f"Bearer {self.key}"}, timeout=10)

    def processes(self) -> dict[int, str]:
        """pid → command line of every process started for this var/ folder (up itself and all it started)."""
        marker = f"PROMPTREG_VAR_DIR={self.var_dir}".encode()
        found = {}
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            with contextlib.suppress(OSError):
                if marker in (entry / "environ").read_bytes().split(b"\0"):
                    found[int(entry.name)] = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        return found

    def main_pid(self, role: str) -> int:
        """The pid of the `worker`, `beat` or `web` process `up` started (not its pool children)."""
        words = {"worker": " worker ", "beat": " beat ", "web": "gunicorn"}[role]
        for pid, cmdline in self.processes().items():
            if words in cmdline and _parent(pid) == self.process.pid:
                return pid
        raise LookupError(f"no {role} process")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> float:
        """Send `sig` to up; returns the seconds until up exited (it waits for every process it started)."""
        started = time.monotonic()
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            self.process.wait(timeout=timeout)
        finally:
            if self.process.poll() is None:
                self.process.kill()
        return time.monotonic() - started

    def kill_all(self) -> None:
        for pid in self.processes():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def _parent(pid: int) -> int:
    with contextlib.suppress(OSError):
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    return -1


@contextlib.contextmanager
def running(var_dir: Path, *args: str, env: dict[str, str] | None = None):
    up = Up(var_dir, *args, env=env)
    try:
        yield up.started()
    finally:
        up.stop()
        up.kill_all()
