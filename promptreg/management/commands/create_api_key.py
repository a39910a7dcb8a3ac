"""`manage.py create_api_key NAME --scopes read,write,deploy,admin [--json]`: the secret is shown once."""

from __future__ import annotations

import json

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from promptreg.models import ApiKey


class Command(BaseCommand):
    help = "Create an API key. The secret is printed once; only its hash is stored."

    def add_arguments(self, parser):
        parser.add_argument("name", help="What the key is for, e.g. 'support-app-prod'.")
        parser.add_argument("--scopes", required=True, help="Comma-separated: read, write, deploy, admin.")
        parser.add_argument("--json", dest="as_json", action="store_true", help='Print {"name","public_id","secret","scopes"}.')

    def handle(self, *args, name: str, scopes: str, as_json: bool, **options):
        name = name.strip()
        if not name:
            raise CommandError("The key needs a name.")
        wanted = [s.strip() for s in scopes.split(",") if s.strip()]
        try:
            key, secret = ApiKey.issue(name=name, scopes=wanted)
        except ValidationError as exc:
            raise CommandError(exc.messages[0]) from None
        if as_json:
            self.stdout.write(json.dumps({"name": key.name, "public_id": key.public_id, "secret": secret, "scopes": key.scopes}))
            return
        self.stdout.write(f"Created API key '{key.name}' ({key.public_id}), scopes: {', '.join(key.scopes)}.")
        self.stdout.write(f"Secret (shown once, store it now): {secret}")

