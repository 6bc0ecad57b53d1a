"""The decision point: uncached, shared-cache, in-process and remote decisions, and their cost."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.test import Client
from django.test.utils import override_settings

from bench.harness import compare, report, request

REDIS_URL = os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/11"


def _setup() -> dict[str, Any]:
    from accounts.services.organizations import member_add, organization_create, user_create
    from accounts.services.sessions import auth_login
    from accounts.services.tokens import token_create

    org = organization_create(name="Bench authz", slug="bench-authz", tier="enterprise")
    people = {}
    for username, role in (("authz-admin", "admin"), ("authz-user", "user")):
        people[role] = user_create(
            username=username, email=f"{username}@example.com", password="bench-passphrase-12345"
        )
        member_add(organization=org, user=people[role], role=role)
    checker = token_create(
        organization=org, name="decision client", scopes=["authz:check"], created_by=people["admin"]
    )
    access = auth_login(login="authz-user", password="bench-passphrase-12345").tokens["access"]
    return {"org": org, "user": people["user"], "secret": checker.secret, "access": access}


def _decisions(org_id: str, user_id: str) -> dict[str, Callable[[], Any]]:
    """The decision point's work for one request, by where the member's permissions are found.

    The organization's generation comes in the request's one cache round trip
    (with the session's state): the shared-cache case pays that round trip,
    the in-process case is handed its result, as a request's would be.
    """
    from accounts.authz.decision_point import decision_check
    from accounts.caching.invalidations import cache_get_many
    from accounts.identity.principal import (
        _member_l1,
        generation_key,
        member_key,
        member_view,
        principal_from_view,
    )

    keys = [generation_key(org_id), member_key(org_id, user_id)]

    def decide(cached: dict[str, Any] | None) -> Any:
        view, source, generation = member_view(
            organization_id=org_id, user_id=user_id, cached=cached
        )
        principal = principal_from_view(view, source=source, generation=generation)
        decision = decision_check(
            principal=principal, permission="image:read", organization_id=org_id
        )
        assert decision.allowed
        return decision

    def uncached() -> Any:
        settings.AUTH_CACHE_ENABLED = False
        try:
            return decide(None)
        finally:
            settings.AUTH_CACHE_ENABLED = True

    def shared() -> Any:
        _member_l1.clear()  # this process forgets: the shared cache answers
        return decide(cache_get_many(keys))

    prefetched = cache_get_many(keys)
    decide(prefetched)  # the first reader stores the view everywhere
    prefetched = cache_get_many(keys)
    return {
        "uncached: database (baseline)": uncached,
        "shared cache hit (one round trip)": shared,
        "in-process hit": lambda: decide(prefetched),
    }


def _redis_reachable() -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(REDIS_URL, socket_connect_timeout=0.5).ping())
    except redis.RedisError:
        return False


def _decision_server() -> Any:
    from config.testing.processes import server_spawn

    log_path = settings.VAR_DIR / "bench-decision-point.log"
    server = server_spawn(log_path=log_path, workers=2)
    server.wait_until_ready()
    return server


def _remote(org_id: str, user_id: str) -> Callable[[], Any]:
    from accounts.authz.decision_point import decision_check
    from accounts.identity.principal import member_view_load, principal_from_view

    view = member_view_load(organization_id=org_id, user_id=user_id)
    # No generation: no cached decision is trusted, every decision is asked.
    principal = principal_from_view(view, source="l1", generation=None)

    def ask() -> Any:
        decision = decision_check(
            principal=principal, permission="image:read", organization_id=org_id, backend="remote"
        )
        assert decision.source == "remote", decision
        return decision

    return ask


def run() -> None:
    setup = _setup()
    org_id, user_id = str(setup["org"].id), str(setup["user"].id)
    results = compare(_decisions(org_id, user_id), rounds=15, per_round=100)
    report("decision, in-process cache (embedded default)", results)
    if _redis_reachable():
        redis_cache = {
            "default": {
                "BACKEND": "django_redis.cache.RedisCache",
                "LOCATION": REDIS_URL,
                "KEY_PREFIX": "bench-authz",
            }
        }
        with override_settings(CACHES=redis_cache):
            redis_results = compare(_decisions(org_id, user_id), rounds=15, per_round=100)
        report(f"decision, Redis ({REDIS_URL})", redis_results)
        uncached, hit = redis_results[0].median_us, redis_results[1].median_us
        print(f"uncached/Redis hit: {uncached / hit:.1f}x")
        results = redis_results
    print(f"uncached/in-process hit: {results[0].median_us / results[2].median_us:.0f}x")
    _remote_and_request(setup, org_id, user_id)


def _remote_and_request(setup: dict[str, Any], org_id: str, user_id: str) -> None:
    server = _decision_server()
    remote_env = {
        "AUTH_API_URL": f"{server.url}/api/v1/authorization/check",
        "AUTH_API_TOKEN": setup["secret"],
    }
    try:
        with override_settings(**remote_env):
            ask = _remote(org_id, user_id)
            local = _decisions(org_id, user_id)
            results = compare(
                {
                    "uncached: database": local["uncached: database (baseline)"],
                    "remote decision (HTTP, second server)": ask,
                    "in-process hit": local["in-process hit"],
                },
                warmup=20,
                rounds=10,
                per_round=20,
            )
            report("remote decision point (loopback, gunicorn, 2 workers)", results)
            client = Client()
            bearer: dict[str, Any] = {"HTTP_AUTHORIZATION": f"Bearer {setup['access']}"}
            decided = request(client, "/bench/authenticated", **bearer)
            cases = {
                "authenticated, no permission check (baseline)": request(
                    client, "/bench/authenticated-only", **bearer
                ),
                "authenticated + decision (local, cached)": decided,
                "authenticated + decision (remote, cached)": _remotely(decided),
            }
            report("the decision point's cost on a full request", compare(cases))
    finally:
        server.process.terminate()
        server.process.wait(timeout=20)


def _remotely(call: Callable[[], Any]) -> Callable[[], Any]:
    def run() -> Any:
        settings.AUTHZ_BACKEND = "remote"
        try:
            return call()
        finally:
            settings.AUTHZ_BACKEND = "local"

    return run
