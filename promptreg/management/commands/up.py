"""Start the whole system in one process group: migrations, first accounts, demo
data, a Celery worker and beat, and the web server (gunicorn). Ctrl-C stops all."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time

from django.conf import settings
from django.contrib.auth.models import User
from django.core.management import call_command
from django.core.management.base import BaseCommand
from django.utils import timezone

from promptreg.demo import ACCOUNTS, DEMO_PROMPT, seed_demo
from promptreg.models import ApiKey

DEMO_KEY_NAME = "demo key (printed by manage.py up)"


class Command(BaseCommand):
    help = "Install-and-run entry point: migrate, create the admin and demo data, start worker, beat and web server."

    def add_arguments(self, parser):
        parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
        parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
        parser.add_argument("--web-workers", type=int, default=2)
        parser.add_argument("--no-demo", action="store_true", help="do not create the demo data")

    def handle(self, *args, host, port, web_workers, no_demo, **options):
        call_command("migrate", interactive=False, verbosity=0)
        if not settings.DEBUG:
            call_command("collectstatic", interactive=False, verbosity=0)
        password = self._admin_account()
        if not no_demo and password and seed_demo(password):
            accounts = ", ".join(f"{name} ({role.lower()})" for name, role in ACCOUNTS)
            self.stdout.write(f"Demo data: {DEMO_PROMPT} with six versions; accounts {accounts}, same password as admin.")
        secret = self._demo_key()
        url = f"http://{host}:{port}/"
        self.stdout.write(self.style.SUCCESS(f"\npromptreg is starting at {url}"))
        self.stdout.write(
            f"Try the API:\n  curl -H 'Authorization: Bearer {secret}' {url}api/v1/prompts/{DEMO_PROMPT}\n"
            "Stop with Ctrl-C.\n"
        )
        self._run(self._commands(host, port, web_workers))

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

    def _demo_key(self) -> str:
        # Secrets are stored hashed, so a fresh demo key is issued at each start
        # and the previous one revoked, one save at a time: the save is what
        # tells the serving cache to forget the key.
        for old_key in ApiKey.objects.filter(name=DEMO_KEY_NAME, revoked_at__isnull=True):
            old_key.revoked_at = timezone.now()
            old_key.save()
        _, secret = ApiKey.issue(name=DEMO_KEY_NAME, scopes=["read", "write", "deploy"])
        return secret

    def _commands(self, host: str, port: int, web_workers: int) -> dict[str, list[str]]:
        celery = [sys.executable, "-m", "celery", "-A", "promptreg"]
        return {
            "worker": [*celery, "worker", "--loglevel=INFO", "--concurrency=2", "--without-mingle", "--without-gossip"],
            "beat": [*celery, "beat", "--loglevel=INFO", "--schedule", settings.CELERY_BEAT_SCHEDULE_FILENAME],
            "web": [sys.executable, "-m", "gunicorn", "promptreg.wsgi:application", "--bind", f"{host}:{port}",
                    "--workers", str(web_workers), "--access-logfile", "-", "--no-control-socket"],
        }

    def _run(self, commands: dict[str, list[str]]) -> None:
        procs = {name: subprocess.Popen(cmd, cwd=settings.BASE_DIR) for name, cmd in commands.items()}
        stop = {"now": False}

        def request_stop(signum, frame):
            stop["now"] = True

        signal.signal(signal.SIGINT, request_stop)
        signal.signal(signal.SIGTERM, request_stop)
        exited = None
        while not stop["now"] and exited is None:
            time.sleep(0.5)
            exited = next((name for name, p in procs.items() if p.poll() is not None), None)
        for p in procs.values():
            if p.poll() is None:
                p.terminate()
        for p in procs.values():
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()
        if exited:
            self.stderr.write(f"The {exited} process exited (code {procs[exited].returncode}); everything was stopped.")
            sys.exit(1)
