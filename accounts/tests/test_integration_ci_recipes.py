"""The CI/CD recipes of docs/examples, run as a pipeline runs them, against a live server.

Each script runs in a subprocess with only the environment a pipeline would
give it, against a real gunicorn server of the project (`server_processes`)
whose jobs the run's Celery worker (`celery_worker_process`) completes. The
shell recipes need curl and jq on the machine; they are skipped, saying so,
only when one of them is missing.
"""

from __future__ import annotations

import io
import os
import re
import shutil
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from django.conf import settings
from django.core.management import call_command
from PIL import Image as Picture
from PIL import ImageDraw

from accounts.models import Membership, ServiceToken
from accounts.services.organizations import member_update
from accounts.services.token_rotations import CONCURRENT_ROTATION_SECONDS
from accounts.services.tokens import token_create
from accounts.tests.factories import MembershipFactory, OrganizationFactory
from audit.models import AuditEvent
from classifier.categories import LABELS
from config.testing.processes import ServerProcess, WorkerProcess
from images.models import Image, Job

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

EXAMPLES = Path(settings.BASE_DIR) / "docs" / "examples"
SECRET = re.compile(r"sk_[0-9a-f]{64}")
SELF = "/api/v1/tokens/self"
RENEWABLE = ["image:read", "image:upload", "token:self_rotate"]


def _shell_recipe(name: str) -> Any:
    missing = [tool for tool in ("curl", "jq") if shutil.which(tool) is None]
    reason = f"{' and '.join(missing)} not installed: the shell recipes need curl and jq"
    return pytest.param(
        ["/bin/sh", str(EXAMPLES / name)],
        id="sh",
        marks=pytest.mark.skipif(bool(missing), reason=reason),
    )


UPLOAD_RECIPES = [
    _shell_recipe("vantage-upload.sh"),
    pytest.param([sys.executable, str(EXAMPLES / "vantage_upload.py")], id="python"),
]
ROTATE_RECIPES = [
    _shell_recipe("vantage-rotate.sh"),
    pytest.param([sys.executable, str(EXAMPLES / "vantage_rotate.py")], id="python"),
]


# --- The organization, its token, the server and the scripts ------------------------


def pipeline_token(scopes: list[str], *, uploads_per_day: int = 0) -> tuple[str, ServiceToken]:
    """Return the secret and row of a token an admin of a new organization created."""
    org = OrganizationFactory(tier="pro")
    if uploads_per_day:
        call_command(
            "set_org_limits",
            org.slug,
            "--uploads-per-day",
            str(uploads_per_day),
            stdout=io.StringIO(),
        )
    admin = MembershipFactory(organization=org, role="admin").user
    issued = token_create(organization=org, name="ci pipeline", scopes=scopes, created_by=admin)
    return issued.secret, issued.token


@pytest.fixture
def server(server_processes: Any, celery_worker_process: WorkerProcess) -> ServerProcess:
    (started,) = server_processes(count=1)
    return started


def run(
    recipe: list[str], server: ServerProcess, secret: str, *args: str, **env: str
) -> subprocess.CompletedProcess[str]:
    """Run a recipe with only what a pipeline's job would have in its environment."""
    environment = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/tmp"),
        "VANTAGE_URL": server.url,
        "VANTAGE_TOKEN": secret,
        **env,
    }
    return subprocess.run(
        [*recipe, *args],
        env=environment,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )


def report_lines(stdout: str) -> dict[str, tuple[str, str]]:
    """Return the upload report, file name -> (status, detail)."""
    lines = [line.split("\t") for line in stdout.splitlines()]
    assert all(len(fields) == 3 for fields in lines), stdout
    return {name: (status, detail) for name, status, detail in lines}


