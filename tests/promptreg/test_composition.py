"""Prompt composition in the registry: tags parsed, resolved recursively, refused at publish and at label moves when
they would not resolve or would cycle, and an included prompt's label moves reaching its dependents' gates and audit
trails."""

from __future__ import annotations

import pytest

from promptreg import composition, composition_moves
from promptreg.audit import AuditFilter, audit_page
from promptreg.exceptions import GateBlocked, InvalidInput
from promptreg.models import PRODUCTION, DependentChange, Inclusion, Label, PromptVersion, ReviewPolicy
from promptreg.services import label_move, rollback

VOICE = "company-voice"


def tag(name: str, pin: str = "label=production") -> str:
    return f"@@@langfusePrompt:name={name}|{pin}@@@"


@pytest.fixture
def voice(publish, cli, ungated_system):
    """company-voice v1 and v2, production at v2."""
    publish(VOICE, "Be brief, {{ customer }}.")
    publish(VOICE, "Be warm and brief, {{ customer }}.")
    label_move(name=VOICE, label=PRODUCTION, version=1, actor=cli, reason="v1")
    label_move(name=VOICE, label=PRODUCTION, version=2, actor=cli, reason="v2")


@pytest.fixture
def ungated_system(db):
    ReviewPolicy.objects.update(requires_review=False, requires_eval=False)


@pytest.mark.parametrize(
    ("inner", "expected"),
    [
        ("name=a-b|label=production", composition.Reference("a-b", label="production")),
        ("name=a/b-c|version=3", composition.Reference("a/b-c", number=3)),
        ("name=x|label=latest", composition.Reference("x", label="latest")),
    ],
)
def test_tags_parse(inner, expected):
    assert composition.parse_tag(inner) == expected


@pytest.mark.parametrize(
    ("inner", "says"),
    [
        ("name=x", "exactly one of label= or version="),
        ("name=x|label=production|version=2", "exactly one of label= or version="),
        ("name=x|version=0", "positive whole number"),
        ("name=x|label=Prod uction", "is not a label name"),
        ("name=x|colour=red", "is not a prompt reference"),
        # Read as Langfuse's parsePromptDependencyTags reads them: name first, two fields, nothing trimmed.
        (" name = x | label = latest ", "has spaces around its fields"),
        ("name=inc | label=latest ", "has spaces around its fields"),
        ("label=production|name=x", r"name first, then exactly one of label= or version="),
        ("name=|label=production", "needs a name and a label"),
    ],
)
def test_malformed_tags_are_refused_at_publish_naming_the_problem(publish, inner, says):
    with pytest.raises(InvalidInput, match=says) as caught:
        publish("support-system", f"Hi @@@langfusePrompt:{inner}@@@")
    assert caught.value.code == "invalid_reference"
    assert not PromptVersion.objects.filter(prompt__name="support-system").exists()


def test_composition_resolves_recursively_with_variables_and_dependencies(publish, cli, voice):
    publish("sign-off", f"{tag(VOICE)} Sign as {{{{ agent }}}}.")
    label_move(name="sign-off", label=PRODUCTION, version=1, actor=cli, reason="live")
    root = publish("support-system", f"Answer {{{{ question }}}}. {tag('sign-off')} {tag(VOICE, 'version=1')}")

    resolved = composition.resolve(root)

    assert resolved.body == (
        "Answer {{ question }}. Be warm and brief, {{ customer }}. Sign as {{ agent }}. Be brief, {{ customer }}."
    )
    assert resolved.variables == ["question", "customer", "agent"]
    assert resolved.dependencies == [
        {"name": "sign-off", "version": 1, "label": "production"},
        {"name": VOICE, "version": 2, "label": "production"},
        {"name": VOICE, "version": 1, "label": None},
    ]
    assert sorted(Inclusion.objects.filter(version=root).values_list("name", "label", "number")) == [
        (VOICE, "", 1),
        ("sign-off", "production", None),
    ]


def test_a_chat_prompt_includes_text_in_its_messages(publish, voice):
    version = publish(
        "support-chat",
        [{"role": "system", "content": f"Rules: {tag(VOICE)}"}, {"type": "placeholder", "name": "history"}],
        kind="chat",
    )
    resolved = composition.resolve(version)
    assert resolved.body == [
        {"role": "system", "content": "Rules: Be warm and brief, {{ customer }}."},
        {"type": "placeholder", "name": "history"},
    ]
    assert resolved.variables == ["customer", "history"]


