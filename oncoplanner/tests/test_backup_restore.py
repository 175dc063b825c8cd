"""Backup and restore round trip on PostgreSQL (SECURITY.md figure 19).

Works on its own databases on the test cluster (a freshly migrated source and an empty
target), not inside a test transaction: pg_dump sees only committed
rows, and the access log's triggers refuse the TRUNCATE a transactional test ends with.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from oncoplanner.tests.scratch_databases import ROOT, manage, scratch_databases

CHECKSUM_SQL = """
SELECT count(*), coalesce(md5(string_agg(t::text, '|' ORDER BY t::text)), '')
FROM {table} AS t
"""


def _script(name: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - our own scripts
        [str(ROOT / "scripts" / name)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )


def _tables(url: str) -> dict[str, tuple[int, str]]:
    with psycopg.connect(url) as conn:
        names = [
            row[0]
            for row in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1"
            )
        ]
        result = {}
        for name in names:
            quoted = psycopg.sql.Identifier(name)
            query = psycopg.sql.SQL(CHECKSUM_SQL).format(table=quoted)
            count, digest = conn.execute(query).fetchone()  # type: ignore[misc]
            result[name] = (count, digest)
    return result


@pytest.fixture(scope="module")
def cluster() -> Iterator[dict[str, str]]:
    """Two databases of our own on the test cluster: a migrated source and an empty target.

    Module-scoped: migrating PostgreSQL from scratch is the slow part; the tests share it.
    """
    with scratch_databases("backup_src", "backup_copy") as (source, target):
        migrated = manage(source, "migrate", "--noinput")
        assert migrated.returncode == 0, migrated.stderr
        yield {"source": source, "target": target}


@pytest.mark.postgres_only
def test_backup_restore_round_trip_is_exact(cluster: dict[str, str], tmp_path: Path) -> None:
    source, target = cluster["source"], cluster["target"]
    seeded = manage(source, "seed_demo", "--allow-production", "--patients", "5")
    assert seeded.returncode == 0, seeded.stderr
    sealed = manage(source, "seal_access_log")  # the copy is verified without sealing
    assert sealed.returncode == 0, sealed.stderr

    env = {**os.environ, "DATABASE_URL": source, "BACKUP_DIR": str(tmp_path)}
    dumped = _script("backup.sh", env)
    assert dumped.returncode == 0, dumped.stderr
    dump = Path(dumped.stdout.strip())
    assert dump.suffix == ".dump"
    assert dump.stat().st_size > 0

    restore_env = {**os.environ, "DATABASE_URL": target, "FILE": str(dump)}
    restored = _script("restore.sh", restore_env)
    assert restored.returncode == 0, restored.stderr

    before, after = _tables(source), _tables(target)
    differences = [name for name in before if before[name] != after.get(name)]
    differences += [name for name in after if name not in before]
    assert before["audit_accesslog"][0] > 0  # the log came along, not just the clinic
    assert before["patients_patient"][0] >= 5
    verified = manage(target, "verify_access_log", "--no-seal")
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "intact" in verified.stdout
    print(
        f"FIGURE 19 backup-restore: tables={len(before)} differences={len(differences)} verifier=ok"
    )
    assert differences == []


@pytest.mark.postgres_only
def test_backup_restore_refuses_populated_target_without_confirmation(
    cluster: dict[str, str], tmp_path: Path
) -> None:
    source = cluster["source"]
    env = {**os.environ, "DATABASE_URL": source, "BACKUP_DIR": str(tmp_path)}
    dumped = _script("backup.sh", env)
    assert dumped.returncode == 0, dumped.stderr
    dump = dumped.stdout.strip()
    before = _tables(source)

    env = {**os.environ, "DATABASE_URL": source, "FILE": dump}
    env.pop("RESTORE_CONFIRM", None)
    refused = _script("restore.sh", env)
    assert refused.returncode == 3
    assert "RESTORE_CONFIRM=yes" in refused.stderr

    # Confirmed: --clean drops and re-creates the tables, the append-only log's among them
    # (its triggers refuse DELETE and TRUNCATE, not DROP TABLE).
    confirmed = _script("restore.sh", {**env, "RESTORE_CONFIRM": "yes"})
    assert confirmed.returncode == 0, confirmed.stderr
    assert _tables(source) == before


def test_backup_restore_needs_a_file() -> None:
    refused = _script("restore.sh", {k: v for k, v in os.environ.items() if k != "FILE"})
    assert refused.returncode == 2
    assert "FILE=" in refused.stderr
