"""audit_verify and audit_purge: proving the chains intact, naming the first break, retention."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
import structlog
import time_machine
from django.core.management import CommandError, call_command
from django.db import connection, transaction
from django.db.utils import Error as DatabaseError
from django.utils import timezone

from audit.models import SYSTEM_CHAIN, AuditChainHead, AuditCheckpoint, AuditEvent
from audit.selectors import audit_chain_verify
from audit.services import audit_record
from audit.tests.factories import raw_sql
from config.request_context import Actor, ClientInfo, begin_context

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_request_context() -> Iterator[None]:
    begin_context(client=ClientInfo())
    structlog.contextvars.clear_contextvars()
    yield
    begin_context(client=ClientInfo())
    structlog.contextvars.clear_contextvars()


def verify(*args: str) -> tuple[str, str]:
    """Run audit_verify; return (stdout, stderr) when it exits normally."""
    out, err = io.StringIO(), io.StringIO()
    call_command("audit_verify", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def verify_fails(*args: str) -> str:
    """Run audit_verify expecting exit status 1; return what it wrote to stderr."""
    out, err = io.StringIO(), io.StringIO()
    with pytest.raises(SystemExit) as exited:
        call_command("audit_verify", *args, stdout=out, stderr=err)
    assert exited.value.code == 1
    assert "OK" not in out.getvalue()
    return err.getvalue()


def purge(*args: str) -> str:
    out = io.StringIO()
    call_command("audit_purge", *args, stdout=out)
    return out.getvalue()


def record_events(org: Any, count: int, prefix: str = "test.event") -> list[AuditEvent]:
    begin_context(
        client=ClientInfo(ip="203.0.113.7", user_agent="pytest-agent"),
        actor=Actor("user", "u-1", "alice"),
    )
    structlog.contextvars.bind_contextvars(request_id="req-chain")
    events = [
        audit_record(
            action=f"{prefix}{i}",
            organization_id=org.id if org is not None else None,
            organization_display=org.slug if org is not None else "",
            resource_type="image",
            resource_id=f"img-{i}",
            details={"n": i, "tags": ["a", "b"]},
        )
        for i in range(1, count + 1)
    ]
    begin_context(client=ClientInfo())
    structlog.contextvars.clear_contextvars()
    return events


# --- audit_verify on an intact log -------------------------------------------------


def test_verify_of_an_empty_log_is_ok():
    out, err = verify()
    assert out.strip() == "OK: 0 events in 0 chain(s) verified"
    assert err == ""


def test_verify_of_an_intact_log_counts_every_event_of_every_chain(org, other_org):
    record_events(org, 3)
    record_events(other_org, 2)
    record_events(None, 1)

    out, err = verify()

    assert out.strip() == "OK: 6 events in 3 chain(s) verified"
    assert err == ""


def test_verify_of_one_org_checks_only_its_chain(org, other_org):
    record_events(org, 3)
    record_events(other_org, 2)

    assert verify("--org", "acme")[0].strip() == "OK: 3 events in 1 chain(s) verified"
    assert verify("--org", str(other_org.id))[0].strip() == "OK: 2 events in 1 chain(s) verified"


def test_verify_of_one_org_ignores_a_break_in_another_org(org, other_org):
    record_events(org, 2)
    broken = record_events(other_org, 2)[0]
    raw_sql("UPDATE audit_auditevent SET action = %s WHERE seq = %s", ["x.forged", broken.seq])

    assert verify("--org", "acme")[0].strip() == "OK: 2 events in 1 chain(s) verified"
    assert str(broken.id) in verify_fails("--org", "globex")


def test_verify_of_an_org_without_events_is_ok(org):
    assert verify("--org", "acme")[0].strip() == "OK: 0 events in 1 chain(s) verified"


@pytest.mark.parametrize("value", ["nope", "00000000-0000-0000-0000-000000000000"])
def test_verify_of_an_unknown_org_is_a_command_error(org, value):
    with pytest.raises(CommandError, match="no organization"):
        call_command("audit_verify", "--org", value, stdout=io.StringIO())


# --- Tampering is caught and the event named ----------------------------------------------


def _tampered_value(column: str, event: AuditEvent) -> Any:
    values: dict[str, Any] = {
        "action": "image.viewed",
        "actor_id": "u-999",
        "details": json.dumps({"n": 2, "tags": ["a"]}),
        "ip": "198.51.100.66",
        "timestamp": connection.ops.adapt_datetimefield_value(
            event.timestamp + timedelta(seconds=1)
        ),
        "outcome": "failure",
        "resource_id": "img-999",
        "request_id": "req-forged",
        "organization_display": "someone-else",
        "user_agent": "forged-agent",
    }
    return values[column]


@pytest.mark.parametrize(
    "column",
    [
        "action",
        "actor_id",
        "details",
        "ip",
        "timestamp",
        "outcome",
        "resource_id",
        "request_id",
        "organization_display",
        "user_agent",
    ],
)
def test_sql_change_of_any_field_is_caught_naming_the_event(org, column):
    events = record_events(org, 3)
    target = events[1]
    column_sql = connection.ops.quote_name(column)

    touched = raw_sql(
        f"UPDATE audit_auditevent SET {column_sql} = %s WHERE seq = %s",  # noqa: S608
        [_tampered_value(column, target), target.seq],
    )
    assert touched == 1
    assert getattr(AuditEvent.objects.get(seq=target.seq), column) != getattr(target, column)

    err = verify_fails()

    assert f"BROKEN chain {org.id} at position 2 " in err
    assert f"(event {target.id})" in err
    assert "was altered" in err
    assert str(events[2].id) not in err
    # The org's own verification names the same event.
    assert f"(event {target.id})" in verify_fails("--org", "acme")


def test_forged_hash_is_caught_at_the_forged_event(org):
    events = record_events(org, 3)
    raw_sql("UPDATE audit_auditevent SET hash = %s WHERE seq = %s", ["f" * 64, events[0].seq])

    err = verify_fails()

    assert f"at position 1 (event {events[0].id})" in err
    assert "altered" in err


def test_recomputed_hash_after_a_change_breaks_the_link_to_the_next_event(org):
    from audit.chain import event_hash

    events = record_events(org, 3)
    forged = AuditEvent.objects.get(seq=events[0].seq)
    forged.action = "image.viewed"
    raw_sql(
        "UPDATE audit_auditevent SET action = %s, hash = %s WHERE seq = %s",
        ["image.viewed", event_hash(forged.prev_hash, forged), events[0].seq],
    )

    err = verify_fails()

    assert f"at position 2 (event {events[1].id})" in err
    assert "prev_hash does not match" in err


# --- Removed events are caught ---------------------------------------------------------------


def test_sql_delete_of_an_event_in_the_middle_is_caught_as_a_gap(org):
    events = record_events(org, 4)
    assert raw_sql("DELETE FROM audit_auditevent WHERE seq = %s", [events[1].seq]) == 1

    err = verify_fails()

    assert f"BROKEN chain {org.id} at position 3 (event {events[2].id})" in err
    assert "position 2 is missing" in err
    assert "events were removed" in err


def test_sql_delete_of_the_first_event_is_caught_as_a_gap(org):
    events = record_events(org, 3)
    raw_sql("DELETE FROM audit_auditevent WHERE seq = %s", [events[0].seq])

    err = verify_fails()

    assert "position 1 is missing" in err
    assert str(events[1].id) in err


def test_sql_delete_of_the_newest_event_is_caught(org):
    events = record_events(org, 3)
    raw_sql("DELETE FROM audit_auditevent WHERE seq = %s", [events[2].seq])

    err = verify_fails("--org", "acme")

    assert f"BROKEN chain {org.id} at position 3 (event -)" in err
    assert "ends at position 2 but its head records 3" in err
    assert "newest events were removed" in err


def test_sql_delete_of_a_whole_chain_is_caught(org):
    record_events(org, 2)
    raw_sql("DELETE FROM audit_auditevent WHERE chain = %s", [str(org.id)])

    err = verify_fails()

    assert "newest events were removed" in err


# --- audit_purge -------------------------------------------------------------------------


def _record_old_and_new(org: Any) -> tuple[list[AuditEvent], list[AuditEvent]]:
    with time_machine.travel(timezone.now() - timedelta(days=500), tick=False):
        old = record_events(org, 3, "test.old")
        old.append(audit_record(action="test.old_system"))
    new = record_events(org, 2, "test.new")
    return old, new


def test_purge_removes_old_events_keeps_new_ones_and_the_chains_verify(org):
    old, new = _record_old_and_new(org)

    out = purge("--older-than-days", "400")

    assert out.strip() == "Purged 4 event(s) older than 400 days from 2 chain(s)"
    assert not AuditEvent.objects.filter(id__in=[e.id for e in old]).exists()
    kept = list(AuditEvent.objects.filter(chain=str(org.id)).order_by("position"))
    assert [e.id for e in kept] == [e.id for e in new]
    assert [e.position for e in kept] == [4, 5]

    checkpoint = AuditCheckpoint.objects.get(chain=str(org.id))
    assert (checkpoint.position, checkpoint.hash, checkpoint.purged_events) == (
        3,
        old[2].hash,
        3,
    )
    system_checkpoint = AuditCheckpoint.objects.get(chain=SYSTEM_CHAIN)
    assert (system_checkpoint.position, system_checkpoint.purged_events) == (1, 1)

    out, err = verify()
    # Two new org events and the purge's own event in the system chain.
    assert out.strip() == "OK: 3 events in 2 chain(s) verified"
    assert err == ""


def test_purge_records_a_system_event_with_the_removed_count(org):
    _record_old_and_new(org)

    purge("--older-than-days", "400")

    purged = AuditEvent.objects.get(action="audit.purged")
    assert purged.actor_type == "system"
    assert purged.actor_display == "system"
    assert purged.chain == SYSTEM_CHAIN
    assert purged.organization_id is None
    assert purged.details["removed"] == 4
    assert purged.details["chains"] == 2
    assert purged.details["older_than_days"] == 400
    assert purged.position == 2  # after the purged old system event


def test_purge_with_nothing_old_removes_nothing_and_still_records_itself(org):
    events = record_events(org, 2)

    out = purge("--older-than-days", "400")

    assert out.strip() == "Purged 0 event(s) older than 400 days from 0 chain(s)"
    assert AuditEvent.objects.filter(id__in=[e.id for e in events]).count() == 2
    assert not AuditCheckpoint.objects.exists()
    assert AuditEvent.objects.get(action="audit.purged").details["removed"] == 0
    assert verify()[0].strip() == "OK: 3 events in 2 chain(s) verified"


def test_purge_of_a_whole_chain_then_new_events_continue_and_verify(org):
    with time_machine.travel(timezone.now() - timedelta(days=500), tick=False):
        record_events(org, 3)

    purge("--older-than-days", "400")

    assert not AuditEvent.objects.filter(chain=str(org.id)).exists()
    assert verify("--org", "acme")[0].strip() == "OK: 0 events in 1 chain(s) verified"
    later = record_events(org, 1, "test.later")[0]
    assert later.position == 4
    assert verify("--org", "acme")[0].strip() == "OK: 1 events in 1 chain(s) verified"


def test_purging_twice_keeps_the_chain_verifiable(org):
    with time_machine.travel(timezone.now() - timedelta(days=500), tick=False):
        record_events(org, 2, "test.oldest")
    with time_machine.travel(timezone.now() - timedelta(days=200), tick=False):
        record_events(org, 2, "test.older")
    record_events(org, 1, "test.new")

    purge("--older-than-days", "400")
    purge("--older-than-days", "100")

    assert list(
        AuditCheckpoint.objects.filter(chain=str(org.id))
        .order_by("position")
        .values_list("position", "purged_events")
    ) == [(2, 2), (4, 2)]
    assert [e.action for e in AuditEvent.objects.filter(chain=str(org.id))] == ["test.new1"]
    assert verify()[1] == ""


def test_tampering_after_a_purge_is_still_caught(org):
    _record_old_and_new(org)
    purge("--older-than-days", "400")
    first_kept = AuditEvent.objects.filter(chain=str(org.id)).order_by("position").first()

    raw_sql("UPDATE audit_auditevent SET outcome = %s WHERE seq = %s", ["denied", first_kept.seq])

    err = verify_fails("--org", "acme")
    assert f"at position 4 (event {first_kept.id})" in err


def test_purge_defaults_to_the_retention_setting(org, settings):
    settings.AUDIT_RETENTION_DAYS = 30
    with time_machine.travel(timezone.now() - timedelta(days=40), tick=False):
        old = record_events(org, 1)[0]
    new = record_events(org, 1, "test.new")[0]

    out = purge()

    assert "older than 30 days" in out
    assert not AuditEvent.objects.filter(id=old.id).exists()
    assert AuditEvent.objects.filter(id=new.id).exists()


@pytest.mark.parametrize("days", ["0", "-5"])
def test_purge_with_less_than_one_day_is_a_command_error(org, days):
    events = record_events(org, 1)

    with pytest.raises(CommandError, match="at least 1"):
        call_command("audit_purge", "--older-than-days", days, stdout=io.StringIO())

    assert AuditEvent.objects.filter(id=events[0].id).exists()
    assert not AuditEvent.objects.filter(action="audit.purged").exists()


# --- PostgreSQL refuses changes in the database itself --------------------------------------


def _execute_atomically(*statements: tuple[str, list[Any]]) -> None:
    """Run plain SQL in a savepoint, so a refusal leaves the test's transaction usable."""
    with transaction.atomic(), connection.cursor() as cursor:
        for statement, params in statements:
            cursor.execute(statement, params)


