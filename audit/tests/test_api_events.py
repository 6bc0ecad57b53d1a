"""The audit API: the organization's events, newest first, and their streamed export."""

from __future__ import annotations

import csv
import datetime as dt
import io
import itertools
import json
import re
import tracemalloc
from collections.abc import Iterator
from typing import Any

import pytest
import structlog
import time_machine
from django.utils import timezone

from audit.chain import canonical_details, event_hash
from audit.models import GENESIS_HASH, AuditChainHead, AuditEvent
from audit.services import audit_record
from config.request_context import Actor, ClientInfo, begin_context
from config.testing.http import assert_problem

EVENTS = "/api/v1/audit/events"
EXPORT = "/api/v1/audit/events/export"
PROBLEM = "application/problem+json"

EVENT_KEYS = {
    "id",
    "timestamp",
    "organization_id",
    "actor",
    "action",
    "resource",
    "outcome",
    "ip",
    "user_agent",
    "request_id",
    "details",
    "hash",
    "prev_hash",
}
CSV_HEADER = (
    "id,timestamp,organization_id,actor_type,actor_id,actor_display,action,"
    "resource_type,resource_id,outcome,ip,user_agent,request_id,details,hash,prev_hash"
)

T0 = dt.datetime(2025, 3, 1, 0, 0, tzinfo=dt.UTC)
U1 = "11111111-1111-4111-8111-111111111111"
U2 = "22222222-2222-4222-8222-222222222222"
TOKEN = "33333333-3333-4333-8333-333333333333"


@pytest.fixture(autouse=True)
def _fresh_request_context() -> Iterator[None]:
    """No actor, client or request id leaks into or out of a test."""
    begin_context(client=ClientInfo())
    structlog.contextvars.clear_contextvars()
    yield
    begin_context(client=ClientInfo())
    structlog.contextvars.clear_contextvars()


# --- Helpers -------------------------------------------------------------------------


def _record(
    org: Any,
    *,
    action: str = "image.uploaded",
    actor: Actor | None = None,
    outcome: str = "success",
    resource_type: str = "image",
    resource_id: str = "img-1",
    request_id: str = "",
    details: dict[str, Any] | None = None,
    at: dt.datetime | None = None,
) -> AuditEvent:
    """Record one event in `org`'s chain through audit_record, at `at` if given."""

    def record() -> AuditEvent:
        with structlog.contextvars.bound_contextvars(request_id=request_id or None):
            return audit_record(
                action=action,
                outcome=outcome,
                organization_id=org.id,
                organization_display=org.slug,
                actor=actor or Actor("user", U1, "alice"),
                resource_type=resource_type,
                resource_id=resource_id,
                details=details or {},
            )

    if at is None:
        return record()
    with time_machine.travel(at, tick=False):
        return record()


def _bulk_events(org: Any, count: int, *, action: str = "image.uploaded") -> list[str]:
    """Append `count` events to `org`'s chain in one bulk insert, keeping the chain valid.

    Returns their ids, oldest first.
    """
    chain = str(org.id)
    head = AuditChainHead.objects.filter(chain=chain).first()
    position = head.position if head else 0
    prev_hash = head.hash if head else GENESIS_HASH
    start = timezone.now() + dt.timedelta(seconds=1)
    events = []
    for n in range(1, count + 1):
        event = AuditEvent(
            chain=chain,
            position=position + n,
            timestamp=start + dt.timedelta(milliseconds=n),
            organization_id=org.id,
            organization_display=org.slug,
            actor_type="service_token",
            actor_id=TOKEN,
            actor_display="ci-uploader",
            action=action,
            resource_type="image",
            resource_id=f"img-{n}",
            outcome="success",
            ip="203.0.113.7",
            user_agent="bulk-loader/1.0",
            request_id=f"bulk-{n}",
            details=canonical_details({"n": n, "note": "x" * 40}),
            prev_hash=prev_hash,
        )
        event.hash = event_hash(prev_hash, event)
        prev_hash = event.hash
        events.append(event)
    AuditEvent.objects.bulk_create(events, batch_size=1000)
    AuditChainHead.objects.update_or_create(
        chain=chain, defaults={"position": position + count, "hash": prev_hash}
    )
    return [str(event.id) for event in events]


