"""Second factors through the API: sign-in challenges, TOTP, recovery codes, passkeys,
enrolment, step-up on sensitive actions, the organization's policy and an admin's reset."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import (
    LoginFailure,
    MfaChallenge,
    RecoveryCode,
    Session,
    TotpFactor,
    WebAuthnCredential,
)
from accounts.services.organizations import member_add
from accounts.tests.factories import (
    MFA_FACTORS,
    STEP_UP_URL,
    TOKEN_MFA_URL,
    TOKEN_URL,
    TOKENS,
    issue,
    mfa_challenge,
    mfa_login_client,
    recovery_codes_for,
    totp_code,
    totp_factor_for,
)
from audit.models import AuditEvent
from config.testing.http import PASSWORD, PROBLEM_KEYS, assert_problem, login_client
from config.testing.passkeys import SoftwareAuthenticator

ORIGIN = "http://localhost:8000"
TOTP_BEGIN = "/api/v1/auth/mfa/totp"
PASSKEY_OPTIONS = "/api/v1/auth/mfa/webauthn/options"
PASSKEY_REGISTER = "/api/v1/auth/mfa/webauthn"
RECOVERY_CODES = "/api/v1/auth/mfa/recovery-codes"
MFA_POLICY = "/api/v1/orgs/current/mfa-policy"
SIGN_IN_PASSKEY_OPTIONS = "/api/v1/auth/token/mfa/webauthn-options"


@pytest.fixture(autouse=True)
def _relying_party(settings):
    settings.WEBAUTHN_RP_ID = "localhost"
    settings.WEBAUTHN_ORIGINS = [ORIGIN]


def _answer(body: dict) -> object:
    return APIClient().post(TOKEN_MFA_URL, body, format="json")


def _actions() -> list[str]:
    return list(
        AuditEvent.objects.order_by("timestamp", "position").values_list("action", flat=True)
    )


def _confirm_url(factor_id: str) -> str:
    return f"/api/v1/auth/mfa/totp/{factor_id}/confirm"


def _enrol_totp(client: APIClient) -> tuple[dict, dict]:
    begun = client.post(TOTP_BEGIN, {"name": "Work phone"}, format="json")
    assert begun.status_code == 201, begun.content
    body = begun.json()
    confirmed = client.post(
        _confirm_url(body["id"]), {"code": totp_code(body["secret"])}, format="json"
    )
    assert confirmed.status_code == 200, confirmed.content
    return body, confirmed.json()


# --- Sign-in with a second factor ------------------------------------------------------


def test_password_of_a_person_with_a_factor_answers_mfa_required_and_opens_no_session(
    api_client, org, member
):
    totp_factor_for(member)
    recovery_codes_for(member)

    response = api_client.post(TOKEN_URL, {"username": "bob", "password": PASSWORD}, format="json")

    assert response.status_code == 401
    assert response["Content-Type"] == "application/problem+json"
    body = response.json()
    assert set(body) == PROBLEM_KEYS | {"challenge", "methods", "expires_in"}
    assert body["code"] == "MFA_REQUIRED"
    assert body["methods"] == ["totp", "recovery_code"]
    assert body["expires_in"] == 300
    assert "access" not in body
    assert MfaChallenge.objects.get(id=body["challenge"]).user_id == member.id
    assert not Session.objects.exists()


def test_totp_code_finishes_the_sign_in_with_the_usual_token_pair(org, member):
    secret = totp_factor_for(member)
    challenge = mfa_challenge("bob")

    response = _answer({"challenge": challenge, "code": totp_code(secret)})

    assert response.status_code == 200, response.content
    body = response.json()
    assert set(body) == {"access", "refresh", "token_type", "expires_in", "session_id"}
    session = Session.objects.get(id=body["session_id"])
    assert session.mfa_verified_at is not None
    me = APIClient().get("/api/v1/auth/me", HTTP_AUTHORIZATION=f"Bearer {body['access']}")
    assert me.status_code == 200
    assert not MfaChallenge.objects.filter(id=challenge).exists()
    login = AuditEvent.objects.get(action="auth.login")
    assert login.details["mfa"] == "totp"


def test_a_totp_code_is_accepted_once(org, member):
    secret = totp_factor_for(member)
    code = totp_code(secret)
    assert _answer({"challenge": mfa_challenge("bob"), "code": code}).status_code == 200

    replay = _answer({"challenge": mfa_challenge("bob"), "code": code})

    assert_problem(replay, status=401, code="MFA_CODE_INVALID")
    # The next step's code still works.
    later = _answer({"challenge": mfa_challenge("bob"), "code": totp_code(secret, steps_ahead=1)})
    assert later.status_code == 200, later.content


def test_wrong_code_is_refused_audited_and_counted_towards_the_lockout(org, member):
    totp_factor_for(member)
    challenge = mfa_challenge("bob")

    response = _answer({"challenge": challenge, "code": "000000"})

    assert_problem(response, status=401, code="MFA_CODE_INVALID")
    assert LoginFailure.objects.filter(username="bob").count() == 1
    failed = AuditEvent.objects.get(action="auth.mfa_failed")
    assert failed.outcome == "failure"
    assert failed.details == {"method": "totp", "purpose": "sign_in"}
    assert not Session.objects.exists()


def test_repeated_wrong_codes_lock_the_person_out_even_with_the_right_code(org, member, settings):
    settings.MFA_CHALLENGE_ATTEMPTS = 20
    secret = totp_factor_for(member)
    challenge = mfa_challenge("bob")
    for _ in range(settings.AUTH_LOCKOUT_USERNAME_FAILURES):
        assert _answer({"challenge": challenge, "code": "123456"}).status_code == 401

    response = _answer({"challenge": challenge, "code": totp_code(secret)})

    assert_problem(response, status=429, code="TOO_MANY_LOGIN_ATTEMPTS")
    assert not Session.objects.exists()
    # The password is locked out too: the same lockout.
    again = APIClient().post(TOKEN_URL, {"username": "bob", "password": PASSWORD}, format="json")
    assert_problem(again, status=429, code="TOO_MANY_LOGIN_ATTEMPTS")


def test_challenge_allows_few_attempts(org, member, settings):
    settings.AUTH_LOCKOUT_USERNAME_FAILURES = 50
    secret = totp_factor_for(member)
    challenge = mfa_challenge("bob")
    for _ in range(settings.MFA_CHALLENGE_ATTEMPTS):
        assert _answer({"challenge": challenge, "code": "123456"}).status_code == 401

    response = _answer({"challenge": challenge, "code": totp_code(secret)})

    assert_problem(response, status=401, code="MFA_CHALLENGE_INVALID")


def test_challenge_expires_after_five_minutes(org, member, time_machine):
    time_machine.move_to(timezone.now(), tick=False)
    secret = totp_factor_for(member)
    challenge = mfa_challenge("bob")
    time_machine.shift(dt.timedelta(minutes=5, seconds=1))

    response = _answer({"challenge": challenge, "code": totp_code(secret)})

    assert_problem(response, status=401, code="MFA_CHALLENGE_INVALID")
    assert not Session.objects.exists()


def test_challenge_is_single_use(org, member):
    secret = totp_factor_for(member)
    codes = recovery_codes_for(member)
    challenge = mfa_challenge("bob")
    assert _answer({"challenge": challenge, "code": totp_code(secret)}).status_code == 200

    response = _answer({"challenge": challenge, "recovery_code": codes[0]})

    assert_problem(response, status=401, code="MFA_CHALLENGE_INVALID")
    assert Session.objects.count() == 1


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"code": "123456", "recovery_code": "abcde-fghij"},
        {"code": "12ab56"},
        {"webauthn": "not an object"},
    ],
)
def test_answer_needs_a_challenge_and_exactly_one_proof(org, member, body):
    totp_factor_for(member)
    body = {"challenge": mfa_challenge("bob"), **body}

    assert_problem(_answer(body), status=400, code="VALIDATION_ERROR")


def test_unknown_challenge_is_refused(org, member):
    response = _answer({"challenge": "6f1c2e0a-9b8d-4c55-8e7f-000000000000", "code": "123456"})

    assert_problem(response, status=401, code="MFA_CHALLENGE_INVALID")


# --- Recovery codes ----------------------------------------------------------------------


def test_recovery_code_signs_in_once_and_is_audited(org, member):
    totp_factor_for(member)
    codes = recovery_codes_for(member)

    response = _answer({"challenge": mfa_challenge("bob"), "recovery_code": codes[3].upper()})

    assert response.status_code == 200, response.content
    assert RecoveryCode.objects.filter(user=member, used_at__isnull=False).count() == 1
    used = AuditEvent.objects.get(action="mfa.recovery_code_used")
    assert used.details == {"purpose": "sign_in", "remaining": 9}
    again = _answer({"challenge": mfa_challenge("bob"), "recovery_code": codes[3]})
    assert_problem(again, status=401, code="MFA_CODE_INVALID")


def test_recovery_codes_still_work_after_the_secret_key_is_rotated(org, member, settings):
    totp_factor_for(member)
    codes = recovery_codes_for(member)
    settings.SECRET_KEY_FALLBACKS = [settings.SECRET_KEY]
    settings.SECRET_KEY = "a-new-key-" + "x" * 50

    response = _answer({"challenge": mfa_challenge("bob"), "recovery_code": codes[0]})

    assert response.status_code == 200, response.content


def test_another_persons_recovery_code_does_not_work(org, member, viewer):
    totp_factor_for(member)
    recovery_codes_for(member)
    theirs = recovery_codes_for(viewer)

    response = _answer({"challenge": mfa_challenge("bob"), "recovery_code": theirs[0]})

    assert_problem(response, status=401, code="MFA_CODE_INVALID")


def test_regenerated_recovery_codes_replace_the_old_ones(org, member):
    secret = totp_factor_for(member)
    old = recovery_codes_for(member)
    client = mfa_login_client(member, secret)

    response = client.post(RECOVERY_CODES)

    assert response.status_code == 201, response.content
    new = response.json()["recovery_codes"]
    assert len(new) == 10
    assert len(set(new)) == 10
    assert response["Cache-Control"] == "no-store"
    refused = _answer({"challenge": mfa_challenge("bob"), "recovery_code": old[0]})
    assert_problem(refused, status=401, code="MFA_CODE_INVALID")
    assert _answer({"challenge": mfa_challenge("bob"), "recovery_code": new[0]}).status_code == 200
    assert "mfa.recovery_codes_generated" in _actions()


def test_recovery_codes_need_a_factor_first(member_client):
    assert_problem(member_client.post(RECOVERY_CODES), status=400, code="VALIDATION_ERROR")


# --- Enrolling an authenticator app ----------------------------------------------------


def test_enrolling_an_app_shows_the_secret_once_and_gives_recovery_codes(member_client, member):
    begun, confirmed = _enrol_totp(member_client)

    assert len(begun["secret"]) == 32
    assert begun["otpauth_uri"].startswith("otpauth://totp/Vantage:")
    assert f"secret={begun['secret']}" in begun["otpauth_uri"]
    assert begun["qr_svg"].startswith("<svg")
    factor = TotpFactor.objects.get(id=begun["id"])
    assert begun["secret"] not in factor.secret  # stored encrypted
    assert factor.confirmed_at is not None
    assert confirmed["factor"]["name"] == "Work phone"
    assert confirmed["factor"]["kind"] == "totp"
    assert len(confirmed["recovery_codes"]) == 10
    assert RecoveryCode.objects.filter(user=member).count() == 10
    listing = member_client.get(MFA_FACTORS).json()
    assert listing["recovery_codes_remaining"] == 10
    assert [f["name"] for f in listing["factors"]] == ["Work phone"]
    assert begun["secret"] not in str(listing)
    enrolled = AuditEvent.objects.get(action="mfa.enrolled")
    assert enrolled.details["kind"] == "totp"
    # From now on the password alone is not enough.
    assert mfa_challenge("bob")


def test_wrong_confirmation_code_leaves_the_app_unconfirmed(member_client, member):
    begun = member_client.post(TOTP_BEGIN, {}, format="json").json()

    response = member_client.post(_confirm_url(begun["id"]), {"code": "000000"}, format="json")

    body = assert_problem(response, status=400, code="VALIDATION_ERROR")
    assert body["errors"][0]["field"] == "code"
    assert TotpFactor.objects.get(id=begun["id"]).confirmed_at is None
    signed_in = APIClient().post(
        TOKEN_URL, {"username": "bob", "password": PASSWORD}, format="json"
    )
    assert signed_in.status_code == 200


def test_another_persons_enrolment_cannot_be_confirmed(member_client, outsider_client):
    begun = member_client.post(TOTP_BEGIN, {}, format="json").json()

    response = outsider_client.post(
        _confirm_url(begun["id"]), {"code": totp_code(begun["secret"])}, format="json"
    )

    assert_problem(response, status=404, code="NOT_FOUND")


def test_a_service_token_has_no_factors(admin_client):
    from accounts.tests.factories import create_token

    secret = create_token(admin_client, scopes=["image:read"])["token"]

    response = APIClient().get(MFA_FACTORS, HTTP_AUTHORIZATION=f"Bearer {secret}")

    assert_problem(response, status=403, code="PERMISSION_DENIED")


# --- Naming and removing factors ---------------------------------------------------------


def test_factor_is_renamed(org, member):
    secret = totp_factor_for(member, name="Phone")
    client = mfa_login_client(member, secret)
    factor = TotpFactor.objects.get(user=member)

    response = client.patch(f"{MFA_FACTORS}/{factor.id}", {"name": "Old phone"}, format="json")

    assert response.status_code == 200, response.content
    assert response.json()["name"] == "Old phone"
    factor.refresh_from_db()
    assert factor.name == "Old phone"
    bad = client.patch(f"{MFA_FACTORS}/{factor.id}", {}, format="json")
    assert_problem(bad, status=400, code="VALIDATION_ERROR")


def test_another_persons_factor_is_not_found(org, member, outsider_client):
    totp_factor_for(member)
    factor = TotpFactor.objects.get(user=member)

    response = outsider_client.patch(f"{MFA_FACTORS}/{factor.id}", {"name": "x"}, format="json")

    assert_problem(response, status=404, code="NOT_FOUND")
    deleted = outsider_client.delete(f"{MFA_FACTORS}/{factor.id}")
    assert_problem(deleted, status=404, code="NOT_FOUND")
    assert TotpFactor.objects.filter(id=factor.id).exists()


# The session's new state reaches the cache when the change commits.
@pytest.mark.django_db(transaction=True)
def test_removing_the_last_factor_needs_a_fresh_check_and_takes_the_recovery_codes(
    org, member, settings
):
    secret = totp_factor_for(member)
    recovery_codes_for(member)
    client = mfa_login_client(member, secret)
    factor = TotpFactor.objects.get(user=member)
    settings.MFA_STEP_UP_SECONDS = 0  # the sign-in's check is now too old

    refused = client.delete(f"{MFA_FACTORS}/{factor.id}")

    assert_problem(refused, status=403, code="MFA_STEP_UP_REQUIRED")
    assert TotpFactor.objects.filter(id=factor.id).exists()
    settings.MFA_STEP_UP_SECONDS = 900
    step_up = client.post(STEP_UP_URL, {"code": totp_code(secret, steps_ahead=1)}, format="json")
    assert step_up.status_code == 200, step_up.content
    response = client.delete(f"{MFA_FACTORS}/{factor.id}")
    assert response.status_code == 204
    assert not TotpFactor.objects.filter(user=member).exists()
    assert not RecoveryCode.objects.filter(user=member).exists()
    assert AuditEvent.objects.get(action="mfa.removed").details["last"] is True
    signed_in = APIClient().post(
        TOKEN_URL, {"username": "bob", "password": PASSWORD}, format="json"
    )
    assert signed_in.status_code == 200


# --- Step-up on sensitive actions --------------------------------------------------------


# The session's new state reaches the cache when the change commits.
@pytest.mark.django_db(transaction=True)
def test_sensitive_actions_ask_for_a_recent_second_factor(org, admin_client, admin, member):
    # Signed in with the password before the factor existed: no check in this session.
    secret = totp_factor_for(admin)
    token_body = {"name": "ci", "scopes": ["image:read"]}
    token = issue(org, admin, allowed_ips=["203.0.113.0/24"]).token

    refused = [
        admin_client.post(TOKENS, token_body, format="json"),
        admin_client.post(f"{TOKENS}/revoke-all", {"reason": "drill"}, format="json"),
        admin_client.patch(
            f"/api/v1/orgs/current/members/{member.id}", {"role": "viewer"}, format="json"
        ),
        admin_client.post("/api/v1/auth/sessions/revoke-all", {}, format="json"),
        admin_client.patch(
            "/api/v1/orgs/current/token-policy", {"max_lifetime_days": 30}, format="json"
        ),
        admin_client.patch(MFA_POLICY, {"mfa_policy": "everyone"}, format="json"),
        admin_client.post(TOTP_BEGIN, {}, format="json"),
        # Ways to grant another account what a role change would: invite it, group it.
        admin_client.post(
            "/api/v1/orgs/current/invitations",
            {"email": "mallory@example.test", "role": "admin"},
            format="json",
        ),
        admin_client.post(
            "/api/v1/orgs/current/groups",
            {"name": "owners", "permissions": ["org:admin"], "members": [str(member.id)]},
            format="json",
        ),
        # Lifting a token's allow-list lets it be used from anywhere.
        admin_client.patch(f"{TOKENS}/{token.id}", {"allowed_ips": []}, format="json"),
        # Where the organization's events go.
        admin_client.post(
            "/api/v1/webhooks/endpoints",
            {"url": "https://hooks.example.test/in", "event_types": ["token.revoked"]},
            format="json",
        ),
    ]

    for response in refused:
        assert_problem(response, status=403, code="MFA_STEP_UP_REQUIRED")
    # Reading is not sensitive.
    assert admin_client.get(TOKENS).status_code == 200
    step_up = admin_client.post(STEP_UP_URL, {"code": totp_code(secret)}, format="json")
    assert step_up.status_code == 200, step_up.content
    assert set(step_up.json()) == {"mfa_verified_at", "valid_until"}
    assert admin_client.post(TOKENS, token_body, format="json").status_code == 201
    assert "auth.mfa_step_up" in _actions()


def test_wrong_step_up_code_is_refused_and_counted(admin_client, admin):
    totp_factor_for(admin)

    response = admin_client.post(STEP_UP_URL, {"code": "000000"}, format="json")

    assert_problem(response, status=401, code="MFA_CODE_INVALID")
    assert LoginFailure.objects.filter(username="alice").count() == 1
    assert AuditEvent.objects.get(action="auth.mfa_failed").details["purpose"] == "step_up"


def test_people_without_a_factor_are_not_asked_to_step_up(admin_client):
    response = admin_client.post(TOKENS, {"name": "ci", "scopes": ["image:read"]}, format="json")

    assert response.status_code == 201, response.content


def test_service_tokens_are_not_asked_to_step_up(org, admin):
    secret = totp_factor_for(admin)
    client = mfa_login_client(admin, secret)
    manager = client.post(
        TOKENS, {"name": "ops", "scopes": ["token:manage", "image:read"]}, format="json"
    )
    assert manager.status_code == 201, manager.content

    response = APIClient().post(
        TOKENS,
        {"name": "ci", "scopes": ["image:read"]},
        format="json",
        HTTP_AUTHORIZATION=f"Bearer {manager.json()['token']}",
    )

    assert response.status_code == 201, response.content


# --- Passkeys ------------------------------------------------------------------------------


def _register_passkey(client: APIClient, name: str = "Laptop") -> SoftwareAuthenticator:
    authenticator = SoftwareAuthenticator(origin=ORIGIN)
    options = client.post(PASSKEY_OPTIONS)
    assert options.status_code == 200, options.content
    assert options.json()["rp"]["id"] == "localhost"
    credential = authenticator.register(options.json())
    response = client.post(
        PASSKEY_REGISTER, {"name": name, "credential": credential}, format="json"
    )
    assert response.status_code == 201, response.content
    return authenticator


def test_passkey_is_registered_and_signs_in(member_client, member):
    authenticator = _register_passkey(member_client)
    stored = WebAuthnCredential.objects.get(user=member)
    assert stored.name == "Laptop"
    challenge = mfa_challenge("bob")
    options = APIClient().post(SIGN_IN_PASSKEY_OPTIONS, {"challenge": challenge}, format="json")
    assert options.status_code == 200, options.content
    assert [c["id"] for c in options.json()["allowCredentials"]] == [stored.credential_id]

    response = _answer({"challenge": challenge, "webauthn": authenticator.sign(options.json())})

    assert response.status_code == 200, response.content
    stored.refresh_from_db()
    assert stored.sign_count == 1
    assert stored.last_used_at is not None
    login = AuditEvent.objects.filter(action="auth.login").latest("timestamp")
    assert login.details["mfa"] == "webauthn"


def test_passkey_assertion_for_another_challenge_or_origin_is_refused(member_client, member):
    authenticator = _register_passkey(member_client)
    challenge = mfa_challenge("bob")
    options = APIClient().post(SIGN_IN_PASSKEY_OPTIONS, {"challenge": challenge}, format="json")
    stale = {**options.json(), "challenge": "c3RhbGUtY2hhbGxlbmdl"}

    wrong_challenge = _answer({"challenge": challenge, "webauthn": authenticator.sign(stale)})
    wrong_origin = _answer(
        {
            "challenge": challenge,
            "webauthn": authenticator.sign(options.json(), origin="https://evil.example"),
        }
    )

    assert_problem(wrong_challenge, status=401, code="MFA_CODE_INVALID")
    assert_problem(wrong_origin, status=401, code="MFA_CODE_INVALID")
    assert Session.objects.filter(user=member).count() == 1  # the registering one only


def test_passkey_of_another_person_does_not_sign_in(member_client, viewer_client, member):
    _register_passkey(member_client)
    theirs = _register_passkey(viewer_client)
    challenge = mfa_challenge("bob")
    options = APIClient().post(SIGN_IN_PASSKEY_OPTIONS, {"challenge": challenge}, format="json")

    response = _answer({"challenge": challenge, "webauthn": theirs.sign(options.json())})

    assert_problem(response, status=401, code="MFA_CODE_INVALID")


def test_passkey_registration_without_options_or_with_a_bad_credential_is_refused(
    member_client,
):
    authenticator = SoftwareAuthenticator(origin=ORIGIN)
    unasked = authenticator.register({"challenge": "bm90LWFza2Vk"})
    response = member_client.post(
        PASSKEY_REGISTER, {"name": "x", "credential": unasked}, format="json"
    )
    assert_problem(response, status=400, code="VALIDATION_ERROR")

    options = member_client.post(PASSKEY_OPTIONS).json()
    forged = authenticator.register(options)
    forged["response"]["clientDataJSON"] = forged["response"]["clientDataJSON"][:-4]
    refused = member_client.post(
        PASSKEY_REGISTER, {"name": "x", "credential": forged}, format="json"
    )
    assert_problem(refused, status=400, code="VALIDATION_ERROR")
    assert not WebAuthnCredential.objects.exists()


def test_step_up_with_a_passkey(member_client, member, settings):
    authenticator = _register_passkey(member_client)
    settings.MFA_STEP_UP_SECONDS = 900
    options = member_client.post("/api/v1/auth/mfa/step-up/webauthn-options")
    assert options.status_code == 200

    response = member_client.post(
        STEP_UP_URL, {"webauthn": authenticator.sign(options.json())}, format="json"
    )

    assert response.status_code == 200, response.content


# --- Organization policy ---------------------------------------------------------------


def test_admin_reads_and_sets_the_policy(admin_client, org):
    assert admin_client.get(MFA_POLICY).json() == {"mfa_policy": "off"}

    response = admin_client.patch(MFA_POLICY, {"mfa_policy": "admins"}, format="json")

    assert response.status_code == 200, response.content
    assert response.json() == {"mfa_policy": "admins"}
    org.refresh_from_db()
    assert org.mfa_policy == "admins"
    changed = AuditEvent.objects.get(action="org.mfa_policy_changed")
    assert changed.details == {"from": "off", "to": "admins"}
    bad = admin_client.patch(MFA_POLICY, {"mfa_policy": "sometimes"}, format="json")
    assert_problem(bad, status=400, code="VALIDATION_ERROR")


def test_members_may_not_set_the_policy(member_client, viewer_client):
    assert_problem(member_client.get(MFA_POLICY), status=403, code="PERMISSION_DENIED")
    response = viewer_client.patch(MFA_POLICY, {"mfa_policy": "off"}, format="json")
    assert_problem(response, status=403, code="PERMISSION_DENIED")


def test_outsider_changes_only_their_own_organizations_policy(outsider_client, org, other_org):
    response = outsider_client.patch(MFA_POLICY, {"mfa_policy": "everyone"}, format="json")

    assert response.status_code == 200
    org.refresh_from_db()
    other_org.refresh_from_db()
    assert (org.mfa_policy, other_org.mfa_policy) == ("off", "everyone")


# The session's new state reaches the cache when the change commits.
@pytest.mark.django_db(transaction=True)
def test_required_member_without_a_factor_may_only_enrol(org, member):
    org.mfa_policy = "everyone"
    org.save()
    client = login_client(member)

    assert_problem(client.get("/api/v1/images"), status=403, code="MFA_ENROLMENT_REQUIRED")
    assert client.get("/api/v1/auth/me").status_code == 200
    assert client.get(MFA_FACTORS).json()["enrolment_required"] is True
    _enrol_totp(client)

    assert client.get("/api/v1/images").status_code == 200
    assert client.get(MFA_FACTORS).json()["enrolment_required"] is False


# The session's new state reaches the cache when the change commits.
@pytest.mark.django_db(transaction=True)
def test_switching_to_an_organization_that_requires_a_factor_asks_to_enrol_first(
    org, other_org, member
):
    member_add(organization=other_org, user=member, role="admin")
    other_org.mfa_policy = "everyone"
    other_org.save()
    client = login_client(member, org)
    assert client.get("/api/v1/images").status_code == 200

    switched = client.post("/api/v1/auth/switch-org", {"org": other_org.slug}, format="json")

    assert switched.status_code == 200, switched.content
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {switched.json()['access']}")
    assert_problem(client.get("/api/v1/images"), status=403, code="MFA_ENROLMENT_REQUIRED")
    assert client.get(MFA_FACTORS).json()["enrolment_required"] is True


def test_admins_policy_spares_other_roles(org, admin, member):
    org.mfa_policy = "admins"
    org.save()

    admin_images = login_client(admin).get("/api/v1/images")
    member_images = login_client(member).get("/api/v1/images")

    assert_problem(admin_images, status=403, code="MFA_ENROLMENT_REQUIRED")
    assert member_images.status_code == 200


# --- An admin's reset ---------------------------------------------------------------------


def _reset_url(user_id: object) -> str:
    return f"/api/v1/orgs/current/members/{user_id}/mfa-reset"


# The session's new state reaches the cache when the change commits.
@pytest.mark.django_db(transaction=True)
def test_admin_resets_a_members_factors_and_ends_their_sessions(admin_client, member):
    secret = totp_factor_for(member)
    recovery_codes_for(member)
    member_api = mfa_login_client(member, secret)

    response = admin_client.post(_reset_url(member.id))

    assert response.status_code == 200, response.content
    assert response.json() == {"factors_removed": 1}
    assert not TotpFactor.objects.filter(user=member).exists()
    assert not RecoveryCode.objects.filter(user=member).exists()
    assert_problem(member_api.get("/api/v1/auth/me"), status=401, code="TOKEN_REVOKED")
    reset = AuditEvent.objects.get(action="mfa.reset")
    assert reset.actor_display == "alice"
    assert reset.details["sessions_ended"] == 1
    signed_in = APIClient().post(
        TOKEN_URL, {"username": "bob", "password": PASSWORD}, format="json"
    )
    assert signed_in.status_code == 200


def test_an_admin_may_not_reset_someone_whose_factors_guard_other_organizations_too(
    admin_client, member, other_org
):
    member_add(organization=other_org, user=member, role="admin")
    totp_factor_for(member)

    response = admin_client.post(_reset_url(member.id))

    assert_problem(response, status=403, code="PERMISSION_DENIED")
    assert "staff" in response.json()["detail"]
    assert TotpFactor.objects.filter(user=member).exists()
    assert not AuditEvent.objects.filter(action="mfa.reset").exists()


def test_reset_of_an_outsider_is_not_found(admin_client, outsider, outsider_client, member):
    totp_factor_for(member)

    assert_problem(admin_client.post(_reset_url(outsider.id)), status=404, code="NOT_FOUND")
    assert_problem(outsider_client.post(_reset_url(member.id)), status=404, code="NOT_FOUND")
    assert TotpFactor.objects.filter(user=member).exists()


def test_members_may_not_reset_factors(member_client, viewer):
    totp_factor_for(viewer)

    assert_problem(member_client.post(_reset_url(viewer.id)), status=403, code="PERMISSION_DENIED")
    assert TotpFactor.objects.filter(user=viewer).exists()
