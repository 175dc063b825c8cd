"""Where a request's time goes: SQL against Python, per endpoint of `make bench`.

    DATABASE_URL=... python scripts/bench_profile.py [--repeat 5] [--explain] [--cprofile NAME]

Uses the endpoints and records of scripts/bench_plan.py (same database, production settings
unless DJANGO_SETTINGS_MODULE says otherwise). For each endpoint: the median wall time of
`--repeat` requests through Django's test client, the time its queries took, the number of
queries, and the slowest queries. `--explain` prints EXPLAIN ANALYZE of the slowest query
(PostgreSQL), run with the same bound parameters as Django sends them. `--cprofile NAME`
prints the top functions of that endpoint by cumulative time.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_plan  # noqa: E402  (sets up Django)
from django.conf import settings  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext, override_settings  # noqa: E402

from oncoplanner.accounts.models import User  # noqa: E402


def _request(client: Client, spec: tuple[str, str, str | None, str | None], htmx: bool) -> Any:
    return bench_plan.send(client, *spec, {"HX-Request": "true"} if htmx else {})


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--top", type=int, default=4, help="slowest queries shown")
    parser.add_argument("--explain", action="store_true")
    parser.add_argument("--cprofile", default="")
    parser.add_argument("--sort", default="cumulative", help="pstats sort key for --cprofile")
    parser.add_argument("--lines", type=int, default=40, help="functions shown by --cprofile")
    parser.add_argument("--only", default="", help="substring of the endpoint names to run")
    args = parser.parse_args()

    user = User.objects.get(username=bench_plan.CLINICIAN)
    records = bench_plan.choose_records(user)
    print(f"records: {records}")
    signed_in = Client(HTTP_HOST="127.0.0.1")
    signed_in.force_login(user)
    anonymous = Client(HTTP_HOST="127.0.0.1")
    for name, needs_login, make_spec in bench_plan.endpoints():
        client = signed_in if needs_login else anonymous
        if args.only and args.only not in name:
            continue
        spec = make_spec(records)
        # The "rendered afresh" row is the dashboard with the chart cache off (bench_plan).
        afresh = name == bench_plan.RENDERED_AFRESH
        with override_settings(CHART_CACHE=not afresh and settings.CHART_CACHE):
            _profile(name, client, spec, args)


def _profile(name: str, client: Client, spec: Any, args: argparse.Namespace) -> None:
    htmx = name.startswith("HTMX")
    _request(client, spec, htmx)  # warm caches and connections
    walls, sql, last = [], [], None
    for _ in range(args.repeat):
        with CaptureQueriesContext(connection) as ctx:
            started = time.perf_counter()
            response = _request(client, spec, htmx)
            walls.append(time.perf_counter() - started)
        sql.append(sum(float(q["time"]) for q in ctx.captured_queries))
        last = ctx
    wall, db = statistics.median(walls) * 1000, statistics.median(sql) * 1000
    print(
        f"\n== {name}: {response.status_code}  {wall:.1f} ms wall, {db:.1f} ms SQL, "
        f"{wall - db:.1f} ms Python, {len(last.captured_queries)} queries"
    )
    slowest = sorted(last.captured_queries, key=lambda q: -float(q["time"]))
    for query in slowest[: args.top]:
        print(f"   {float(query['time']) * 1000:6.1f} ms  {query['sql'][:220]}")
    if args.explain and connection.vendor == "postgresql" and slowest:
        _explain(slowest[0]["sql"])
    if args.cprofile and args.cprofile in name:
        profiler = cProfile.Profile()
        profiler.enable()
        for _ in range(args.repeat):
            _request(client, spec, htmx)
        profiler.disable()
        pstats.Stats(profiler).sort_stats(args.sort).print_stats(args.lines)


def _explain(sql: str) -> None:
    # CaptureQueriesContext records the SQL with parameters inlined; PostgreSQL plans a bound
    # query the same way on its first executions (custom plans), so this is the plan it used.
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql)
        for (line,) in cursor.fetchall():
            print("      " + line)


if __name__ == "__main__":
    main()
