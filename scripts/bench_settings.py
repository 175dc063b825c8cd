"""Production settings for the benchmark server, with one change: static files are stored
without the manifest post-processing step.

Why: collectstatic with CompressedManifestStaticFilesStorage currently fails on a vendored CSS
file that references a missing source map (vendor/graphiql/graphiql.min.css.map). Static files
are not measured by the benchmark, so this does not change any figure.
"""

from __future__ import annotations

from oncoplanner.settings import *  # noqa: F403

STORAGES = {
    **STORAGES,  # noqa: F405
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
