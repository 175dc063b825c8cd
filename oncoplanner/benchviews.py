"""Benchmark-only views: the bare baseline every figure in docs/PERFORMANCE.md is a ratio to.

Mounted at /bench/baseline/ only when settings.BENCHMARK_BASELINE is true (scripts/bench.py
sets it for its own throwaway server); a normal deployment never has this URL.

The baseline is a plain Django view rendering a small template through the same template
engine, middleware stack, gunicorn and settings as the real pages, with no database query of
its own: what is left is the cost of the framework and the server.

BENCH_READ_LOG=off (read only when BENCHMARK_BASELINE is on) disconnects the access log's
read receiver in this process, so that scripts/bench.py can measure what logging a read costs
on a second, throwaway server. Never set it anywhere else: reads would go unlogged.
"""

from __future__ import annotations

import os

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.template import engines

_TEMPLATE = engines["django"].from_string(
    "<!doctype html><html lang=en><meta charset=utf-8><title>{{ title }}</title>"
    "<h1>{{ title }}</h1><ul>{% for item in items %}<li>{{ item }}</li>{% endfor %}</ul></html>"
)
_ITEMS = [f"row {n}" for n in range(20)]


def baseline(request: HttpRequest) -> HttpResponse:
    return HttpResponse(_TEMPLATE.render({"title": "Baseline", "items": _ITEMS}, request))


def _disable_read_log_for_benchmark() -> None:
    if settings.BENCHMARK_BASELINE and os.environ.get("BENCH_READ_LOG", "on") == "off":
        from oncoplanner.signals import record_read

        record_read.disconnect(dispatch_uid="audit_record_read")


_disable_read_log_for_benchmark()
