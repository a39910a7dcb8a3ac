"""`manage.py revoke_api_key PUBLIC_ID`: the key is refused by every server process from the next request."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from promptreg.exceptions import InvalidInput
from promptreg.models import ApiKey, MoveVia
from promptreg.services import Actor, api_key_revoke


class Command(BaseCommand):
    help = "Revoke an API key by its public id (pk-pr-…). Every server refuses it from the next request."

    def add_arguments(self, parser):
        parser.add_argument("public_id", help="The key's public id, as `create_api_key` printed it.")

    def handle(self, *args, public_id: str, **options):
        key = ApiKey.objects.filter(public_id=public_id.strip()).first()
        if key is None:
            raise CommandError(f"No API key with public id '{public_id}'.")
        try:
            api_key_revoke(actor=Actor(via=MoveVia.CLI), key=key)
        except InvalidInput as exc:
            raise CommandError(exc.message) from None
        self.stdout.write(f"Revoked API key '{key.name}' ({key.public_id}).")
