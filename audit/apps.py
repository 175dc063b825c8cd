from __future__ import annotations

from django.apps import AppConfig


class AuditConfig(AppConfig):
    name = "audit"
    verbose_name = "Access log"

    def ready(self) -> None:
        # Receivers are connected here, not by import side effects, so that domain apps never
        # import audit and every receiver is connected exactly once.
        from audit import receivers

        receivers.connect()