def picture(index: int, kind: str) -> bytes:
    """Return a small picture, different for each index, encoded as `kind`."""
    width, height = 200 + index * 41, 150 + index * 29
    image = Picture.new("RGB", (width, height), ((index * 71) % 256, 120, (index * 37) % 256))
    draw = ImageDraw.Draw(image)
    draw.rectangle((width // 6, height // 3, width * 5 // 6, height * 2 // 3), fill=(30, 30, 200))
    draw.ellipse((width // 5, height // 2, width // 3, height * 5 // 6), fill=(10, 10, 10))
    buffer = io.BytesIO()
    image.save(buffer, kind)
    return buffer.getvalue()


def image_folder(path: Path, *, bad: bool) -> Path:
    """Fill `path` with three pictures (and a corrupt one when `bad`); return it."""
    path.mkdir()
    (path / "front.jpg").write_bytes(picture(1, "JPEG"))
    (path / "side view.png").write_bytes(picture(2, "PNG"))
    (path / "rear.jpeg").write_bytes(picture(3, "JPEG"))
    if bad:
        (path / "broken.jpg").write_bytes(b"this is not a picture\n" * 20)
    return path


def self_record(server: ServerProcess, secret: str) -> httpx.Response:
    return httpx.get(
        f"{server.url}{SELF}", headers={"Authorization": f"Bearer {secret}"}, timeout=10
    )


def assert_secret_not_in(text: str, *secrets: str) -> None:
    for secret in secrets:
        assert secret not in text
    assert not SECRET.search(text), text


# --- Uploading a folder --------------------------------------------------------------


@pytest.mark.parametrize("recipe", UPLOAD_RECIPES)
def test_upload_of_a_folder_with_a_bad_file_fails_and_reports_the_good_ones_succeeded(
    recipe: list[str], server: ServerProcess, tmp_path: Path
) -> None:
    secret, _ = pipeline_token(["image:upload", "image:read"])
    folder = image_folder(tmp_path / "images", bad=True)

    done = run(recipe, server, secret, str(folder))

    assert done.returncode == 1, done.stderr
    report = report_lines(done.stdout)
    assert set(report) == {"front.jpg", "side view.png", "rear.jpeg", "broken.jpg"}
    for name in ("front.jpg", "side view.png", "rear.jpeg"):
        status, label = report[name]
        assert status == "succeeded", report
        assert label in LABELS
    status, reason = report["broken.jpg"]
    assert status == "rejected"
    assert reason.split(":")[0] in ("INVALID_IMAGE", "UNSUPPORTED_MEDIA_TYPE"), reason
    assert Job.objects.filter(status=Job.Status.SUCCEEDED).count() == 3
    assert Job.objects.count() == 3
    assert_secret_not_in(done.stdout + done.stderr, secret)


@pytest.mark.parametrize("recipe", UPLOAD_RECIPES)
def test_upload_of_good_images_succeeds_and_a_rerun_uploads_nothing_again(
    recipe: list[str], server: ServerProcess, tmp_path: Path
) -> None:
    secret, _ = pipeline_token(["image:upload", "image:read"])
    folder = image_folder(tmp_path / "images", bad=False)

    first = run(recipe, server, secret, str(folder), "release-42")

    assert first.returncode == 0, first.stderr
    assert {status for status, _ in report_lines(first.stdout).values()} == {"succeeded"}
    jobs = set(Job.objects.values_list("id", flat=True))
    assert len(jobs) == 3
    assert set(Image.objects.values_list("bucket", flat=True)) == {"release-42"}

    again = run(recipe, server, secret, str(folder), "release-42")

    assert again.returncode == 0, again.stderr
    assert report_lines(again.stdout) == report_lines(first.stdout)
    assert set(Job.objects.values_list("id", flat=True)) == jobs
    assert Image.objects.count() == 3


@pytest.mark.parametrize("recipe", UPLOAD_RECIPES)
def test_upload_with_a_token_lacking_image_upload_fails_without_uploading(
    recipe: list[str], server: ServerProcess, tmp_path: Path
) -> None:
    secret, _ = pipeline_token(["image:read"])
    folder = image_folder(tmp_path / "images", bad=False)

    done = run(recipe, server, secret, str(folder))

    assert done.returncode == 1
    assert "PERMISSION_DENIED" in done.stderr
    assert done.stdout == ""
    assert not Job.objects.exists()
    assert_secret_not_in(done.stderr, secret)


@pytest.mark.parametrize("recipe", UPLOAD_RECIPES)
def test_upload_past_the_daily_quota_reports_the_refused_file_without_waiting_for_tomorrow(
    recipe: list[str], server: ServerProcess, tmp_path: Path
) -> None:
    secret, _ = pipeline_token(["image:upload", "image:read"], uploads_per_day=2)
    folder = image_folder(tmp_path / "images", bad=False)

    done = run(recipe, server, secret, str(folder), VANTAGE_MAX_RETRY_WAIT="5")

    assert done.returncode == 1, done.stderr
    report = report_lines(done.stdout).values()
    assert sorted(status for status, _ in report) == ["rejected", "succeeded", "succeeded"]
    for status, detail in report:
        assert detail.startswith("QUOTA_EXCEEDED:") if status == "rejected" else detail in LABELS
    assert Job.objects.count() == 2


# --- Renewing the token --------------------------------------------------------------


def rotated_secret(done: subprocess.CompletedProcess[str], *old: str) -> str:
    """Return the successor a successful run printed: its stdout's one line, and all of it."""
    assert done.returncode == 0, done.stderr
    assert SECRET.fullmatch(done.stdout.removesuffix("\n")), done.stdout
    secret = done.stdout.strip()
    assert_secret_not_in(done.stderr, secret, *old)
    return secret


@pytest.mark.parametrize("recipe", ROTATE_RECIPES)
def test_rotate_prints_only_a_working_successor_and_the_old_token_works_within_grace(
    recipe: list[str], server: ServerProcess
) -> None:
    secret, token = pipeline_token(RENEWABLE)
    not_due = run(recipe, server, secret)  # 90 days left; rotation is due within 14
    assert (not_due.returncode, not_due.stdout) == (0, ""), not_due.stderr
    assert ServiceToken.objects.count() == 1

    done = run(recipe, server, secret, "--force", VANTAGE_GRACE_SECONDS="600")

    successor_secret = rotated_secret(done, secret)
    assert successor_secret != secret
    new = self_record(server, successor_secret)
    assert new.status_code == 200, new.text
    assert new.json()["status"] == "active"
    assert (new.json()["name"], sorted(new.json()["scopes"])) == ("ci pipeline", RENEWABLE)
    old = self_record(server, secret)
    assert old.status_code == 200, old.text
    assert old.json()["status"] == "rotating"
    grace_left = datetime.fromisoformat(old.json()["grace_until"]).timestamp() - time.time()
    assert 500 < grace_left <= 600
    assert ServiceToken.objects.get(id=new.json()["id"]).rotated_from_id == token.id


@pytest.mark.parametrize("recipe", ROTATE_RECIPES)
def test_a_scheduled_run_with_the_rotated_token_fails_without_touching_the_family(
    recipe: list[str], server: ServerProcess
) -> None:
    secret, _ = pipeline_token(RENEWABLE)
    successor_secret = rotated_secret(
        run(recipe, server, secret, VANTAGE_ROTATE_DAYS="100"), secret
    )

    stale = run(recipe, server, secret, VANTAGE_ROTATE_DAYS="100")

    assert (stale.returncode, stale.stdout) == (1, ""), stale.stderr
    assert "rotated already" in stale.stderr
    assert_secret_not_in(stale.stderr, secret, successor_secret)
    assert self_record(server, secret).json()["status"] == "rotating"
    assert self_record(server, successor_secret).json()["status"] == "active"
    assert ServiceToken.objects.count() == 2
    assert not AuditEvent.objects.filter(action="token.rotation_reuse_detected").exists()


@pytest.mark.parametrize("recipe", ROTATE_RECIPES)
def test_rotating_again_with_the_old_token_revokes_the_family_and_fails(
    recipe: list[str], server: ServerProcess
) -> None:
    secret, _ = pipeline_token(RENEWABLE)
    successor_secret = rotated_secret(run(recipe, server, secret, "--force"), secret)
    # A second rotation moments after the first would be taken for the same one, retried.
    time.sleep(CONCURRENT_ROTATION_SECONDS + 1)

    again = run(recipe, server, secret, "--force")

    assert (again.returncode, again.stdout) == (1, "")
    assert "TOKEN_REVOKED" in again.stderr
    assert "must create a new token" in again.stderr
    assert_secret_not_in(again.stderr, secret, successor_secret)
    for presented in (secret, successor_secret):
        refused = self_record(server, presented)
        assert refused.status_code == 401
        assert refused.json()["code"] == "TOKEN_REVOKED"
    assert AuditEvent.objects.filter(action="token.rotation_reuse_detected").count() == 1
    with_successor = run(recipe, server, successor_secret, "--force")
    assert (with_successor.returncode, with_successor.stdout) == (1, "")
    assert "TOKEN_REVOKED" in with_successor.stderr
    assert ServiceToken.objects.count() == 2


@pytest.mark.parametrize("recipe", ROTATE_RECIPES)
def test_rotate_without_self_rotation_fails_and_issues_nothing(
    recipe: list[str], server: ServerProcess
) -> None:
    lacking, _ = pipeline_token(["image:read"])
    # The scope is held, but the creator no longer holds token:manage, which it counts as.
    secret, token = pipeline_token(RENEWABLE)
    MembershipFactory(organization=token.organization, role="admin")
    member_update(membership=Membership.objects.get(user=token.created_by), role="user")

    for presented, reason in ((lacking, "lacks the scope"), (secret, "PERMISSION_DENIED")):
        done = run(recipe, server, presented, "--force")

        assert (done.returncode, done.stdout) == (1, ""), done.stderr
        assert reason in done.stderr
        assert "token:self_rotate" in done.stderr
        assert_secret_not_in(done.stderr, presented)
    assert ServiceToken.objects.count() == 2
