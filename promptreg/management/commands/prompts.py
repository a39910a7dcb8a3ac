"""`manage.py prompts export DIR` / `prompts import DIR [--label L] [--message M]`: prompts as files in Git."""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from promptreg.file_format import FileErrors
from promptreg.files import export_dir, import_dir


class Command(BaseCommand):
    help = (
        "Export prompts to files (one per prompt, with the metadata header) or import them, publishing only what "
        "changed."
    )

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        export = sub.add_parser("export", help="write the newest version of every prompt to DIR")
        export.add_argument("directory", type=Path)
        load = sub.add_parser(
            "import", help="publish changed files from DIR as new versions; nothing is written if any file is bad"
        )
        load.add_argument("directory", type=Path)
        load.add_argument(
            "--label", help="then point this label (e.g. staging or production) at each file's version; gates apply"
        )
        load.add_argument(
            "--message", default="", help="commit message for every new version (default: each file's REASON)"
        )

    def handle(self, *args, action: str, directory: Path, **options):
        try:
            if action == "export":
                for path in export_dir(directory):
                    self.stdout.write(f"wrote {path}")
                return
            result = import_dir(directory, label=options["label"], message=options["message"])
        except FileErrors as exc:
            for problem in exc.problems:
                self.stderr.write(str(problem))
            raise CommandError(f"{len(exc.problems)} problem(s); nothing was {action}ed.") from None
        for version in result.published:
            self.stdout.write(f"published {version.prompt.name} v{version.number}")
        for move in result.moves:
            self.stdout.write(f"moved {move}")
        commit = f" from {result.source_commit}" if result.source_commit else ""
        self.stdout.write(
            f"{len(result.published)} published, {len(result.unchanged)} unchanged, {len(result.moves)} label "
            f"move(s){commit}."
        )
