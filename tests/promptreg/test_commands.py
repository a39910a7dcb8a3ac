"""`create_api_key` and `prompt publish|activate|rollback|show`."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command, execute_from_command_line

from promptreg.models import PRODUCTION, ApiKey, Label, LabelMove, MoveVia, PromptVersion


def run(*args: str) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


@pytest.fixture
def template(tmp_path):
    path = tmp_path / "support-system.txt"
    path.write_text("You help customers of {{ company }}.\n", encoding="utf-8")
    return path


def test_create_api_key_json_prints_the_secret_once_and_stores_its_hash(db):
    data = json.loads(run("create_api_key", "support-app", "--scopes", "read,deploy", "--json"))
    assert set(data) == {"name", "public_id", "secret", "scopes", "owner", "gate_override"}
    assert (data["name"], data["scopes"]) == ("support-app", ["read", "deploy"])
    key = ApiKey.objects.get(public_id=data["public_id"])
    assert ApiKey.find(data["secret"]) == key
    assert data["secret"] not in key.secret_hash


def test_create_api_key_text_output_and_bad_scopes(db):
    out = run("create_api_key", "ci", "--scopes", "write")
    assert "Secret (shown once" in out and "sk-pr-" in out
    with pytest.raises(CommandError, match="scopes must be some of"):
        run("create_api_key", "bad", "--scopes", "read,root")
    with pytest.raises(CommandError):
        run("create_api_key", "empty", "--scopes", ",")
    assert list(ApiKey.objects.values_list("name", flat=True)) == ["ci"]


def test_publish_activate_rollback_show(db, template, ungated_policies):
    assert "Published support-system v1 (variables: company)" in run(
        "prompt", "publish", "support-system", str(template), "--message", "first"
    )
    run(
        "prompt",
        "publish",
        "support-system",
        str(template),
        "--message",
        "second",
        "--type",
        "extraction",
        "--config",
        '{"temperature": 0.1}',
    )
    v2 = PromptVersion.objects.get(number=2)
    assert (v2.config, v2.prompt.prompt_type) == ({"temperature": 0.1}, "extraction")
    run("prompt", "activate", "support-system", "1", "--reason", "first ship")
    assert "production v1 → v2" in run("prompt", "activate", "support-system", "2", "--reason", "better")
    assert "rolled production back v2 → v1" in run("prompt", "rollback", "support-system", "--reason", "worse")
    assert Label.objects.get(name=PRODUCTION).version.number == 1
    assert set(LabelMove.objects.values_list("via", flat=True)) == {MoveVia.CLI}
    shown = run("prompt", "show", "support-system")
    assert "production → v1" in shown and "v2" in shown and "(rollback)" in shown and "worse" in shown


def test_publish_a_chat_prompt_from_json(db, tmp_path):
    path = tmp_path / "chat.json"
    path.write_text(
        json.dumps([{"role": "system", "content": "Hi {{ who }}"}, {"type": "placeholder", "name": "history"}])
    )
    run("prompt", "publish", "agent-planner", str(path), "-m", "chat", "--chat")
    version = PromptVersion.objects.get()
    assert (version.kind, version.variables) == ("chat", ["who", "history"])


def test_activate_respects_gates_unless_overridden(db, template):
    run("prompt", "publish", "support-system", str(template), "--message", "first")
    with pytest.raises(CommandError, match="peer review"):
        run("prompt", "activate", "support-system", "1", "--reason", "ship")
    assert not Label.objects.exists()
    out = run("prompt", "activate", "support-system", "1", "--reason", "incident fix", "--override")
    assert "Override recorded" in out
    move = LabelMove.objects.get()
    assert move.is_override and move.via == MoveVia.CLI and move.reason == "incident fix"


@pytest.mark.parametrize(
    "args",
    [
        ("prompt", "publish", "support-system", "/no/such/file.txt", "--message", "m"),
        ("prompt", "publish", "Bad Name", "{template}", "--message", "m"),
        ("prompt", "publish", "support-system", "{template}", "--message", "m", "--chat"),
        ("prompt", "publish", "support-system", "{template}", "--message", "m", "--config", "[1"),
        ("prompt", "activate", "nobody-system", "1", "--reason", "x"),
        ("prompt", "rollback", "nobody-system", "--reason", "x"),
        ("prompt", "show", "nobody-system"),
    ],
)
def test_bad_commands_fail_clearly_and_change_nothing(db, template, args):
    args = tuple(str(template) if a == "{template}" else a for a in args)
    with pytest.raises(CommandError):
        run(*args)
    assert not PromptVersion.objects.exists() and not LabelMove.objects.exists()


def test_commands_exit_non_zero_with_the_reason_on_stderr(db, capsys):
    with pytest.raises(SystemExit) as exited:
        execute_from_command_line(["manage.py", "prompt", "show", "nobody-system"])
    assert exited.value.code == 1
    assert "No prompt named 'nobody-system'" in capsys.readouterr().err


@pytest.fixture
def ungated_policies(db):
    from promptreg.models import ReviewPolicy

    ReviewPolicy.objects.update(requires_review=False, requires_eval=False)


def test_revoke_api_key_refuses_the_key_once(db, django_capture_on_commit_callbacks):
    key, secret = ApiKey.issue(name="old-app", scopes=["read"])
    with django_capture_on_commit_callbacks(execute=True):
        assert "Revoked API key 'old-app'" in run("revoke_api_key", key.public_id)
    key.refresh_from_db()
    assert key.revoked_at is not None and ApiKey.find(secret) is None
    assert key.history.first().history_change_reason.startswith("revoked by")
    with pytest.raises(CommandError, match="already revoked"):
        run("revoke_api_key", key.public_id)
    with pytest.raises(CommandError, match="No API key with public id 'pk-pr-nope'"):
        run("revoke_api_key", "pk-pr-nope")
