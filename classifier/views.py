"""The classifier pages of the dashboard: classify one image now, and the providers' health.

They call the same services and selectors as the classifier API, behind the
same upload guard and rate limit.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.dateparse import parse_datetime
from django.views.decorators.csrf import csrf_exempt, csrf_protect
from django.views.decorators.http import require_GET, require_http_methods

from accounts.authz.pages import dashboard_page, signed_in_principal
from accounts.identity.principal import Principal
from accounts.ratelimits.limits import (
    DEFAULT_RULE,
    rate_limit_hit,
    request_windows,
)
from classifier.api.serializers import ClassifySerializer
from classifier.health import thresholds
from classifier.labels import verdict
from classifier.models import Classification
from classifier.selectors import providers_status
from classifier.services import vehicle_classify
from config.errors import DomainError, InvalidInput
from images.upload_rules import REJECTION_MESSAGES, upload_rules
from images.uploads import upload_size_guard

PROVIDER_MOMENTS = ("last_success_at", "last_failure_at", "ejected_until")


def _rate_limit_count(principal: Principal) -> None:
    """Count the classification against the principal's API rate limit, as the API does."""
    if not settings.RATE_LIMIT_ENABLED:
        return
    tier, windows = request_windows(rule=DEFAULT_RULE, principal=principal, client_ip=None)
    outcome = rate_limit_hit(tier=tier, windows=windows)
    if not outcome.allowed:
        raise outcome.refusal()


def _classify_form(
    request: HttpRequest,
    *,
    classification: Classification | None = None,
    filename: str = "",
    error: DomainError | None = None,
) -> HttpResponse:
    context: dict[str, Any] = {
        **upload_rules(signed_in_principal(request)),
        "classification": classification,
        "filename": filename,
        "error": error,
    }
    if classification is not None:
        context["verdict"] = verdict(
            {
                "is_vehicle": classification.is_vehicle,
                "top_label": classification.top_label,
                "vehicle_probability": classification.vehicle_probability,
                "predictions": classification.predictions.get("categories", []),
            }
        )
        context["imagenet"] = [
            {**entry, "percent": f"{float(entry.get('confidence', 0)) * 100:.1f}%"}
            for entry in classification.predictions.get("imagenet", [])
        ]
    if error is not None:
        context["error_message"] = REJECTION_MESSAGES.get(error.code, "The image was refused.")
        context["retry_after"] = error.headers.get("Retry-After")
    response = render(
        request,
        "classifier/classify.html",
        context,
        status=error.status if error is not None else 200,
    )
    if error is not None and "Retry-After" in error.headers:
        response["Retry-After"] = error.headers["Retry-After"]
    return response


@csrf_protect
def _classify_posted(request: HttpRequest, *, principal: Principal) -> HttpResponse:
    form = ClassifySerializer(data=request.FILES)
    if not form.is_valid():
        problem = form.errors["file"][0]
        raise InvalidInput(str(problem), field="file", code=getattr(problem, "code", "invalid"))
    upload = form.validated_data["file"]
    classification = vehicle_classify(principal=principal, file=upload, filename=upload.name)
    return _classify_form(request, classification=classification, filename=upload.name)


# CSRF is checked by _classify_posted, once the upload guard limits what reading the form reads.
@csrf_exempt
@dashboard_page("image:upload")
@require_http_methods(["GET", "POST"])
def classify_page(request: HttpRequest) -> HttpResponse:
    """Classify one uploaded image now and show the predictions; the image is not kept."""
    principal = signed_in_principal(request)
    if request.method != "POST":
        return _classify_form(request)
    try:
        _rate_limit_count(principal)
        upload_size_guard(request, principal)
        return _classify_posted(request, principal=principal)
    except DomainError as exc:
        return _classify_form(request, error=exc)


def _provider_row(status: dict[str, Any]) -> dict[str, Any]:
    moments = {
        name: parse_datetime(status[name]) if status[name] else None for name in PROVIDER_MOMENTS
    }
    return {**status, **moments}


@dashboard_page("metrics:read")
@require_GET
def providers_page(request: HttpRequest) -> HttpResponse:
    """Each classifier provider's health, in the order the failover chain tries them."""
    status = providers_status()
    context = {
        "providers": [_provider_row(provider) for provider in status["providers"]],
        "chain": status["chain"],
        "thresholds": thresholds(),
    }
    return render(request, "classifier/providers.html", context)
