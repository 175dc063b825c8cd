from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from oncoplanner.demo.people import DEMO_PASSWORD, DEMO_TOTP_SECRET, PORTAL_PATIENT, STAFF


class Command(BaseCommand):
    help = "Print the demo logins (make run)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--url", default="http://127.0.0.1:8000/", help="where it is served")

    def handle(self, *args: Any, **options: Any) -> None:
        self.stdout.write(f"\nOncoPlanner demo: {options['url']}\n")
        self.stdout.write(f"  password for every demo account: {DEMO_PASSWORD}")
        for person in (*STAFF, PORTAL_PATIENT):
            role = person.discipline or person.role
            if person.sact_prescriber:
                role += ", non-medical prescriber"
            teams = f" ({', '.join(person.teams)})" if person.teams else ""
            self.stdout.write(f"  {person.username:<18} {role}{teams}")
        self.stdout.write(
            "\n  Clinicians and administrators need a TOTP code: enrol on first login with your"
            f"\n  authenticator app, or use the demo secret {DEMO_TOTP_SECRET} if the account"
            "\n  already has it. Current code: .venv/bin/python manage.py demo_totp\n"
        )
