"""`up`'s supervisor on its own: a process that keeps exiting is restarted with doubling delays while the others
run on; SIGTERM stops the lot, children of children included."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = textwrap.dedent(
    """
    import sys
    import django
    django.setup()
    from promptreg.management.commands import up
    up.BACKOFF_FIRST = 0.1
    python = sys.executable
    up.Supervisor(
        {
            "crasher": [python, "-c", "import sys; sys.exit(3)"],
            # A process with a child of its own, like gunicorn's workers or celery's pool.
            "steady": [python, "-c", "import subprocess, sys, time; "
                       "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(120)']); time.sleep(120)"],
        },
        env=dict(__import__("os").environ), cwd=".", log=lambda message: print("up:", message, flush=True),
    ).run()
    """
)


def marked_processes(marker: str) -> list[int]:
    """Processes whose environment holds `marker` (the supervisor and everything it started inherit it)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if marker.encode() in (entry / "environ").read_bytes().split(b"\0"):
                    found.append(int(entry.name))
            except OSError:
                pass
    return found


def test_a_crashing_process_is_restarted_with_backoff_and_sigterm_stops_everything():
    marker = f"UP_SUPERVISOR_TEST={time.monotonic_ns()}"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "promptreg.settings",
        "PYTHONUNBUFFERED": "1",
        marker.split("=")[0]: marker.split("=")[1],
    }
    supervisor = subprocess.Popen(
        [sys.executable, "-c", SCRIPT], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        output = ""
        while "restarting in 0.8 s" not in output:  # four crashes in a row
            line = supervisor.stdout.readline()
            assert line, output
            output += line
        assert len(marked_processes(marker)) >= 3  # the supervisor, steady and steady's child
        stopped_at = time.monotonic()
        supervisor.send_signal(signal.SIGTERM)
        output += supervisor.communicate(timeout=15)[0]
        took = time.monotonic() - stopped_at
    finally:
        if supervisor.poll() is None:
            supervisor.kill()
            for pid in marked_processes(marker):
                os.kill(pid, signal.SIGKILL)

    delays = [
        float(d) for d in re.findall(r"crasher \(pid \d+\) stopped \(exit code 3\); restarting in ([\d.]+) s", output)
    ]
    assert delays[:4] == [0.1, 0.2, 0.4, 0.8], output
    assert "steady (pid" not in output, output  # never had to be restarted
    assert "up: stopping steady" in output
    assert took < 8 and supervisor.returncode == 0
    assert marked_processes(marker) == [], output  # steady's own child went with it