@pytest.mark.parametrize(
    ("body", "says"),
    [
        (tag("nobody-here"), "there is no prompt named 'nobody-here'"),
        (tag(VOICE, "label=staging"), "'company-voice' has no label 'staging'"),
        (tag(VOICE, "version=9"), "'company-voice' has no version 9"),
    ],
)
def test_missing_references_are_refused_at_publish(publish, voice, body, says):
    with pytest.raises(InvalidInput, match=says):
        publish("support-system", body)
    assert not PromptVersion.objects.filter(prompt__name="support-system").exists()


def test_only_text_prompts_can_be_included(publish, voice):
    publish("chatty", [{"role": "system", "content": "hi"}], kind="chat")
    with pytest.raises(InvalidInput, match="is a chat prompt; only text prompts can be included"):
        publish("support-system", tag("chatty", "version=1"))


def test_cycles_are_refused_at_publish(publish, cli, voice):
    with pytest.raises(InvalidInput, match=r"cannot include itself \(support-system → support-system\)") as caught:
        publish("support-system", "x")  # create it, then make it include itself
        publish("support-system", tag("support-system", "version=1"))
    assert caught.value.code == "reference_cycle"

    publish("a-system", tag(VOICE))
    label_move(name="a-system", label=PRODUCTION, version=1, actor=cli, reason="live")
    with pytest.raises(InvalidInput, match=r"company-voice → a-system → company-voice"):
        publish(VOICE, f"Voice {tag('a-system')}")
    assert PromptVersion.objects.filter(prompt__name=VOICE).count() == 2


def test_a_label_move_that_would_close_a_cycle_is_refused(publish, cli, voice):
    # a-system v1 includes company-voice@production (v2, no tags); company-voice v3 includes a-system@staging, which
    # is not there yet: publish refuses it. With a-system@staging at a version free of tags, v3 publishes; moving
    # a-system@staging to v1 later would close the loop.
    publish("a-system", tag(VOICE))
    publish("a-system", "plain")
    label_move(name="a-system", label="staging", version=2, actor=cli, reason="plain")
    publish(VOICE, f"Voice {tag('a-system', 'label=staging')}")
    label_move(name=VOICE, label=PRODUCTION, version=3, actor=cli, reason="v3")

    with pytest.raises(InvalidInput, match="a prompt cannot include itself") as caught:
        label_move(name="a-system", label="staging", version=1, actor=cli, reason="loop")
    assert caught.value.code == "reference_cycle"
    assert Label.objects.get(prompt__name="a-system", name="staging").version.number == 2


def test_resolution_depth_is_bounded(publish, voice):
    previous = VOICE
    for i in range(5):
        publish(f"level{i}-system", tag(previous, "version=1"))
        previous = f"level{i}-system"
    with pytest.raises(InvalidInput, match="nest more than 5 deep") as caught:
        publish("top-system", tag(previous, "version=1"))
    assert caught.value.code == "reference_too_deep"


def test_dependents_are_found_through_every_level(publish, voice):
    publish("sign-off", tag(VOICE))
    publish("support-system", tag("sign-off", "version=1"))
    publish("other-system", "no tags")
    assert composition_moves.dependents([VOICE]) == ["sign-off", "support-system"]


@pytest.fixture
def gated_dependent(publish, cli, voice):
    """support-system includes company-voice at staging and is live in production, which is gated for it."""
    publish(VOICE, "staging voice")
    label_move(name=VOICE, label="staging", version=3, actor=cli, reason="stage")
    publish("support-system", f"Hi. {tag(VOICE, 'label=staging')}")
    label_move(name="support-system", label=PRODUCTION, version=1, actor=cli, reason="live")
    ReviewPolicy.objects.update(requires_review=True)


def test_an_ungated_label_included_at_a_gated_one_takes_the_included_prompts_gates(publish, cli, gated_dependent):
    with pytest.raises(GateBlocked, match=r"peer review.*\(support-system@production includes it at staging\)"):
        label_move(name=VOICE, label="staging", version=1, actor=cli, reason="sneak")
    assert Label.objects.get(prompt__name=VOICE, name="staging").version.number == 3
    assert not DependentChange.objects.exists()


def test_an_override_is_recorded_in_the_dependents_audit_trail(publish, cli, admin_user, gated_dependent):
    from promptreg.models import MoveVia
    from promptreg.services import Actor

    move = label_move(
        name=VOICE,
        label="staging",
        version=1,
        actor=Actor(via=MoveVia.BUTTON, user=admin_user),
        reason="hotfix",
        override=True,
    )
    assert move.is_override
    change = DependentChange.objects.get()
    assert (change.prompt.name, change.labels) == (
        "support-system",
        [{"label": PRODUCTION, "version": 1, "gated": True}, {"label": "latest", "version": 1, "gated": False}],
    )
    from promptreg.models import Prompt

    events, _ = audit_page(AuditFilter(prompt=Prompt.objects.get(name="support-system")), 1)
    sentence = events[0].sentence
    assert sentence.startswith("ada moved company-voice@staging from v3 to v1, which support-system includes")
    assert "overriding the gates" in sentence


