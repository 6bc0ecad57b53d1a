"""With the cache unreachable, authentication answers from the database: slower, never laxer."""

import os
import subprocess
import sys

import pytest
from django.conf import settings as django_settings

from accounts.models import Session
from accounts.services.sessions import session_revoke
from config.testing.http import login_client
from config.testing.redis import UNREACHABLE_REDIS

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_live_session_is_served_from_the_database_when_the_cache_is_down(
    member, settings, log_lines
):
    client = login_client(member)
    settings.CACHES = UNREACHABLE_REDIS

    response = client.get("/api/v1/auth/me")

    assert response.status_code == 200
    assert response.json()["username"] == member.username
    assert any(line["event"] == "auth_cache_unreachable" for line in log_lines())


def test_a_revoked_session_is_refused_when_the_cache_is_down(member, settings):
    client = login_client(member)
    assert client.get("/api/v1/auth/me").status_code == 200  # cached as live
    settings.CACHES = UNREACHABLE_REDIS
    session = Session.objects.get(id=client.sign_in.session.id)
    session_revoke(session=session, reason="revoked_by_admin")

    response = client.get("/api/v1/auth/me")

    assert response.status_code == 401
    assert response.json()["code"] == "TOKEN_REVOKED"


def test_a_demotion_is_seen_when_the_cache_is_down(admin, member, settings):
    from accounts.models import Membership
    from accounts.services.organizations import member_update

    client = login_client(member)
    assert "image:upload" in client.get("/api/v1/auth/me").json()["permissions"]
    settings.CACHES = UNREACHABLE_REDIS
    member_update(membership=Membership.objects.get(user=member), role="viewer")

    assert client.get("/api/v1/auth/me").json()["permissions"] == [
        "image:read",
        "member:read",
    ]


def test_production_settings_hash_passwords_with_argon2id():
    code = (
        "import django; django.setup();"
        "from django.contrib.auth.hashers import make_password;"
        "print(make_password('a-long-passphrase-123'))"
    )
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("DJANGO_")},
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DJANGO_SECRET_KEY": "k" * 64,
    }
    result = subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        cwd=django_settings.BASE_DIR,
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout.strip().splitlines()[-1].startswith("argon2$argon2id$")
