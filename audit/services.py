"""Writing the audit log: every event goes through `audit_record`, in the caller's transaction."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import structlog
from django.conf import settings
from django.db import DatabaseError, IntegrityError, connection, transaction
from django.utils import timezone

from audit.chain import canonical_details, event_hash
from audit.models import SYSTEM_CHAIN, AuditChainHead, AuditCheckpoint, AuditEvent, SinkBacklog
from audit.sink import sink_enqueue
from audit.throttle import audit_first_in_interval
from config import metrics
from config.request_context import (
    SYSTEM,
    Actor,
    current_actor,
    current_client,
    current_request_id,
    normalized_ip,
)

logger = structlog.get_logger("vantage.audit")


def _locked_head(chain: str) -> AuditChainHead:
    """Return the chain's head row, locked until the transaction ends (created if new)."""
    head = AuditChainHead.objects.select_for_update().filter(chain=chain).first()
    if head is not None:
        return head
    try:
        with transaction.atomic():
            AuditChainHead.objects.create(chain=chain)
    except IntegrityError:
        pass  # another writer created it first; lock theirs
    return AuditChainHead.objects.select_for_update().get(chain=chain)


@transaction.atomic
def audit_record(
    *,
    action: str,
    outcome: str = AuditEvent.Outcome.SUCCESS,
    organization_id: uuid.UUID | str | None = None,
    organization_display: str = "",
    actor: Actor | None = None,
    resource_type: str = "",
    resource_id: str = "",
    details: dict[str, Any] | None = None,
) -> AuditEvent:
    """Append one event to its organization's chain, in the caller's transaction.

    The actor, client address, user agent and request id default to those of
    the request or task being served.
    """
    actor = actor or current_actor()
    client = current_client()
    chain = str(organization_id) if organization_id else SYSTEM_CHAIN
    head = _locked_head(chain)
    event = AuditEvent(
        chain=chain,
        position=head.position + 1,
        timestamp=timezone.now(),
        organization_id=uuid.UUID(str(organization_id)) if organization_id else None,
        organization_display=organization_display[:200],
        actor_type=actor.type,
        actor_id=actor.id[:64],
        actor_display=actor.display[:255],
        action=action,
        resource_type=resource_type,
        resource_id=str(resource_id)[:128],
        outcome=outcome,
        ip=normalized_ip(client.ip),
        user_agent=client.user_agent[:512],
        request_id=(current_request_id() or "")[:128],
        details=canonical_details(details or {}),
        prev_hash=head.hash,
    )
    event.hash = event_hash(head.hash, event)
    event.save(force_insert=True)
    AuditChainHead.objects.filter(chain=chain).update(position=event.position, hash=event.hash)
    transaction.on_commit(lambda: _after_commit(event))
    return event


def _after_commit(event: AuditEvent) -> None:
    metrics.AUDIT_EVENTS.labels(action=event.action, outcome=event.outcome).inc()
    logger.info(
        "audit_event",
        action=event.action,
        outcome=event.outcome,
        audit_id=str(event.id),
        resource_type=event.resource_type,
        resource_id=event.resource_id,
    )
    if settings.AUDIT_SINK_URL and not sink_enqueue(str(event.id)):
        # The event is committed and the request is answered as such; its copy to
        # the sink waits in the backlog until the broker is back.
        try:
            SinkBacklog.objects.get_or_create(event_id=event.id)
        except DatabaseError:
            logger.exception("audit_sink_backlog_failed", audit_id=str(event.id))


def audit_denial(
    *,
    once_per: str,
    interval: int = 60,
    action: str,
    organization_id: uuid.UUID | str | None,
    organization_display: str = "",
    actor: Actor | None,
    resource_type: str,
    resource_id: str,
    details: dict[str, Any],
) -> None:
    """Record a refusal at most once per `interval` seconds for the key `once_per`.

    A client retrying a refused call cannot flood the log; without the cache
    every refusal is recorded rather than lost.
    """
    if audit_first_in_interval(once_per, interval):
        audit_record(
            action=action,
            outcome=AuditEvent.Outcome.DENIED,
            organization_id=organization_id,
            organization_display=organization_display,
            actor=actor,
            resource_type=resource_type,
            resource_id=resource_id,
            details=details,
        )


def audit_purge(*, older_than_days: int) -> dict[str, int]:
    """Remove events older than the cut-off from every chain, keeping each chain verifiable.

    Returns the number of events removed per chain.
    """
    if older_than_days < 1:
        raise ValueError("older_than_days must be at least 1")
    cutoff = timezone.now() - timedelta(days=older_than_days)
    chains = (
        AuditEvent.objects.filter(timestamp__lt=cutoff).values_list("chain", flat=True).distinct()
    )
    removed = {chain: _purge_chain(chain, cutoff) for chain in sorted(chains)}
    removed = {chain: count for chain, count in removed.items() if count}
    audit_record(
        action="audit.purged",
        actor=SYSTEM,
        details={
            "older_than_days": older_than_days,
            "cutoff": cutoff.isoformat(),
            "removed": sum(removed.values()),
            "chains": len(removed),
        },
    )
    return removed


@transaction.atomic
def _purge_chain(chain: str, cutoff: Any) -> int:
    _locked_head(chain)
    # Cut after the newest old event; everything before it in the chain goes.
    last = (
        AuditEvent.objects.filter(chain=chain, timestamp__lt=cutoff)
        .order_by("-position")
        .values("position", "hash")
        .first()
    )
    if last is None:
        return 0
    doomed = AuditEvent.objects.filter(chain=chain, position__lte=last["position"])
    count = doomed.count()
    AuditCheckpoint.objects.create(
        chain=chain, position=last["position"], hash=last["hash"], purged_events=count
    )
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            # The append-only trigger lets deletes through in this transaction only.
            cursor.execute("SET LOCAL vantage.audit_purge = 'on'")
    deleted = doomed._raw_delete(doomed.db)
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL vantage.audit_purge = 'off'")
    logger.info("audit_purged", chain=chain, position=last["position"], removed=deleted)
    return int(deleted)
