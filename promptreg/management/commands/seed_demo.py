from django.core.management.base import BaseCommand

from promptreg.demo import ACCOUNTS, DEMO_PROMPT, seed_demo


class Command(BaseCommand):
    help = f"Create the demo story ({DEMO_PROMPT}, six versions) and the demo accounts, unless it exists."

    def add_arguments(self, parser):
        parser.add_argument("--password", required=True, help="password for the demo accounts")

    def handle(self, *args, password, **options):
        if seed_demo(password):
            names = ", ".join(name for name, _ in ACCOUNTS)
            self.stdout.write(f"Demo data created: {DEMO_PROMPT} v1-v6; accounts {names}.")
        else:
            self.stdout.write("Demo data already present.")
