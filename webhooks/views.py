"""The webhooks pages of the dashboard: endpoints, their secret shown once, and delivery log."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from accounts.authz.pages import dashboard_page, signed_in_principal
from accounts.selectors import organization_get
from accounts.views.forms import FORM_REFUSALS, form_data, post_only, refusal_messages
from config.errors import DomainError
from webhooks.api.serializers import EndpointCreateSerializer, EndpointUpdateSerializer
from webhooks.events import EVENT_TYPES, SUBSCRIBABLE
from webhooks.models import WebhookEndpoint
from webhooks.selectors import delivery_get, delivery_list, endpoint_get, endpoint_list
from webhooks.services import deliveries, endpoints
from webhooks.services.endpoints import IssuedSecret

MANAGE = "webhook:manage"
DELIVERIES_PER_PAGE = 25
STATUSES = ("pending", "succeeded", "failed")


def _choices() -> list[tuple[str, str]]:
    return [(name, EVENT_TYPES[name]) for name in SUBSCRIBABLE]


def _endpoints_render(
    request: HttpRequest,
    *,
    status: int = 200,
    values: dict[str, Any] | None = None,
    errors: list[str] | None = None,
) -> HttpResponse:
    principal = signed_in_principal(request)
    context = {
        "endpoints": endpoint_list(organization_id=principal.organization_id),
        "event_types": _choices(),
        "values": values or {"event_types": ["job.succeeded", "job.failed"]},
        "errors": errors or [],
    }
    return render(request, "webhooks/endpoints.html", context, status=status)


def _secret_render(request: HttpRequest, issued: IssuedSecret, *, rotated: bool) -> HttpResponse:
    context = {"endpoint": issued.endpoint, "secret": issued.secret, "rotated": rotated}
    # Never cached: dashboard pages answer `Cache-Control: no-store` (dashboard_page).
    return render(request, "webhooks/secret.html", context)


@dashboard_page(MANAGE, step_up=True)
def endpoints_page(request: HttpRequest) -> HttpResponse:
    """The organization's endpoints and a form to register one (its secret shown once)."""
    if request.method != "POST":
        return _endpoints_render(request)
    principal = signed_in_principal(request)
    values = {
        "url": request.POST.get("url", "").strip(),
        "description": request.POST.get("description", "").strip(),
        "event_types": request.POST.getlist("event_types"),
    }
    try:
        data = form_data(EndpointCreateSerializer, values)
        issued = endpoints.endpoint_create(
            organization=organization_get(organization_id=principal.organization_id),
            url=data["url"],
            description=data.get("description", ""),
            event_types=data["event_types"],
            created_by_id=principal.user_id,
        )
    except FORM_REFUSALS as exc:
        return _endpoints_render(
            request, status=exc.status, values=values, errors=refusal_messages(exc)
        )
    return _secret_render(request, issued, rotated=False)


def _endpoint_render(
    request: HttpRequest,
    endpoint: WebhookEndpoint,
    *,
    status: int = 200,
    errors: list[str] | None = None,
) -> HttpResponse:
    wanted = request.GET.get("status", "")
    found = delivery_list(endpoint=endpoint, status=wanted if wanted in STATUSES else None)
    page = Paginator(found, DELIVERIES_PER_PAGE).get_page(request.GET.get("page"))
    context = {
        "endpoint": endpoint,
        "page": page,
        "status_filter": wanted,
        "event_types": _choices(),
        "errors": errors or [],
    }
    return render(request, "webhooks/endpoint.html", context, status=status)


def _endpoint(request: HttpRequest, endpoint_id: UUID) -> WebhookEndpoint:
    principal = signed_in_principal(request)
    return endpoint_get(organization_id=principal.organization_id, endpoint_id=str(endpoint_id))


@dashboard_page(MANAGE)
def endpoint_page(request: HttpRequest, endpoint_id: UUID) -> HttpResponse:
    """One endpoint: its settings, and its delivery log with each attempt."""
    return _endpoint_render(request, _endpoint(request, endpoint_id))


@dashboard_page(MANAGE, step_up=True)
@post_only("/webhooks/{endpoint_id}/")
def endpoint_change_page(request: HttpRequest, endpoint_id: UUID) -> HttpResponse:
    """Change the address, description, event types, or enable or disable the endpoint."""
    endpoint = _endpoint(request, endpoint_id)
    values: dict[str, Any] = {}
    if "enabled" in request.POST:
        values["enabled"] = request.POST["enabled"]
    else:
        values = {
            "url": request.POST.get("url", "").strip(),
            "description": request.POST.get("description", "").strip(),
            "event_types": request.POST.getlist("event_types"),
        }
    try:
        data = form_data(EndpointUpdateSerializer, values)
        endpoints.endpoint_update(endpoint=endpoint, **data)
    except FORM_REFUSALS as exc:
        return _endpoint_render(request, endpoint, status=exc.status, errors=refusal_messages(exc))
    messages.success(request, "The endpoint was saved.")
    return redirect(f"/webhooks/{endpoint.id}/")


@dashboard_page(MANAGE, step_up=True)
@post_only("/webhooks/{endpoint_id}/")
def endpoint_rotate_page(request: HttpRequest, endpoint_id: UUID) -> HttpResponse:
    """A new signing secret, shown once; the previous one signs too for the overlap."""
    issued = endpoints.endpoint_secret_rotate(endpoint=_endpoint(request, endpoint_id))
    return _secret_render(request, issued, rotated=True)


@dashboard_page(MANAGE)
@post_only("/webhooks/{endpoint_id}/")
def endpoint_ping_page(request: HttpRequest, endpoint_id: UUID) -> HttpResponse:
    """Send a test ping; it shows in the log once a worker has sent it."""
    endpoint = _endpoint(request, endpoint_id)
    try:
        deliveries.endpoint_ping(endpoint=endpoint)
    except DomainError as exc:
        return _endpoint_render(request, endpoint, status=exc.status, errors=[exc.detail])
    messages.success(request, "A test ping is on its way; reload to see how it went.")
    return redirect(f"/webhooks/{endpoint.id}/")


@dashboard_page(MANAGE)
@post_only("/webhooks/{endpoint_id}/")
def delivery_resend_page(
    request: HttpRequest, endpoint_id: UUID, delivery_id: UUID
) -> HttpResponse:
    """Send a delivery's event again, with the same webhook-id."""
    endpoint = _endpoint(request, endpoint_id)
    delivery = delivery_get(endpoint=endpoint, delivery_id=str(delivery_id))
    try:
        deliveries.delivery_resend(delivery=delivery)
    except DomainError as exc:
        return _endpoint_render(request, endpoint, status=exc.status, errors=[exc.detail])
    messages.success(request, f"The {delivery.event.type} event is sent again.")
    return redirect(f"/webhooks/{endpoint.id}/")


@dashboard_page(MANAGE)
@post_only("/webhooks/{endpoint_id}/")
def endpoint_delete_page(request: HttpRequest, endpoint_id: UUID) -> HttpResponse:
    """Delete the endpoint with its pending deliveries and log."""
    endpoint = _endpoint(request, endpoint_id)
    endpoints.endpoint_delete(endpoint=endpoint)
    messages.success(request, f"The endpoint {endpoint.url} was deleted.")
    return redirect("/webhooks/")
