import pytest

from promptreg.templating import CompileError, Template, TemplateError


def test_text_variables_in_order_with_whitespace_ignored():
    t = Template("text", "Hi {{name}}, about {{ topic }} and {{  name }}.")
    assert t.variables == ["name", "topic"]
    assert t.compile(name="Ann", topic="billing").prompt == "Hi Ann, about billing and Ann."


def test_missing_variables_are_all_named():
    t = Template("text", "{{ a }} {{ b }} {{ c }}")
    with pytest.raises(CompileError) as exc:
        t.compile(b="x")
    assert exc.value.missing == ["a", "c"]
    assert "a, c" in str(exc.value)


def test_unused_variables_are_reported():
    compiled = Template("text", "{{ a }}").compile(a="1", extra="2")
    assert compiled.unused == ["extra"]


def test_values_are_inserted_literally_never_evaluated():
    t = Template("text", "Q: {{ q }}")
    evil = "{{ q }} {% load os %} {{ 7*7 }} <script>alert(1)</script>"
    assert t.compile(q=evil).prompt == "Q: " + evil


def test_expressions_filters_and_attribute_access_are_rejected_with_position():
    for body in ("{{ user.name }}", "{{ x|upper }}", "{{ 7*7 }}", "hi\n  {{ x"):
        with pytest.raises(TemplateError) as exc:
            Template("text", body).validate()
        assert "line" in str(exc.value)
    assert "line 2, column 3" in Template("text", "hi\n  {{ x").problems()[0]


def test_single_braces_and_json_examples_are_plain_text():
    body = 'Reply as JSON: {"a": {"b": 1}} for {{ who }}'
    t = Template("text", body)
    assert t.problems() == []
    assert t.compile(who="me").prompt == 'Reply as JSON: {"a": {"b": 1}} for me'


def test_values_are_text_numbers_or_booleans_written_as_json_writes_them():
    t = Template("text", "[{{ v }}]")
    assert [t.compile(v=v).prompt for v in ("a", 3, 2.5, True, False)] == ["[a]", "[3]", "[2.5]", "[true]", "[false]"]
    for value, kind in ((None, "null"), ({"x": [1, 2]}, "an object"), ([1], "a list")):
        with pytest.raises(CompileError, match=f"variable 'v' must be text, a number or true/false, not {kind}"):
            t.compile(v=value)


def test_empty_and_very_long_values():
    t = Template("text", "[{{ v }}]")
    assert t.compile(v="").prompt == "[]"
    long = "x" * 1_000_000
    assert t.compile(v=long).prompt == f"[{long}]"


def test_chat_compiles_message_by_message_with_placeholders():
    t = Template(
        "chat",
        [
            {"role": "system", "content": "You help with {{ product }}."},
            {"type": "placeholder", "name": "history"},
            {"role": "user", "content": "{{ question }}"},
        ],
    )
    assert t.variables == ["product", "question", "history"]
    out = t.compile(product="Acme", question="Why?", history=[{"role": "user", "content": "hi"}]).prompt
    assert out == [
        {"role": "system", "content": "You help with Acme."},
        {"role": "user", "content": "hi"},
        {"role": "user", "content": "Why?"},
    ]
    with pytest.raises(CompileError):
        t.compile(product="A", question="B", history="not a list")


def test_bad_chat_structures():
    assert Template("chat", "text").problems()
    assert Template("chat", [{"role": "user"}]).problems() == ["message 1: 'content' must be text"]
    assert "message 2" in Template("chat", [{"role": "user", "content": "ok"}, {"type": "placeholder"}]).problems()[0]


def test_api_route_words_cannot_end_a_prompt_name():
    from django.core.exceptions import ValidationError

    from promptreg.models import validate_prompt_name

    validate_prompt_name("versions-system")  # a first segment is fine: no route precedes it
    validate_prompt_name("billing/refund-extraction")
    for name in ("team/versions", "team/rollback", "a/labels/b", "support/monitor"):
        with pytest.raises(ValidationError):
            validate_prompt_name(name)
