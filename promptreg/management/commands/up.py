"""Start the whole system the way production runs it, and keep it running.

Migrations, static files, the first admin, the demo data and a demo API key
(kept in var/ and printed at every start), then gunicorn, a Celery worker and
Celery beat, each supervised: a process that exits is logged and restarted with
backoff while the others go on serving. Ctrl-C or SIGTERM stops everything.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.contrib.auth.models import User
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from promptreg.demo import ACCOUNTS, DEMO_PROMPT, seed_demo
from promptreg.models import ApiKey, MoveVia
from promptreg.services import Actor, api_key_revoke

DEMO_KEY_NAME = "demo key (printed by manage.py up)"
DEMO_KEY_FILE = "demo-api-key"
SECRET_KEY_FILE = "secret-key"
WILDCARD_HOSTS = ("0.0.0.0", "::", "")
WEB_THREADS = 4  # per gunicorn worker; more than PLAYGROUND_API_CONCURRENCY, so fetches always have threads

# Supervision: restart after 1, 2, 4 … 30 s; a process that ran this long starts again at 1 s.
BACKOFF_FIRST, BACKOFF_MAX, STABLE_AFTER = 1.0, 30.0, 60.0
# Ctrl-C / SIGTERM: each process gets its stop signal, and SIGKILL what is left after this long. The worker
# gets a cold shutdown (SIGQUIT): it hands its unfinished tasks back to the broker at once instead of waiting
# for them (acks late: the next worker runs them; an evaluation resumes where it stopped).
STOP_GRACE_SECONDS = 5.0
STOP_SIGNALS = {"worker": signal.SIGQUIT}


def kept_secret(path: Path, make) -> str:
    """The secret stored at `path` (file mode 0600), created with `make()` if absent."""
    if path.exists():
        return path.read_text().strip()
    value = make()
    write_secret(path, value)
    return value


def write_secret(path: Path, value: str) -> None:
    """Write `value` readable by its owner only, replacing any previous file whole."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(value + "\n")
    os.replace(tmp, path)


def _die_with_parent() -> None:
    """In the child, before exec: get SIGTERM if `up` itself is killed, so nothing outlives it (Linux)."""
    with contextlib.suppress(Exception):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


@dataclass
class Child:
    name: str
    command: list[str]
    process: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    quick_exits: int = 0
    restart_at: float | None = None
    starts: int = 0

    @property
    def started(self) -> subprocess.Popen[bytes]:
        """The process of a child that has been started."""
        assert self.process is not None, f"{self.name} has not been started"
        return self.process


