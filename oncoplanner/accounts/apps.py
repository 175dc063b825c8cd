from __future__ import annotations

from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "oncoplanner.accounts"
    label = "accounts"
    verbose_name = "Users and API tokens"

    def ready(self) -> None:
        from oncoplanner.accounts import receivers  # noqa: F401  (connects the receivers)