def _refused(statement: str, params: list[Any] | None = None) -> None:
    # The test database lets the runner TRUNCATE between tests
    # (vantage.allow_flush, see conftest.py); a production one does not.
    production_session: tuple[str, list[Any]] = ("SET LOCAL vantage.allow_flush = 'off'", [])
    with pytest.raises(DatabaseError, match="append-only"):
        _execute_atomically(production_session, (statement, params or []))


@pytest.mark.integration
def test_postgresql_refuses_update_delete_and_truncate_but_lets_purge_through(org):
    assert connection.vendor == "postgresql"
    old, new = _record_old_and_new(org)
    before = AuditEvent.objects.count()

    _refused("UPDATE audit_auditevent SET action = 'x'")
    _refused("UPDATE audit_auditevent SET action = 'x' WHERE seq = %s", [old[0].seq])
    _refused("DELETE FROM audit_auditevent WHERE seq = %s", [old[0].seq])
    _refused("DELETE FROM audit_auditevent")
    _refused("TRUNCATE audit_auditevent")

    assert AuditEvent.objects.count() == before
    assert AuditEvent.objects.get(seq=old[0].seq).action == old[0].action
    assert verify()[1] == ""

    purge("--older-than-days", "400")

    assert not AuditEvent.objects.filter(id__in=[e.id for e in old]).exists()
    assert AuditEvent.objects.filter(id__in=[e.id for e in new]).count() == 2
    assert verify()[0].strip() == "OK: 3 events in 2 chain(s) verified"


