"""The audit pages of the dashboard: the log filtered and paged, its exports, the chain check.

Through django.test.Client signed in at /login/, as a browser does it.
"""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import structlog
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from audit.models import AuditEvent
from audit.services import audit_record
from audit.tests.factories import raw_sql
from config.request_context import Actor, ClientInfo, begin_context
from config.testing.http import browser, signed_in_browser

pytestmark = pytest.mark.django_db

ROW = re.compile(r"<tr>\s*<td data-label=\"Time \(UTC\)\"><time")


def record(org: Any, action: str, **fields: Any) -> AuditEvent:
    """Record one event in the organization's chain, as a service does."""
    begin_context(client=ClientInfo(ip="203.0.113.7"), actor=fields.pop("actor", None))
    try:
        return audit_record(
            action=action, organization_id=org.id, organization_display=org.slug, **fields
        )
    finally:
        begin_context(client=ClientInfo())


def rows(response: Any) -> int:
    return len(ROW.findall(response.content.decode()))


def html(response: Any) -> str:
    return response.content.decode()


# --- Who may see it ---------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/audit/", "/audit/verify/", "/audit/?action=auth.login"])
def test_signed_out_the_audit_pages_send_the_browser_to_sign_in(db, path):
    response = browser().get(path)

    assert response.status_code == 302
    assert parse_qs(urlsplit(response["Location"]).query)["next"] == [path]


@pytest.mark.parametrize("path", ["/audit/", "/audit/verify/"])
@pytest.mark.parametrize("login", ["bob", "carol"])
def test_roles_without_audit_read_are_refused(org, member, viewer, path, login):
    response = signed_in_browser(login).get(path)

    assert response.status_code == 403


def test_only_the_organizations_own_events_are_shown(org, other_org, admin, outsider):
    record(org, "test.acme_only")
    record(other_org, "test.globex_only")

    page = html(signed_in_browser("mallory").get("/audit/"))

    assert "test.globex_only" in page
    assert "test.acme_only" not in page


# --- The log ------------------------------------------------------------------------------------


def test_the_log_shows_events_newest_first_with_their_fields(org, admin):
    record(org, "test.first")
    record(
        org,
        "test.second",
        actor=Actor("user", "u-9", "zoe"),
        resource_type="image",
        resource_id="img-42",
        outcome=AuditEvent.Outcome.DENIED,
        details={"why": "no"},
    )

    response = signed_in_browser("alice").get("/audit/")

    assert response.status_code == 200
    page = html(response)
    assert page.index("test.second") < page.index("test.first")
    assert "zoe" in page
    assert "img-42" in page
    assert '<span class="badge denied">denied</span>' in page
    assert "203.0.113.7" in page
    assert "&quot;why&quot;: &quot;no&quot;" in page
    assert "/static/css/pages-accounts.css" in page
    # The sign-in that opened this page is in the log too.
    assert "auth.login" in page


@pytest.mark.parametrize(
    ("query", "shown", "hidden"),
    [
        ("action=test.kept", "test.kept", "test.other"),
        ("outcome=failure", "test.kept", "test.other"),
        ("actor_type=service_token", "test.kept", "test.other"),
        ("actor_id=tok-1", "test.kept", "test.other"),
        ("resource_type=service_token&resource_id=t-1", "test.kept", "test.other"),
        ("request_id=req-kept", "test.kept", "test.other"),
    ],
    ids=["action", "outcome", "actor-type", "actor-id", "resource", "request-id"],
)
def test_filters_narrow_the_log(org, admin, query, shown, hidden):
    structlog.contextvars.bind_contextvars(request_id="req-kept")
    record(
        org,
        "test.kept",
        outcome=AuditEvent.Outcome.FAILURE,
        resource_type="service_token",
        resource_id="t-1",
        actor=Actor("service_token", "tok-1", "ci"),
    )
    structlog.contextvars.clear_contextvars()
    record(org, "test.other", resource_type="service_token", resource_id="t-2")

    response = signed_in_browser("alice").get(f"/audit/?{query}")

    assert response.status_code == 200
    page = html(response)
    assert shown in page.split("<tbody>")[1]
    assert hidden not in page.split("<tbody>")[1]
    assert rows(response) == 1


def test_since_and_until_bound_the_log_and_are_shown_back(org, admin, time_machine):
    time_machine.move_to("2026-03-01T10:00:00Z", tick=False)
    record(org, "test.march")
    time_machine.move_to("2026-04-01T10:00:00Z", tick=False)
    record(org, "test.april")
    time_machine.move_to("2026-05-01T10:00:00Z", tick=False)
    client = signed_in_browser("alice")

    response = client.get("/audit/?since=2026-03-15T00:00&until=2026-04-15T00:00:00Z")

    assert response.status_code == 200
    page = html(response)
    body = page.split("<tbody>")[1]
    assert "test.april" in body
    assert "test.march" not in body
    assert 'value="2026-03-15T00:00:00"' in page
    assert 'value="2026-04-15T00:00:00"' in page


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("outcome=maybe", "Outcome: &quot;maybe&quot; is not a valid choice."),
        ("actor_type=robot", "Actor type: &quot;robot&quot; is not a valid choice."),
        ("since=yesterday", "Since: Datetime has wrong format."),
        ("since=2026-05-01T00:00&until=2026-04-01T00:00", "Until: must be later than since"),
        (f"action={'x' * 65}", "Action can be at most 64 characters."),
    ],
    ids=["outcome", "actor-type", "since", "order", "too-long"],
)
def test_bad_filters_are_shown_as_errors(org, admin, query, message):
    record(org, "test.event")

    response = signed_in_browser("alice").get(f"/audit/?{query}")

    assert response.status_code == 400
    page = html(response)
    assert message in page
    assert "These filters cannot be used:" in page
    assert rows(response) == 0
    assert "export?" not in page


