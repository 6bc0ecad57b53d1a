"""Reading the audit log: verification of the hash chains, and event queries."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from django.db.models import Count, QuerySet

from audit.chain import event_hash
from audit.models import GENESIS_HASH, AuditChainHead, AuditCheckpoint, AuditEvent
from config.ids import Id


@dataclass(frozen=True)
class ChainBreak:
    """The first place a chain does not verify, and why."""

    chain: str
    position: int
    event_id: str | None
    reason: str


def audit_chains() -> list[str]:
    """Return every chain that has ever had an event."""
    return list(AuditChainHead.objects.order_by("chain").values_list("chain", flat=True))


def _chain_events(chain: str, after: int) -> Iterator[AuditEvent]:
    return (
        AuditEvent.objects.filter(chain=chain, position__gt=after)
        .order_by("position")
        .iterator(chunk_size=2000)
    )


def audit_chain_verify(*, chain: str) -> tuple[int, ChainBreak | None]:
    """Walk one chain from its last purge checkpoint; return events checked and the first break."""
    checkpoint = AuditCheckpoint.objects.filter(chain=chain).order_by("-position").first()
    expected_prev = checkpoint.hash if checkpoint else GENESIS_HASH
    expected_position = (checkpoint.position if checkpoint else 0) + 1
    checked = 0
    for event in _chain_events(chain, expected_position - 1):
        problem = None
        if event.position != expected_position:
            problem = f"position {expected_position} is missing: events were removed"
        elif event.prev_hash != expected_prev:
            problem = "prev_hash does not match the hash of the event before it"
        elif event_hash(event.prev_hash, event) != event.hash:
            problem = "hash does not match the event's contents: the event was altered"
        if problem:
            return checked, ChainBreak(chain, event.position, str(event.id), problem)
        checked += 1
        expected_prev, expected_position = event.hash, expected_position + 1
    head = AuditChainHead.objects.filter(chain=chain).first()
    if head is not None and (head.position, head.hash) != (expected_position - 1, expected_prev):
        return checked, ChainBreak(
            chain,
            head.position,
            None,
            f"the chain ends at position {expected_position - 1} but its head records "
            f"{head.position}: the newest events were removed",
        )
    return checked, None


EVENT_FILTERS = (
    "action",
    "actor_type",
    "actor_id",
    "outcome",
    "resource_type",
    "resource_id",
    "request_id",
)


def audit_event_list(*, organization_id: Id, filters: dict[str, Any]) -> QuerySet[AuditEvent]:
    """Return the organization's events matching the filters, newest first."""
    events = AuditEvent.objects.filter(organization_id=organization_id)
    exact = {name: filters[name] for name in EVENT_FILTERS if filters.get(name) not in (None, "")}
    if exact:
        events = events.filter(**exact)
    if filters.get("since"):
        events = events.filter(timestamp__gte=filters["since"])
    if filters.get("until"):
        events = events.filter(timestamp__lt=filters["until"])
    return events.order_by("-seq")


def organization_figures(*, organization_id: Id, since: Any) -> list[dict[str, Any]]:
    """Count the organization's audit events since a time, per action and outcome."""
    rows = (
        AuditEvent.objects.filter(organization_id=organization_id, timestamp__gte=since)
        .values("action", "outcome")
        .annotate(count=Count("id"))
        .order_by("action", "outcome")
    )
    return [dict(row) for row in rows]
