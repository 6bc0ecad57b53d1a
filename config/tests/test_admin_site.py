"""Django admin: staff sign in through the dashboard, others are told what admin is, and the
pipeline's rows are there to read."""

import pytest
from django.test import Client

from accounts.tests.factories import PASSWORD
from audit.models import AuditEvent
from images.models import Image, Job
from images.tests.factories import ImageFactory

pytestmark = pytest.mark.django_db


def _browser_of(user) -> Client:
    browser = Client()
    response = browser.post("/login/", {"username": user.username, "password": PASSWORD})
    assert response.status_code == 302
    return browser


def test_a_signed_in_member_who_is_not_staff_is_told_what_admin_is(admin):
    browser = _browser_of(admin)
    response = browser.get("/admin/", follow=True)
    assert response.redirect_chain == [("/admin/login/?next=/admin/", 302)]
    assert response.status_code == 403
    page = response.content.decode()
    assert "Django admin is for staff" in page
    assert "dashboard" in page


def test_a_visitor_is_sent_to_the_dashboard_sign_in_and_back_to_admin():
    response = Client().get("/admin/accounts/user/", follow=True)
    assert response.redirect_chain[-1] == ("/login/?next=%2Fadmin%2Faccounts%2Fuser%2F", 302)
    assert response.status_code == 200


def test_the_admin_sign_in_never_sends_elsewhere_than_admin():
    response = Client().get("/admin/login/?next=https://evil.example/")
    assert response["Location"] == "/login/?next=%2Fadmin%2F"


def test_admin_lists_groups_once(staff_browser):
    page = staff_browser.get("/admin/").content.decode()
    assert page.count(">Groups<") == 1
    assert staff_browser.get("/admin/auth/group/").status_code == 404


def test_staff_read_images_and_jobs_but_cannot_edit_them(staff_browser, org):
    image = ImageFactory(organization=org)
    job = Job.objects.create(organization=org, image=image, kind=Job.Kind.CLASSIFY)
    assert staff_browser.get("/admin/images/image/").status_code == 200
    page = staff_browser.get(f"/admin/images/image/{image.pk}/change/")
    assert page.status_code == 200
    assert image.filename in page.content.decode()
    assert b'name="_save"' not in page.content
    assert staff_browser.get(f"/admin/images/job/{job.pk}/change/").status_code == 200
    assert staff_browser.get("/admin/images/image/add/").status_code == 403
    assert staff_browser.get(f"/admin/images/job/{job.pk}/delete/").status_code == 403


def test_deleting_an_image_in_admin_goes_through_the_service(staff_browser, org):
    image = ImageFactory(organization=org)
    response = staff_browser.post(
        "/admin/images/image/",
        {"action": "delete_selected", "_selected_action": [str(image.pk)], "post": "yes"},
    )
    assert response.status_code == 302
    assert not Image.objects.filter(pk=image.pk).exists()
    event = AuditEvent.objects.get(action="image.deleted", resource_id=str(image.pk))
    assert event.actor_id == str(staff_browser.session["_auth_user_id"])
