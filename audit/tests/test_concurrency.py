"""Concurrent writers on PostgreSQL: one gap-free chain per organization, locked per org."""

from __future__ import annotations

import io
import itertools
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from django.core.management import call_command
from django.db import connection, connections, transaction

from audit.models import AuditChainHead, AuditEvent
from audit.selectors import audit_chain_verify
from audit.services import audit_record
from config.request_context import Actor

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

WRITERS = 8
EVENTS_PER_WRITER = 25
HOLD_SECONDS = 2.0


class Worker(threading.Thread):
    """A thread with a database connection of its own, closed when it ends."""

    def __init__(self, target: Callable[[], Any]) -> None:
        super().__init__(daemon=True)
        self._target_fn = target
        self.error: BaseException | None = None
        self.result: Any = None

    def run(self) -> None:
        try:
            self.result = self._target_fn()
        except BaseException as exc:  # reported by the test, not lost in the thread
            self.error = exc
        finally:
            connections.close_all()

    def finish(self, timeout: float = 60) -> Any:
        self.join(timeout)
        assert not self.is_alive(), "the worker thread did not finish"
        if self.error is not None:
            raise self.error
        return self.result


def test_concurrent_writers_to_one_org_make_one_gap_free_chain(org):
    assert connection.vendor == "postgresql"
    start = threading.Barrier(WRITERS)

    def writer(number: int) -> list[str]:
        start.wait(timeout=30)
        ids = []
        for i in range(EVENTS_PER_WRITER):
            with transaction.atomic():
                event = audit_record(
                    action="test.concurrent",
                    organization_id=org.id,
                    organization_display=org.slug,
                    actor=Actor("user", f"writer-{number}", f"writer {number}"),
                    resource_type="counter",
                    resource_id=str(i),
                    details={"writer": number, "i": i},
                )
            ids.append(str(event.id))
        return ids

    workers = [Worker(lambda n=n: writer(n)) for n in range(WRITERS)]
    for worker in workers:
        worker.start()
    written = [worker.finish() for worker in workers]

    events = list(AuditEvent.objects.filter(chain=str(org.id)).order_by("position"))
    assert len(events) == WRITERS * EVENTS_PER_WRITER == 200
    assert [e.position for e in events] == list(range(1, 201))
    assert {str(e.id) for e in events} == {i for ids in written for i in ids}
    for before, after in itertools.pairwise(events):
        assert after.prev_hash == before.hash
    # Each writer's own events keep their order in the chain.
    for number in range(WRITERS):
        mine = [e.details["i"] for e in events if e.details["writer"] == number]
        assert mine == list(range(EVENTS_PER_WRITER))
    head = AuditChainHead.objects.get(chain=str(org.id))
    assert (head.position, head.hash) == (200, events[-1].hash)
    assert audit_chain_verify(chain=str(org.id)) == (200, None)

    out = io.StringIO()
    call_command("audit_verify", "--org", org.slug, stdout=out, stderr=io.StringIO())
    assert out.getvalue().strip() == "OK: 200 events in 1 chain(s) verified"


def _hold_chain_lock(org: Any, locked: threading.Event) -> None:
    """Record an event for `org` and keep its chain locked for HOLD_SECONDS before committing."""
    with transaction.atomic():
        audit_record(action="test.slow_writer", organization_id=org.id)
        locked.set()
        time.sleep(HOLD_SECONDS)


def _timed_record(org: Any, locked: threading.Event) -> float:
    assert locked.wait(timeout=30)
    started = time.monotonic()
    with transaction.atomic():
        audit_record(action="test.fast_writer", organization_id=org.id)
    return time.monotonic() - started


@pytest.mark.parametrize("other_chain_exists", [True, False])
def test_writer_to_another_org_is_not_blocked_by_a_held_chain_lock(
    org, other_org, other_chain_exists
):
    assert connection.vendor == "postgresql"
    audit_record(action="test.setup", organization_id=org.id)
    if other_chain_exists:
        audit_record(action="test.setup", organization_id=other_org.id)
    locked = threading.Event()

    slow = Worker(lambda: _hold_chain_lock(org, locked))
    fast = Worker(lambda: _timed_record(other_org, locked))
    slow.start()
    fast.start()
    elapsed = fast.finish()
    slow.finish()

    assert elapsed < 1.5, f"org B's writer waited {elapsed:.2f}s for org A's lock"
    assert audit_chain_verify(chain=str(org.id)) == (2, None)
    expected_b = 2 if other_chain_exists else 1
    assert audit_chain_verify(chain=str(other_org.id)) == (expected_b, None)


def test_writer_to_the_same_org_waits_for_the_held_chain_lock(org):
    assert connection.vendor == "postgresql"
    audit_record(action="test.setup", organization_id=org.id)
    locked = threading.Event()

    slow = Worker(lambda: _hold_chain_lock(org, locked))
    same = Worker(lambda: _timed_record(org, locked))
    slow.start()
    same.start()
    elapsed = same.finish()
    slow.finish()

    assert elapsed >= 1.5, f"the second writer did not wait for the lock ({elapsed:.2f}s)"
    actions = list(
        AuditEvent.objects.filter(chain=str(org.id)).order_by("position").values_list("action")
    )
    assert actions == [("test.setup",), ("test.slow_writer",), ("test.fast_writer",)]
    assert audit_chain_verify(chain=str(org.id)) == (3, None)
