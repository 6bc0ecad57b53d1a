"""`manage.py reset_mfa`: an operator removes the second factors of a person who lost them."""

from __future__ import annotations

import pytest
from django.core.management.base import CommandError
from rest_framework.test import APIClient

from accounts.models import RecoveryCode, TotpFactor
from accounts.tests.commands import run
from accounts.tests.factories import (
    TOKEN_URL,
    mfa_login_client,
    recovery_codes_for,
    totp_factor_for,
)
from audit.tests.factories import audit_events as events
from config.testing.http import PASSWORD, assert_problem


def test_reset_mfa_removes_the_factors_ends_the_sessions_and_audits_as_the_system(org, member):
    secret = totp_factor_for(member)
    recovery_codes_for(member)
    client = mfa_login_client(member, secret)

    out = run("reset_mfa", member.email, "--reason", "lost phone")

    assert "Removed 1 second factor(s) of bob" in out
    assert not TotpFactor.objects.filter(user=member).exists()
    assert not RecoveryCode.objects.filter(user=member).exists()
    assert_problem(client.get("/api/v1/auth/me"), status=401, code="TOKEN_REVOKED")
    [reset] = events("mfa.reset")
    assert reset.actor_type == "system"
    assert reset.organization_id == org.id
    assert reset.details["reason"] == "lost phone"
    signed_in = APIClient().post(
        TOKEN_URL, {"username": "bob", "password": PASSWORD}, format="json"
    )
    assert signed_in.status_code == 200


@pytest.mark.parametrize(
    ("args", "message"),
    [(["nobody"], "No user"), (["bob", "--reason", " "], "must not be empty")],
    ids=["unknown-user", "empty-reason"],
)
def test_reset_mfa_refuses_bad_input_and_removes_nothing(org, member, args, message):
    totp_factor_for(member)

    with pytest.raises(CommandError, match=message):
        run("reset_mfa", *args)

    assert TotpFactor.objects.filter(user=member).exists()
