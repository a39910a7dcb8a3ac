"""`prompts import` / `export` never go through a symlink out of the directory they were given."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from promptreg.models import PromptVersion


def write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def prompt_file(name: str) -> str:
    return f"PROMPT: {name}\nREASON: imported\n---\nHello {{{{ name }}}}\n"


def test_import_refuses_symlinks_that_leave_the_directory_and_imports_nothing(tmp_path, db):
    repo, outside = tmp_path / "repo", tmp_path / "outside"
    write(repo / "good-system.txt", prompt_file("good-system"))
    write(repo / "team/inner-system.txt", prompt_file("team/inner-system"))
    write(outside / "secret.txt", prompt_file("leak-system"))
    write(outside / "x-system.txt", prompt_file("team2/x-system"))
    (repo / "leak-system.txt").symlink_to(outside / "secret.txt")  # a file link out
    (repo / "team2").symlink_to(outside, target_is_directory=True)  # a folder link out
    (repo / "alias-system.txt").symlink_to(repo / "team/inner-system.txt")  # stays inside: read like any file

    err = StringIO()
    with pytest.raises(CommandError, match="nothing was imported"):
        call_command("prompts", "import", str(repo), stderr=err)
    assert (
        f"leak-system.txt:0: is a symlink that leads outside {repo} (to {outside / 'secret.txt'}); refused"
        in err.getvalue()
    )
    assert "alias-system.txt:" in err.getvalue()  # its header names team/inner-system: a normal problem, not a refusal
    assert not PromptVersion.objects.exists()


def test_export_refuses_to_write_through_a_folder_link_out(tmp_path, publish):
    publish("team/x-system")
    publish("plain-system")
    repo, outside = tmp_path / "repo", tmp_path / "outside"
    outside.mkdir()
    repo.mkdir()
    (repo / "team").symlink_to(outside, target_is_directory=True)

    err = StringIO()
    with pytest.raises(CommandError, match="nothing was exported"):
        call_command("prompts", "export", str(repo), stderr=err)
    assert "team/x-system.txt:0: is a symlink that leads outside" in err.getvalue()
    assert list(outside.iterdir()) == [] and not (repo / "plain-system.txt").exists()
