"""Prompts as files: export, import (only what changed), validation with file and line, labels through the gates."""

from __future__ import annotations

import json
import subprocess
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from promptreg import file_format, files
from promptreg.file_format import FileErrors
from promptreg.files import export_dir, import_dir
from promptreg.models import PRODUCTION, Label, LabelMove, MoveVia, Prompt, PromptVersion

CHAT = [
    {"role": "system", "content": "You are a {{ persona }}."},
    {"type": "placeholder", "name": "history"},
    {"role": "user", "content": "{{question}}"},
]


@pytest.fixture
def registry(publish):
    publish(
        "support-system",
        "Hello {{ name }},\nwelcome.\n",
        config={"model": "gpt-4o", "temperature": 0.2},
        purpose="Greets customers",
        known_edge_cases="Empty name\nNon-Latin names",
        commit_message="Warmer tone\nfor #123",
    )
    publish("support-system", "Hello {{ name }}!\n\n", config={"model": "gpt-4o"}, commit_message="v2")
    publish("billing/refund-extraction", CHAT, kind="chat", prompt_type="extraction", commit_message="chat v1")


def versions():
    return sorted(PromptVersion.objects.values_list("prompt__name", "number"))


def write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def test_export_writes_one_file_per_prompt_with_the_header(registry, tmp_path):
    export_dir(tmp_path)
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*.*")) == [
        "billing/refund-extraction.json",
        "support-system.txt",
    ]
    text = (tmp_path / "support-system.txt").read_text()
    header, body = text.split("\n---\n", 1)
    keys = [line.split(":")[0] for line in header.split("\n") if not line.startswith("  ")]
    assert keys == [
        "PROMPT",
        "VERSION",
        "PURPOSE",
        "LAST_CHANGED",
        "CHANGED_BY",
        "REASON",
        "KNOWN_EDGE_CASES",
        "EVAL_SCORE",
        "PROMPT_TYPE",
        "CONFIG",
    ]
    assert "VERSION: 2\n" in header and "CHANGED_BY: system\n" in header and 'CONFIG: {"model": "gpt-4o"}' in header
    assert body == "Hello {{ name }}!\n\n\n"
    chat = json.loads((tmp_path / "billing/refund-extraction.json").read_text())
    assert chat["PROMPT"] == "billing/refund-extraction" and chat["messages"] == CHAT and chat["EVAL_SCORE"] is None


def test_export_then_import_changes_nothing(registry, tmp_path):
    export_dir(tmp_path)
    before = versions()
    result = import_dir(tmp_path)
    assert result.published == [] and sorted(result.unchanged) == ["billing/refund-extraction", "support-system"]
    assert versions() == before and not LabelMove.objects.exists()


def test_multi_line_header_values_round_trip(publish, tmp_path):
    publish("faq-system", "Hi", purpose="Line one\n\nLine three", commit_message="Why:\n  indented")
    export_dir(tmp_path)
    (parsed,) = file_format.read_dir(tmp_path)
    assert parsed.header["PURPOSE"] == "Line one\n\nLine three" and parsed.header["REASON"] == "Why:\n  indented"


def test_import_publishes_only_changed_files_and_is_idempotent(registry, tmp_path):
    export_dir(tmp_path)
    path = tmp_path / "support-system.txt"
    path.write_text(
        path.read_text()
        .replace("Hello {{ name }}!", "Hi {{ name }}!")
        .replace("REASON: v2", "REASON: shorter greeting")
    )
    write(
        tmp_path / "new/welcome-system.txt",
        "PROMPT: new/welcome-system\nPROMPT_TYPE: output-format\nREASON: first\n---\nWelcome {{ user }}",
    )

    first = import_dir(tmp_path)
    assert sorted((v.prompt.name, v.number) for v in first.published) == [
        ("new/welcome-system", 1),
        ("support-system", 3),
    ]
    v3 = PromptVersion.objects.get(prompt__name="support-system", number=3)
    assert (v3.body, v3.commit_message, v3.config, v3.parent.number) == (
        "Hi {{ name }}!\n\n",
        "shorter greeting",
        {"model": "gpt-4o"},
        2,
    )
    assert Prompt.objects.get(name="new/welcome-system").prompt_type == "output-format"

    before = versions()
    assert import_dir(tmp_path).published == []
    assert versions() == before


def test_import_records_the_git_commit(tmp_path, publish):
    git = ["git", "-C", str(tmp_path), "-c", "user.email=ci@example.com", "-c", "user.name=ci"]
    subprocess.run([*git, "init", "-q"], check=True)
    write(tmp_path / "prompts/faq-system.txt", "PROMPT: faq-system\nREASON: from git\n---\nHello")
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-qm", "prompts"], check=True)
    head = subprocess.run([*git, "rev-parse", "HEAD"], check=True, capture_output=True, text=True).stdout.strip()

    result = import_dir(tmp_path / "prompts")
    assert result.source_commit == head and PromptVersion.objects.get(prompt__name="faq-system").source_commit == head
    (tmp_path / "prompts/faq-system.txt").write_text("PROMPT: faq-system\nREASON: local edit\n---\nHello!")
    import_dir(tmp_path / "prompts")
    assert PromptVersion.objects.get(prompt__name="faq-system", number=2).source_commit == head + "-dirty"


def test_outside_git_no_commit_is_recorded(tmp_path, db):
    write(tmp_path / "faq-system.txt", "PROMPT: faq-system\nREASON: r\n---\nHello")
    import_dir(tmp_path)
    assert PromptVersion.objects.get().source_commit == ""


