"""manage.py export_schema --out DIR: the schema documents, generated from the models."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from oncoplanner.schema_export import export_all


class Command(BaseCommand):
    help = (
        "Write the seed JSON (classes.json), a JSON Schema per record type (json-schema/), "
        "a Mermaid ER diagram (er-diagram.mmd) and a Markdown data dictionary "
        "(data-dictionary.md), generated from the models."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--out", default="schema", help="Output directory (default: schema)")

    def handle(self, *args: Any, **options: Any) -> None:
        written = export_all(Path(options["out"]))
        self.stdout.write(f"Wrote {len(written)} files to {options['out']}")
