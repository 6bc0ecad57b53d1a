"""Shared builders for audit tests."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.db import connection

from audit.models import AuditEvent

ROWS_TRIGGER = "audit_event_append_only_rows"


def raw_sql(statement: str, params: list[Any]) -> int:
    """Change the table behind the ORM's back; return the number of rows touched."""
    with append_only_trigger_off(), connection.cursor() as cursor:
        cursor.execute(statement, params)
        return int(cursor.rowcount)


def audit_events(action: str, **filters: Any) -> list[AuditEvent]:
    """The events recorded with `action` (and `filters`), oldest first."""
    return list(AuditEvent.objects.filter(action=action, **filters).order_by("seq"))


@contextmanager
def append_only_trigger_off() -> Iterator[None]:
    """On PostgreSQL lift the row trigger for a moment, as an attacker with DDL rights could."""
    if connection.vendor != "postgresql":
        yield
        return
    with connection.cursor() as cursor:
        cursor.execute(f"ALTER TABLE audit_auditevent DISABLE TRIGGER {ROWS_TRIGGER}")
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f"ALTER TABLE audit_auditevent ENABLE TRIGGER {ROWS_TRIGGER}")