def test_bad_files_are_reported_by_name_and_line_and_nothing_is_imported(tmp_path, db):
    write(tmp_path / "good-system.txt", "PROMPT: good-system\nREASON: r\n---\nFine {{ x }}")
    write(tmp_path / "no-header-system.txt", "Just a prompt {{ x }}")
    write(tmp_path / "bad-vars-system.txt", "PROMPT: bad-vars-system\nREASON: r\n---\nline one\nHello {{ user.name }}")
    write(tmp_path / "chat/not-a-list.json", json.dumps({"PROMPT": "chat/not-a-list", "messages": "hi"}, indent=2))
    write(
        tmp_path / "chat/bad-message.json",
        '{\n  "PROMPT": "chat/bad-message",\n  "messages": [\n    {"role": "user", "content": "ok"},\n    {"content": '
        '"no role"}\n  ]\n}',
    )
    write(tmp_path / "chat/broken.json", '{\n  "PROMPT": "chat/broken",\n  "messages": [,]\n}')
    write(tmp_path / "chat/only-messages.json", json.dumps([{"role": "user", "content": "x"}]))
    write(tmp_path / "wrong-name.txt", "PROMPT: other-name\nREASON: r\n---\nx")
    write(tmp_path / "unknown-key.txt", "PROMPT: unknown-key\nOWNER: me\nREASON: r\n---\nx")
    write(tmp_path / "unterminated.txt", "PROMPT: unterminated\nREASON: r\nbody without separator")

    with pytest.raises(FileErrors) as caught:
        import_dir(tmp_path)
    found = {(p.path, p.line) for p in caught.value.problems}
    assert found == {
        ("no-header-system.txt", 1),
        ("bad-vars-system.txt", 5),
        ("chat/not-a-list.json", 3),
        ("chat/bad-message.json", 5),
        ("chat/broken.json", 3),
        ("chat/only-messages.json", 1),
        ("wrong-name.txt", 1),
        ("unknown-key.txt", 2),
        ("unterminated.txt", 3),
    }
    messages = {p.path: p.message for p in caught.value.problems}
    assert "no metadata header" in messages["no-header-system.txt"]
    assert "column 7: '{{ user.name }}' is not a variable name" in messages["bad-vars-system.txt"]
    assert (
        "'messages'" in messages["chat/not-a-list.json"] and "'role' is required" in messages["chat/bad-message.json"]
    )
    assert not Prompt.objects.exists()


def test_changed_file_without_a_reason_needs_a_message(tmp_path, db):
    write(tmp_path / "faq-system.txt", "PROMPT: faq-system\n---\nHello")
    with pytest.raises(FileErrors, match="no REASON"):
        import_dir(tmp_path)
    import_dir(tmp_path, message="CI import")
    assert PromptVersion.objects.get().commit_message == "CI import"


def test_label_moves_go_through_the_gates(registry, tmp_path, reviewer):
    export_dir(tmp_path)
    result = import_dir(tmp_path, label="staging")
    assert {(m.prompt.name, m.to_version.number, m.via) for m in result.moves} == {
        ("support-system", 2, MoveVia.PIPELINE),
        ("billing/refund-extraction", 1, MoveVia.PIPELINE),
    }
    assert import_dir(tmp_path, label="staging").moves == []  # already there

    path = tmp_path / "support-system.txt"
    path.write_text(path.read_text().replace("Hello {{ name }}!", "Hey {{ name }}!"))
    with pytest.raises(FileErrors, match="peer review"):
        import_dir(tmp_path, label=PRODUCTION)
    # All or nothing: the new version is not kept either.
    assert PromptVersion.objects.filter(prompt__name="support-system").count() == 2
    assert not Label.objects.filter(name=PRODUCTION).exists()


def test_approved_version_is_activated_on_deploy(registry, tmp_path):
    from promptreg.models import ReviewPolicy

    ReviewPolicy.objects.update(requires_review=False, requires_eval=False)
    export_dir(tmp_path)
    result = import_dir(tmp_path, label=PRODUCTION, message="deploy 42")
    assert {m.to_version.number for m in result.moves} == {2, 1}
    move = LabelMove.objects.get(prompt__name="support-system")
    assert (move.via, move.reason, move.is_override) == (MoveVia.PIPELINE, "deploy 42", False)


def test_command(registry, tmp_path):
    out = StringIO()
    call_command("prompts", "export", str(tmp_path), stdout=out)
    assert "support-system.txt" in out.getvalue()
    out = StringIO()
    call_command("prompts", "import", str(tmp_path), "--label", "staging", stdout=out)
    assert "0 published, 2 unchanged, 2 label move(s)." in out.getvalue()

    (tmp_path / "support-system.txt").write_text("no header")
    err = StringIO()
    with pytest.raises(CommandError, match="nothing was imported"):
        call_command("prompts", "import", str(tmp_path), stderr=err)
    assert "support-system.txt:1: no metadata header" in err.getvalue()


def test_eval_score_hook(registry, tmp_path, monkeypatch):
    monkeypatch.setattr(files, "_eval_score", lambda version: 0.8123456 if version.number == 2 else None)
    export_dir(tmp_path)
    assert "EVAL_SCORE: 0.8123\n" in (tmp_path / "support-system.txt").read_text()


def test_nul_characters_are_refused(tmp_path, db):
    write(tmp_path / "a-system.txt", "PROMPT: a-system\nREASON: r\n---\nline\nbad \x00 here")
    write(
        tmp_path / "b/chat.json", json.dumps({"PROMPT": "b/chat", "messages": [{"role": "user", "content": "\u0000"}]})
    )
    with pytest.raises(FileErrors) as caught:
        import_dir(tmp_path)
    assert {(p.path, p.line) for p in caught.value.problems} == {("a-system.txt", 5), ("b/chat.json", 1)}
    assert not Prompt.objects.exists()
