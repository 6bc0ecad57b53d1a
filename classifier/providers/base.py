"""The one interface every classifier provider implements, and the error it raises."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any

from PIL import Image

from classifier.categories import Classification


class Provider(ABC):
    """A classifier back end: classifies batches of images and describes its models."""

    name: str = ""

    @abstractmethod
    def classify(self, images: Sequence[Image.Image]) -> list[Classification]:
        """Return one classification per image, in order, or raise ProviderError.

        The images were opened and validated upstream and may still be
        undecoded; a provider may decode them in place at a reduced size.
        """

    def models(self) -> list[dict[str, Any]]:
        """Return the metadata of the models this provider serves, as far as it can tell."""
        return []
