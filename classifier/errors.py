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


class ProviderError(Exception):
    """A provider could not classify a batch.

    `permanent` says whether the same call could succeed later: a network
    error, a timeout or a server error is transient; a refusal of the request
    itself (bad credentials, a missing model file) is permanent. Either way the
    provider failed, and the chain moves on to the next one.
    """

    def __init__(self, message: str, *, permanent: bool) -> None:
        super().__init__(message)
        self.message = message
        self.permanent = permanent
