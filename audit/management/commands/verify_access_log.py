"""Recompute the access log's hash chain; report the first altered or missing row. Once the
chain holds, check the list-view index ("who accessed" finds list views through it; it is not
chained) against the log's patient lists, and report the first log id whose index rows differ.

Exit code 0 and "access log intact: ..." when both hold; exit code 1 and
"access log TAMPERED: ..., first problem: ..." otherwise. Keep the printed head hash somewhere
the database administrators cannot write (a ticket, a printed report): a chain that was cut
off at the end and re-headed can only be told apart from that outside copy.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from audit.services import access_log_verify


class Command(BaseCommand):
    help = (
        "Verify the access log's hash chain and its list-view index "
        "(exit code 1 if a row was altered or removed)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--no-seal",
            action="store_true",
            help="Do not seal new rows first (e.g. on a read-only replica).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        result = access_log_verify(seal=not options["no_seal"])
        self.stdout.write(result.summary())
        if not result.ok:
            raise CommandError("access log tampering detected", returncode=1)
