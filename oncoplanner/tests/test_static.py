from __future__ import annotations

from django.core.management import call_command
from django.test import override_settings


def test_collectstatic_with_the_production_manifest_storage(tmp_path):
    """Production serves hashed static files; a CSS or JS file pointing at a file that is not
    shipped (a source map, a font) breaks `collectstatic`, so the deploy would fail."""
    storages = {
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.ManifestStaticFilesStorage"},
    }
    with override_settings(STATIC_ROOT=tmp_path, STORAGES=storages):
        call_command("collectstatic", interactive=False, verbosity=0)
    assert (tmp_path / "staticfiles.json").exists()
    assert list(tmp_path.glob("vendor/plotly/plotly.min.*.js"))
