from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from oncoplanner.demo.people import DEMO_PASSWORD, DEMO_TOTP_SECRET, PORTAL_PATIENT, STAFF


class Command(BaseCommand):
    help = "Print the demo logins (make run)."

    def handle(self, *args: Any, **options: Any) -> None:
        self.stdout.write("\nOncoPlanner demo: http://127.0.0.1:8000/\n")
        self.stdout.write(f"  password for every demo account: {DEMO_PASSWORD}")
        for person in (*STAFF, PORTAL_PATIENT):
            role = person.discipline or person.role
            teams = f" ({', '.join(person.teams)})" if person.teams else ""
            self.stdout.write(f"  {person.username:<18} {role}{teams}")
        self.stdout.write(
            "\n  Clinicians and administrators need a TOTP code: enrol on first login with your"
            f"\n  authenticator app, or use the demo secret {DEMO_TOTP_SECRET} if the account"
            "\n  already has it. Current code: .venv/bin/python manage.py demo_totp\n"
        )
