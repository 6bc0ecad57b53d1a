"""The providers CLASSIFIER_PROVIDERS names, in order, each loaded on first use."""

from __future__ import annotations

import threading

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string

from classifier.errors import ProviderError
from classifier.providers.base import Provider

__all__ = ["Provider", "ProviderError", "configured_providers", "provider_named"]

SHORT_NAMES = {
    "onnx": "classifier.providers.onnx.OnnxProvider",
    "remote": "classifier.providers.remote.RemoteProvider",
}

_providers: dict[str, Provider] = {}
_providers_lock = threading.Lock()


def _load(entry: str) -> Provider:
    path = SHORT_NAMES.get(entry, entry)
    try:
        provider_class = import_string(path)
    except ImportError as exc:
        raise ImproperlyConfigured(f"CLASSIFIER_PROVIDERS names {entry!r}: {exc}") from exc
    if not (isinstance(provider_class, type) and issubclass(provider_class, Provider)):
        raise ImproperlyConfigured(f"CLASSIFIER_PROVIDERS: {path} is not a Provider class.")
    provider = provider_class()
    # A provider given by its dotted path is known by that path unless it names itself.
    provider.name = provider.name or path
    return provider


def provider_named(entry: str) -> Provider:
    """Return this process's instance of the provider a CLASSIFIER_PROVIDERS entry names."""
    with _providers_lock:
        if entry not in _providers:
            _providers[entry] = _load(entry)
        return _providers[entry]


def configured_providers() -> list[Provider]:
    """Return the failover chain: the providers of CLASSIFIER_PROVIDERS, in order."""
    raw = settings.CLASSIFIER_PROVIDERS
    entries = [entry.strip() for entry in (raw.split(",") if isinstance(raw, str) else raw)]
    entries = [entry for entry in entries if entry]
    if not entries:
        raise ImproperlyConfigured("CLASSIFIER_PROVIDERS names no provider.")
    return [provider_named(entry) for entry in entries]
