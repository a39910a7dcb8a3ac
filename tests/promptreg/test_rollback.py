import pytest

from promptreg.exceptions import Conflict, NothingToRollBack
from promptreg.models import PRODUCTION, Label
from promptreg.services import label_move, rollback, rollback_target


def live(name="support-system"):
    return Label.objects.get(prompt__name=name, name=PRODUCTION).version.number


def activate(cli, n, name="support-system"):
    return label_move(name=name, label=PRODUCTION, version=n, actor=cli, reason=f"ship v{n}", override=False)


@pytest.fixture
def ungated(db):
    from promptreg.models import ReviewPolicy

    ReviewPolicy.objects.update(requires_review=False, requires_eval=False)


def test_rollback_walks_back_through_live_versions_then_refuses(publish, cli, ungated):
    for _ in range(3):
        publish()
    for n in (1, 2, 3):
        activate(cli, n)
    rollback(name="support-system", actor=cli, reason="bad")
    assert live() == 2
    rollback(name="support-system", actor=cli, reason="still bad")
    assert live() == 1
    with pytest.raises(NothingToRollBack):
        rollback(name="support-system", actor=cli, reason="again")
    assert live() == 1


def test_rollback_skips_a_version_that_was_never_live(publish, cli, ungated):
    for _ in range(3):
        publish()
    activate(cli, 1)
    activate(cli, 3)
    move = rollback(name="support-system", actor=cli, reason="v3 broke")
    assert (move.from_version.number, move.to_version.number, move.is_rollback) == (3, 1, True)


def test_rollback_never_returns_to_a_version_it_rolled_back_from(publish, cli, ungated):
    for _ in range(3):
        publish()
    for n in (1, 2, 3):
        activate(cli, n)
    rollback(name="support-system", actor=cli, reason="v3 bad")  # → 2
    activate(cli, 1)  # [1, 2, 1]
    rollback(name="support-system", actor=cli, reason="v1 bad")  # → 2
    assert live() == 2
    # v1 was rolled back from after its last activation: never a target again.
    assert rollback_target(Label.objects.get().prompt) is None


def test_rollback_with_stale_expectation_changes_nothing(publish, cli, ungated):
    publish(), publish()
    activate(cli, 1), activate(cli, 2)
    with pytest.raises(Conflict):
        rollback(name="support-system", actor=cli, reason="x", expected_current=1)
    assert live() == 2


def test_the_rollback_dialog_says_when_its_target_was_live(client, publish, cli, ungated, deployer):
    import time_machine
    from django.urls import reverse

    for _ in range(5):
        publish()
    with time_machine.travel("2026-10-02 09:00Z", tick=False):
        activate(cli, 3)
    with time_machine.travel("2026-11-03 15:00Z", tick=False):
        activate(cli, 5)
    with time_machine.travel("2026-12-01 03:00Z", tick=False):
        client.force_login(deployer)
        html = client.get(reverse("promptreg:prompt-rollback", args=["support-system"])).content.decode()
    assert "Production goes from <strong>v5</strong> back to <strong>v3</strong> (live 2 Oct – 3 Nov)." in html
    assert "Roll back to v3</button>" in html
    with time_machine.travel("2027-01-05 03:00Z", tick=False):
        client.force_login(deployer)
        html = client.get(reverse("promptreg:prompt-rollback", args=["support-system"])).content.decode()
    assert "(live 2 Oct 2026 – 3 Nov 2026)" in html
