"""A real PgBouncer in transaction mode between the app and PostgreSQL.

PgBouncer (Debian's pgbouncer, a process of the test's own) hands each
transaction whichever of its two server connections is free, so two
statements of one client outside a transaction may reach different server
connections. With DATABASE_TRANSACTION_POOLING a real gunicorn server
serves through it: sign-ins, reads repeated past psycopg's preparing
threshold, and audit exports (which read with `.iterator()`) side by side
on four threads, every answer complete.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from django.db import connection

from accounts.tests.factories import PASSWORD
from audit.models import AuditEvent
from audit.services import audit_record
from config.request_context import Actor
from config.testing.processes import free_port

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def _pgbouncer_binary() -> str:
    beside = Path("/usr/sbin/pgbouncer")
    path = shutil.which("pgbouncer") or (str(beside) if beside.exists() else None)
    if path is None:
        message = "pgbouncer is missing: `make test-tools` installs Debian's pgbouncer"
        if os.geteuid() == 0 or os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path


class Bouncer:
    def __init__(self, port: int, database: str, user: str) -> None:
        self.port = port
        self.database = database
        self.user = user
        self.url = f"postgres://{user}@127.0.0.1:{port}/{database}"


@pytest.fixture
def pgbouncer(transactional_db: None, tmp_path: Path) -> Iterator[Bouncer]:
    """PgBouncer in transaction mode with two server connections, in front of the test database."""
    if connection.vendor != "postgresql":
        pytest.skip("PgBouncer pools PostgreSQL connections; this run's database is not one")
    binary = _pgbouncer_binary()
    params = connection.settings_dict
    user = params.get("USER") or "postgres"
    host, port = params.get("HOST") or "127.0.0.1", params.get("PORT") or 5432
    password = f" password={params['PASSWORD']}" if params.get("PASSWORD") else ""
    # PgBouncer refuses to run as root: as root it is started as `nobody`,
    # who must read its files.
    directory = tmp_path / "pgbouncer"
    directory.mkdir()
    directory.chmod(0o755)
    tmp_path.chmod(0o755)
    listen = free_port()
    users = directory / "users.txt"
    users.write_text(f'"{user}" ""\n')
    config = directory / "pgbouncer.ini"
    config.write_text(
        "[databases]\n"
        f"{params['NAME']} = host={host} port={port} dbname={params['NAME']} "
        f"user={user}{password}\n"
        "[pgbouncer]\n"
        f"listen_addr = 127.0.0.1\nlisten_port = {listen}\nunix_socket_dir =\n"
        f"auth_type = trust\nauth_file = {users}\n"
        "pool_mode = transaction\ndefault_pool_size = 2\nmin_pool_size = 2\n"
        "max_client_conn = 100\nserver_reset_query =\n"
        "ignore_startup_parameters = extra_float_digits,options\n"
    )
    for path in (users, config):
        path.chmod(0o644)
    command = [binary, str(config)]
    if os.geteuid() == 0:
        command[1:1] = ["-u", "nobody"]
    log = (tmp_path / "pgbouncer.log").open("wb")
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    bouncer = Bouncer(listen, params["NAME"], user)
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                with psycopg.connect(
                    bouncer.url.replace("postgres://", "postgresql://"), connect_timeout=2
                ) as probe:
                    probe.execute("SELECT 1")
                break
            except psycopg.OperationalError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise AssertionError((tmp_path / "pgbouncer.log").read_text()) from None
                time.sleep(0.1)
        yield bouncer
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


def test_the_app_serves_through_pgbouncer_in_transaction_mode(
    server_processes: Any, pgbouncer: Bouncer, admin: Any, org: Any
) -> None:
    for number in range(60):
        audit_record(
            action="image.uploaded",
            organization_id=org.id,
            organization_display=org.slug,
            actor=Actor("user", str(admin.id), "alice"),
            resource_type="image",
            resource_id=f"img-{number}",
        )
    (server,) = server_processes(
        count=1, workers=1, DATABASE_URL=pgbouncer.url, DATABASE_TRANSACTION_POOLING="true"
    )
    login = httpx.post(
        f"{server.url}/api/v1/auth/token",
        timeout=10,
        json={"username": admin.username, "password": PASSWORD},
    )
    assert login.status_code == 200, login.text
    headers = {"Authorization": f"Bearer {login.json()['access']}"}
    expected = AuditEvent.objects.filter(organization_id=org.id).count()

    def round_trip(index: int) -> tuple[int, int, int]:
        with httpx.Client(base_url=server.url, headers=headers, timeout=30) as client:
            listed = [client.get("/api/v1/audit/events").status_code for _ in range(8)]
            export = client.get("/api/v1/audit/events/export")
            lines = [json.loads(line) for line in export.text.splitlines() if line]
            return max(listed), export.status_code, len(lines)

    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(round_trip, range(8)))

    for listed, exported, lines in results:
        assert (listed, exported) == (200, 200), results
        assert lines >= expected, results  # every event, none lost mid-stream
