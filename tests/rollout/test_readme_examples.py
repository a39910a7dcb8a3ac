"""The README's app-server examples run as written, against a live server."""

from __future__ import annotations

import re
import socket
import time
from pathlib import Path

import httpx
import pytest

from experiments.models import Score
from promptreg.models import PRODUCTION, Label, ReviewPolicy
from promptreg.services import label_move

README = Path(__file__).resolve().parents[2] / "README.md"
pytestmark = [pytest.mark.django_db(transaction=True, serialized_rollback=True), pytest.mark.timeout(60)]


def python_block_after(heading: str) -> str:
    section = README.read_text().split(heading, 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S)[1]


@pytest.fixture
def two_live_versions(publish, cli):
    ReviewPolicy.objects.update(requires_review=False, requires_eval=False)
    for number in (1, 2):
        publish("customer-support-system", f"v{number}: you help {{{{ company }}}} customers.")
        label_move(
            name="customer-support-system", label=PRODUCTION, version=number, actor=cli, reason=f"ship v{number}"
        )


def closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


def test_python_example_fetches_scores_and_rolls_back(live_server, api_key_factory, two_live_versions):
    _, key = api_key_factory("read", "write", "deploy")
    code = python_block_after("The same in Python").replace("http://127.0.0.1:8000", live_server.url)
    namespace = {"KEY": key}
    exec(compile(code, "README.md", "exec"), namespace)
    assert namespace["text"] == "v2: you help Acme customers."
    score = Score.objects.get()
    assert (score.version.number, score.session_id, score.metric, score.value) == (2, "user-42", "quality_score", 0.8)
    assert Label.objects.get(name=PRODUCTION).version.number == 1


def test_cache_serves_fresh_then_revalidates_then_stale_on_error(live_server, api_key_factory, two_live_versions, cli):
    _, key = api_key_factory("read")
    namespace: dict = {}
    exec(
        compile(python_block_after("### App-server cache with stale-on-error fallback"), "README.md", "exec"), namespace
    )
    cache = namespace["PromptCache"](live_server.url, key, ttl=0.3)

    assert cache.get("customer-support-system")["version"] == 2
    label_move(name="customer-support-system", label=PRODUCTION, version=1, actor=cli, reason="back")
    assert cache.get("customer-support-system")["version"] == 2  # fresh for ttl
    time.sleep(0.35)
    assert cache.get("customer-support-system")["version"] == 1  # expired: revalidated, changed
    time.sleep(0.35)
    assert cache.get("customer-support-system")["version"] == 1  # expired: 304, kept

    with pytest.raises(httpx.HTTPStatusError):
        cache.get("no-such-prompt")  # a 404 is raised, not cached over

    cache.client.base_url = closed_port_url()  # promptreg is down
    time.sleep(0.35)
    assert cache.get("customer-support-system")["version"] == 1  # stale beats nothing
    with pytest.raises(httpx.TransportError):
        cache.get("customer-support-system", label="staging")  # nothing cached: the error surfaces
