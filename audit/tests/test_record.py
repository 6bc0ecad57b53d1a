"""audit_record: events in the caller's transaction, hash-chained per organization."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, HTTPServer
from types import SimpleNamespace
from typing import Any

import pytest
import structlog
from django.db import transaction
from prometheus_client.parser import text_string_to_metric_families

from accounts.models import Organization
from accounts.services.organizations import member_add, organization_create
from accounts.tests.factories import UserFactory
from audit.chain import event_hash
from audit.errors import AppendOnlyError
from audit.models import GENESIS_HASH, SYSTEM_CHAIN, AuditChainHead, AuditEvent
from audit.selectors import audit_chain_verify
from audit.services import audit_record
from audit.tasks import SinkUnavailable, audit_event_deliver
from config.request_context import Actor, ClientInfo, begin_context

pytestmark = pytest.mark.django_db

SCRAPE = {"HTTP_AUTHORIZATION": "Bearer test-metrics-token"}
GROUPS = "/api/v1/orgs/current/groups"


@pytest.fixture(autouse=True)
def _fresh_request_context() -> Iterator[None]:
    """No actor, client or request id leaks into or out of a test."""
    begin_context(client=ClientInfo())
    structlog.contextvars.clear_contextvars()
    yield
    begin_context(client=ClientInfo())
    structlog.contextvars.clear_contextvars()


def _chain(chain: str) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(chain=chain).order_by("position"))


def _head(chain: str) -> tuple[int, str] | None:
    head = AuditChainHead.objects.filter(chain=chain).first()
    return (head.position, head.hash) if head else None


def _then_fail(work: Callable[[], Any]) -> None:
    """Do `work` in a transaction that then fails, so all of it is rolled back."""
    with transaction.atomic():
        work()
        raise RuntimeError("the caller fails after the audited call")


# --- Transactions ------------------------------------------------------------------


def test_service_call_rolled_back_leaves_no_event_and_no_organization():
    before = AuditEvent.objects.count()

    def create_and_check() -> None:
        organization_create(name="Initech", slug="initech")
        assert AuditEvent.objects.filter(action="org.created").count() == 1

    with pytest.raises(RuntimeError):
        _then_fail(create_and_check)

    assert AuditEvent.objects.count() == before
    assert not Organization.objects.filter(slug="initech").exists()


def test_rolled_back_event_leaves_the_chain_head_where_it_was(org):
    audit_record(action="test.kept", organization_id=org.id)
    head_before = _head(str(org.id))

    with pytest.raises(RuntimeError):
        _then_fail(lambda: audit_record(action="test.rolled_back", organization_id=org.id))

    assert _head(str(org.id)) == head_before == (1, _chain(str(org.id))[0].hash)
    assert [e.action for e in _chain(str(org.id))] == ["test.kept"]
    # The next event takes the rolled-back event's place in the chain.
    event = audit_record(action="test.after", organization_id=org.id)
    assert event.position == 2
    assert event.prev_hash == head_before[1]
    assert audit_chain_verify(chain=str(org.id)) == (2, None)


def test_first_event_of_a_new_chain_rolled_back_leaves_no_head():
    chain = str(uuid.uuid4())

    with pytest.raises(RuntimeError):
        _then_fail(lambda: audit_record(action="test.rolled_back", organization_id=chain))

    assert _head(chain) is None
    assert not AuditEvent.objects.filter(chain=chain).exists()


def test_committed_organization_create_records_its_event():
    org = organization_create(name="Initech", slug="initech", tier="pro")

    event = AuditEvent.objects.get(action="org.created", organization_id=org.id)
    assert event.chain == str(org.id)
    assert event.position == 1
    assert event.organization_display == "initech"
    assert (event.resource_type, event.resource_id) == ("organization", str(org.id))
    assert event.outcome == "success"
    assert event.details == {"name": "Initech", "slug": "initech", "tier": "pro"}


def test_member_add_records_the_member_and_role(org):
    user = UserFactory(username="erin")

    member_add(organization=org, user=user, role="viewer")

    event = AuditEvent.objects.get(action="org.member_added")
    assert event.organization_id == org.id
    assert (event.resource_type, event.resource_id) == ("user", str(user.id))
    assert event.details == {"username": "erin", "role": "viewer", "groups": []}


# --- The chain -----------------------------------------------------------------------


def test_events_of_one_org_are_linked_by_hash_in_positions_1_2_3(org):
    for step in range(3):
        audit_record(action=f"test.step{step}", organization_id=org.id, details={"step": step})

    events = _chain(str(org.id))

    assert [e.position for e in events] == [1, 2, 3]
    assert [e.action for e in events] == ["test.step0", "test.step1", "test.step2"]
    assert events[0].prev_hash == GENESIS_HASH == "0" * 64
    assert events[1].prev_hash == events[0].hash
    assert events[2].prev_hash == events[1].hash
    for event in events:
        assert event.hash == event_hash(event.prev_hash, event)
    assert len({e.hash for e in events}) == 3
    assert _head(str(org.id)) == (3, events[2].hash)


def test_two_orgs_form_two_independent_chains(org, other_org):
    audit_record(action="test.a1", organization_id=org.id)
    audit_record(action="test.b1", organization_id=other_org.id)
    audit_record(action="test.a2", organization_id=org.id)
    audit_record(action="test.b2", organization_id=other_org.id)

    chain_a, chain_b = _chain(str(org.id)), _chain(str(other_org.id))

    assert [(e.action, e.position) for e in chain_a] == [("test.a1", 1), ("test.a2", 2)]
    assert [(e.action, e.position) for e in chain_b] == [("test.b1", 1), ("test.b2", 2)]
    assert chain_a[0].prev_hash == chain_b[0].prev_hash == GENESIS_HASH
    assert chain_a[1].prev_hash == chain_a[0].hash
    assert chain_b[1].prev_hash == chain_b[0].hash
    assert {e.organization_id for e in chain_a} == {org.id}
    assert {e.organization_id for e in chain_b} == {other_org.id}
    assert audit_chain_verify(chain=str(org.id)) == (2, None)
    assert audit_chain_verify(chain=str(other_org.id)) == (2, None)


def test_events_without_an_org_go_to_the_system_chain(org):
    audit_record(action="test.org_event", organization_id=org.id)
    first = audit_record(action="test.no_org")
    second = audit_record(action="test.no_org_again")

    assert first.chain == second.chain == SYSTEM_CHAIN == "system"
    assert first.organization_id is None
    assert (first.position, second.position) == (1, 2)
    assert first.prev_hash == GENESIS_HASH
    assert second.prev_hash == first.hash
    assert not AuditEvent.objects.filter(chain=SYSTEM_CHAIN, organization_id__isnull=False)


def test_explicit_actor_overrides_the_context_actor(org):
    begin_context(client=ClientInfo(), actor=Actor("user", "u-ctx", "context-user"))

    event = audit_record(
        action="test.explicit", organization_id=org.id, actor=Actor("service_token", "t-1", "ci")
    )

    stored = AuditEvent.objects.get(id=event.id)
    assert (stored.actor_type, stored.actor_id, stored.actor_display) == (
        "service_token",
        "t-1",
        "ci",
    )


def test_without_any_principal_the_actor_is_anonymous(org):
    event = audit_record(action="test.anon", organization_id=org.id)

    stored = AuditEvent.objects.get(id=event.id)
    assert (stored.actor_type, stored.actor_id) == ("anonymous", "")
    assert stored.ip is None
    assert stored.user_agent == stored.request_id == ""


# --- The request context -------------------------------------------------------------


def test_api_request_context_is_recorded_in_the_event(admin_client, admin, org):
    response = admin_client.post(
        GROUPS,
        {"name": "editors", "permissions": ["image:read"]},
        format="json",
        HTTP_X_REQUEST_ID="audit-req-1",
        HTTP_USER_AGENT="pytest-agent",
        REMOTE_ADDR="203.0.113.7",
    )
    assert response.status_code == 201, response.content

    event = AuditEvent.objects.get(action="org.group_changed", request_id="audit-req-1")
    assert event.ip == "203.0.113.7"
    assert event.user_agent == "pytest-agent"
    assert event.actor_type == "user"
    assert event.actor_id == str(admin.id)
    assert event.actor_display == "alice"
    assert event.organization_id == org.id
    assert event.organization_display == "acme"
    assert (event.resource_type, event.resource_id) == ("group", response.json()["id"])
    assert event.details["change"] == "created"
    assert event.hash == event_hash(event.prev_hash, event)


def test_client_address_behind_one_trusted_proxy_is_the_proxys_entry(admin_client, org, settings):
    settings.TRUSTED_PROXY_COUNT = 1

    response = admin_client.post(
        GROUPS,
        {"name": "editors", "permissions": ["image:read"]},
        format="json",
        HTTP_X_REQUEST_ID="audit-req-2",
        HTTP_X_FORWARDED_FOR="198.51.100.1, 203.0.113.9",
        REMOTE_ADDR="10.0.0.2",
    )
    assert response.status_code == 201, response.content

    event = AuditEvent.objects.get(action="org.group_changed", request_id="audit-req-2")
    assert event.ip == "203.0.113.9"


def test_forwarded_for_is_ignored_when_no_proxy_is_trusted(admin_client, org, settings):
    settings.TRUSTED_PROXY_COUNT = 0

    admin_client.post(
        GROUPS,
        {"name": "editors", "permissions": ["image:read"]},
        format="json",
        HTTP_X_REQUEST_ID="audit-req-3",
        HTTP_X_FORWARDED_FOR="198.51.100.1",
        REMOTE_ADDR="203.0.113.7",
    )

    event = AuditEvent.objects.get(action="org.group_changed", request_id="audit-req-3")
    assert event.ip == "203.0.113.7"


def test_event_from_an_ipv4_mapped_ipv6_client_still_verifies(admin_client, org):
    # A dual-stack listener ([::]) sees IPv4 clients as IPv4-mapped IPv6 addresses.
    response = admin_client.post(
        GROUPS,
        {"name": "editors", "permissions": ["image:read"]},
        format="json",
        HTTP_X_REQUEST_ID="audit-req-v6",
        REMOTE_ADDR="::ffff:203.0.113.7",
    )
    assert response.status_code == 201, response.content

    event = AuditEvent.objects.get(action="org.group_changed", request_id="audit-req-v6")
    assert event.hash == event_hash(event.prev_hash, event)
    assert audit_chain_verify(chain=str(org.id))[1] is None


def test_plain_ipv6_client_address_is_stored_compressed_and_verifies(org):
    begin_context(client=ClientInfo(ip="2001:DB8:0:0:0:0:0:1", user_agent="ua"))

    event = audit_record(action="test.v6", organization_id=org.id)

    stored = AuditEvent.objects.get(id=event.id)
    assert stored.ip == "2001:db8::1"
    assert stored.hash == event_hash(stored.prev_hash, stored)


def test_malformed_client_address_is_recorded_as_none(org):
    begin_context(client=ClientInfo(ip="not-an-ip", user_agent="ua"))

    event = audit_record(action="test.bad_ip", organization_id=org.id)

    assert AuditEvent.objects.get(id=event.id).ip is None


# --- Append-only in the ORM ------------------------------------------------------------


def test_saving_an_existing_event_is_refused(org):
    event = audit_record(action="test.original", organization_id=org.id)
    event.action = "test.forged"
    with pytest.raises(AppendOnlyError):
        event.save()

    reloaded = AuditEvent.objects.get(id=event.id)
    reloaded.outcome = "failure"
    with pytest.raises(AppendOnlyError):
        reloaded.save(update_fields=["outcome"])

    stored = AuditEvent.objects.get(id=event.id)
    assert (stored.action, stored.outcome) == ("test.original", "success")


def test_deleting_an_event_is_refused(org):
    event = audit_record(action="test.keep_me", organization_id=org.id)

    with pytest.raises(AppendOnlyError):
        event.delete()
    with pytest.raises(AppendOnlyError):
        AuditEvent.objects.get(id=event.id).delete()

    assert AuditEvent.objects.filter(id=event.id).exists()


def test_queryset_update_and_delete_are_refused(org):
    event = audit_record(action="test.keep_me", organization_id=org.id)

    with pytest.raises(AppendOnlyError):
        AuditEvent.objects.filter(id=event.id).update(action="test.forged")
    with pytest.raises(AppendOnlyError):
        AuditEvent.objects.filter(id=event.id).delete()
    with pytest.raises(AppendOnlyError):
        AuditEvent.objects.all().delete()
    with pytest.raises(AppendOnlyError):
        AuditEvent.objects.update(outcome="failure")

    stored = AuditEvent.objects.get(id=event.id)
    assert (stored.action, stored.outcome) == ("test.keep_me", "success")


def test_bulk_update_of_events_is_refused(org):
    event = audit_record(action="test.keep_me", organization_id=org.id)
    event.action = "test.forged"

    # bulk_update runs in the caller's transaction (no savepoint of its own).
    with pytest.raises(AppendOnlyError), transaction.atomic():
        AuditEvent.objects.bulk_update([event], ["action"])

    assert AuditEvent.objects.get(id=event.id).action == "test.keep_me"


# --- Canonical details -------------------------------------------------------------------


def test_details_are_stored_canonical_and_the_hash_verifies_after_reload(org):
    at = datetime(2024, 5, 1, 12, 0, 0, 123456, tzinfo=UTC)
    details = {"at": at, "amount": Decimal("1.50"), "ids": (1, 2), "id": uuid.UUID(int=7)}

    event = audit_record(action="test.details", organization_id=org.id, details=details)

    expected = {
        "at": "2024-05-01T12:00:00.123Z",
        "amount": "1.50",
        "ids": [1, 2],
        "id": "00000000-0000-0000-0000-000000000007",
    }
    assert event.details == expected
    stored = AuditEvent.objects.get(id=event.id)
    assert stored.details == expected
    assert stored.hash == event.hash == event_hash(stored.prev_hash, stored)
    assert audit_chain_verify(chain=str(org.id)) == (1, None)


@pytest.mark.integration
@pytest.mark.parametrize("value", [1e16, -0.0])
def test_float_details_verify_after_reload_on_postgresql(org, value):
    from django.db import connection

    assert connection.vendor == "postgresql"
    event = audit_record(action="test.float", organization_id=org.id, details={"value": value})

    stored = AuditEvent.objects.get(id=event.id)
    assert stored.hash == event_hash(stored.prev_hash, stored)
    assert audit_chain_verify(chain=str(org.id)) == (1, None)


def test_event_with_no_details_stores_an_empty_object(org):
    event = audit_record(action="test.no_details", organization_id=org.id)

    stored = AuditEvent.objects.get(id=event.id)
    assert stored.details == {}
    assert stored.hash == event_hash(stored.prev_hash, stored)


def test_long_texts_are_cut_to_their_columns_and_still_verify(org):
    begin_context(
        client=ClientInfo(ip="203.0.113.7", user_agent="a" * 2000),
        actor=Actor("user", "i" * 100, "d" * 400),
    )

    event = audit_record(
        action="test.long",
        organization_id=org.id,
        organization_display="o" * 300,
        resource_id="r" * 300,
    )

    stored = AuditEvent.objects.get(id=event.id)
    assert len(stored.user_agent) == 512
    assert len(stored.actor_id) == 64
    assert len(stored.actor_display) == 255
    assert len(stored.organization_display) == 200
    assert len(stored.resource_id) == 128
    assert stored.hash == event_hash(stored.prev_hash, stored)


# --- Metrics -----------------------------------------------------------------------------


def _audit_metric(client: Any, action: str, outcome: str) -> float:
    response = client.get("/metrics", **SCRAPE)
    assert response.status_code == 200
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            if (
                sample.name == "vantage_audit_events_total"
                and sample.labels.get("action") == action
                and sample.labels.get("outcome") == outcome
            ):
                return float(sample.value)
    return 0.0


def test_committed_event_increments_the_events_metric(
    api_client, org, django_capture_on_commit_callbacks
):
    action = f"test.metric_{uuid.uuid4().hex[:8]}"
    assert _audit_metric(api_client, action, "denied") == 0.0

    with django_capture_on_commit_callbacks(execute=True):
        audit_record(action=action, outcome="denied", organization_id=org.id)
        # Not before the commit.
        assert _audit_metric(api_client, action, "denied") == 0.0

    assert _audit_metric(api_client, action, "denied") == 1.0
    with django_capture_on_commit_callbacks(execute=True):
        audit_record(action=action, outcome="denied", organization_id=org.id)
    assert _audit_metric(api_client, action, "denied") == 2.0
    assert _audit_metric(api_client, action, "success") == 0.0


def test_rolled_back_event_does_not_increment_the_events_metric(
    api_client, org, django_capture_on_commit_callbacks
):
    action = f"test.metric_{uuid.uuid4().hex[:8]}"

    with (
        django_capture_on_commit_callbacks(execute=True) as callbacks,
        pytest.raises(RuntimeError),
    ):
        _then_fail(lambda: audit_record(action=action, organization_id=org.id))

    assert callbacks == []
    assert _audit_metric(api_client, action, "success") == 0.0


# --- The HTTP sink -------------------------------------------------------------------------


@pytest.fixture
def sink() -> Iterator[SimpleNamespace]:
    """A real HTTP server on 127.0.0.1 recording what it is sent, answering `state.status`."""
    state = SimpleNamespace(status=200, received=[], url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            state.received.append(
                {
                    "path": self.path,
                    "headers": {k.lower(): v for k, v in self.headers.items()},
                    "body": json.loads(body),
                }
            )
            self.send_response(state.status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_port}/audit-events"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture
def sink_event(org: Any) -> Callable[[], AuditEvent]:
    def make() -> AuditEvent:
        begin_context(client=ClientInfo(ip="203.0.113.7", user_agent="pytest-agent"))
        return audit_record(
            action="image.deleted",
            organization_id=org.id,
            organization_display=org.slug,
            actor=Actor("user", "u-42", "alice"),
            resource_type="image",
            resource_id="img-7",
            details={"reason": "test"},
        )

    return make


def test_sink_receives_the_event_with_idempotency_key_and_token(sink, sink_event, settings):
    event = sink_event()
    settings.AUDIT_SINK_URL = sink.url
    settings.AUDIT_SINK_TOKEN = "sink-secret"

    audit_event_deliver(str(event.id))

    assert len(sink.received) == 1
    request = sink.received[0]
    assert request["path"] == "/audit-events"
    assert request["headers"]["idempotency-key"] == str(event.id)
    assert request["headers"]["authorization"] == "Bearer sink-secret"
    assert request["headers"]["content-type"] == "application/json"
    body = request["body"]
    assert body["id"] == str(event.id)
    assert body["action"] == "image.deleted"
    assert body["hash"] == event.hash
    assert body["prev_hash"] == event.prev_hash
    assert body["actor"] == {"type": "user", "id": "u-42", "display": "alice"}
    assert body["resource"] == {"type": "image", "id": "img-7"}
    assert body["organization_id"] == str(event.organization_id)
    assert body["outcome"] == "success"
    assert body["ip"] == "203.0.113.7"
    assert body["details"] == {"reason": "test"}


def test_sink_without_a_token_gets_no_authorization_header(sink, sink_event, settings):
    event = sink_event()
    settings.AUDIT_SINK_URL = sink.url
    settings.AUDIT_SINK_TOKEN = ""

    audit_event_deliver(str(event.id))

    assert len(sink.received) == 1
    assert "authorization" not in sink.received[0]["headers"]
    assert sink.received[0]["headers"]["idempotency-key"] == str(event.id)


@pytest.mark.parametrize("status", [503, 500, 429, 408])
def test_sink_answering_a_transient_error_raises_so_celery_retries(
    sink, sink_event, settings, status
):
    event = sink_event()
    settings.AUDIT_SINK_URL = sink.url
    sink.status = status

    with pytest.raises(SinkUnavailable):
        audit_event_deliver(str(event.id))

    assert len(sink.received) == 1


@pytest.mark.parametrize("status", [400, 404, 422])
def test_sink_refusing_the_event_for_good_does_not_raise(sink, sink_event, settings, status):
    event = sink_event()
    settings.AUDIT_SINK_URL = sink.url
    sink.status = status

    audit_event_deliver(str(event.id))

    assert len(sink.received) == 1


def test_sink_switched_off_or_event_gone_sends_nothing(sink, sink_event, settings):
    event = sink_event()
    settings.AUDIT_SINK_URL = ""
    audit_event_deliver(str(event.id))

    settings.AUDIT_SINK_URL = sink.url
    audit_event_deliver(str(uuid.uuid4()))

    assert sink.received == []


# --- The sink's backlog: a broker down loses no copy --------------------------------------


def _broker_pools_reset() -> None:
    """Make the app build its connection pools again, for the broker it is configured with.

    The pools of the other broker are left open: kombu keeps them by connection, and
    the app finds them again when that broker is configured again.
    """
    from config.celery import app

    app._pool = None
    app.amqp._producer_pool = None


@pytest.fixture
def broker_down(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The app's broker unreachable (a closed port on loopback), then back as it was."""
    from config.celery import app
    from config.testing.processes import free_port

    unreachable = f"redis://127.0.0.1:{free_port()}/0"
    saved = app.conf.get("broker_url")
    # Celery reads the CELERY_BROKER_URL environment variable before its own setting.
    monkeypatch.setenv("CELERY_BROKER_URL", unreachable)
    app.conf["broker_url"] = unreachable
    _broker_pools_reset()
    try:
        yield
    finally:
        monkeypatch.undo()
        app.conf["broker_url"] = saved
        _broker_pools_reset()


