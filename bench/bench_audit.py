"""The audit log: the newest page at 10k and at 1M events, and what recording adds."""

from __future__ import annotations

import itertools
import time
import uuid
from typing import Any

from django.db import connection, transaction
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from bench.harness import compare, report, request

BATCH = 20_000


def _append_events(chain: str, org_id: uuid.UUID, count: int) -> None:
    """Append `count` well-formed events to the chain, in bulk."""
    from audit.chain import event_hash
    from audit.models import AuditChainHead, AuditEvent

    head, _ = AuditChainHead.objects.get_or_create(chain=chain)
    position, prev = head.position, head.hash
    now = timezone.now()
    remaining = count
    while remaining:
        batch = []
        for _ in range(min(BATCH, remaining)):
            position += 1
            event = AuditEvent(
                chain=chain,
                position=position,
                timestamp=now,
                organization_id=org_id,
                organization_display="bench-audit",
                actor_type="user",
                actor_id="bench",
                actor_display="bench",
                action="image.uploaded",
                resource_type="image",
                resource_id=str(position),
                outcome="success",
                ip="127.0.0.1",
                user_agent="bench",
                request_id=f"req-{position}",
                details={"n": position},
                prev_hash=prev,
            )
            event.hash = prev = event_hash(prev, event)
            batch.append(event)
        AuditEvent.objects.bulk_create(batch, batch_size=2000)
        remaining -= len(batch)
    AuditChainHead.objects.filter(chain=chain).update(position=position, hash=prev)


def _admin_client() -> tuple[Client, Any]:
    from accounts.services.organizations import member_add, organization_create, user_create
    from accounts.services.sessions import auth_login

    org = organization_create(name="Bench audit", slug="bench-audit", tier="enterprise")
    user = user_create(
        username="bench-auditor", email="auditor@example.com", password="bench-passphrase-12345"
    )
    member_add(organization=org, user=user, role="admin")
    token = auth_login(login="bench-auditor", password="bench-passphrase-12345").tokens["access"]
    client = Client(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client, org


def _recording_cost() -> None:
    from audit.models import AuditCheckpoint
    from audit.services import audit_record

    with CaptureQueriesContext(connection) as queries, transaction.atomic():
        audit_record(action="bench.recorded", details={"probe": True})
    statements = [q["sql"].split()[0].upper() for q in queries.captured_queries]
    print(f"queries of one audit_record in a transaction: {statements}")

    positions = itertools.count(1)

    def plain_insert() -> None:
        with transaction.atomic():
            AuditCheckpoint.objects.create(
                chain="bench-baseline", position=next(positions), hash="0", purged_events=0
            )

    def recorded() -> None:
        with transaction.atomic():
            audit_record(action="bench.recorded", details={"probe": True})

    results = compare(
        {"one plain INSERT in a transaction (baseline)": plain_insert, "audit_record": recorded},
        warmup=50,
        rounds=10,
        per_round=50,
    )
    report("Recording an event", results)


def run() -> None:
    client, org = _admin_client()
    chain = str(org.id)
    newest = request(client, "/api/v1/audit/events?page_size=50")
    filtered = request(client, "/api/v1/audit/events?page_size=50&action=image.uploaded")

    started = time.perf_counter()
    _append_events(chain, org.id, 10_000)
    print(f"appended 10,000 events in {time.perf_counter() - started:.1f}s")
    small = compare(
        {"newest page, 10k events": newest, "filtered page, 10k": filtered}, rounds=10, per_round=20
    )

    started = time.perf_counter()
    _append_events(chain, org.id, 990_000)
    print(f"appended 990,000 events in {time.perf_counter() - started:.1f}s")
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE audit_auditevent")
    large = compare(
        {"newest page, 1M events": newest, "filtered page, 1M": filtered}, rounds=10, per_round=20
    )
    report("Newest page of the audit log (50 events, JWT admin)", [small[0], large[0]])
    report("Newest page filtered by action", [small[1], large[1]])
    _recording_cost()
