"""`make bench`: throughput and latency of OncoPlanner's doors, as ratios to a bare Django view.

Starts a throwaway PostgreSQL (scripts/pg.sh) and gunicorn with production settings on free
loopback ports, seeds two clinic sizes with seed_demo, signs a demo clinician in (password +
TOTP), and drives each endpoint with wrk for a fixed time. Prints Markdown tables and writes
bench-results/<timestamp>.json and .md. Loopback only; everything it starts it stops.

  .venv/bin/python scripts/bench.py                      # full run (minutes)
  .venv/bin/python scripts/bench.py --duration 5 --large 1000    # shortened
  .venv/bin/python scripts/bench.py --held-only          # figure 17: 60 s at 8 connections

Endpoints come from scripts/bench_plan.py (add new ones there); endpoints that do not exist in
this checkout are skipped and listed.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg

ROOT = Path(__file__).resolve().parent.parent
PY = str(ROOT / ".venv" / "bin" / "python")
GUNICORN = str(ROOT / ".venv" / "bin" / "gunicorn")
CLINICIAN = "dr.okafor"

LUA = """
wrk.method = {method}
wrk.body = {body}
{headers}
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCHJSON {{"requests":%d,"duration_us":%d,"p50_us":%d,"p99_us":%d,'
    .. '"status_errors":%d,"socket_errors":%d}}\\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.status, e.connect + e.read + e.write + e.timeout))
end
"""


def log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def ensure_wrk() -> str:
    found = shutil.which("wrk")
    if found:
        return found
    if os.geteuid() == 0 and shutil.which("apt-get"):
        log("installing Debian's wrk")
        subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=False)  # noqa: S607
        if not shutil.which("wrk"):
            subprocess.run(["apt-get", "update", "-qq"], check=True)  # noqa: S607
            subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=True)  # noqa: S607
    found = shutil.which("wrk")
    if not found:
        raise SystemExit("bench: wrk not found; install Debian's wrk package")
    return found


def mean_rps(runs: list[dict[str, Any]]) -> float:
    return sum(r["rps"] for r in runs) / len(runs) if runs else 0.0


def lua_string(value: str) -> str:
    return "[==[" + value + "]==]"


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.tmp = Path(tempfile.mkdtemp(prefix="oncoplanner-bench."))
        self.tmp.chmod(0o755)  # the cluster inside runs as the postgres user when we are root
        self.pg_dir = self.tmp / "pg"
        self.servers: list[subprocess.Popen[bytes]] = []
        self.env: dict[str, str] = {}

    # --- infrastructure ---------------------------------------------------------------------

    def start_postgres(self) -> None:
        url = subprocess.run(  # noqa: S603 - our own script
            [str(ROOT / "scripts" / "pg.sh"), "start", str(self.pg_dir)],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
        self.env = {
            **os.environ,
            "DATABASE_URL": url,
            # Production settings, exactly (collectstatic with the manifest storage included).
            "DJANGO_SETTINGS_MODULE": "oncoplanner.settings",
            "PYTHONPATH": str(ROOT / "scripts"),
            "DJANGO_DEBUG": "false",
            "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
            # Production requires it: a fresh Fernet key (32 random bytes, url-safe base64).
            "DJANGO_MFA_ENCRYPTION_KEY": base64.urlsafe_b64encode(secrets.token_bytes(32)).decode(),
            "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
            "DJANGO_SECURE_SSL_REDIRECT": "false",
            "BENCHMARK_BASELINE": "true",
            "DJANGO_LOG_LEVEL": "ERROR",
        }
        self.url = url
        log(f"PostgreSQL at {url.rsplit('@', 1)[1]}")

    def manage(self, *args: str) -> str:
        done = subprocess.run(  # noqa: S603
            [PY, "manage.py", *args], cwd=ROOT, env=self.env, capture_output=True, text=True
        )
        if done.returncode != 0:
            raise SystemExit(f"bench: manage.py {' '.join(args)} failed:\n{done.stderr[-3000:]}")
        return done.stdout

    def sql(self, query: str) -> Any:
        with psycopg.connect(self.url) as conn:
            return conn.execute(query).fetchone()[0]  # type: ignore[index]

    def start_server(self, name: str, extra: dict[str, str] | None = None) -> str:
        port = free_port()
        access_log = self.tmp / f"access-{name}.log"
        env = {
            **self.env,
            "GUNICORN_BIND": f"127.0.0.1:{port}",
            "GUNICORN_WORKERS": str(self.args.workers),
            "GUNICORN_ACCESS_LOG": str(access_log),
            "GUNICORN_ERROR_LOG": str(self.tmp / f"error-{name}.log"),
            "GUNICORN_MAX_REQUESTS": "0",
            **(extra or {}),
        }
        server = subprocess.Popen(  # noqa: S603
            [GUNICORN, "-c", "oncoplanner/gunicorn.conf.py"], cwd=ROOT, env=env
        )
        self.servers.append(server)
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(base + "/bench/baseline/", timeout=2) as r:  # noqa: S310
                    if r.status == 200:
                        log(f"gunicorn '{name}' on {base} ({self.args.workers} workers)")
                        return base
            except (urllib.error.URLError, ConnectionError, OSError):
                time.sleep(0.3)
        raise SystemExit(f"bench: gunicorn '{name}' did not start; see {self.tmp}")

    def stop_servers(self) -> None:
        for server in self.servers:
            if server.poll() is None:
                server.send_signal(signal.SIGTERM)
        for server in self.servers:
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()
        self.servers.clear()

    def cleanup(self) -> None:
        self.stop_servers()
        subprocess.run([str(ROOT / "scripts" / "pg.sh"), "stop", str(self.pg_dir)], check=False)  # noqa: S603
        shutil.rmtree(self.tmp, ignore_errors=True)

    # --- a signed-in clinician --------------------------------------------------------------

    def login(self, base: str) -> dict[str, str]:
        """Password, then the TOTP step (MFA is required for clinicians); returns the cookies."""
        cookies: dict[str, str] = {}
        opener = urllib.request.build_opener(NoRedirect)

        def call(path: str, data: dict[str, str] | None = None) -> tuple[int, str, str]:
            request = urllib.request.Request(base + path)  # noqa: S310
            if cookies:
                request.add_header("Cookie", "; ".join(f"{k}={v}" for k, v in cookies.items()))
            if data is not None:
                request.data = urllib.parse.urlencode(data).encode()
                request.add_header("X-CSRFToken", cookies.get("csrftoken", ""))
            try:
                response = opener.open(request, timeout=30)
            except urllib.error.HTTPError as error:
                response = error
            for header in response.headers.get_all("Set-Cookie") or []:
                name, _, rest = header.partition("=")
                cookies[name.strip()] = rest.split(";", 1)[0]
            return response.status, response.headers.get("Location", ""), response.read().decode()

        def token(page: str) -> str:
            match = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)
            return match.group(1) if match else ""

        _, _, page = call("/accounts/login/")
        status, location, _ = call(
            "/accounts/login/",
            {
                "login": CLINICIAN,
                "password": demo_password(),
                "csrfmiddlewaretoken": token(page),
            },
        )
        if status != 302 or "2fa" not in location:
            raise SystemExit(f"bench: password step answered {status} -> {location!r}")
        stage = location
        _, _, page = call(stage)
        status, location, answer = call(
            stage, {"code": totp_now(), "csrfmiddlewaretoken": token(page)}
        )
        if status != 302 or "sessionid" not in cookies:
            text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", answer))
            raise SystemExit(
                f"bench: TOTP step at {stage} answered {status} -> {location!r}; "
                f"cookies {sorted(cookies)}; page: {text[:1500]}"
            )
        return cookies

    # --- measuring --------------------------------------------------------------------------

    def plan(self) -> dict[str, Any]:
        out = subprocess.run(  # noqa: S603
            [PY, "scripts/bench_plan.py"], cwd=ROOT, env=self.env, capture_output=True, text=True
        )
        if out.returncode != 0:
            raise SystemExit(f"bench: bench_plan failed:\n{out.stderr[-3000:]}")
        return json.loads(out.stdout.strip().splitlines()[-1])

    def wrk(
        self,
        base: str,
        endpoint: dict[str, Any],
        cookies: dict[str, str] | None,
        *,
        duration: int,
        connections: int,
        warmup: bool = True,
    ) -> dict[str, Any]:
        if warmup:
            # Unmeasured: a fresh worker's first requests pay for imports, template compilation
            # and new database connections; without this a freshly started server measures
            # its own start-up (the no-read-log server answered 1 request in 2 s).
            self.wrk(
                base,
                endpoint,
                cookies,
                duration=min(2, duration),
                connections=connections,
                warmup=False,
            )
        headers = {}
        if endpoint["login"] and cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in cookies.items())
            headers["X-CSRFToken"] = cookies.get("csrftoken", "")
        if endpoint.get("content_type"):
            headers["Content-Type"] = endpoint["content_type"]
        if endpoint.get("htmx"):
            headers["HX-Request"] = "true"
        script = self.tmp / "wrk.lua"
        script.write_text(
            LUA.format(
                method=lua_string(endpoint["method"]),
                body=lua_string(endpoint.get("body") or "") if endpoint.get("body") else "nil",
                headers="\n".join(
                    # Spaces matter: "[[==[" would open a Lua long string.
                    f"wrk.headers[ {lua_string(k)} ] = {lua_string(v)}"
                    for k, v in headers.items()
                ),
            )
        )
        threads = min(connections, 2)
        out = subprocess.run(  # noqa: S603
            [
                self.wrk_bin,
                f"-t{threads}",
                f"-c{connections}",
                f"-d{duration}s",
                "--timeout",
                "20s",
                "-s",
                str(script),
                base + endpoint["path"],
            ],
            capture_output=True,
            text=True,
            timeout=duration + 60,
        )
        line = next((x for x in out.stdout.splitlines() if x.startswith("BENCHJSON ")), None)
        if line is None:
            raise SystemExit(f"bench: wrk failed: {out.stdout}\n{out.stderr}")
        raw = json.loads(line.removeprefix("BENCHJSON "))
        return {
            "rps": raw["requests"] / (raw["duration_us"] / 1e6),
            "p50_ms": raw["p50_us"] / 1000,
            "p99_ms": raw["p99_us"] / 1000,
            "requests": raw["requests"],
            "errors": raw["status_errors"] + raw["socket_errors"],
        }

    def measure_scale(self, patients: int, servers: dict[str, str]) -> dict[str, Any]:
        log(f"seeding {patients} patients ({self.args.history_days} days of labs)…")
        started = time.monotonic()
        self.manage(
            "seed_demo",
            "--allow-production",
            "--patients",
            str(patients),
            "--history-days",
            str(self.args.history_days),
        )
        seeded = time.monotonic() - started
        plan = self.plan()
        for skipped in plan["skipped"]:
            log(f"  skipped {skipped['name']}: {skipped['reason']}")
        cookies = self.login(servers["main"])  # one session: both servers share the database
        results = []
        for endpoint in plan["endpoints"]:
            log(f"  {patients} patients: {endpoint['name']} ({self.args.duration} s)")
            figures = self.wrk(
                servers[endpoint.get("server", "main")],
                endpoint,
                cookies,
                duration=self.args.duration,
                connections=self.args.connections,
            )
            results.append({**endpoint, **figures})
        return {
            "patients": int(self.sql("SELECT count(*) FROM patients_patient")),
            "lab_results": int(self.sql("SELECT count(*) FROM labs_labresult")),
            "seed_seconds": round(seeded, 1),
            "records": plan["records"],
            "results": results,
            "skipped": plan["skipped"],
            "cookies": cookies,
        }

    def access_log_cost(self, base: str, scale: dict[str, Any]) -> dict[str, Any]:
        """The dashboard on the main server and on one without the read-log receiver, in
        interleaved rounds (with/without, then without/with, ...) so that drift in the
        machine's load falls on both sides; the cost is 1 - mean(with) / mean(without)."""
        dashboard = next((r for r in scale["results"] if r["name"] == "patient dashboard"), None)
        if dashboard is None:
            log("access-logging cost not measured: the patient dashboard was skipped")
            return {}
        unlogged = self.start_server("no-read-log", {"BENCH_READ_LOG": "off"})
        runs: dict[str, list[dict[str, Any]]] = {"with log": [], "without log": []}
        for round_number in range(self.args.log_rounds):
            order = [("with log", base), ("without log", unlogged)]
            for label, server in order if round_number % 2 == 0 else order[::-1]:
                log(f"  access-log cost, round {round_number + 1}: {label}")
                before = self.sql("SELECT count(*) FROM audit_accesslog")
                figures = self.wrk(
                    server,
                    dashboard,
                    scale["cookies"],
                    duration=self.args.duration,
                    connections=self.args.connections,
                )
                figures["log_rows"] = int(self.sql("SELECT count(*) FROM audit_accesslog") - before)
                if not figures["requests"] or figures["errors"]:
                    self.diagnose(server, dashboard["path"], scale["cookies"], label)
                runs[label].append(figures)
        return runs

    def wait_quiet(self, access_log: Path) -> None:
        """Until neither gunicorn's access log nor the access-log table grew for 2 s."""
        last = (-1, -1)
        for _ in range(60):
            now = (access_log.stat().st_size, self.sql("SELECT count(*) FROM audit_accesslog"))
            if now == last:
                return
            last = now
            time.sleep(2)

    def diagnose(self, base: str, path: str, cookies: dict[str, str], label: str) -> None:
        """One request by hand, and the server's error log, when a run had errors or no answer."""
        request = urllib.request.Request(base + path)  # noqa: S310
        request.add_header("Cookie", "; ".join(f"{k}={v}" for k, v in cookies.items()))
        try:
            with urllib.request.build_opener(NoRedirect).open(request, timeout=30) as r:
                answer = f"{r.status}"
        except urllib.error.HTTPError as error:
            answer = f"{error.code} {error.read()[:300]!r}"
        except OSError as error:
            answer = f"no answer: {error}"
        log(f"  {label}: {path} answered {answer}")
        for name in sorted(self.tmp.glob("error-*.log")):
            log(f"  {name.name}: {name.read_text()[-1500:]}")

    def held_load(
        self, base: str, cookies: dict[str, str], endpoint: dict[str, Any]
    ) -> dict[str, Any]:
        access_log = self.tmp / "access-main.log"
        # Requests still in flight from an earlier run would land after the offset with their
        # rows before `before` (or the reverse): let the server go quiet on both sides.
        self.wait_quiet(access_log)
        offset = access_log.stat().st_size
        before = self.sql("SELECT count(*) FROM audit_accesslog")
        log(f"held load: {endpoint['path']} for {self.args.held_seconds} s at 8 connections")
        figures = self.wrk(
            base,
            endpoint,
            cookies,
            duration=self.args.held_seconds,
            connections=8,
            warmup=False,
        )
        self.wait_quiet(access_log)  # wrk abandons in-flight requests; the server finishes them
        rows = int(self.sql("SELECT count(*) FROM audit_accesslog") - before)
        with access_log.open() as f:
            f.seek(offset)
            lines = [x for x in f if f'"GET {endpoint["path"]} ' in x]
        ok = sum(1 for x in lines if re.search(r'" 2\d\d ', x))
        return {**figures, "access_log_2xx": ok, "log_rows": rows, "match": ok == rows}

    def run(self) -> None:
        self.wrk_bin = ensure_wrk()
        self.start_postgres()
        log("migrate, cache table, static files")
        self.manage("migrate", "--noinput")
        self.manage("createcachetable")
        self.manage("collectstatic", "--noinput", "--verbosity", "0")
        base = self.start_server("main")
        report: dict[str, Any] = {
            "started": datetime.now(UTC).isoformat(timespec="seconds"),
            "machine": machine(self.url),
            "settings": vars(self.args),
            "scales": {},
        }
        if self.args.held_only:
            self.manage("seed_demo", "--allow-production", "--patients", str(self.args.small))
            plan = self.plan()
            dashboard = next(e for e in plan["endpoints"] if e["name"] == "patient dashboard")
            report["held"] = self.held_load(base, self.login(base), dashboard)
            print(held_line(report["held"]))
            return
        scales = [self.args.small] + ([self.args.large] if self.args.large else [])
        # The dashboard with its chart rendered on every view (bench_plan.RENDERED_AFRESH).
        servers = {"main": base, "afresh": self.start_server("afresh", {"CHART_CACHE": "false"})}
        for patients in scales:
            report["scales"][str(patients)] = self.measure_scale(patients, servers)
        small = report["scales"][str(self.args.small)]
        report["log_cost"] = self.access_log_cost(base, small)
        if self.args.held_seconds:
            dashboard = next(
                (r for r in small["results"] if r["name"] == "patient dashboard"), None
            )
            if dashboard is None:
                log("held load not run: the patient dashboard was skipped")
            else:
                report["held"] = self.held_load(base, small["cookies"], dashboard)
        for scale in report["scales"].values():
            scale.pop("cookies", None)
        out = ROOT / "bench-results"
        out.mkdir(exist_ok=True)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        # JSON first: a figure the table cannot render must not lose the run.
        (out / f"{stamp}.json").write_text(json.dumps(report, indent=2))
        markdown = render(report, self.args)
        print(markdown)
        (out / f"{stamp}.md").write_text(markdown)
        log(f"wrote bench-results/{stamp}.json and .md")


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def demo_password() -> str:
    sys.path.insert(0, str(ROOT))
    from oncoplanner.demo.people import DEMO_PASSWORD

    return DEMO_PASSWORD


_last_totp_counter = -1


def totp_now() -> str:
    """The demo staff's current TOTP code, through allauth's own helpers."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "oncoplanner.settings_test")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from allauth.mfa.totp.internal.auth import (
        format_hotp_value,
        hotp_value,
        yield_hotp_counters_from_time,
    )

    from oncoplanner.demo.people import DEMO_TOTP_SECRET

    global _last_totp_counter
    # allauth refuses a code it has seen (replay protection, shared cache) and one whose window
    # ends before the request arrives: wait for a fresh window when the current one was used by
    # an earlier login in this run or is about to close.
    while True:
        now = time.time()
        counter = int(now) // 30
        if counter != _last_totp_counter and 30 - now % 30 > 3:
            break
        time.sleep(30 - now % 30 + 0.2)
    # With allauth's default tolerance of 0 this is exactly the current time step.
    counter = next(iter(yield_hotp_counters_from_time()))
    _last_totp_counter = counter
    return str(format_hotp_value(hotp_value(DEMO_TOTP_SECRET, counter)))


def machine(url: str) -> dict[str, Any]:
    memory_kb = 0
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            memory_kb = int(line.split()[1])
    with psycopg.connect(url) as conn:
        version = conn.execute("SHOW server_version").fetchone()[0]  # type: ignore[index]
    cpu = next(
        (
            x.split(":", 1)[1].strip()
            for x in Path("/proc/cpuinfo").read_text().splitlines()
            if x.startswith("model name")
        ),
        "unknown",
    )
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "memory_gb": round(memory_kb / 1024 / 1024, 1),
        "postgresql": version,
        "python": sys.version.split()[0],
    }


def held_line(held: dict[str, Any]) -> str:
    return (
        f"FIGURE 17 load-held: seconds={held.get('seconds', '')} requests={held['requests']} "
        f"errors={held['errors']} access_log_2xx={held['access_log_2xx']} "
        f"log_rows={held['log_rows']} match={'yes' if held['match'] else 'NO'}"
    )


def _full_page_search_text(records: dict[str, Any]) -> str:
    if "full_page_search" not in records:  # a run recorded before the row existed
        return ""
    return (
        f' Full-page search "{records["full_page_search"]}" matches '
        f"{records['full_page_search_matches']} (25 shown)."
    )


def render(report: dict[str, Any], args: argparse.Namespace) -> str:
    m = report["machine"]
    lines = [
        f"Run {report['started']} on {m['nproc']} CPUs ({m['cpu']}), {m['memory_gb']} GB, "
        f"PostgreSQL {m['postgresql']}, Python {m['python']}; gunicorn {args.workers} sync "
        f"workers; wrk {args.duration} s x {args.connections} connections per endpoint.",
        "",
    ]
    scales = list(report["scales"].values())
    small = scales[0]
    large = scales[1] if len(scales) > 1 else None
    base_rps = next(r["rps"] for r in small["results"] if r["name"] == "baseline")
    head = "| endpoint | req/s | vs baseline | p50 ms | p99 ms | errors | queries/req |"
    sep = "|---|---:|---:|---:|---:|---:|---:|"
    if large:
        head += " req/s (large) | p50 ms (large) | p50 large/small | queries (large) |"
        sep += "---:|---:|---:|---:|"
    lines += [
        f"Small: {small['patients']} patients, {small['lab_results']} lab results"
        + (
            f"; large: {large['patients']} patients, {large['lab_results']} lab results"
            if large
            else ""
        ),
        "",
        *(
            f"At {scale['patients']} patients: {CLINICIAN} sees "
            f"{scale['records'].get('visible_patients', '?')}; dashboard patient "
            f"#{scale['records'].get('patient_id', '?')} with "
            f"{scale['records'].get('patient_labs', '?')} lab results; name search "
            f'"{scale["records"].get("search", "?")}" matches '
            f"{scale['records'].get('search_matches', '?')} visible patients (the page shows "
            f'up to 25); MRN search "{scale["records"].get("mrn", "?")}" matches one.'
            + _full_page_search_text(scale["records"])
            for scale in scales
        ),
        "",
        head,
        sep,
    ]
    large_by_name = {r["name"]: r for r in large["results"]} if large else {}
    for r in small["results"]:
        row = (
            f"| {r['name']} | {r['rps']:.0f} | {r['rps'] / base_rps:.0%} | {r['p50_ms']:.1f} | "
            f"{r['p99_ms']:.1f} | {r['errors']} | {r['queries']} |"
        )
        if large:
            big = large_by_name.get(r["name"])
            if big:
                row += (
                    f" {big['rps']:.0f} | {big['p50_ms']:.1f} | "
                    f"{big['p50_ms'] / max(r['p50_ms'], 0.001):.2f}x | {big['queries']} |"
                )
            else:
                row += " - | - | - | - |"
        lines.append(row)
    skipped = {s["name"]: s["reason"] for scale in scales for s in scale["skipped"]}
    for name, reason in skipped.items():
        lines.append(f"| {name} | skipped: {reason} | | | | | |")
    cost = report.get("log_cost")
    if cost:
        lines += [
            "",
            "Access logging cost (the small clinic's dashboard patient, measured after every "
            f"scale was seeded: database at {scales[-1]['patients']} patients):",
            "",
            "| server | req/s | p50 ms | p99 ms | errors | log rows written |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        for label, runs in cost.items():
            for number, r in enumerate(runs, start=1):
                lines.append(
                    f"| {label}, round {number} | {r['rps']:.0f} | {r['p50_ms']:.1f} | "
                    f"{r['p99_ms']:.1f} | {r['errors']} | {r['log_rows']} |"
                )
        logged, unlogged = (mean_rps(cost[label]) for label in ("with log", "without log"))
        lines.append("")
        if unlogged:
            lines.append(
                f"Read throughput with the log write is {logged:.1f} req/s against "
                f"{unlogged:.1f} without it (means of {len(cost['with log'])} interleaved "
                f"rounds each): {logged / unlogged:.0%}, a cost of {1 - logged / unlogged:.1%} "
                f"(target: at most 10%). Per round: "
                + ", ".join(
                    f"{1 - w['rps'] / max(u['rps'], 0.001):+.1%}"
                    for w, u in zip(cost["with log"], cost["without log"], strict=True)
                )
                + "."
            )
        else:
            lines.append("The server without the log write answered nothing: no ratio.")
    held = report.get("held")
    if held:
        lines += ["", held_line({**held, "seconds": args.held_seconds})]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per endpoint")
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--workers", type=int, default=2 * (os.cpu_count() or 1) + 1)
    parser.add_argument("--small", type=int, default=100)
    parser.add_argument("--large", type=int, default=10000, help="0 to skip the large clinic")
    parser.add_argument("--history-days", type=int, default=730)
    parser.add_argument(
        "--log-rounds", type=int, default=4, help="interleaved rounds of the logging cost"
    )
    parser.add_argument("--held-seconds", type=int, default=0, help="also run the held load")
    parser.add_argument("--held-only", action="store_true", help="only the held load (fig. 17)")
    args = parser.parse_args()
    if args.held_only and not args.held_seconds:
        args.held_seconds = 60
    bench = Bench(args)
    # A SIGTERM (e.g. `timeout`) must still stop gunicorn and PostgreSQL: run the finally.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        bench.run()
    finally:
        bench.cleanup()


if __name__ == "__main__":
    main()
