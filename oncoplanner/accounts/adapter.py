from __future__ import annotations

from allauth.account.adapter import DefaultAccountAdapter
from django.http import HttpRequest


class AccountAdapter(DefaultAccountAdapter):
    def is_open_for_signup(self, request: HttpRequest) -> bool:
        # Security: an open sign-up could attach an account to someone else's chart.
        # Patients join only through an invitation created for their own record.
        return False