@pytest.mark.integration
def test_postgresql_setting_the_purge_flag_does_not_allow_updates(org):
    assert connection.vendor == "postgresql"
    event = record_events(org, 1)[0]

    with pytest.raises(DatabaseError, match="append-only"):
        _execute_atomically(
            ("SET LOCAL vantage.audit_purge = 'on'", []),
            ("UPDATE audit_auditevent SET action = 'x' WHERE seq = %s", [event.seq]),
        )

    assert AuditEvent.objects.get(seq=event.seq).action == event.action


@pytest.mark.integration
def test_postgresql_chain_heads_stay_in_step_after_a_purge(org):
    assert connection.vendor == "postgresql"
    _record_old_and_new(org)

    purge("--older-than-days", "400")

    head = AuditChainHead.objects.get(chain=str(org.id))
    newest = AuditEvent.objects.filter(chain=str(org.id)).order_by("-position").first()
    assert (head.position, head.hash) == (newest.position, newest.hash)
    assert audit_chain_verify(chain=str(org.id)) == (2, None)


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_postgresql_purge_permission_ends_with_the_purge(org):
    assert connection.vendor == "postgresql"
    old, new = _record_old_and_new(org)

    purge("--older-than-days", "400")

    assert not AuditEvent.objects.filter(id__in=[e.id for e in old]).exists()
    # Each chain was purged in a transaction of its own, now over: deletes are refused again.
    _refused("DELETE FROM audit_auditevent WHERE seq = %s", [new[0].seq])
    assert AuditEvent.objects.filter(id=new[0].id).exists()
    assert verify()[1] == ""


@pytest.mark.integration
def test_postgresql_purge_inside_an_outer_transaction_does_not_unlock_deletes(org):
    assert connection.vendor == "postgresql"
    _record_old_and_new(org)
    survivor = record_events(org, 1, "test.survivor")[0]

    # pytest-django runs this test inside one transaction: the purge is nested in it.
    purge("--older-than-days", "400")

    _refused("DELETE FROM audit_auditevent WHERE seq = %s", [survivor.seq])
