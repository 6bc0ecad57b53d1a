"""What an uploaded file must be, and what a refused one is called, as the pages say it."""

from __future__ import annotations

from typing import Any

from django.conf import settings

from accounts.identity.principal import Principal
from images.errors import alternatives, size_text
from images.validation import accepted_formats

# What a person is told when an upload or classification is refused, by problem code;
# the problem's own `detail` follows with the specifics (the limit, the reset time).
REJECTION_MESSAGES: dict[str, str] = {
    "FILE_TOO_LARGE": "File too large.",
    "UNSUPPORTED_MEDIA_TYPE": "Unsupported format.",
    "INVALID_IMAGE": "Unreadable image.",
    "IMAGE_DIMENSIONS_OUT_OF_RANGE": "Dimensions out of range.",
    "QUOTA_EXCEEDED": "Daily upload quota used up.",
    "RATE_LIMIT_EXCEEDED": "Too many requests.",
    "VALIDATION_ERROR": "Not accepted.",
    "IDEMPOTENCY_KEY_REUSED": "Upload key already used for another file.",
    "CONFLICT": "The same upload is still being answered.",
    "NOT_AUTHENTICATED": "Signed out.",
    "AUTHENTICATION_FAILED": "Signed out.",
    "TOKEN_REVOKED": "Session ended.",
    "TOKEN_EXPIRED": "Session ended.",
    "PERMISSION_DENIED": "Not allowed.",
    "AUTHORIZATION_UNAVAILABLE": "Permissions cannot be checked right now.",
    "SERVICE_UNAVAILABLE": "Service unavailable right now.",
    "INSUFFICIENT_STORAGE": "Image storage full right now.",
    "STORAGE_UNAVAILABLE": "Image storage unavailable right now.",
    "INTERNAL_ERROR": "Server error.",
    # Not a problem code: the browser could not reach the server at all.
    "NETWORK_ERROR": "Connection failed.",
}


def upload_rules(principal: Principal) -> dict[str, Any]:
    """Return what an uploaded file must be for the principal, as the pages taking one say it."""
    formats = accepted_formats()
    labels = [image_format.label for image_format in formats]
    return {
        "accept": ",".join(image_format.content_type for image_format in formats),
        "formats": alternatives(labels),
        "max_bytes": principal.limits["max_file_size_bytes"],
        "max_size": size_text(principal.limits["max_file_size_bytes"]),
        "min_dimension": settings.IMAGE_MIN_DIMENSION,
        "max_dimension": settings.IMAGE_MAX_DIMENSION,
    }
