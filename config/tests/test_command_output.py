"""Management commands print their results on stdout and log on stderr, readably at a terminal."""

import json
import os
import pty
import subprocess
import sys

import pytest
from django.conf import settings

from config.testing.processes import database_url_for_subprocess

pytestmark = pytest.mark.django_db(transaction=True)


def _create_user(username: str, org, **env_overrides: str) -> tuple[list[str], dict[str, str]]:
    """Return the command creating `username` in `org`, and its environment."""
    env = {
        **{k: v for k, v in os.environ.items() if k not in ("LOG_FORMAT", "LOG_STREAM")},
        "DJANGO_SETTINGS_MODULE": "config.settings_test",
        "DATABASE_URL": database_url_for_subprocess(),
        **env_overrides,
    }
    command = [
        sys.executable,
        "manage.py",
        "create_user",
        username,
        "--org",
        org.slug,
        "--email",
        f"{username}@example.com",
        "--role",
        "user",
    ]
    return command, env


def test_a_command_prints_its_result_on_stdout_and_its_logs_on_stderr(org):
    command, env = _create_user("erin", org)
    done = subprocess.run(
        command,
        cwd=settings.BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 2, done.stdout
    assert lines[0].startswith("Created user erin (user of ")
    assert lines[1].startswith("Password (shown once): ")
    logged = [json.loads(line) for line in done.stderr.splitlines() if line.startswith("{")]
    assert any(line.get("event") == "audit_event" for line in logged), done.stderr


def test_logs_at_a_terminal_are_readable_lines(org):
    # The production settings, where nothing sets the format: a terminal decides it.
    command, env = _create_user(
        "fred", org, DJANGO_SETTINGS_MODULE="config.settings", DJANGO_DEBUG="true"
    )
    controller, terminal = pty.openpty()
    try:
        process = subprocess.Popen(
            command, cwd=settings.BASE_DIR, env=env, stdout=subprocess.PIPE, stderr=terminal
        )
        os.close(terminal)
        written = b""
        while True:
            try:
                chunk = os.read(controller, 65536)
            except OSError:  # the terminal closes when the command exits
                break
            if not chunk:
                break
            written += chunk
        stdout, _ = process.communicate(timeout=60)
    finally:
        os.close(controller)
    assert process.returncode == 0, written.decode(errors="replace")
    assert stdout.decode().startswith("Created user fred")
    logged = written.decode(errors="replace").splitlines()
    audit_lines = [line for line in logged if "audit_event" in line]
    assert audit_lines, logged
    assert not any(line.lstrip().startswith("{") for line in logged)
    assert "[info     ] audit_event" in audit_lines[0]
    assert any("action=user.created" in line for line in audit_lines)
