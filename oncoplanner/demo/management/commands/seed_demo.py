from __future__ import annotations

import datetime as dt
import sys
import time
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from oncoplanner.access_context import acting_as
from oncoplanner.demo.builder import REALISTIC_PATIENTS, DemoClinic
from patients.chart_cache import forget_all_charts
from patients.models import Patient

STALE_DEMO_AFTER = dt.timedelta(days=2)


class Command(BaseCommand):
    help = "Build a believable demo clinic (safe to run twice). --patients N for benchmark sizes."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--patients", type=int, default=REALISTIC_PATIENTS)
        parser.add_argument(
            "--history-days", type=int, default=730, help="Lab history for bulk-built patients."
        )
        parser.add_argument(
            "--if-empty", action="store_true", help="Do nothing if any patient exists."
        )
        parser.add_argument(
            "--allow-production", action="store_true", help="Seed with DEBUG off (benchmarks)."
        )

    def handle(
        self,
        *args: Any,
        patients: int,
        history_days: int,
        if_empty: bool,
        allow_production: bool,
        **options: Any,
    ) -> None:
        if patients < 1 or history_days < 1:
            raise CommandError("--patients and --history-days must be at least 1")
        if not settings.DEBUG and not allow_production:
            raise CommandError(
                "seed_demo writes demo accounts with a known password: DJANGO_DEBUG=true, or --allow-production for a benchmark database"
            )
        if if_empty and Patient.objects.exists():
            self.stdout.write("Patients exist already: demo data left as it is.")
            self._warn_if_stale()
            return
        started = time.monotonic()
        clinic = DemoClinic(today=timezone.localdate(), progress=self._progress)
        if not clinic.regimens or not clinic.tests:
            raise CommandError(
                "Reference data (regimens, lab catalogue) is missing: run migrate first"
            )
        with acting_as(None, surface="command"):
            users = clinic.ensure_staff()
            teams = clinic.ensure_teams(users)
            realistic = min(patients, REALISTIC_PATIENTS)
            self.stdout.write(f"Building {realistic} patients through the services…")
            built = clinic.build_realistic(realistic, users, teams)
            clinic.link_portal_patient()
            if patients > realistic:
                self.stdout.write(
                    f"\nBulk-building {patients - realistic} patients with {history_days} days of labs…"
                )
                built += clinic.build_bulk(
                    realistic,
                    patients - realistic,
                    teams,
                    users["admin"],
                    history_days=history_days,
                )
                # Bulk rows send no signals: no chart kept by a running server matches now.
                forget_all_charts()
        self.stdout.write(
            f"\nDone: {built} new patients in {time.monotonic() - started:.1f} s "
            f"({Patient.objects.count()} in all)."
        )

    def _progress(self, done: int, total: int) -> None:
        width = 30
        filled = int(width * done / max(total, 1))
        sys.stdout.write(f"\r  [{'#' * filled}{'.' * (width - filled)}] {done}/{total}")
        sys.stdout.flush()

    def _warn_if_stale(self) -> None:
        # Readiness is judged against how old the pre-cycle bloods are: a demo seeded days ago
        # shows every cycle as "Labs due" or "Not evaluable", which is right but no demo.
        from labs.models import LabResult

        newest = LabResult.objects.order_by("-collected_at").values_list("collected_at", flat=True)
        latest = newest.first()
        if latest is not None and timezone.now() - latest > STALE_DEMO_AFTER:
            self.stdout.write(
                f"The demo's newest lab result is from {timezone.localdate(latest):%Y-%m-%d}: "
                "readiness now shows its labs as too old. For a fresh demo, delete db.sqlite3 "
                "and run make run again."
            )
