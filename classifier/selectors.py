"""What the classifier reports about itself: its providers' health and the models they serve."""

from __future__ import annotations

from typing import Any

import structlog
from django.db.models import QuerySet

from classifier import metrics
from classifier.errors import ProviderError
from classifier.health import STATE_VALUE, provider_health
from classifier.models import Classification, VehicleReport
from classifier.providers import configured_providers
from config.errors import NotFound
from config.ids import Id

logger = structlog.get_logger("vantage.classifier")


def providers_status() -> dict[str, Any]:
    """Return each provider's health, in chain order, and the chain itself."""
    providers = configured_providers()
    statuses = [provider_health(provider.name).status() for provider in providers]
    for status in statuses:
        # A process that only reads the shared record still reports what it saw.
        metrics.PROVIDER_STATE.labels(provider=status.name).set(STATE_VALUE[status.state])
    return {
        "providers": [status.to_dict() for status in statuses],
        "chain": [provider.name for provider in providers],
    }


def models_metadata() -> dict[str, Any]:
    """Return the models of every provider of the chain that can describe its own."""
    models: list[dict[str, Any]] = []
    for provider in configured_providers():
        try:
            models.extend(provider.models())
        except ProviderError as exc:
            logger.warning(
                "classifier_models_unavailable", provider=provider.name, error=exc.message
            )
    return {"models": models}


def classification_get(*, organization_id: Id, classification_id: Id) -> Classification:
    """Return one of the organization's classifications, or raise 404."""
    found = Classification.objects.filter(
        organization_id=organization_id, id=classification_id
    ).first()
    if found is None:
        raise NotFound("This organization has no classification with that id.")
    return found


def vehicle_reports_for(*, organization_id: Id, vehicle_id: str) -> QuerySet[VehicleReport]:
    """Return the organization's reports about one vehicle, newest first."""
    return VehicleReport.objects.filter(
        organization_id=organization_id, vehicle_id=vehicle_id
    ).order_by("-created_at", "-id")
