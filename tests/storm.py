"""The rollback storm: reader threads fetch through gunicorn while a deployer moves production
back and forth; every fetch is checked against the label's history.

Shared by the fault tests (short storms) and `tests/bench/storm.py` (the 20-second figure).
A fetch that started after a change returned to its caller must serve that change's version
or a later one's: it may serve the version of any change whose call overlapped it, nothing else.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx


@dataclass
class Change:
    started: float
    returned: float
    version: int


@dataclass
class Fetch:
    started: float
    ended: float
    status: int
    version: int | None


@dataclass
class StormResult:
    changes: list[Change] = field(default_factory=list)
    fetches: list[Fetch] = field(default_factory=list)

    def stale(self) -> list[tuple[Fetch, set[int]]]:
        """Fetches that served a version no change allowed them, with the versions that were allowed."""
        changes = sorted(self.changes, key=lambda c: c.returned)
        bad = []
        for fetch in self.fetches:
            if fetch.status != 200:
                continue
            before = [c for c in changes if c.returned <= fetch.started]
            if not before:
                continue  # started before the first change returned: what was live then is fine
            allowed = {before[-1].version} | {
                c.version for c in changes if c.started < fetch.ended and c.returned > fetch.started
            }
            if fetch.version not in allowed:
                bad.append((fetch, allowed))
        return bad

    @property
    def ok_fetches(self) -> int:
        return sum(1 for f in self.fetches if f.status == 200)


def run_storm(
    base_url: str,
    name: str,
    reader: str,
    deployer: str,
    *,
    versions: list[int],
    seconds: float,
    threads: int = 16,
    during: Callable[[float], None] | None = None,
    pause: float = 0.05,
) -> StormResult:
    """Start with production at `versions[0]` (already live). `during(elapsed)` is called by the
    deployer's thread between changes (fault injection). The deployer waits `pause` seconds after
    each change: a fetch that overlaps a change may serve either version, so back-to-back changes
    would leave nothing to check."""
    result = StormResult()
    stop = threading.Event()
    lock = threading.Lock()
    url = f"/api/v1/prompts/{name}"

    def read() -> None:
        with httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {reader}"}, timeout=10) as client:
            while not stop.is_set():
                started = time.monotonic()
                try:
                    response = client.get(url)
                    status = response.status_code
                    version = response.json().get("version") if status == 200 else None
                except httpx.HTTPError:
                    status, version = 0, None
                fetch = Fetch(started, time.monotonic(), status, version)
                with lock:
                    result.fetches.append(fetch)

    def deploy() -> None:
        t0 = time.monotonic()
        step = 0
        current = versions[0]
        with httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {deployer}"}, timeout=30) as client:
            while time.monotonic() - t0 < seconds:
                if during is not None:
                    during(time.monotonic() - t0)
                started = time.monotonic()
                if step % 2 == 0:
                    target = versions[(versions.index(current) + 1) % len(versions)]
                    response = client.post(f"{url}/labels/production", json={"version": target, "reason": "storm"})
                else:
                    response = client.post(f"{url}/rollback", json={"reason": "storm"})
                returned = time.monotonic()
                step += 1
                time.sleep(pause)
                if response.status_code == 200:
                    current = response.json()["version"]
                    with lock:
                        result.changes.append(Change(started, returned, current))

    readers = [threading.Thread(target=read, daemon=True) for _ in range(threads)]
    for thread in readers:
        thread.start()
    try:
        deploy()
    finally:
        stop.set()
        for thread in readers:
            thread.join(timeout=30)
    return result
