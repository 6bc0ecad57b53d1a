"""The images pages of the dashboard: home, upload, the gallery, one image and its deletion.

They call the same selectors and services as the images API, so a page can
never allow or show what the API would not.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from urllib.parse import urlencode

from django.contrib import messages
from django.core.paginator import Paginator
from django.db.models.fields.json import KT
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods

from accounts.authz.pages import dashboard_page, may, signed_in_principal
from accounts.identity.principal import Principal
from accounts.services.quotas import quota_day_bounds, uploads_today
from classifier.categories import LABELS, NOT_VEHICLE
from classifier.labels import LABEL_NAMES, Bar, label_name, labels_for_script, vehicle_rule, verdict
from images.api.serializers import BUCKET_PATTERN, BUCKET_RULE, ImageFiltersSerializer
from images.errors import size_text
from images.models import Image
from images.selectors import (
    image_counts_by_status,
    image_get,
    image_label_counts_since,
    images_for,
    job_counts_by_status,
    jobs_for_image,
    jobs_recent,
)
from images.services import image_delete
from images.upload_rules import REJECTION_MESSAGES, upload_rules

GALLERY_PAGE_SIZE = 24
RECENT_JOBS = 8
CHART_DAYS = 7
IMAGE_JOBS_SHOWN = 5
QUOTA_WARNING_PERCENT = 80

# What each gallery filter accepts, said for people (the API's messages are terse).
FILTER_HINTS = {
    "bucket": BUCKET_RULE,
    "label": "A label is lowercase letters and '_', such as car or not_vehicle.",
    "status": f"Choose one of: {', '.join(Image.Status.values)}.",
    "uploaded_after": "Give a date (YYYY-MM-DD) or a date and time.",
    "uploaded_before": "Give a date (YYYY-MM-DD) or a date and time.",
}


def _gallery_url(label: str, since: date) -> str:
    """Return the gallery filtered to one label's images uploaded since a day."""
    query = urlencode({"label": label, "uploaded_after": since.isoformat()})
    return f"{reverse('gallery-page')}?{query}"


def _count_bars(counts: Mapping[str, int], *, since: date) -> list[Bar]:
    """Return counts of images by label as bars, the largest one full length, each
    linking to the gallery's images it counts."""
    largest = max(counts.values(), default=0) or 1
    return [
        Bar(
            label_name(label),
            f"{total:,}",
            round(total * 100 / largest, 2),
            _gallery_url(label, since),
        )
        for label, total in counts.items()
    ]


def _html_pattern(pattern: str) -> str:
    """Return an anchored regular expression as an HTML `pattern` attribute (the `v` flag)."""
    # The attribute is implicitly anchored, and with the `v` flag a class's literal '-'
    # must be escaped.
    return pattern.removeprefix("^").removesuffix("$").replace("-]", r"\-]")


def _quota(principal: Principal) -> dict[str, Any]:
    used = uploads_today(organization_id=principal.organization_id)
    limit = principal.limits["uploads_per_day"]
    _, resets_at = quota_day_bounds()
    percent = round(min(100.0, used * 100 / limit), 2) if limit else 100.0
    tone = "bad" if percent >= 100 else "warn" if percent >= QUOTA_WARNING_PERCENT else ""
    return {
        "used": f"{used:,}",
        "limit": f"{limit:,}",
        "remaining": f"{max(0, limit - used):,}",
        "percent": percent,
        "tone": tone,
        "resets_at": resets_at,
    }


@dashboard_page()
@require_GET
def home_page(request: HttpRequest) -> HttpResponse:
    """The organization at a glance; without image:read, what the principal may do instead."""
    principal = signed_in_principal(request)
    context: dict[str, Any] = {"permissions": sorted(principal.permissions)}
    if not may(principal, "image:read"):
        return render(request, "images/home_limited.html", context)
    org = principal.organization_id
    # Whole days, so that the gallery's date filter lists exactly the images counted.
    since = timezone.now().date() - timedelta(days=CHART_DAYS - 1)
    since_moment = datetime.combine(since, time.min, tzinfo=UTC)
    seen = image_label_counts_since(organization_id=org, since=since_moment)
    image_counts = image_counts_by_status(organization_id=org)
    job_counts = job_counts_by_status(organization_id=org)
    context.update(
        image_counts={status: f"{total:,}" for status, total in image_counts.items()},
        image_total=f"{sum(image_counts.values()):,}",
        job_counts={status: f"{total:,}" for status, total in job_counts.items()},
        job_total=f"{sum(job_counts.values()):,}",
        jobs=jobs_recent(organization_id=org, limit=RECENT_JOBS),
        quota=_quota(principal),
        categories=_count_bars({k: v for k, v in seen.items() if k != NOT_VEHICLE}, since=since),
        not_vehicle=f"{seen.get(NOT_VEHICLE, 0):,}",
        not_vehicle_url=_gallery_url(NOT_VEHICLE, since),
        chart_since=since,
        chart_days=CHART_DAYS,
        may_upload=may(principal, "image:upload"),
    )
    return render(request, "images/home.html", context)


