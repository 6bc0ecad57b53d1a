"""The classifier's domain errors, each with its status and stable code."""

from __future__ import annotations

from config.errors import ServiceUnavailable

# When to ask again after every provider failed: about one health probe's interval.
RETRY_AFTER_SECONDS = 30


class ClassifierUnavailable(ServiceUnavailable):
    title = "Classifier unavailable"
    default_detail = "No classifier provider could classify the image now; try again shortly."

    def __init__(self) -> None:
        super().__init__(headers={"Retry-After": str(RETRY_AFTER_SECONDS)})
