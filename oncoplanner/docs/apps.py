from __future__ import annotations

from django.apps import AppConfig


class DocsConfig(AppConfig):
    name = "oncoplanner.docs"
    label = "docs"
    verbose_name = "Schema documentation"
