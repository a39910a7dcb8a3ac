"""Run the real WSGI app under gunicorn on an ephemeral port, for tests and benchmarks."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

BASE_DIR = Path(__file__).resolve().parent.parent


def database_url(settings_dict: dict) -> str:
    """A DATABASE_URL for the database Django is connected to (the test database, in tests)."""
    if settings_dict["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{settings_dict['NAME']}"
    user = settings_dict.get("USER") or ""
    password = f":{settings_dict['PASSWORD']}" if settings_dict.get("PASSWORD") else ""
    host = settings_dict.get("HOST") or "127.0.0.1"
    port = f":{settings_dict['PORT']}" if settings_dict.get("PORT") else ""
    return f"postgres://{user}{password}@{host}{port}/{settings_dict['NAME']}"


@dataclass
class Server:
    url: str
    access_log: Path
    process: subprocess.Popen

    def worker_pids(self, since_line: int = 0) -> list[str]:
        """The pid that served each request logged after line `since_line` (access log format `%(p)s …`)."""
        lines = self.access_log.read_text().splitlines()[since_line:]
        return [line.split()[0].strip("<>") for line in lines if line.strip()]

    def log_lines(self) -> int:
        return len(self.access_log.read_text().splitlines())


@contextlib.contextmanager
def gunicorn(
    env: dict[str, str],
    log_dir: Path,
    *,
    workers: int = 2,
    threads: int = 1,
    ready_path: str = "/api/v1/openapi.json",
    access_log: bool = True,
) -> Iterator[Server]:
    """Start gunicorn with production settings bound to an ephemeral port (the socket is
    bound here, port 0, and handed over as a file descriptor); stop it afterwards."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(2048)
    sock.set_inheritable(True)
    port = sock.getsockname()[1]
    access_log_path = log_dir / "access.log"
    access_log_path.write_text("")
    full_env = {
        **os.environ,
        "DEBUG": "false",
        "SECRET_KEY": os.environ.get("SECRET_KEY") or "test-only-" + "k" * 50,
        "HTTPS_ONLY": "false",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        **env,
    }
    command = [
        sys.executable,
        "-m",
        "gunicorn",
        "promptreg.wsgi:application",
        "--bind",
        f"fd://{sock.fileno()}",
        "--workers",
        str(workers),
        "--threads",
        str(threads),
        "--error-logfile",
        str(log_dir / "error.log"),
        "--graceful-timeout",
        "5",
    ]
    if access_log:
        command += ["--access-logfile", str(access_log_path), "--access-logformat", "<%(p)s> %(s)s %(r)s"]
    process = subprocess.Popen(command, cwd=BASE_DIR, env=full_env, pass_fds=(sock.fileno(),), start_new_session=True)
    sock.close()
    server = Server(f"http://127.0.0.1:{port}", access_log_path, process)
    try:
        _wait_ready(server, ready_path)
        yield server
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=5)


def _wait_ready(server: Server, path: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(
                f"gunicorn exited with {server.process.returncode}; see {server.access_log.parent / 'error.log'}"
            )
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(server.url + path, timeout=2).status_code < 500:
                return
        time.sleep(0.1)
    raise RuntimeError(f"gunicorn did not answer within {timeout}s")
