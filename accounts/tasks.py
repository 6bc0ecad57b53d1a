"""Identity's periodic jobs: thin entry points that call the services."""

from __future__ import annotations

from celery import shared_task

from accounts.caching.invalidations import invalidations_replay
from accounts.identity.lockout import login_failures_prune
from accounts.services.token_expiry import token_expiry_notify
from accounts.tokens.usage import token_usage_flush


@shared_task(name="accounts.token_usage_flush")
def token_usage_flush_task() -> int:
    """Move counted service token uses from the cache into the database."""
    return token_usage_flush()


@shared_task(name="accounts.token_expiry_notify")
def token_expiry_notify_task() -> int:
    """Announce tokens about to expire (once per token and threshold)."""
    return token_expiry_notify()


@shared_task(name="accounts.login_failures_prune")
def login_failures_prune_task() -> int:
    """Forget failed sign-ins older than the lockout window."""
    return login_failures_prune()


@shared_task(name="accounts.cache_invalidations_replay")
def cache_invalidations_replay_task() -> bool:
    """Drop cache entries whose invalidation failed while the cache was unreachable."""
    return invalidations_replay()