@dashboard_page("image:upload")
@require_GET
def upload_page(request: HttpRequest) -> HttpResponse:
    """Drop or choose images; the page's script sends each to the upload API and follows its job."""
    principal = signed_in_principal(request)
    context = {
        **upload_rules(principal),
        "upload_url": reverse("image-upload"),
        "bucket_pattern": _html_pattern(BUCKET_PATTERN),
        "bucket_rule": BUCKET_RULE,
        "quota": _quota(principal),
        "messages_by_code": REJECTION_MESSAGES,
        "labels": labels_for_script(),
        "limits_url": reverse("image-limits"),
    }
    return render(request, "images/upload.html", context)


def _filter_errors(errors: Mapping[str, Any], values: Mapping[str, str]) -> dict[str, str]:
    """Return the filters' errors as people read them, each saying what the field accepts."""
    found = {}
    for field, problems in errors.items():
        hint = FILTER_HINTS.get(field) or " ".join(str(problem) for problem in problems)
        found[field] = f'"{values.get(field, "")}" cannot be used. {hint}'
    return found


@dashboard_page("image:read")
@require_GET
def gallery_page(request: HttpRequest) -> HttpResponse:
    """The organization's images as thumbnails, newest first, filtered as the API filters."""
    principal = signed_in_principal(request)
    filters = ImageFiltersSerializer(data=request.GET)
    context: dict[str, Any] = {
        "values": {field: request.GET.get(field, "") for field in FILTER_HINTS},
        "labels": list(LABEL_NAMES.items()),
        "vehicle_rule": vehicle_rule(),
        "label_values": LABELS,
        "statuses": Image.Status.values,
        "filtered": any(request.GET.get(field) for field in FILTER_HINTS),
        "may_upload": may(principal, "image:upload"),
    }
    if not filters.is_valid():
        context["errors"] = _filter_errors(filters.errors, context["values"])
        return render(request, "images/gallery.html", context, status=400)
    images = images_for(
        organization_id=principal.organization_id, filters=filters.validated_data
    ).defer("classification")
    # Only the vehicle probability of each card's classification is read, not the whole of it.
    images = images.annotate(vehicle_probability=KT("classification__vehicle_probability"))
    context["page"] = Paginator(images, GALLERY_PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "images/gallery.html", context)


@dashboard_page("image:read")
@require_GET
def image_page(request: HttpRequest, image_id: uuid.UUID) -> HttpResponse:
    """One image: the picture, its predictions, its metadata and jobs, and its download."""
    principal = signed_in_principal(request)
    image = image_get(organization_id=principal.organization_id, image_id=image_id)
    classification: dict[str, Any] = image.classification or {}
    jobs = jobs_for_image(organization_id=principal.organization_id, image_id=image.id)
    context = {
        "image": image,
        "classification": classification,
        "verdict": verdict(classification) if classification else None,
        "jobs": list(jobs[:IMAGE_JOBS_SHOWN]),
        "size": f"{size_text(image.size_bytes)} ({image.size_bytes:,} bytes)",
        "file_url": reverse("image-file", args=[image.id]),
        "may_delete": may(principal, "image:delete"),
    }
    return render(request, "images/image.html", context)


@dashboard_page("image:delete")
@require_http_methods(["GET", "POST"])
def image_delete_page(request: HttpRequest, image_id: uuid.UUID) -> HttpResponse:
    """Ask to confirm; on the confirming POST delete the image and return to the gallery."""
    principal = signed_in_principal(request)
    image = image_get(organization_id=principal.organization_id, image_id=image_id)
    if request.method == "POST":
        image_delete(image=image)
        messages.success(request, f"Deleted {image.filename}.")
        return redirect("gallery-page")
    return render(request, "images/image_delete.html", {"image": image})
