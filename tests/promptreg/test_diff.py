"""Word-level diffs of text, chat messages and config; variable changes are breaking."""

from __future__ import annotations

from promptreg.diff import config_changes, version_diff, word_diff
from promptreg.models import PromptVersion


def v(number, kind, body, config=None, variables=()):
    return PromptVersion(number=number, kind=kind, body=body, config=config or {}, variables=list(variables))


def ops(segments):
    return [(s.op, s.text) for s in segments]


def test_word_diff_marks_whole_words():
    assert ops(word_diff("You are a helpful agent.", "You are a friendly agent.")) == [
        ("equal", "You are a "),
        ("delete", "helpful"),
        ("insert", "friendly"),
        ("equal", " agent."),
    ]


def test_word_diff_of_identical_and_empty_text():
    assert ops(word_diff("same text", "same text")) == [("equal", "same text")]
    assert ops(word_diff("", "new")) == [("insert", "new")]


def test_text_diff_left_and_right_sides():
    diff = version_diff(
        v(1, "text", "Hi {{ name }}", variables=["name"]), v(2, "text", "Hello {{ name }}", variables=["name"])
    )
    part = diff.parts[0]
    assert [s.text for s in part.left if s.op == "delete"] == ["Hi"]
    assert [s.text for s in part.right if s.op == "insert"] == ["Hello"]
    assert not diff.breaking and diff.changed


def test_variables_added_and_removed_are_breaking():
    diff = version_diff(
        v(1, "text", "{{ a }} {{ b }}", variables=["a", "b"]), v(2, "text", "{{ a }} {{ c }}", variables=["a", "c"])
    )
    assert diff.breaking and diff.variables_added == ["c"] and diff.variables_removed == ["b"]


def test_chat_messages_are_diffed_one_by_one():
    old = v(1, "chat", [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "{{ q }}"}])
    new = v(
        2,
        "chat",
        [
            {"role": "system", "content": "Be very brief."},
            {"role": "user", "content": "{{ q }}"},
            {"type": "placeholder", "name": "history"},
        ],
    )
    diff = version_diff(old, new)
    assert [p.title for p in diff.parts] == ["Message 1 (system)", "Message 2 (user)", "Message 3 (placeholder): added"]
    assert [p.changed for p in diff.parts] == [True, False, True]
    assert ("insert", " very") in ops(diff.parts[0].inline)


def test_role_change_is_a_change_and_text_to_chat_compares_as_messages():
    diff = version_diff(
        v(1, "chat", [{"role": "user", "content": "x"}]), v(2, "chat", [{"role": "system", "content": "x"}])
    )
    assert diff.parts[0].changed and "role user → system" in diff.parts[0].title
    mixed = version_diff(v(1, "text", "plain"), v(2, "chat", [{"role": "system", "content": "plain"}]))
    assert mixed.parts[0].title == "Message 1: role text → system"


def test_config_changes():
    assert [
        (c.key, c.op, c.old, c.new)
        for c in config_changes(
            {"model": "a", "temperature": 0.2, "x": 1}, {"model": "b", "temperature": 0.2, "max_tokens": 5}
        )
    ] == [
        ("max_tokens", "added", "", "5"),
        ("model", "changed", '"a"', '"b"'),
        ("x", "removed", "1", ""),
    ]