def test_a_rollback_lists_and_records_the_dependents(publish, cli, voice):
    publish("support-system", f"Hi. {tag(VOICE)}")
    label_move(name="support-system", label=PRODUCTION, version=1, actor=cli, reason="live")
    move = rollback(name=VOICE, actor=cli, reason="bad voice")
    found = composition_moves.move_dependents(move)
    assert found == [
        {"name": "support-system", "label": PRODUCTION, "version": 1, "gated": True},
        {"name": "support-system", "label": "latest", "version": 1, "gated": False},
    ]
    assert composition_moves.impact(PRODUCTION, found) == (
        "1 prompt includes this at production: support-system (production v1, gated; latest v1)."
    )


def test_the_activate_dialog_and_the_labels_page_state_the_impact(client, publish, cli, deployer, voice):
    from django.urls import reverse

    publish("support-system", f"Hi. {tag(VOICE)}")
    label_move(name="support-system", label=PRODUCTION, version=1, actor=cli, reason="live")
    client.force_login(deployer)
    expected = "1 prompt includes this at production: support-system (production v1, gated; latest v1)."

    dialog = client.get(
        reverse("promptreg:version-activate", args=[VOICE, 1]), headers={"HX-Request": "true"}
    ).content.decode()
    assert expected in dialog and "each one's audit trail records it" in dialog
    assert expected in client.get(reverse("promptreg:prompt-labels", args=[VOICE])).content.decode()
    assert expected in client.get(reverse("promptreg:prompt-rollback", args=[VOICE])).content.decode()

    response = client.post(reverse("promptreg:version-activate", args=[VOICE, 1]), {"reason": "calmer"}, follow=True)
    assert f"v1 of &#x27;{VOICE}&#x27; is now live in production. {expected}" in response.content.decode()
    assert DependentChange.objects.get().prompt.name == "support-system"


def test_an_import_publishes_included_prompts_first(tmp_path, ungated_system):
    from promptreg.files import import_dir

    (tmp_path / "a-system.txt").write_text(f"PROMPT: a-system\nREASON: first\n---\nHi. {tag('z-voice')}")
    (tmp_path / "z-voice.txt").write_text("PROMPT: z-voice\nREASON: first\n---\nBe brief.")
    result = import_dir(tmp_path, label=PRODUCTION)
    assert [v.prompt.name for v in result.published] == ["z-voice", "a-system"]
    assert composition.resolve(result.published[1]).body == "Hi. Be brief."


def test_an_include_at_latest_cannot_take_a_gated_label_without_an_override(publish, cli, voice):
    publish("support-system", f"Hi. {tag(VOICE, 'label=latest')}")
    label_move(name="support-system", label="staging", version=1, actor=cli, reason="ungated: fine")
    with pytest.raises(GateBlocked, match="includes: company-voice is included at latest, which every publish changes"):
        label_move(name="support-system", label=PRODUCTION, version=1, actor=cli, reason="live")
    assert not Label.objects.filter(prompt__name="support-system", name=PRODUCTION).exists()
    move = label_move(name="support-system", label=PRODUCTION, version=1, actor=cli, reason="live", override=True)
    assert move.bypassed_gates == [
        "includes: company-voice is included at latest, which every publish changes without a gate; include it at a "
        "label or a version"
    ]


def test_previews_show_the_resolved_text_and_what_does_not_resolve(client, publish, author, voice):
    from django.urls import reverse

    publish("support-system", f"Hi {{{{ name }}}}. {tag(VOICE)}", sample_values={"name": "Ann", "customer": "Bo"})
    client.force_login(author)
    page = client.get(reverse("promptreg:version-detail", args=["support-system", 1])).content.decode()
    assert "Hi Ann. Be warm and brief, Bo." in page
    assert (
        f'<a href="{reverse("promptreg:version-detail", args=[VOICE, 2])}">company-voice v2</a> (at production)' in page
    )
    assert "<code>name</code> <code>customer</code>" in page  # the included variables are the version's too

    live = client.post(
        reverse("promptreg:authoring-preview"), {"kind": "text", "text": f"Hi. {tag(VOICE, 'label=staging')}"}
    ).content.decode()
    assert "&#x27;company-voice&#x27; has no label &#x27;staging&#x27;" in live
    assert f"Hi. {tag(VOICE, 'label=staging')}" in live  # shown as written