def test_the_log_is_paged_by_cursor(org, admin):
    for n in range(60):
        record(org, f"test.event{n:02}")
    client = signed_in_browser("alice")

    first = client.get("/audit/?action=")
    older = re.search(r'href="([^"]+)" rel="next"', html(first)).group(1)
    second = client.get(older.replace("&amp;", "&"))

    assert rows(first) == 50
    assert "test.event59" in html(first)
    assert "test.event09" not in html(first)
    assert older.startswith("/audit/?")
    # The rest: ten events and the sign-in.
    assert rows(second) == 11
    assert "test.event09" in html(second)
    assert "test.event00" in html(second)
    assert 'rel="prev"' in html(second)
    assert 'rel="next"' not in html(second)


def test_a_forged_cursor_is_not_found(org, admin):
    response = signed_in_browser("alice").get("/audit/?cursor=bm9wZQ")

    assert response.status_code == 404


def test_the_log_costs_the_same_queries_for_many_events(org, admin, django_assert_max_num_queries):
    record(org, "test.one")
    client = signed_in_browser("alice")
    client.get("/audit/")
    with CaptureQueriesContext(connection) as few:
        client.get("/audit/")
    for n in range(40):
        record(org, f"test.event{n}", details={"n": n})

    with django_assert_max_num_queries(len(few)):
        response = client.get("/audit/")

    assert rows(response) == 42


# --- Exports through the browser session -------------------------------------------------------


def test_export_links_carry_the_filters_and_work_with_the_session(org, admin):
    record(org, "test.kept", outcome=AuditEvent.Outcome.FAILURE)
    record(org, "test.other")
    client = signed_in_browser("alice")
    page = html(client.get("/audit/?outcome=failure"))
    links = re.findall(r'href="(/api/v1/audit/events/export\?[^"]+)"', page)
    assert len(links) == 2
    jsonl_link, csv_link = (link.replace("&amp;", "&") for link in links)
    assert parse_qs(urlsplit(jsonl_link).query) == {"outcome": ["failure"], "format": ["jsonl"]}

    jsonl = client.get(jsonl_link)
    as_csv = client.get(csv_link)

    assert jsonl.status_code == 200
    assert jsonl["Content-Type"] == "application/x-ndjson"
    lines = [json.loads(line) for line in b"".join(jsonl.streaming_content).decode().splitlines()]
    assert [line["action"] for line in lines] == ["test.kept"]
    assert as_csv.status_code == 200
    table = list(csv.DictReader(io.StringIO(b"".join(as_csv.streaming_content).decode())))
    assert [row["action"] for row in table] == ["test.kept"]


def test_a_viewers_session_cannot_export(org, viewer):
    response = signed_in_browser("carol").get("/api/v1/audit/events/export?format=csv")

    assert response.status_code == 403


# --- The chain check ----------------------------------------------------------------------------


def test_an_intact_chain_is_reported_intact_with_the_events_checked(org, admin, other_org):
    for n in range(3):
        record(org, f"test.event{n}")
    record(other_org, "test.elsewhere")

    response = signed_in_browser("alice").get("/audit/verify/")

    assert response.status_code == 200
    page = html(response)
    assert "The chain verifies" in page
    # The three events and the sign-in; the other organization's chain is not walked.
    assert "4 events checked" in page


def test_a_tampered_event_is_named_as_the_first_break(org, admin):
    events = [record(org, f"test.event{n}") for n in range(4)]
    raw_sql("UPDATE audit_auditevent SET action = %s WHERE seq = %s", ["x.forged", events[1].seq])

    response = signed_in_browser("alice").get("/audit/verify/")

    assert response.status_code == 200
    page = html(response)
    assert "The chain does not verify" in page
    assert str(events[1].id) in page
    assert f"<dd>{events[1].position}</dd>" in page
    assert "the event was altered" in page
    assert "1 event verified before the first break" in page


def test_a_removed_newest_event_is_reported(org, admin):
    events = [record(org, f"test.event{n}") for n in range(3)]
    client = signed_in_browser("alice")
    raw_sql(
        "DELETE FROM audit_auditevent WHERE chain = %s AND position > %s",
        [str(org.id), events[-1].position - 1],
    )

    page = html(client.get("/audit/verify/"))

    assert "The chain does not verify" in page
    assert "the newest events were removed" in page


def test_the_audit_pages_record_nothing_themselves(org, admin):
    client = signed_in_browser("alice")
    before = AuditEvent.objects.count()

    client.get("/audit/")
    client.get("/audit/verify/")

    assert AuditEvent.objects.count() == before
    assert timezone.now() - AuditEvent.objects.latest("seq").timestamp < timedelta(minutes=1)
