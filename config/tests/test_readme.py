"""The README's commands work exactly as written, against a real server with the demo data."""

from __future__ import annotations

import json
import os
import pty
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command
from django.test import Client

from accounts.management.commands.seed_demo import DEMO_GROUPS, DEMO_USERS, ROLE_SUMMARIES
from accounts.models import User
from config.testing.processes import database_url_for_subprocess

README = Path(settings.BASE_DIR) / "README.md"
BASH = shutil.which("bash") or "/bin/bash"
STAFF_PASSWORD = "a-long-staff-passphrase-42"


def _blocks() -> list[str]:
    return re.findall(r"^```sh\n(.*?)^```$", README.read_text(), re.MULTILINE | re.DOTALL)


def _block_with(text: str) -> str:
    (block,) = [block for block in _blocks() if text in block]
    return block


def _environment(**overrides: str) -> dict[str, str]:
    # What a shell beside `make run` has: the app's settings come from the environment.
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings_test",
        "DATABASE_URL": database_url_for_subprocess(),
        "VANTAGE_VAR_DIR": str(settings.VAR_DIR),
        **overrides,
    }


def test_the_command_line_examples_sign_in_call_the_api_and_list_tokens(server_processes):
    call_command("seed_demo", stdout=open(os.devnull, "w"))  # noqa: SIM115
    (server,) = server_processes(count=1)
    block = _block_with("api/v1/auth/token")

    done = subprocess.run(
        [BASH, "-euo", "pipefail", "-c", block],
        cwd=settings.BASE_DIR,
        env=_environment(PORT=str(server.port)),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert done.returncode == 0, done.stderr
    me, limits, *tokens = done.stdout.splitlines()
    assert json.loads(me)["username"] == "alice"
    assert json.loads(limits)["tier"] == "pro"
    assert any("demo-pipeline" in line for line in tokens), done.stdout


@pytest.mark.django_db(transaction=True)
def test_the_staff_account_commands_make_staff_who_can_sign_in_to_admin():
    call_command("seed_demo", stdout=open(os.devnull, "w"))  # noqa: SIM115
    command = _block_with("createsuperuser").strip()
    controller, terminal = pty.openpty()
    process = subprocess.Popen(
        [BASH, "-c", command],
        cwd=settings.BASE_DIR,
        env=_environment(),
        stdin=terminal,
        stdout=terminal,
        stderr=terminal,
    )
    os.close(terminal)
    transcript = b""
    try:
        for _ in range(2):  # the password, then its confirmation
            while b"assword" not in transcript.rsplit(b"\n", 1)[-1]:
                transcript += os.read(controller, 4096)
            os.write(controller, STAFF_PASSWORD.encode() + b"\n")
            transcript += os.read(controller, 4096)
        assert process.wait(timeout=60) == 0, transcript.decode(errors="replace")
    finally:
        process.kill()
        os.close(controller)
    assert User.objects.get(username="root").is_staff
    browser = Client()
    signed_in = browser.post("/login/", {"username": "root", "password": STAFF_PASSWORD})
    assert signed_in.status_code == 302, signed_in.content
    assert browser.get("/admin/").status_code == 200


def test_the_demo_people_table_says_what_seed_demo_gives_each_person():
    rows = re.findall(r"^  \| (\w+) \| (\w+): ([^|]+) \| ([^|]+) \|$", README.read_text(), re.M)
    table = {person: (role, summary.strip(), groups) for person, role, summary, groups in rows}
    granted = dict(DEMO_GROUPS)
    assert set(table) == {username for username, *_ in DEMO_USERS}
    for username, _, role, groups in DEMO_USERS:
        said_role, summary, said_groups = table[username]
        assert (said_role, summary) == (role, ROLE_SUMMARIES[role])
        for group in groups:
            assert f"`{group}`: " in said_groups
            for permission in granted[group]:
                assert f"`{permission}`" in said_groups
        if not groups:
            assert said_groups.strip() == "none"
