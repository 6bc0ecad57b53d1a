"""A Python client generated from the OpenAPI schema, as an API user makes one, works."""

from __future__ import annotations

import importlib
import io
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import call_command
from PIL import Image, ImageColor

from accounts.tests.factories import PASSWORD

GENERATOR = Path(sys.executable).parent / "openapi-python-client"
# The generator types an answer by its media type; image files are bytes to a client.
CONFIG = "content_type_overrides:\n" + "".join(
    f"  {media}: application/octet-stream\n"
    for media in ("image/jpeg", "image/png", "image/webp", "image/gif", "image/bmp")
)


def _jpeg(colour: str) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (96, 64), colour).save(buffer, format="JPEG")
    return buffer.getvalue()


@pytest.fixture
def generated_client(tmp_path, monkeypatch):
    """The `vantage_client` package, generated from the schema this code serves."""
    schema, config = tmp_path / "schema.yaml", tmp_path / "config.yaml"
    call_command("spectacular", file=str(schema))
    config.write_text(CONFIG)
    done = subprocess.run(
        [
            str(GENERATOR),
            "generate",
            "--path",
            str(schema),
            "--meta",
            "none",
            "--output-path",
            str(tmp_path / "vantage_client"),
            "--config",
            str(config),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "WARNING" not in done.stdout, done.stdout
    monkeypatch.syspath_prepend(str(tmp_path))
    return importlib.import_module("vantage_client")


def test_a_generated_client_signs_in_uploads_idempotently_pages_and_downloads(
    generated_client, server_processes, member
):
    from vantage_client.api.auth import auth_token
    from vantage_client.api.images import images_file, images_list, images_upload
    from vantage_client.models import PaginatedImageList, TokenObtainRequest, UploadRequest
    from vantage_client.types import File

    (server,) = server_processes(count=1)
    anonymous = generated_client.Client(base_url=server.url, raise_on_unexpected_status=True)
    pair = auth_token.sync(
        client=anonymous, body=TokenObtainRequest(username=member.username, password=PASSWORD)
    )
    client = generated_client.AuthenticatedClient(base_url=server.url, token=pair.access)

    sent = {}
    for colour in ("red", "green", "blue"):
        body = UploadRequest(
            file=File(
                payload=io.BytesIO(_jpeg(colour)), file_name=f"{colour}.jpg", mime_type="image/jpeg"
            )
        )
        first = images_upload.sync_detailed(client=client, body=body, idempotency_key=colour)
        body.file.payload.seek(0)
        again = images_upload.sync_detailed(client=client, body=body, idempotency_key=colour)
        assert first.status_code == 202
        assert again.parsed.job_id == first.parsed.job_id  # the first answer, given again
        assert first.headers["Location"].endswith(first.parsed.status_url)
        sent[str(first.parsed.image_id)] = ImageColor.getrgb(colour)

    page = images_list.sync(client=client, page_size=2)
    assert isinstance(page, PaginatedImageList)
    assert page.count == 3
    assert len(page.results) == 2
    rest = images_list.sync(client=client, page_size=2, page=2)
    listed = {str(image.id) for image in [*page.results, *rest.results]}
    assert listed == set(sent)

    # The file as kept: the upload itself, or its cleaned copy once a worker ran its job.
    for image_id, colour in sent.items():
        downloaded = images_file.sync(client=client, image_id=image_id)
        with Image.open(io.BytesIO(downloaded.payload.read())) as kept:
            assert kept.size == (96, 64)
            assert kept.convert("RGB").getpixel((48, 32)) == pytest.approx(colour, abs=8)