def test_the_work_of_one_resolution_is_bounded(publish, voice):
    with pytest.raises(InvalidInput, match="resolves at most 100 includes"):
        publish("support-system", " ".join([tag(VOICE)] * 101))
    assert composition.resolve(publish("support-system", " ".join([tag(VOICE)] * 100))).body.count("warm") == 100


PEER_REVIEW = "peer review: needs 1 approval from someone other than the author (0 so far)"


def test_a_gated_move_checks_nested_and_pinned_includes_against_their_own_gates(publish, cli, ungated_system):
    publish("inc", "INC1 never reviewed")
    label_move(name="inc", label="qa2", version=1, actor=cli, reason="qa")
    publish("mid", f"Mid {tag('inc', 'label=qa2')}")
    label_move(name="mid", label="staging", version=1, actor=cli, reason="stage")
    publish("comp-system", f"C {tag('mid', 'label=staging')}")
    publish("comp-system", f"C {tag('inc', 'version=1')}")
    ReviewPolicy.objects.update(requires_review=True)

    with pytest.raises(GateBlocked) as nested:
        label_move(name="comp-system", label=PRODUCTION, version=1, actor=cli, reason="ship")
    assert nested.value.details["missing"] == [
        PEER_REVIEW,
        f"includes: mid@staging (v1): {PEER_REVIEW}",
        f"includes: inc@qa2 (v1): {PEER_REVIEW}",
    ]
    with pytest.raises(GateBlocked) as pinned:
        label_move(name="comp-system", label=PRODUCTION, version=2, actor=cli, reason="ship")
    assert pinned.value.details["missing"] == [PEER_REVIEW, f"includes: inc v1: {PEER_REVIEW}"]
    assert not Label.objects.filter(prompt__name="comp-system").exists()


def test_a_rollback_does_not_bring_back_an_include_moved_to_unreviewed_text(publish, cli, ungated_system):
    publish("inc", "INC1 safe")
    label_move(name="inc", label="qa2", version=1, actor=cli, reason="qa")
    publish("comp-system", f"C {tag('inc', 'label=qa2')}")
    label_move(name="comp-system", label=PRODUCTION, version=1, actor=cli, reason="live")
    publish("comp-system", "plain")
    label_move(name="comp-system", label=PRODUCTION, version=2, actor=cli, reason="plain")
    ReviewPolicy.objects.update(requires_review=True)
    publish("inc", "INC2 EVIL unreviewed")
    label_move(name="inc", label="qa2", version=2, actor=cli, reason="nothing gated serves qa2 now")

    with pytest.raises(GateBlocked, match=r"would serve included text that passed no gate: includes: inc@qa2 \(v2\)"):
        rollback(name="comp-system", actor=cli, reason="back")
    assert Label.objects.get(prompt__name="comp-system", name=PRODUCTION).version.number == 2


def test_the_resolved_text_is_held_to_a_versions_size_limit(publish, cli, ungated_system):
    from promptreg.services import MAX_BODY_CHARS

    publish("big-c", "c" * 199_000)
    with pytest.raises(InvalidInput, match="resolved, 'big-b' would be over 200,000 characters") as caught:
        publish("big-b", " ".join([tag("big-c", "version=1")] * 99))
    assert caught.value.code == "template_too_long"
    assert not PromptVersion.objects.filter(prompt__name="big-b").exists()

    # A label move of the included prompt that would make a dependent too long is refused too, and undone.
    publish("small-c", "small")
    label_move(name="small-c", label="staging", version=1, actor=cli, reason="stage")
    publish("big-b", f"{'b' * 100_000} {tag('small-c', 'label=staging')}")
    label_move(name="big-b", label=PRODUCTION, version=1, actor=cli, reason="live")
    publish("small-c", "s" * (MAX_BODY_CHARS - 50_000))
    with pytest.raises(InvalidInput, match=r"Moving small-c@staging would break big-b@production \(v1\)"):
        label_move(name="small-c", label="staging", version=2, actor=cli, reason="grow")
    assert Label.objects.get(prompt__name="small-c", name="staging").version.number == 1
    assert not DependentChange.objects.exists()


def test_resolution_stops_as_soon_as_the_text_is_too_long(publish, ungated_system):
    publish("big-c", "c" * 150_000)
    resolver = composition._Resolver()
    with pytest.raises(InvalidInput, match="would be over 200,000 characters"):
        resolver.fill("text", " ".join([tag("big-c", "version=1")] * 99), None, ("big-b",))
    assert resolver.resolved == 2  # the second include went over: the other 97 were never read
