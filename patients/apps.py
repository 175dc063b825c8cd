from __future__ import annotations

from django.apps import AppConfig


class PatientsConfig(AppConfig):
    name = "patients"
    verbose_name = "Patients"

    def ready(self) -> None:
        from patients import chart_cache, receivers  # noqa: F401  (connects the signal receivers)

        chart_cache.connect_receivers()
