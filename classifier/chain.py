"""The failover chain: each provider in turn, ejected ones skipped, every outcome recorded."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import structlog
from PIL import Image

from classifier import metrics
from classifier.categories import Classification
from classifier.errors import ProviderError
from classifier.health import HEALTHY, STATE_VALUE, ProviderStatus, provider_health
from classifier.providers import Provider, configured_providers

logger = structlog.get_logger("vantage.classifier")

PROBE_SIZE = 64


def _usable(providers: list[Provider]) -> list[Provider]:
    """Return the providers not ejected, in order; if every one is, the longest ejected of them.

    A chain with nothing to try would fail every request until an ejection
    ends, so the provider ejected first is given another chance.
    """
    statuses = {provider.name: provider_health(provider.name).status() for provider in providers}
    usable = [provider for provider in providers if not statuses[provider.name].ejected]
    if usable:
        return usable
    return [min(providers, key=lambda provider: _ejected_at(statuses[provider.name]))]


def _ejected_at(status: ProviderStatus) -> float:
    return status.ejected_at.timestamp() if status.ejected_at is not None else 0.0


def _others_usable(provider: Provider, providers: list[Provider]) -> bool:
    """Tell whether the chain could still use another provider if this one were ejected."""
    return any(
        not provider_health(other.name).status().ejected
        for other in providers
        if other.name != provider.name
    )


def _attempt(provider: Provider, images: Sequence[Image.Image]) -> list[Classification]:
    """Return the provider's classifications, any failure of it raised as a ProviderError."""
    try:
        results = provider.classify(images)
    except ProviderError:
        raise
    except Exception as exc:
        # A provider's own bug fails this provider, not the whole chain.
        logger.exception("classifier_provider_crashed", provider=provider.name)
        raise ProviderError(f"{type(exc).__name__}: {exc}", permanent=False) from exc
    if len(results) != len(images):
        raise ProviderError(f"{len(results)} results for {len(images)} images", permanent=False)
    return results


def _record(
    provider: Provider, providers: list[Provider], images: Sequence[Image.Image]
) -> list[Classification]:
    """Return the provider's classifications, recording the outcome in its health."""
    health = provider_health(provider.name)
    started = time.perf_counter()
    try:
        results = _attempt(provider, images)
    except ProviderError as exc:
        elapsed = time.perf_counter() - started
        outcome = "permanent" if exc.permanent else "transient"
        metrics.PROVIDER_SECONDS.labels(provider=provider.name).observe(elapsed)
        metrics.PROVIDER_CALLS.labels(provider=provider.name, outcome=outcome).inc()
        health.record_failure(
            elapsed * 1000, exc.message, may_eject=_others_usable(provider, providers)
        )
        raise
    elapsed = time.perf_counter() - started
    metrics.PROVIDER_SECONDS.labels(provider=provider.name).observe(elapsed)
    metrics.PROVIDER_CALLS.labels(provider=provider.name, outcome="success").inc()
    health.record_success(elapsed * 1000)
    return results


def classify_with_failover(images: Sequence[Image.Image]) -> list[Classification]:
    """Return one classification per image from the first provider of the chain that succeeds.

    Raises ProviderError when none does: permanent only if every provider
    was tried and failed permanently, so a job retries whenever a later try
    could succeed.
    """
    if not images:
        return []
    providers = configured_providers()
    usable = _usable(providers)
    errors: list[tuple[str, ProviderError]] = []
    for provider in providers:
        if provider not in usable:
            metrics.FAILOVERS.labels(provider=provider.name, reason="ejected").inc()
            continue
        try:
            results = _record(provider, providers, images)
        except ProviderError as exc:
            errors.append((provider.name, exc))
            metrics.FAILOVERS.labels(provider=provider.name, reason="failed").inc()
            logger.warning(
                "classifier_provider_failed",
                provider=provider.name,
                permanent=exc.permanent,
                error=exc.message[:200],
            )
            continue
        metrics.IMAGES_CLASSIFIED.labels(provider=provider.name).inc(len(results))
        return results
    skipped = len(errors) < len(providers)
    summary = "; ".join(f"{name}: {exc.message}" for name, exc in errors) or "none was tried"
    raise ProviderError(
        f"No classifier provider succeeded ({summary}).",
        permanent=bool(errors) and not skipped and all(exc.permanent for _, exc in errors),
    )


def probe_image() -> Image.Image:
    """Return a small synthetic picture (a colour gradient) that any provider can classify."""
    gradient = Image.linear_gradient("L").resize((PROBE_SIZE, PROBE_SIZE))
    return Image.merge("RGB", (gradient, gradient.rotate(90), gradient.rotate(180)))


@dataclass(frozen=True)
class ProbeResult:
    """A provider's answer to the probe (None if it classified the image) and its health after."""

    status: ProviderStatus
    error: str | None

    @property
    def passed(self) -> bool:
        """Tell whether the provider classified the probe and is healthy."""
        return self.error is None and self.status.state == HEALTHY

    def to_dict(self) -> dict[str, Any]:
        """Return the provider's health with the probe's outcome."""
        return {**self.status.to_dict(), "probe": "ok" if self.error is None else self.error}


def providers_probe() -> list[ProbeResult]:
    """Classify a probe image with every provider, ejected or not, and return the outcomes.

    Probes let an ejected provider prove itself healthy again without waiting
    for its ejection to end.
    """
    providers = configured_providers()
    results = []
    for provider in providers:
        error = None
        try:
            _record(provider, providers, [probe_image()])
        except ProviderError as exc:
            error = exc.message
            logger.warning("classifier_probe_failed", provider=provider.name, error=error[:200])
        status = provider_health(provider.name).status()
        # Every probe reports the state, so a provider healthy all along has its series too.
        metrics.PROVIDER_STATE.labels(provider=status.name).set(STATE_VALUE[status.state])
        results.append(ProbeResult(status, error))
    return results
