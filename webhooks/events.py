"""The event types an endpoint may subscribe to, each with what it announces."""

from __future__ import annotations

EVENT_TYPES: dict[str, str] = {
    "job.succeeded": "An image job finished; the job as GET /api/v1/images/jobs/{id} shows it.",
    "job.failed": "An image job failed for good; the job with its error.",
    "image.deleted": "An image was deleted.",
    "token.expiring": "A service token expires within a notice threshold (7 days, 1 day).",
    "token.revoked": "A service token was revoked.",
    "token.rotation_reuse_detected": (
        "An older token of a rotation family was presented: the whole family was revoked."
    ),
    "tokens.revoked_all": "Every service token of the organization was revoked at once.",
    "member.role_changed": "A member's role changed.",
    "member.removed": "A member was removed from the organization.",
    "classifier.provider_state_changed": (
        "A classifier provider became healthy, degraded or unhealthy."
    ),
    "ping": "A test event, sent on request to one endpoint.",
}

# Sent only when asked for (a test ping), never by subscription.
ON_REQUEST_ONLY = frozenset({"ping"})
SUBSCRIBABLE: tuple[str, ...] = tuple(name for name in EVENT_TYPES if name not in ON_REQUEST_ONLY)
# The events a job's own callback endpoint receives, subscribed or not.
JOB_OUTCOMES = frozenset({"job.succeeded", "job.failed"})
