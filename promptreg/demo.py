"""Demo data: the team's cautionary story of `customer-support-system`.

Six versions over three months; v4 was approved but never went live; v6 made
answers long-winded and quality dropped, so on-call rolled production back to v5.
Everything goes through the same services as the dashboard, then timestamps are
moved into the past so the timeline reads like real history.
"""

from __future__ import annotations

from datetime import timedelta

from django.contrib.auth.models import Group, User
from django.db import transaction
from django.utils import timezone

from promptreg.models import PRODUCTION, Label, LabelMove, MoveVia, Prompt, PromptVersion, Review, ReviewDecision
from promptreg.services import Actor, label_move, review_submit, rollback, version_publish, version_submit_for_review

DEMO_PROMPT = "customer-support-system"
ACCOUNTS = (("alice", "Author"), ("rita", "Reviewer"), ("dave", "Deployer"))
SAMPLE_VALUES = {
    "company": "Acme Outdoor",
    "refund_policy_url": "https://acme.example/refunds",
    "customer_name": "Maria",
}

STORY = [
    # (days ago, body, commit message, purpose / edge cases, goes live?)
    (90, "You are the support assistant for {{ company }}. Answer concisely.", "First version: concise answers.", True),
    (
        70,
        "You are the support assistant for {{ company }}. Answer concisely and politely, in the customer's language.",
        "Add tone and language: customers wrote in Spanish and got English answers.",
        True,
    ),
    (
        55,
        "You are the support assistant for {{ company }}. Answer concisely and politely, in the customer's language.\n"
        "If the question is about refunds, link to {{ refund_policy_url }}.",
        "Link the refund policy instead of paraphrasing it (legal request).",
        True,
    ),
    (
        40,
        "You are the support assistant for {{ company }}. Answer concisely and politely, in the customer's language.\n"
        "Address the customer as {{ customer_name }}.\nIf the question is about refunds, link to {{ refund_policy_url "
        "}}.",
        "Personalise with the customer's name.",
        False,
    ),
    (
        30,
        "You are the support assistant for {{ company }}. Answer concisely and politely, in the customer's language.\n"
        "If the question is about refunds, link to {{ refund_policy_url }}.\n"
        "If the customer is angry or mentions a lawyer, offer a human agent.",
        "Escalate angry customers to a human (support lead's request).",
        True,
    ),
    (
        7,
        "You are the support assistant for {{ company }}. Be thorough: explain every relevant policy in full detail, "
        "quote the refund policy from {{ refund_policy_url }} verbatim, and list all alternatives before answering.\n"
        "If the customer is angry or mentions a lawyer, offer a human agent.",
        "Be more thorough so customers stop asking follow-up questions.",
        True,
    ),
]


def _account(username: str, role: str, password: str) -> User:
    user, created = User.objects.get_or_create(username=username, defaults={"email": f"{username}@example.com"})
    if created:
        user.set_password(password)
        user.save()
    user.groups.add(Group.objects.get(name=role))
    return user


def _backdate(version: PromptVersion, when) -> None:
    """Move a version's records into the past, in the order they happened: published at `when`, then each status
    change 20 minutes apart (submitted, approved), the review with the approval; it goes live 2 hours after `when`."""
    PromptVersion.objects.filter(pk=version.pk).update(created_at=when)
    records = PromptVersion.history.filter(id=version.pk).order_by("history_id").values_list("history_id", flat=True)
    for step, history_id in enumerate(records):
        PromptVersion.history.filter(history_id=history_id).update(history_date=when + timedelta(minutes=20 * step))
    approved = when + timedelta(minutes=20 * (len(records) - 1))
    Review.objects.filter(version=version).update(created_at=approved)
    Review.history.filter(version_id=version.pk).update(history_date=approved)


@transaction.atomic
def seed_demo(password: str) -> bool:
    """Create the demo accounts and story; returns False if the demo prompt already exists."""
    if Prompt.objects.filter(name=DEMO_PROMPT).exists():
        return False
    alice, rita, dave = (_account(name, role, password) for name, role in ACCOUNTS)
    author, reviewer, deployer = (Actor(via=MoveVia.BUTTON, user=u) for u in (alice, rita, dave))
    now = timezone.now()
    for days_ago, body, message, goes_live in STORY:
        version = version_publish(
            name=DEMO_PROMPT,
            kind="text",
            body=body,
            commit_message=message,
            actor=author,
            config={"model": "gpt-4o-mini", "temperature": 0.2, "max_tokens": 400},
            purpose="System prompt of the customer-support chat widget.",
            known_edge_cases="Angry customers; refund questions; non-English messages.",
            prompt_type="system",
            description="System prompt for the support chat on the website.",
            tags=["support", "customer-facing"],
            sample_values={k: v for k, v in SAMPLE_VALUES.items() if "{{ %s }}" % k in body},  # noqa: UP031 — the text has braces of its own
        )
        version_submit_for_review(version=version, actor=author)
        review_submit(version=version, actor=reviewer, decision=ReviewDecision.APPROVE, comment="Looks good.")
        when = now - timedelta(days=days_ago)
        _backdate(version, when)
        if goes_live:
            move = label_move(
                name=DEMO_PROMPT,
                label=PRODUCTION,
                version=version.number,
                actor=deployer,
                reason=f"Ship v{version.number}: {message}",
            )
            LabelMove.objects.filter(pk=move.pk).update(created_at=when + timedelta(hours=2))
    move = rollback(
        name=DEMO_PROMPT,
        actor=deployer,
        reason="Quality score fell from 0.86 to 0.71 after v6: answers got long-winded.",
    )
    LabelMove.objects.filter(pk=move.pk).update(created_at=now - timedelta(days=5))
    Label.objects.filter(prompt__name=DEMO_PROMPT, name=PRODUCTION).update(updated_at=now - timedelta(days=5))
    Prompt.objects.filter(name=DEMO_PROMPT).update(created_at=now - timedelta(days=90))
    Prompt.history.filter(name=DEMO_PROMPT).update(history_date=now - timedelta(days=90))
    return True
