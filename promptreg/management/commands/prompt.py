"""`manage.py prompt publish|activate|rollback|show`: the registry from a shell or a pipeline.

Every subcommand calls the same service as the dashboard and the API, as the
server itself (`Actor(via=MoveVia.CLI)`), so moves are recorded as made from
the command line.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from promptreg import services
from promptreg.exceptions import RegistryError
from promptreg.models import PRODUCTION, MoveVia, Prompt, PromptType

CLI = services.Actor(via=MoveVia.CLI)


class Command(BaseCommand):
    help = "Publish, activate, roll back and show prompts."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True, metavar="{publish,activate,rollback,show}")

        publish = sub.add_parser("publish", help="Publish FILE as the next version of NAME.")
        publish.add_argument("name")
        publish.add_argument("file", help="The template; with --chat, a JSON list of messages. '-' reads stdin.")
        publish.add_argument("--message", "-m", required=True, help="Commit message: what changed and why.")
        publish.add_argument(
            "--type", dest="prompt_type", choices=PromptType.values, help="Prompt type (sets the review policy)."
        )
        publish.add_argument("--chat", action="store_true", help="FILE is a chat prompt (JSON messages).")
        publish.add_argument("--config", help="Model config as a JSON object, e.g. '{\"temperature\": 0.2}'.")
        publish.add_argument(
            "--author",
            help="The user who answers for the version (they cannot approve it); without one, review flags it.",
        )

        activate = sub.add_parser("activate", help="Point a label (production by default) at VERSION.")
        activate.add_argument("name")
        activate.add_argument("version", type=int)
        activate.add_argument("--reason", required=True)
        activate.add_argument("--label", default=PRODUCTION)
        activate.add_argument(
            "--override", action="store_true", help="Bypass the promotion gates (recorded as an override)."
        )

        rollback = sub.add_parser("rollback", help="Move production back to the version live before the current one.")
        rollback.add_argument("name")
        rollback.add_argument("--reason", required=True)
        rollback.add_argument("--label", default=PRODUCTION)

        show = sub.add_parser("show", help="Labels, versions and recent label moves of NAME.")
        show.add_argument("name")

    def handle(self, *args, action: str, **options):
        try:
            getattr(self, f"_{action}")(**options)
        except RegistryError as exc:
            raise CommandError(exc.message) from None

    def _publish(
        self,
        *,
        name: str,
        file: str,
        message: str,
        prompt_type: str | None,
        chat: bool,
        config: str | None,
        author: str | None,
        **_,
    ):
        text = self._read(file)
        body = _parse_json(text, f"{file} (with --chat, a JSON list of messages)") if chat else text
        config_data = _parse_json(config, "--config") if config else {}
        actor = CLI
        if author:
            user = get_user_model().objects.filter(username=author, is_active=True).first()
            if user is None:
                raise CommandError(f"--author: no active user named '{author}'.")
            actor = services.Actor(via=MoveVia.CLI, user=user)
        version = services.version_publish(
            name=name,
            kind="chat" if chat else "text",
            body=body,
            config=config_data,
            commit_message=message,
            prompt_type=prompt_type,
            actor=actor,
        )
        variables = ", ".join(version.variables) or "none"
        self.stdout.write(f"Published {name} v{version.number} (variables: {variables}).")

    def _activate(self, *, name: str, version: int, reason: str, label: str, override: bool, **_):
        move = services.label_move(name=name, label=label, version=version, reason=reason, override=override, actor=CLI)
        self.stdout.write(f"{name}: {label} {_from(move)} → v{move.to_version.number}.")
        if move.is_override:
            self.stdout.write(f"Override recorded; bypassed: {'; '.join(move.bypassed_gates)}.")

    def _rollback(self, *, name: str, reason: str, label: str, **_):
        move = services.rollback(name=name, label=label, reason=reason, actor=CLI)
        self.stdout.write(f"{name}: rolled {label} back {_from(move)} → v{move.to_version.number}.")

    def _show(self, *, name: str, **_):
        prompt = Prompt.objects.filter(name=name).first()
        if prompt is None:
            raise CommandError(f"No prompt named '{name}'.")
        retired = f", retired {prompt.retired_at:%Y-%m-%d}" if prompt.is_retired else ""
        self.stdout.write(f"{prompt.name} ({prompt.get_prompt_type_display()}{retired})")
        if prompt.description:
            self.stdout.write(f"  {prompt.description}")
        labels = prompt.labels.select_related("version").order_by("name")
        self.stdout.write("Labels: " + (", ".join(f"{lb.name} → v{lb.version.number}" for lb in labels) or "none"))
        self.stdout.write("Versions:")
        for version in prompt.versions.select_related("created_by", "created_by_key").order_by("-number"):
            first_line = version.commit_message.splitlines()[0] if version.commit_message else ""
            self.stdout.write(
                f"  v{version.number}  {version.created_at:%Y-%m-%d %H:%M}  {version.get_status_display():<17} "
                f"{version.author_name}: {first_line}"
            )
        moves = prompt.label_moves.select_related("from_version", "to_version", "actor", "api_key")[:10]
        if moves:
            self.stdout.write("Recent label moves:")
            for move in moves:
                kind = " (rollback)" if move.is_rollback else " (override)" if move.is_override else ""
                self.stdout.write(
                    f"  {move.created_at:%Y-%m-%d %H:%M}  {move.label} {_from(move)} → v{move.to_version.number}{kind} "
                    f"by {move.actor_name} via {move.via}: {move.reason}"
                )

    @staticmethod
    def _read(file: str) -> str:
        if file == "-":
            return sys.stdin.read()
        try:
            return Path(file).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise CommandError(f"Cannot read {file}: {exc}") from None


def _from(move) -> str:
    return f"v{move.from_version.number}" if move.from_version_id else "(none)"


def _parse_json(text: str, what: str):
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise CommandError(f"{what} is not valid JSON: {exc}") from None
