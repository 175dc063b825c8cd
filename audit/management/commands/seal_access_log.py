"""Seal the access log: chain every row written since the last run (run every minute)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from audit.services import access_log_ensure_partitions, access_log_seal


class Command(BaseCommand):
    help = "Hash-chain the access-log rows written since the last seal."

    def handle(self, *args: Any, **options: Any) -> None:
        created = access_log_ensure_partitions()
        if created:
            self.stdout.write(f"created {created} monthly access-log partitions")
        sealed = access_log_seal()
        self.stdout.write(f"sealed {sealed} access-log rows")
