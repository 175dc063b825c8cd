"""Live updates cross worker processes (issue 6): run under scripts/with-postgres.sh.

Starts gunicorn with two sync workers on PostgreSQL. A clinician's stream occupies one worker
for its whole life, so the write that follows (REST, API token) is necessarily served by the
other worker; the stream must still hear it, through LISTEN/NOTIFY, within a few seconds.
Prints `FIGURE live-two-workers: delivered_in=<s> ok`, exits 1 on failure.
"""

from __future__ import annotations

import datetime as dt
import http.client
import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PY = str(ROOT / ".venv" / "bin" / "python")


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE="oncoplanner.settings",
        DJANGO_DEBUG="false",
        DJANGO_SECRET_KEY="live-two-workers-" + "k" * 40,
        # base64 of b"live-two-workers-mfa-key-32bytes" (production settings require one)
        DJANGO_MFA_ENCRYPTION_KEY="bGl2ZS10d28td29ya2Vycy1tZmEta2V5LTMyYnl0ZXM=",
        DJANGO_ALLOWED_HOSTS="127.0.0.1",
        DJANGO_SECURE_SSL_REDIRECT="false",
        LIVE_STREAM_MAX_SECONDS="30",
        LIVE_STREAM_WAIT_SECONDS="1",
        DB_CONN_MAX_AGE="0",
    )
    if "DATABASE_URL" not in env or not env["DATABASE_URL"].startswith("postgres"):
        sys.exit("live_two_workers: run under scripts/with-postgres.sh (needs PostgreSQL)")
    return env


SETUP = """
import datetime as dt, json
from decimal import Decimal
from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
from django.contrib.sessions.backends.db import SessionStore
from django.utils import timezone
from oncoplanner.accounts.models import User
from oncoplanner.accounts.api_tokens import api_token_create
from oncoplanner.accounts.middleware import LAST_ACTIVITY_KEY, LOGIN_AT_KEY, MFA_ENROLLED_KEY
from patients.services import care_team_add_member, care_team_create, patient_create
from labs.models import LabTest
team = care_team_create(name="Live test team")
reader = User.objects.create_user("live.reader", role="clinician", discipline="nurse", email="r@example.org")
writer = User.objects.create_user("live.writer", role="clinician", discipline="oncologist", email="w@example.org")
for user in (reader, writer):
    care_team_add_member(team=team, clinician=user, granted_by=None)
patient = patient_create(created_by=None, care_team=team, mrn="LIVE-0001", given_name="Ana",
    family_name="Live", date_of_birth=dt.date(1960, 1, 1), sex="female")
now = timezone.now().timestamp()
session = SessionStore()
session[SESSION_KEY] = str(reader.pk)
session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
session[HASH_SESSION_KEY] = reader.get_session_auth_hash()
session[LOGIN_AT_KEY] = now
session[LAST_ACTIVITY_KEY] = now
session[MFA_ENROLLED_KEY] = True
session.create()
_, token = api_token_create(user=writer, name="live test", expires_at=timezone.now() + dt.timedelta(days=1), created_by=writer)
anc = LabTest.objects.get(loinc="751-8")
print(json.dumps({"session": session.session_key, "token": token, "patient": patient.pk, "test": anc.pk, "unit": anc.unit}))
"""


def _manage(env: dict[str, str], *args: str) -> str:
    return subprocess.run(
        [PY, "manage.py", *args], cwd=ROOT, env=env, check=True, capture_output=True, text=True
    ).stdout


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_for_server(port: int) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.3)
    sys.exit("live_two_workers: gunicorn did not start")


def main() -> int:
    env = _env()
    _manage(env, "migrate", "--noinput")
    _manage(env, "createcachetable")
    facts = json.loads(_manage(env, "shell", "-c", SETUP).strip().splitlines()[-1])
    port = _free_port()
    server = subprocess.Popen(
        [
            str(ROOT / ".venv" / "bin" / "gunicorn"),
            "oncoplanner.wsgi:application",
            "--workers",
            "2",
            "--worker-class",
            "sync",
            "--timeout",
            "60",
            "--bind",
            f"127.0.0.1:{port}",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    heard: list[float] = []
    opened = threading.Event()
    try:
        _wait_for_server(port)

        def listen() -> None:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=40)
            conn.request(
                "GET",
                f"/stream/changes/?patient={facts['patient']}",
                headers={"Cookie": f"sessionid={facts['session']}"},
            )
            response = conn.getresponse()
            if response.status != 200:
                print(f"stream answered {response.status}", file=sys.stderr)
                opened.set()
                return
            while True:
                line = response.fp.readline()
                if not line:
                    return
                if line.startswith(b"retry:"):
                    opened.set()
                if line.startswith(b"event: change"):
                    heard.append(time.monotonic())
                    return

        listener = threading.Thread(target=listen, daemon=True)
        listener.start()
        if not opened.wait(20):
            print("stream did not open", file=sys.stderr)
            return 1
        time.sleep(1)  # the stream is now waiting on LISTEN in the first worker
        body = json.dumps(
            {
                "test_id": facts["test"],
                "value": "0.3",
                "unit": facts["unit"],
                "collected_at": (dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)).isoformat(),
            }
        )
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
        written_at = time.monotonic()
        conn.request(
            "POST",
            f"/api/v1/patients/{facts['patient']}/lab-results",
            body=body,
            headers={
                "Authorization": f"Bearer {facts['token']}",
                "Content-Type": "application/json",
            },
        )
        answer = conn.getresponse()
        if answer.status != 201:
            print(f"write answered {answer.status}: {answer.read()[:300]!r}", file=sys.stderr)
            return 1
        listener.join(10)
        if not heard:
            print("FIGURE live-two-workers: the stream heard nothing within 10 s", file=sys.stderr)
            return 1
        print(f"FIGURE live-two-workers: delivered_in={heard[0] - written_at:.2f}s ok")
        return 0
    finally:
        server.terminate()
        server.wait(10)


if __name__ == "__main__":
    sys.exit(main())