@pytest.fixture
def tasks_run_at_once() -> Iterator[None]:
    from config.celery import app

    saved = app.conf.task_always_eager
    app.conf.task_always_eager = True
    try:
        yield
    finally:
        app.conf.task_always_eager = saved


@pytest.mark.usefixtures("org", "broker_down")
def test_with_the_broker_down_a_login_still_succeeds_and_its_sink_copy_waits(
    member, sink, settings, django_capture_on_commit_callbacks
):
    from rest_framework.test import APIClient

    from accounts.tests.factories import PASSWORD
    from audit.models import SinkBacklog

    settings.AUDIT_SINK_URL = sink.url

    with django_capture_on_commit_callbacks(execute=True):
        response = APIClient().post(
            "/api/v1/auth/token",
            {"username": member.username, "password": PASSWORD},
            format="json",
        )

    assert response.status_code == 200, response.content
    login = AuditEvent.objects.get(action="auth.login")
    assert list(SinkBacklog.objects.values_list("event_id", flat=True)) == [login.id]
    assert sink.received == []


def test_the_backlog_is_sent_once_the_broker_is_back(sink, sink_event, settings, tasks_run_at_once):
    from audit.models import SinkBacklog
    from audit.sink import sink_backlog_resend

    settings.AUDIT_SINK_URL = sink.url
    events = [sink_event(), sink_event()]
    SinkBacklog.objects.bulk_create(SinkBacklog(event_id=event.id) for event in events)

    # What beat's audit.sink_backlog_resend runs; each delivery runs as soon as it is queued.
    queued = sink_backlog_resend()

    assert queued == 2
    assert [request["body"]["id"] for request in sink.received] == [str(e.id) for e in events]
    assert not SinkBacklog.objects.exists()


def test_while_the_broker_is_still_down_the_backlog_is_kept(
    sink, sink_event, settings, broker_down
):
    from audit.models import SinkBacklog
    from audit.sink import sink_backlog_resend

    settings.AUDIT_SINK_URL = sink.url
    SinkBacklog.objects.create(event_id=sink_event().id)

    assert sink_backlog_resend() == 0

    assert SinkBacklog.objects.count() == 1
    assert sink.received == []
