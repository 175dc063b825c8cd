from __future__ import annotations

from django.apps import AppConfig


class LiveConfig(AppConfig):
    name = "oncoplanner.live"
    label = "live"
    verbose_name = "Live updates"

    def ready(self) -> None:
        from oncoplanner.live import receivers  # noqa: F401 - connects the signal receivers
