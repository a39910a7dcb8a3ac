"""`manage.py create_api_key NAME --scopes read,write,deploy,admin [--owner USERNAME] [--gate-override] [--json]`:
the secret is shown once."""

from __future__ import annotations

import json

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from promptreg.models import ApiKey


class Command(BaseCommand):
    help = "Create an API key. The secret is printed once; only its hash is stored."

    def add_arguments(self, parser):
        parser.add_argument("name", help="What the key is for, e.g. 'support-app-prod'.")
        parser.add_argument("--scopes", required=True, help="Comma-separated: read, write, deploy, admin.")
        parser.add_argument(
            "--owner",
            help="The user who answers for the key: versions published with it are theirs, so they cannot approve "
            "them.",
        )
        parser.add_argument(
            "--gate-override",
            action="store_true",
            help="A pipeline key whose changes were reviewed elsewhere (a pull request): its label moves bypass the "
            "gates "
            "on every route, each recorded as an override naming the key. Needs the deploy scope.",
        )
        parser.add_argument(
            "--json",
            dest="as_json",
            action="store_true",
            help='Print {"name","public_id","secret","scopes","owner","gate_override"}.',
        )

    def handle(self, *args, name: str, scopes: str, owner: str | None, gate_override: bool, as_json: bool, **options):
        name = name.strip()
        if not name:
            raise CommandError("The key needs a name.")
        wanted = [s.strip() for s in scopes.split(",") if s.strip()]
        user = None
        if owner:
            user = get_user_model().objects.filter(username=owner).first()
            if user is None:
                raise CommandError(f"--owner: no user named '{owner}'.")
        try:
            key, secret = ApiKey.issue(name=name, scopes=wanted, owner=user, gate_override=gate_override)
        except ValidationError as exc:
            raise CommandError(exc.messages[0]) from None
        if as_json:
            self.stdout.write(
                json.dumps(
                    {
                        "name": key.name,
                        "public_id": key.public_id,
                        "secret": secret,
                        "scopes": key.scopes,
                        "owner": owner or None,
                        "gate_override": key.gate_override,
                    }
                )
            )
            return
        self.stdout.write(f"Created API key '{key.name}' ({key.public_id}), scopes: {', '.join(key.scopes)}.")
        if user is None:
            self.stdout.write(
                "No owner: versions published with this key have no accountable author and are flagged in review."
            )
        if key.gate_override:
            self.stdout.write("Gate override: this key's label moves bypass the gates, each recorded as an override.")
        self.stdout.write(f"Secret (shown once, store it now): {secret}")