def _org_event_ids(org: Any) -> list[str]:
    """Every event id of `org`, newest first, straight from the database."""
    return [
        str(pk)
        for pk in AuditEvent.objects.filter(organization_id=org.id)
        .order_by("-seq")
        .values_list("id", flat=True)
    ]


def _ids(response: Any) -> list[str]:
    assert response.status_code == 200, response.content
    return [event["id"] for event in response.json()["results"]]


def _invalid(response: Any, field: str) -> dict[str, Any]:
    """Assert a 400 VALIDATION_ERROR whose `errors` name `field`."""
    body = assert_problem(response, status=400, code="VALIDATION_ERROR")
    assert isinstance(body.get("errors"), list), body
    assert all({"field", "message", "code"} <= set(error) for error in body["errors"])
    assert field in {error["field"] for error in body["errors"]}, body["errors"]
    return body


def _utc(value: str) -> dt.datetime:
    assert value.endswith("Z"), value
    parsed = dt.datetime.fromisoformat(value)
    assert parsed.utcoffset() == dt.timedelta(0)
    return parsed


def _walk(client: Any, url: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Return every page's body, following `next` links from the first page."""
    response = client.get(url, params or {})
    assert response.status_code == 200, response.content
    pages = [response.json()]
    while pages[-1]["next"]:
        assert len(pages) < 50, "the pagination never ends"
        response = client.get(pages[-1]["next"])
        assert response.status_code == 200, response.content
        pages.append(response.json())
    return pages


def _stream(response: Any) -> bytes:
    assert response.status_code == 200, getattr(response, "content", b"")
    assert response.streaming is True
    return b"".join(response.streaming_content)


def _jsonl(response: Any) -> list[dict[str, Any]]:
    assert response["Content-Type"] == "application/x-ndjson"
    body = _stream(response).decode()
    assert body == "" or body.endswith("\n")
    return [json.loads(line) for line in body.splitlines()]


def _csv(response: Any) -> tuple[str, list[dict[str, str]]]:
    assert response["Content-Type"].split(";")[0].strip() == "text/csv"
    body = _stream(response).decode()
    header = body.splitlines()[0]
    return header, list(csv.DictReader(io.StringIO(body, newline="")))


# --- A small, varied data set for the filters --------------------------------------


@pytest.fixture
def dataset(org: Any, other_org: Any, admin_client: Any) -> dict[str, Any]:
    """Five events of `org` an hour apart from T0, and look-alikes in other_org.

    `admin_client` is requested first so its login event precedes these in the chain.
    """
    events = {
        "e1": _record(
            org,
            action="image.uploaded",
            actor=Actor("user", U1, "alice"),
            resource_type="image",
            resource_id="img-1",
            request_id="req-1",
            details={"size": 1024},
            at=T0,
        ),
        "e2": _record(
            org,
            action="image.deleted",
            actor=Actor("user", U1, "alice"),
            resource_type="image",
            resource_id="img-2",
            request_id="req-2",
            at=T0 + dt.timedelta(hours=1),
        ),
        "e3": _record(
            org,
            action="token.created",
            actor=Actor("service_token", TOKEN, "ci-uploader"),
            resource_type="service_token",
            resource_id=TOKEN,
            request_id="req-3",
            at=T0 + dt.timedelta(hours=2),
        ),
        "e4": _record(
            org,
            action="authz.denied",
            actor=Actor("user", U2, "bob"),
            outcome="denied",
            resource_type="permission",
            resource_id="image:delete",
            request_id="req-4",
            at=T0 + dt.timedelta(hours=3),
        ),
        "e5": _record(
            org,
            action="auth.login_failed",
            actor=Actor("anonymous"),
            outcome="failure",
            resource_type="user",
            resource_id=U2,
            request_id="req-5",
            at=T0 + dt.timedelta(hours=4),
        ),
    }
    # The same shapes in another organization: no filter may ever surface them.
    foreign = [
        _record(
            other_org,
            action=event.action,
            actor=Actor(event.actor_type, event.actor_id, event.actor_display),
            outcome=event.outcome,
            resource_type=event.resource_type,
            resource_id=event.resource_id,
            request_id=event.request_id,
            at=event.timestamp,
        )
        for event in events.values()
    ]
    ids: dict[str, Any] = {name: str(event.id) for name, event in events.items()}
    ids["login"] = [
        str(pk)
        for pk in AuditEvent.objects.filter(organization_id=org.id, action="auth.login")
        .order_by("-seq")
        .values_list("id", flat=True)
    ]
    ids["foreign"] = {str(event.id) for event in foreign}
    return ids


def _expected(dataset: dict[str, Any], names: list[str]) -> list[str]:
    ids: list[str] = []
    for name in names:
        ids += dataset[name] if name == "login" else [dataset[name]]
    return ids


def _iso(moment: dt.datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


FILTER_CASES = [
    pytest.param({"action": "image.uploaded"}, ["e1"], id="action"),
    pytest.param({"actor_type": "service_token"}, ["e3"], id="actor_type"),
    pytest.param({"actor_type": "anonymous"}, ["e5"], id="actor_type-anonymous"),
    pytest.param({"actor_id": U1}, ["e2", "e1"], id="actor_id"),
    pytest.param({"outcome": "denied"}, ["e4"], id="outcome-denied"),
    pytest.param({"outcome": "failure"}, ["e5"], id="outcome-failure"),
    pytest.param({"resource_type": "image"}, ["e2", "e1"], id="resource_type"),
    pytest.param({"resource_id": "img-2"}, ["e2"], id="resource_id"),
    pytest.param({"request_id": "req-3"}, ["e3"], id="request_id"),
    # since is inclusive: the event at exactly since is in.
    pytest.param(
        {"since": _iso(T0 + dt.timedelta(hours=2))}, ["e5", "e4", "e3", "login"], id="since"
    ),
    # until is exclusive: the event at exactly until is out.
    pytest.param({"until": _iso(T0 + dt.timedelta(hours=2))}, ["e2", "e1"], id="until"),
    pytest.param(
        {"since": "2025-03-01T03:00:00+02:00", "until": "2025-03-01T02:30:00Z"},
        ["e3", "e2"],
        id="since-until-with-offsets",
    ),
    pytest.param({"actor_id": U1, "action": "image.deleted"}, ["e2"], id="actor_id+action"),
    pytest.param(
        {"resource_type": "image", "since": _iso(T0 + dt.timedelta(minutes=30))},
        ["e2"],
        id="resource_type+since",
    ),
    pytest.param(
        {"actor_type": "user", "outcome": "success", "until": _iso(T0 + dt.timedelta(hours=5))},
        ["e2", "e1"],
        id="actor_type+outcome+until",
    ),
    pytest.param({"action": "image.uploaded", "outcome": "denied"}, [], id="disjoint-and"),
    pytest.param({"action": "no.such.action"}, [], id="no-match"),
]


# --- GET /audit/events: what an admin sees --------------------------------------------


def test_admin_sees_the_organizations_events_newest_first_in_the_documented_shape(
    org, other_org, admin_client
):
    begin_context(client=ClientInfo(ip="198.51.100.9", user_agent="pytest-agent/1.0"))
    older = _record(org, action="image.uploaded", resource_id="img-1", request_id="req-a")
    newer = _record(
        org,
        action="image.deleted",
        actor=Actor("service_token", TOKEN, "ci-uploader"),
        resource_id="img-1",
        request_id="req-b",
        details={"reason": "duplicate", "bytes": 2048},
    )
    foreign = {str(_record(other_org, action="image.uploaded").id) for _ in range(2)}

    response = admin_client.get(EVENTS)

    assert response.status_code == 200, response.content
    body = response.json()
    assert set(body) >= {"next", "previous", "results"}
    assert body["next"] is None
    assert body["previous"] is None
    results = body["results"]
    assert [event["id"] for event in results] == _org_event_ids(org)
    assert results[0]["id"] == str(newer.id)
    assert results[1]["id"] == str(older.id)
    assert not foreign & {event["id"] for event in results}
    timestamps = [_utc(event["timestamp"]) for event in results]
    assert timestamps == sorted(timestamps, reverse=True)
    for event in results:
        assert set(event) == EVENT_KEYS
        assert set(event["actor"]) == {"type", "id", "display"}
        assert set(event["resource"]) == {"type", "id"}
        assert event["organization_id"] == str(org.id)
    assert results[0] == {
        "id": str(newer.id),
        "timestamp": _iso(newer.timestamp),
        "organization_id": str(org.id),
        "actor": {"type": "service_token", "id": TOKEN, "display": "ci-uploader"},
        "action": "image.deleted",
        "resource": {"type": "image", "id": "img-1"},
        "outcome": "success",
        "ip": "198.51.100.9",
        "user_agent": "pytest-agent/1.0",
        "request_id": "req-b",
        "details": {"reason": "duplicate", "bytes": 2048},
        "hash": newer.hash,
        "prev_hash": older.hash,
    }
    assert results[1]["hash"] == older.hash


def test_events_of_another_organization_never_appear_in_the_list(org, other_org, admin_client):
    foreign = {str(_record(other_org, action="image.uploaded").id) for _ in range(3)}
    own = str(_record(org).id)

    ids = [event["id"] for page in _walk(admin_client, EVENTS) for event in page["results"]]

    assert own in ids
    assert not foreign & set(ids)
    assert ids == _org_event_ids(org)


# --- Cursor pagination -------------------------------------------------------------------


def test_cursor_pages_of_fifty_walk_every_event_once_newest_first(org, admin_client):
    created = []
    with time_machine.travel(timezone.now() + dt.timedelta(seconds=1), tick=False) as clock:
        for n in range(120):
            clock.shift(dt.timedelta(milliseconds=1))
            created.append(str(_record(org, resource_id=f"img-{n}").id))
    expected = _org_event_ids(org)
    assert len(expected) >= 120

    pages = _walk(admin_client, EVENTS, {"page_size": 50})

    assert [len(page["results"]) for page in pages] == [50, 50, len(expected) - 100]
    assert pages[0]["previous"] is None
    assert pages[0]["next"]
    assert pages[1]["next"]
    assert pages[-1]["next"] is None
    walked = [event["id"] for page in pages for event in page["results"]]
    assert len(walked) == len(set(walked))
    assert walked == expected
    assert walked[:120] == created[::-1]
    timestamps = [_utc(event["timestamp"]) for page in pages for event in page["results"]]
    assert all(a > b for a, b in itertools.pairwise(timestamps))


def test_previous_link_returns_to_the_page_before(org, admin_client):
    _bulk_events(org, 120)
    pages = _walk(admin_client, EVENTS, {"page_size": 50})
    assert len(pages) == 3

    back_to_second = admin_client.get(pages[2]["previous"])
    back_to_first = admin_client.get(pages[1]["previous"])

    assert _ids(back_to_second) == [event["id"] for event in pages[1]["results"]]
    assert _ids(back_to_first) == [event["id"] for event in pages[0]["results"]]
    assert back_to_first.json()["next"]


def test_page_size_above_the_maximum_is_capped_at_five_hundred(org, admin_client):
    _bulk_events(org, 520)

    response = admin_client.get(EVENTS, {"page_size": 10_000})

    assert len(_ids(response)) == 500
    assert _ids(response) == _org_event_ids(org)[:500]
    assert response.json()["next"]


def test_default_page_holds_fifty_events(org, admin_client):
    _bulk_events(org, 60)

    response = admin_client.get(EVENTS)

    assert len(_ids(response)) == 50
    assert response.json()["next"]


# --- Filters ---------------------------------------------------------------------------


@pytest.mark.parametrize(("params", "names"), FILTER_CASES)
def test_filters_narrow_the_list_and_combine_with_and(admin_client, dataset, params, names):
    response = admin_client.get(EVENTS, params)

    ids = _ids(response)
    assert ids == _expected(dataset, names)
    assert not dataset["foreign"] & set(ids)


def test_filters_carry_over_into_the_next_page(org, admin_client):
    wanted = _bulk_events(org, 70, action="image.uploaded")
    _bulk_events(org, 30, action="image.deleted")

    pages = _walk(admin_client, EVENTS, {"action": "image.uploaded", "page_size": 50})

    assert [len(page["results"]) for page in pages] == [50, 20]
    walked = [event["id"] for page in pages for event in page["results"]]
    assert walked == wanted[::-1]
    assert {event["action"] for page in pages for event in page["results"]} == {"image.uploaded"}


@pytest.mark.parametrize("url", [EVENTS, EXPORT])
@pytest.mark.parametrize(
    ("params", "field"),
    [
        pytest.param({"since": "yesterday"}, "since", id="since-not-a-datetime"),
        pytest.param({"until": "2025-13-45T99:00:00Z"}, "until", id="until-not-a-datetime"),
        pytest.param({"actor_type": "robot"}, "actor_type", id="unknown-actor-type"),
        pytest.param({"outcome": "maybe"}, "outcome", id="unknown-outcome"),
    ],
)
def test_malformed_filters_are_refused_naming_the_field(admin_client, url, params, field):
    _invalid(admin_client.get(url, params), field)


@pytest.mark.parametrize("url", [EVENTS, EXPORT])
@pytest.mark.parametrize(
    ("since", "until"),
    [
        pytest.param("2025-03-02T00:00:00Z", "2025-03-01T00:00:00Z", id="since-after-until"),
        pytest.param("2025-03-01T00:00:00Z", "2025-03-01T00:00:00Z", id="since-equals-until"),
    ],
)
def test_a_since_not_before_until_is_refused(admin_client, url, since, until):
    response = admin_client.get(url, {"since": since, "until": until})

    body = assert_problem(response, status=400, code="VALIDATION_ERROR")
    assert body["errors"]
    assert {error["field"] for error in body["errors"]} & {"since", "until"}


# --- Who may read -----------------------------------------------------------------------


@pytest.mark.parametrize("url", [EVENTS, EXPORT])
@pytest.mark.parametrize("fixture", ["member_client", "viewer_client", "guest_client"])
def test_non_admins_are_denied_the_audit_log(request, org, url, fixture):
    _record(org)
    client = request.getfixturevalue(fixture)

    body = assert_problem(client.get(url), status=403, code="PERMISSION_DENIED")

    assert "audit:read" in body["detail"]


@pytest.mark.parametrize("url", [EVENTS, EXPORT])
def test_unauthenticated_callers_get_401(api_client, org, url):
    _record(org)

    assert_problem(api_client.get(url), status=401, code="NOT_AUTHENTICATED")


@pytest.mark.parametrize("url", [EVENTS, EXPORT])
def test_a_bad_bearer_token_gets_401(api_client, org, url):
    api_client.credentials(HTTP_AUTHORIZATION="Bearer not-a-real-token")

    response = api_client.get(url)

    assert response.status_code == 401
    assert response["Content-Type"] == PROBLEM


def test_an_admin_of_another_organization_sees_only_their_own_events(
    org, other_org, admin_client, outsider_client
):
    own = [str(_record(org, resource_id=f"img-{n}").id) for n in range(3)]
    theirs = str(_record(other_org, resource_id="img-9").id)
    all_org_ids = set(_org_event_ids(org))

    ids = [event["id"] for page in _walk(outsider_client, EVENTS) for event in page["results"]]
    by_resource = outsider_client.get(EVENTS, {"resource_id": "img-1"})
    by_actor = outsider_client.get(EVENTS, {"actor_id": U1})

    assert theirs in ids
    assert ids == _org_event_ids(other_org)
    assert not all_org_ids & set(ids)
    assert set(own) <= all_org_ids
    assert _ids(by_resource) == []
    assert _ids(by_actor) == [theirs]


def test_an_admin_of_another_organization_exports_none_of_this_organizations_events(
    org, other_org, admin_client, outsider_client
):
    _record(org)
    theirs = str(_record(other_org).id)

    lines = _jsonl(outsider_client.get(EXPORT))

    ids = [line["id"] for line in lines]
    assert theirs in ids
    assert ids == _org_event_ids(other_org)
    assert {line["organization_id"] for line in lines} == {str(other_org.id)}


# --- Cost ----------------------------------------------------------------------------------


def test_a_page_of_fifty_costs_at_most_three_queries(
    org, admin_client, django_assert_max_num_queries
):
    _bulk_events(org, 80)
    admin_client.get(EVENTS)  # warm the authentication caches

    with django_assert_max_num_queries(3):
        response = admin_client.get(EVENTS, {"page_size": 50})

    assert len(_ids(response)) == 50


# --- GET /audit/events/export -------------------------------------------------------------


def test_export_streams_json_lines_identical_to_the_list(org, other_org, admin_client):
    begin_context(client=ClientInfo(ip="2001:db8::1", user_agent="pytest-agent/1.0"))
    for n in range(5):
        _record(org, resource_id=f"img-{n}", request_id=f"req-{n}", details={"n": n})
    _record(other_org)
    listed = admin_client.get(EVENTS, {"page_size": 500}).json()["results"]

    response = admin_client.get(EXPORT)

    assert response.status_code == 200
    assert response.streaming is True
    assert response["Content-Type"] == "application/x-ndjson"
    assert re.fullmatch(r'attachment; filename="[^"/\\]+\.jsonl"', response["Content-Disposition"])
    lines = _jsonl(response)
    assert len(lines) == len(_org_event_ids(org))
    for line in lines:
        assert set(line) == EVENT_KEYS
        _utc(line["timestamp"])
    assert lines == listed


def test_export_with_format_jsonl_streams_json_lines(org, admin_client):
    _record(org)

    response = admin_client.get(EXPORT, {"format": "jsonl"})

    assert response.status_code == 200, response.content if not response.streaming else ""
    assert response.streaming is True
    assert re.fullmatch(r'attachment; filename="[^"/\\]+\.jsonl"', response["Content-Disposition"])
    assert [line["id"] for line in _jsonl(response)] == _org_event_ids(org)


@pytest.mark.parametrize(("params", "names"), FILTER_CASES)
def test_export_applies_the_same_filters_as_the_list(admin_client, dataset, params, names):
    lines = _jsonl(admin_client.get(EXPORT, params))

    assert [line["id"] for line in lines] == _expected(dataset, names)


def test_csv_export_has_the_documented_header_and_one_row_per_event(org, admin_client):
    begin_context(client=ClientInfo(ip="198.51.100.9", user_agent='agent "quoted", 1.0'))
    _record(org, request_id="req-1", details={"note": "a, b\nc", "n": 1})
    _record(org, actor=Actor("anonymous"), outcome="failure", action="auth.login_failed")
    begin_context(client=ClientInfo())
    _record(org, action="image.deleted")
    listed = admin_client.get(EVENTS, {"page_size": 500}).json()["results"]

    response = admin_client.get(EXPORT, {"format": "csv"})

    assert response.status_code == 200
    assert response.streaming is True
    assert re.fullmatch(r'attachment; filename="[^"/\\]+\.csv"', response["Content-Disposition"])
    header, rows = _csv(response)
    assert header == CSV_HEADER
    assert len(rows) == len(listed) == len(_org_event_ids(org))
    for row, event in zip(rows, listed, strict=True):
        assert row == {
            "id": event["id"],
            "timestamp": event["timestamp"],
            "organization_id": event["organization_id"],
            "actor_type": event["actor"]["type"],
            "actor_id": event["actor"]["id"],
            "actor_display": event["actor"]["display"],
            "action": event["action"],
            "resource_type": event["resource"]["type"],
            "resource_id": event["resource"]["id"],
            "outcome": event["outcome"],
            "ip": event["ip"] or "",
            "user_agent": event["user_agent"],
            "request_id": event["request_id"],
            "details": row["details"],
            "hash": event["hash"],
            "prev_hash": event["prev_hash"],
        }
        assert json.loads(row["details"]) == event["details"]
        _utc(row["timestamp"])


def test_csv_export_applies_filters(admin_client, dataset):
    response = admin_client.get(EXPORT, {"format": "csv", "resource_type": "image"})

    assert response.status_code == 200
    header, rows = _csv(response)
    assert header == CSV_HEADER
    assert [row["id"] for row in rows] == _expected(dataset, ["e2", "e1"])


def test_csv_export_with_no_match_is_the_header_alone(admin_client, dataset):
    response = admin_client.get(EXPORT, {"format": "csv", "action": "no.such.action"})

    assert response.status_code == 200
    header, rows = _csv(response)
    assert header == CSV_HEADER
    assert rows == []


def test_an_unknown_export_format_is_refused(org, admin_client):
    _invalid(admin_client.get(EXPORT, {"format": "xml"}), "format")


# --- A large export --------------------------------------------------------------------------


def _first_chunk_and_rest(response: Any) -> tuple[bytes, int, bytes]:
    """Return the first streamed chunk, the peak memory traced producing it, and the rest."""
    assert response.status_code == 200
    assert response.streaming is True
    chunks = iter(response.streaming_content)
    tracemalloc.start()
    try:
        first = next(chunks)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return first, peak, b"".join(chunks)


def _all_rows_peak(org: Any) -> int:
    """What holding every one of the organization's events at once costs, traced the same way."""
    tracemalloc.start()
    try:
        everything = list(AuditEvent.objects.filter(organization_id=org.id))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(everything) >= 10_000
    return peak


def test_export_of_ten_thousand_events_streams_them_without_loading_them_all(org, admin_client):
    created = _bulk_events(org, 10_000)
    all_rows_peak = _all_rows_peak(org)

    response = admin_client.get(EXPORT, {"action": "image.uploaded"})
    first, first_chunk_peak, rest = _first_chunk_and_rest(response)

    # Producing the first line must not have read and built every event.
    assert first_chunk_peak < 5 * 1024 * 1024, first_chunk_peak
    assert first_chunk_peak * 4 < all_rows_peak, (first_chunk_peak, all_rows_peak)
    lines = (first + rest).splitlines()
    assert len(lines) == 10_000
    assert json.loads(first)["id"] == created[-1]
    assert [json.loads(line)["id"] for line in lines] == created[::-1]


def test_csv_export_of_ten_thousand_events_streams_them_without_loading_them_all(org, admin_client):
    created = _bulk_events(org, 10_000)
    all_rows_peak = _all_rows_peak(org)

    response = admin_client.get(EXPORT, {"format": "csv", "action": "image.uploaded"})
    first, first_chunk_peak, rest = _first_chunk_and_rest(response)

    assert first_chunk_peak < 5 * 1024 * 1024, first_chunk_peak
    assert first_chunk_peak * 4 < all_rows_peak, (first_chunk_peak, all_rows_peak)
    body = (first + rest).decode()
    assert body.splitlines()[0] == CSV_HEADER
    rows = list(csv.DictReader(io.StringIO(body, newline="")))
    assert [row["id"] for row in rows] == created[::-1]
