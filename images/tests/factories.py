"""factory_boy factories for images: rows only, without stored files."""

import hashlib
import uuid

import factory
from factory.django import DjangoModelFactory

from accounts.tests.factories import OrganizationFactory
from images.models import Image
from images.validation import storage_path_for


class ImageFactory(DjangoModelFactory):
    class Meta:
        model = Image

    id = factory.LazyFunction(uuid.uuid4)
    organization = factory.SubFactory(OrganizationFactory)
    uploaded_by = "user:0"
    uploaded_by_display = "someone"
    filename = factory.Sequence(lambda n: f"photo-{n}.jpg")
    bucket = "default"
    content_type = "image/jpeg"
    size_bytes = 1000
    width = 640
    height = 480
    sha256 = factory.LazyAttribute(
        lambda image: hashlib.sha256(image.filename.encode()).hexdigest()
    )
    original_path = factory.LazyAttribute(
        lambda image: storage_path_for(
            organization_id=image.organization.id,
            image_id=image.id,
            variant="original",
            extension="jpg",
        )
    )
    status = Image.Status.READY
    label = "car"
