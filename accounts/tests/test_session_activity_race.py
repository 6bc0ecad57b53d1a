"""Recording a session's activity never brings back a session revoked meanwhile.

With a shared cache (Redis) the revocation's tombstone is the only thing that
refuses the session before its cached state expires; a request that read the
session before the revocation must not write its copy over it.
"""

import pytest
from django.core.cache import cache

from accounts.identity.principal import session_activity_touch, session_key
from config.testing.http import login_client

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_request_that_read_the_session_before_its_revocation_cannot_revive_it(member):
    client = login_client(member)
    assert client.get("/api/v1/auth/me").status_code == 200
    session_id = client.sign_in.session.id
    # What a request in flight read before the revocation: a live session whose
    # activity is due to be recorded.
    read_before = {**cache.get(session_key(session_id)), "last_activity": 0.0}

    # Ended from another of the person's sessions.
    other = login_client(member)
    assert other.delete(f"/api/v1/auth/sessions/{session_id}").status_code == 204
    session_activity_touch(session_id, read_before)  # that request now records activity

    assert client.get("/api/v1/auth/me").status_code == 401
