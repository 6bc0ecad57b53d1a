"""The dashboard read as a person reads it, in headless Chromium at 1366 and 390 px: one
verdict in the same words everywhere, numbers that agree, refusals said as sentences,
and who may do what. Real photos (foolbox's ImageNet samples) are uploaded and classified.
"""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command
from playwright.sync_api import expect

from accounts.tests.factories import PASSWORD
from classifier.health import provider_health
from config.tests.browser import sign_in

pytestmark = pytest.mark.django_db(transaction=True)

WIDTHS = pytest.mark.parametrize("width", [1366, 390], ids=["desktop", "phone"])
JEEP, OTHER_JEEP, DOG, ROOF = (
    "imagenet_06_609.jpg",
    "imagenet_07_609.jpg",
    "imagenet_00_243.jpg",
    "imagenet_05_853.jpg",
)
RULE = re.compile(r"Vehicle probability (\d+\.\d%), counted as a vehicle at 30% or more\.")


@pytest.fixture
def media_root(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")


@pytest.fixture
def photos(foolbox_photos: list[Path]) -> dict[str, Path]:
    return {photo.name: photo for photo in foolbox_photos}


def _probability(text: str) -> str:
    found = RULE.search(text)
    assert found, text
    return found.group(1)


def _no_sideways_scroll(page) -> None:
    overflow = page.evaluate(
        "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 0, f"{page.url} scrolls {overflow} px sideways"


def _upload(page, files: list[Path]) -> None:
    page.goto("/upload/", wait_until="load")
    page.locator("#upload-files").set_input_files([str(path) for path in files])
    done = page.locator('#upload-list > li[data-state="succeeded"]')
    expect(done).to_have_count(len(files))


@WIDTHS
@pytest.mark.usefixtures("jobs_run_at_once", "media_root")
def test_the_verdict_and_its_rule_read_the_same_on_upload_image_gallery_and_classify(
    new_page, admin, photos, screenshots, width
):
    page = new_page(width=width)
    sign_in(page, admin.username, PASSWORD)

    _upload(page, [photos[JEEP], photos[DOG]])

    # The quota line follows the files instead of staying at what the page was served with.
    expect(page.locator("#upload-quota")).to_contain_text("uploaded 2 of 10,000 images")
    jeep_row = page.locator("#upload-list > li", has_text=JEEP)
    dog_row = page.locator("#upload-list > li", has_text=DOG)
    expect(jeep_row.locator(".top-label")).to_have_text("A vehicle: car")
    expect(dog_row.locator(".top-label")).to_have_text("Not a vehicle")
    jeep = _probability(jeep_row.inner_text())
    dog = _probability(dog_row.inner_text())
    assert float(jeep[:-1]) >= 30 > float(dog[:-1])
    # No bar of "not a vehicle" outvoting the verdict: the bars are the vehicle kinds.
    bars = page.locator("#upload-list .chart-label").all_inner_texts()
    assert bars
    assert "not a vehicle" not in bars
    assert not any("_" in bar for bar in bars)
    _no_sideways_scroll(page)
    page.screenshot(path=str(screenshots / f"upload-{width}.png"), full_page=True)

    jeep_row.get_by_role("link", name="View image").click()
    verdict = page.locator(".verdict")
    expect(verdict.locator(".top-label")).to_have_text("A vehicle: car")
    assert _probability(verdict.inner_text()) == jeep
    _no_sideways_scroll(page)
    page.screenshot(path=str(screenshots / f"image-{width}.png"), full_page=True)

    page.goto("/images/")
    expect(page.locator(".vehicle-rule")).to_contain_text("counted as a vehicle at 30% or more")
    jeep_card = page.locator(".card", has_text=JEEP)
    expect(jeep_card.locator(".card-label")).to_have_text("car")
    expect(jeep_card.locator(".card-probability")).to_have_text(f"vehicle probability {jeep}")
    dog_card = page.locator(".card", has_text=DOG)
    expect(dog_card.locator(".card-label")).to_have_text("not a vehicle")
    expect(dog_card.locator(".card-probability")).to_have_text(f"vehicle probability {dog}")
    _no_sideways_scroll(page)

    page.goto("/classify/")
    page.locator("#classify-file").set_input_files(str(photos[JEEP]))
    page.get_by_role("button", name="Classify").click()
    verdict = page.locator(".result .verdict")
    expect(verdict.locator(".top-label")).to_have_text("A vehicle: car")
    assert _probability(verdict.inner_text()) == jeep
    _no_sideways_scroll(page)
    page.screenshot(path=str(screenshots / f"classify-{width}.png"), full_page=True)


@WIDTHS
@pytest.mark.usefixtures("jobs_run_at_once", "media_root")
def test_the_weeks_chart_counts_the_kept_images_the_gallery_lists(
    new_page, admin, photos, screenshots, width
):
    page = new_page(width=width)
    sign_in(page, admin.username, PASSWORD)
    _upload(page, [photos[JEEP], photos[OTHER_JEEP], photos[DOG], photos[ROOF]])
    page.goto("/classify/")  # a one-off classification: nothing kept, nothing counted
    page.locator("#classify-file").set_input_files(str(photos[JEEP]))
    page.get_by_role("button", name="Classify").click()
    expect(page.locator(".result .verdict")).to_be_visible()

    page.goto("/")

    chart = page.locator("section[aria-labelledby='categories-heading']")
    expect(chart).to_contain_text("Kept images uploaded since")
    car = chart.locator(".chart li", has_text="car")
    expect(car.locator(".chart-value")).to_have_text("2")
    labels = page.locator("section[aria-labelledby='recent-heading'] td[data-label='Label']")
    assert set(labels.all_inner_texts()) == {"car", "not a vehicle"}
    _no_sideways_scroll(page)
    # The README's pictures (VANTAGE_SCREENSHOTS_DIR=docs/screenshots, this test alone).
    suffix = "" if width == 1366 else "-phone"
    page.screenshot(path=str(screenshots / f"home{suffix}.png"), full_page=True)

    car.get_by_role("link", name="car").click()

    expect(page.locator("#gallery-count")).to_have_text("2 images match these filters.")
    expect(page.locator(".card .card-label")).to_have_text(["car", "car"])
    page.goto("/images/")
    _no_sideways_scroll(page)
    page.screenshot(path=str(screenshots / f"gallery{suffix}.png"), full_page=True)


# Another process classifying, as the worker does, into the same health record.
WORKER_CALLS = """
import django
django.setup()
from classifier.chain import classify_with_failover, probe_image
for _ in range(5):
    classify_with_failover([probe_image()])
"""


@WIDTHS
@pytest.mark.usefixtures("media_root")
def test_the_providers_page_counts_every_process_and_fits_the_screen(
    new_page, admin, photos, screenshots, width
):
    page = new_page(width=width)
    sign_in(page, admin.username, PASSWORD)
    page.goto("/classify/")
    page.locator("#classify-file").set_input_files(str(photos[JEEP]))
    page.get_by_role("button", name="Classify").click()
    expect(page.locator(".result .verdict")).to_be_visible()
    subprocess.run(
        [sys.executable, "-c", WORKER_CALLS],
        cwd=settings.BASE_DIR,
        check=True,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings_test"},
        timeout=120,
    )
    provider_health("onnx").record_failure(
        3.0,
        "the model answered an empty batch after reading the weights file again",
        may_eject=False,
    )

    page.goto("/providers/")
    page.screenshot(path=str(screenshots / f"providers-{width}.png"), full_page=True)

    row = page.locator('tr[data-provider="onnx"]')
    expect(row.locator('[data-label="Requests"]')).to_have_text("7")  # 1 here, 5 there, 1 failed
    expect(row.locator('[data-label="Failures"]')).to_have_text("1")
    last_error = row.locator('[data-label="Last error"]')
    expect(last_error).to_contain_text("empty batch")
    box = last_error.bounding_box()
    assert box is not None
    assert 0 <= box["x"] <= box["x"] + box["width"] <= width
    wrap = page.locator(".table-wrap").first
    assert wrap.evaluate("wrap => wrap.scrollWidth <= wrap.clientWidth"), wrap.evaluate(
        "wrap => [...wrap.querySelectorAll('td, th')].filter(c => c.scrollWidth > c.clientWidth)"
        ".map(c => c.outerHTML.slice(0, 120))"
    )
    _no_sideways_scroll(page)


@WIDTHS
def test_refusals_read_as_sentences_and_scopes_say_what_they_allow(
    new_page, admin, screenshots, width
):
    page = new_page(width=width)
    sign_in(page, admin.username, PASSWORD)
    page.goto("/tokens/new/")
    upload_scope = page.get_by_role("checkbox", name="image:upload")
    expect(upload_scope).to_have_accessible_description("Upload images and classify them.")

    page.get_by_label("Name").fill("nightly-import")
    page.locator("#token-ips").fill("not-an-ip")
    page.get_by_role("button", name="Create token").click()

    errors = page.get_by_role("alert")
    expect(errors).to_contain_text("Choose at least one scope.")
    page.locator('input[name="scopes"][value="image:read"]').check()
    page.get_by_role("button", name="Create token").click()
    expect(page.get_by_role("alert")).to_contain_text(
        "“not-an-ip” is not an IP address or network, such as 203.0.113.0/24."
    )
    _no_sideways_scroll(page)
    page.screenshot(path=str(screenshots / f"token-refused-{width}.png"), full_page=True)


@WIDTHS
@pytest.mark.usefixtures("jobs_run_at_once", "media_root")
def test_a_bad_bucket_is_explained_beside_its_field_and_the_chosen_files_are_kept(
    new_page, admin, photos, screenshots, width
):
    page = new_page(width=width)
    sign_in(page, admin.username, PASSWORD)
    page.goto("/upload/", wait_until="load")
    bucket = page.get_by_label("Bucket")
    reason = page.locator("#upload-bucket-error")

    bucket.fill("Fleet 7")
    expect(reason).to_contain_text("A bucket name is 1 to 64 lowercase letters")
    expect(bucket).to_have_attribute("aria-invalid", "true")
    page.locator("#upload-files").set_input_files([str(photos[JEEP])])
    held = page.locator('#upload-list > li[data-state="held"]')
    expect(held).to_have_count(1)
    expect(page.locator("#upload-held")).to_contain_text("1 file kept")
    _no_sideways_scroll(page)
    page.screenshot(path=str(screenshots / f"upload-bad-bucket-{width}.png"), full_page=True)

    bucket.fill("fleet-7")
    expect(reason).to_be_hidden()
    page.get_by_role("button", name="Upload them").click()
    expect(page.locator('#upload-list > li[data-state="succeeded"]')).to_have_count(1)

    # The server refuses what the browser let through, and says why beside the field too.
    bucket.evaluate("field => field.removeAttribute('pattern')")
    bucket.fill("-fleet")
    expect(reason).to_be_hidden()
    page.locator("#upload-files").set_input_files([str(photos[DOG])])
    expect(reason).to_contain_text("starting with a letter or a digit")
    expect(page.locator('#upload-list > li[data-state="held"]')).to_have_count(1)
    bucket.fill("fleet")
    bucket.press("Enter")
    expect(page.locator('#upload-list > li[data-state="succeeded"]')).to_have_count(2)
    page.goto("/images/?bucket=fleet")
    expect(page.locator("#gallery-count")).to_have_text("1 image match these filters.")


@WIDTHS
def test_the_demo_sign_ins_and_the_members_page_say_each_persons_role_and_groups(
    new_page, screenshots, width
):
    printed = io.StringIO()
    call_command("seed_demo", stdout=printed)
    lines = {line.split()[0]: line for line in printed.getvalue().splitlines() if " / " in line}
    assert (
        "viewer (sees the images); the group editors adds image:delete, image:upload"
        in (lines["carol"])
    )
    password = dict(re.findall(r"^\s*(\w+) / (\S+)", printed.getvalue(), re.M))

    page = new_page(width=width)
    sign_in(page, "alice", password["alice"])
    page.goto("/members/")
    carol = page.locator('tr[data-member="carol"]')
    expect(carol.get_by_label("Role of carol", exact=True)).to_have_value("viewer")
    expect(carol.locator(".member-groups")).to_have_text(
        "editors: adds image:delete, image:upload to the role"
    )
    _no_sideways_scroll(page)
    page.screenshot(path=str(screenshots / f"members-{width}.png"), full_page=True)

    viewer = new_page(width=width)
    sign_in(viewer, "carol", password["carol"])
    expect(viewer.locator("main")).to_contain_text("viewer of")
    viewer.goto("/upload/")  # a viewer, yet the group lets her upload
    expect(viewer.get_by_role("heading", name="Upload images")).to_be_visible()