class Supervisor:
    """Runs each command in its own process group and restarts it when it exits, until told to stop."""

    def __init__(self, commands: dict[str, list[str]], *, env: dict[str, str], cwd: Path, log):
        self.children = [Child(name, command) for name, command in commands.items()]
        self.env, self.cwd, self.log = env, cwd, log
        self.stopping = False

    def _start(self, child: Child) -> None:
        child.process = subprocess.Popen(
            child.command,
            cwd=self.cwd,
            env=self.env,
            start_new_session=True,
            preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
        )
        child.started_at, child.restart_at = time.monotonic(), None
        child.starts += 1
        if child.starts > 1:
            self.log(f"{child.name} started again (pid {child.started.pid}).")

    @staticmethod
    def _kill_group(child: Child, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(child.started.pid, sig)

    def _on_exit(self, child: Child, now: float) -> None:
        code = child.started.returncode
        how = f"killed by {signal.Signals(-code).name}" if code < 0 else f"exit code {code}"
        # Whatever the process left in its group (pool children) goes with it.
        self._kill_group(child, signal.SIGKILL)
        child.quick_exits = 0 if now - child.started_at >= STABLE_AFTER else child.quick_exits + 1
        delay = min(BACKOFF_MAX, BACKOFF_FIRST * 2 ** max(child.quick_exits - 1, 0))
        child.restart_at = now + delay
        self.log(f"{child.name} (pid {child.started.pid}) stopped ({how}); restarting in {delay:g} s.")

    def run(self) -> None:
        def request_stop(signum, frame):
            self.stopping = True

        signal.signal(signal.SIGINT, request_stop)
        signal.signal(signal.SIGTERM, request_stop)
        for child in self.children:
            self._start(child)
        while not self.stopping:
            time.sleep(0.2)
            now = time.monotonic()
            for child in self.children:
                if self.stopping:
                    break
                if child.restart_at is None and child.started.poll() is not None:
                    self._on_exit(child, now)
                elif child.restart_at is not None and now >= child.restart_at:
                    self._start(child)
        self.stop()

    def stop(self) -> None:
        """Each process its stop signal, then SIGKILL to every process group after the grace period; returns when all
        are gone."""
        started = time.monotonic()
        running = [c for c in self.children if c.process is not None and c.process.poll() is None]
        self.log("stopping " + ", ".join(c.name for c in running) + "…" if running else "stopping…")
        for child in running:  # the main process stops its own children (gunicorn's workers, celery's pool)
            with contextlib.suppress(ProcessLookupError):
                child.started.send_signal(STOP_SIGNALS.get(child.name, signal.SIGTERM))
        deadline = time.monotonic() + STOP_GRACE_SECONDS
        for child in running:
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.started.wait(timeout=max(0.0, deadline - time.monotonic()))
        for child in self.children:
            if child.process is not None:
                if child.started.poll() is None:
                    self.log(f"{child.name} did not stop within {STOP_GRACE_SECONDS:g} s: killed.")
                self._kill_group(child, signal.SIGKILL)
                child.started.wait()
        self.log(f"stopped in {time.monotonic() - started:.1f} s.")


class Command(BaseCommand):
    help = (
        "Install-and-run entry point: migrate, collect static files, create the admin and demo data, start and "
        "supervise worker, beat and web server."
    )

    def add_arguments(self, parser):
        parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
        parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
        parser.add_argument("--web-workers", type=int, default=2)
        parser.add_argument("--no-demo", action="store_true", help="do not create the demo data")
        parser.add_argument("--new-key", action="store_true", help="revoke the demo API key and issue a new one")

    def handle(self, *args, host, port, web_workers, no_demo, new_key, **options):
        self._check_port_free(host, port)
        env = self._child_env(host)
        call_command("migrate", interactive=False, verbosity=0)
        if env["DEBUG"].lower() not in ("1", "true", "yes", "on"):
            # In a process with the children's settings: the production storage hashes and compresses.
            subprocess.run(
                [sys.executable, "manage.py", "collectstatic", "--noinput", "--verbosity", "0"],
                cwd=settings.BASE_DIR,
                env=env,
                check=True,
            )
        password = self._admin_account()
        if not no_demo and password and seed_demo(password):
            accounts = ", ".join(f"{name} ({role.lower()})" for name, role in ACCOUNTS)
            self.stdout.write(
                f"Demo data: {DEMO_PROMPT} with six versions; accounts {accounts}, same password as admin."
            )
        secret = self._demo_key(rotate=new_key)
        url = f"http://{host}:{port}/"
        self.stdout.write(self.style.SUCCESS(f"\npromptreg is starting at {url}"))
        self.stdout.write(
            f"Demo API key (kept in {settings.VAR_DIR / DEMO_KEY_FILE}; `manage.py up --new-key` replaces it):\n"
            f"  curl -H 'Authorization: Bearer {secret}' {url}api/v1/prompts/{DEMO_PROMPT}\n"
            "Stop with Ctrl-C.\n"
        )
        self.stdout.flush()
        Supervisor(
            self._commands(host, port, web_workers),
            env=env,
            cwd=settings.BASE_DIR,
            log=lambda message: self.stderr.write(f"up: {message}"),
        ).run()

    @staticmethod
    def _check_port_free(host: str, port: int) -> None:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((host, port))
            except OSError as exc:
                if exc.errno == errno.EADDRINUSE:
                    raise CommandError(
                        f"Port {port} on {host} is in use: stop what holds it, or pass --port."
                    ) from None
                raise

    @staticmethod
    def _child_env(host: str) -> dict[str, str]:
        """Production settings for the processes `up` starts, unless the environment says otherwise."""
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "PROMPTREG_VAR_DIR": str(settings.VAR_DIR)}
        env["DEBUG"] = env.get("DEBUG") or "false"
        # Kept, so that sessions and signed links survive a restart.
        env["SECRET_KEY"] = env.get("SECRET_KEY") or kept_secret(
            settings.VAR_DIR / SECRET_KEY_FILE, lambda: secrets.token_urlsafe(50)
        )
        env["HTTPS_ONLY"] = (
            env.get("HTTPS_ONLY") or "false"
        )  # gunicorn serves plain HTTP here; a TLS proxy sets it true
        if not env.get("ALLOWED_HOSTS") and host not in WILDCARD_HOSTS:
            env["ALLOWED_HOSTS"] = ",".join(dict.fromkeys([*settings.ALLOWED_HOSTS, host]))
        return env

    def _admin_account(self) -> str | None:
        """Create the first admin; returns the password when it was just set, else None."""
        username = os.environ.get("PROMPTREG_ADMIN_USER", "admin")
        if User.objects.filter(username=username).exists():
            self.stdout.write(f"Admin account '{username}' exists (reset with: manage.py changepassword {username}).")
            return None
        password = os.environ.get("PROMPTREG_ADMIN_PASSWORD") or secrets.token_urlsafe(12)
        User.objects.create_superuser(username, f"{username}@localhost", password)
        self.stdout.write(self.style.SUCCESS(f"Admin account: {username} / {password}  (shown once)"))
        return password

    def _demo_key(self, *, rotate: bool = False) -> str:
        """The demo key kept in var/ while it still works; a new one (the old revoked) if asked, missing or revoked."""
        path = settings.VAR_DIR / DEMO_KEY_FILE
        if not rotate and path.exists():
            secret = path.read_text().strip()
            if ApiKey.find(secret) is not None:
                return secret
        for old_key in ApiKey.objects.filter(name=DEMO_KEY_NAME, revoked_at__isnull=True):
            api_key_revoke(actor=Actor(via=MoveVia.CLI), key=old_key)
        _, secret = ApiKey.issue(name=DEMO_KEY_NAME, scopes=["read", "write", "deploy"])
        write_secret(path, secret)
        return secret

    def _commands(self, host: str, port: int, web_workers: int) -> dict[str, list[str]]:
        celery = [sys.executable, "-m", "celery", "-A", "promptreg"]
        return {
            "web": [
                sys.executable,
                "-m",
                "gunicorn",
                "promptreg.wsgi:application",
                "--bind",
                f"{host}:{port}",
                "--workers",
                str(web_workers),
                # Threads, so a slow request (a playground run waits on the provider) never holds a whole worker.
                "--threads",
                str(WEB_THREADS),
                "--access-logfile",
                "-",
                "--no-control-socket",
                "--graceful-timeout",
                "5",
            ],
            "worker": [*celery, "worker", "--loglevel=INFO", "--concurrency=2", "--without-mingle", "--without-gossip"],
            "beat": [*celery, "beat", "--loglevel=INFO", "--schedule", settings.CELERY_BEAT_SCHEDULE_FILENAME],
        }
