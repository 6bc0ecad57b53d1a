"""Second factors: finishing a sign-in with one, stepping up, and managing your own factors;
the organization's policy and an admin's reset of a member's factors (`org:admin`)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.conf import settings
from drf_spectacular.utils import extend_schema
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.api import mfa_serializers as s
from accounts.api.auth import AUTH_RATE_LIMIT, token_pair_response
from accounts.api.serializers import TokenPairSerializer
from accounts.authz.decision_point import ANY_PRINCIPAL
from accounts.authz.permissions import principal_required as _principal
from accounts.identity.principal import Principal
from accounts.models import TotpFactor, User
from accounts.selectors import (
    METHOD_TOTP,
    factor_list,
    member_get,
    organization_get,
    person_get,
    recovery_codes_remaining,
    session_current_get,
)
from accounts.services import factors as factor_services
from accounts.services import second_factors
from accounts.services import sessions as session_services
from accounts.services.factors import Enrolled, Factor

NO_STORE = {"Cache-Control": "no-store"}
ORG_ADMIN = "org:admin"


def _proof(data: dict[str, Any]) -> second_factors.FactorProof:
    return second_factors.FactorProof(
        code=data.get("code", ""),
        recovery_code=data.get("recovery_code", ""),
        webauthn=data.get("webauthn"),
    )


def _factor_body(factor: Factor) -> dict[str, Any]:
    kind = METHOD_TOTP if isinstance(factor, TotpFactor) else "webauthn"
    return {
        "id": factor.id,
        "kind": kind,
        "name": factor.name,
        "created_at": factor.created_at,
        "last_used_at": factor.last_used_at,
    }


def _enrolled(enrolled: Enrolled, status: int) -> Response:
    body = {"factor": _factor_body(enrolled.factor), "recovery_codes": enrolled.recovery_codes}
    return Response(s.EnrolledSerializer(body).data, status=status, headers=NO_STORE)


def _person(request: Request) -> tuple[Principal, User]:
    principal = _principal(request)
    return principal, person_get(user_id=principal.user_id)


class TokenMfaApi(APIView):
    """Finish a sign-in that answered MFA_REQUIRED: the challenge and one second factor."""

    authentication_classes: list[type] = []
    permission_classes = [AllowAny]
    rate_limit = AUTH_RATE_LIMIT

    @extend_schema(request=s.TokenMfaSerializer, responses=TokenPairSerializer, tags=["auth"])
    def post(self, request: Request) -> Response:
        data = s.TokenMfaSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        sign_in = session_services.auth_login_mfa(
            challenge_id=data.validated_data["challenge"], proof=_proof(data.validated_data)
        )
        return token_pair_response(sign_in)


class TokenMfaPasskeyOptionsApi(APIView):
    """WebAuthn assertion options for a sign-in's challenge (for navigator.credentials.get)."""

    authentication_classes: list[type] = []
    permission_classes = [AllowAny]
    rate_limit = AUTH_RATE_LIMIT

    @extend_schema(
        request=s.ChallengeSerializer, responses=s.WebAuthnOptionsSerializer, tags=["auth"]
    )
    def post(self, request: Request) -> Response:
        data = s.ChallengeSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        options = second_factors.challenge_passkey_options(
            challenge_id=data.validated_data["challenge"]
        )
        return Response(options, headers=NO_STORE)


class MfaFactorCollectionApi(APIView):
    """Your second factors by name, and how many recovery codes are left."""

    required_permission = ANY_PRINCIPAL
    mfa_enrolment_allowed = True

    @extend_schema(responses=s.FactorListSerializer, tags=["mfa"])
    def get(self, request: Request) -> Response:
        principal, user = _person(request)
        body = {
            "factors": factor_list(user_id=user.id),
            "recovery_codes_remaining": recovery_codes_remaining(user_id=user.id),
            "enrolment_required": principal.mfa_enrolment_required,
        }
        return Response(s.FactorListSerializer(body).data)


class MfaFactorRenameApi(APIView):
    required_permission = ANY_PRINCIPAL

    @extend_schema(request=s.FactorRenameSerializer, responses=s.FactorSerializer, tags=["mfa"])
    def patch(self, request: Request, factor_id: str) -> Response:
        """Rename one of your factors."""
        principal, user = _person(request)
        data = s.FactorRenameSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        factor = factor_services.factor_rename(
            user=user,
            factor_id=factor_id,
            name=data.validated_data["name"],
            organization=organization_get(organization_id=principal.organization_id),
        )
        return Response(s.FactorSerializer(_factor_body(factor)).data)


class MfaFactorRemoveApi(APIView):
    required_permission = ANY_PRINCIPAL
    step_up = True

    @extend_schema(responses={204: None}, tags=["mfa"])
    def delete(self, request: Request, factor_id: str) -> Response:
        """Remove one of your factors (a recent second-factor check required)."""
        principal, user = _person(request)
        factor_services.factor_remove(
            user=user,
            factor_id=factor_id,
            organization=organization_get(organization_id=principal.organization_id),
        )
        return Response(status=204)


class MfaTotpBeginApi(APIView):
    """Start enrolling an authenticator app: its secret (shown once), URI and QR code."""

    required_permission = ANY_PRINCIPAL
    mfa_enrolment_allowed = True
    step_up = True

    @extend_schema(
        request=s.FactorNameSerializer, responses={201: s.TotpEnrolmentSerializer}, tags=["mfa"]
    )
    def post(self, request: Request) -> Response:
        _, user = _person(request)
        data = s.FactorNameSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        enrolment = factor_services.totp_begin(user=user, name=data.validated_data["name"])
        body = {
            "id": enrolment.factor.id,
            "name": enrolment.factor.name,
            "secret": enrolment.secret,
            "otpauth_uri": enrolment.uri,
            "qr_svg": enrolment.qr_svg,
        }
        return Response(s.TotpEnrolmentSerializer(body).data, status=201, headers=NO_STORE)


class MfaTotpConfirmApi(APIView):
    """Finish enrolling an authenticator app with the code it shows now."""

    required_permission = ANY_PRINCIPAL
    mfa_enrolment_allowed = True
    step_up = True

    @extend_schema(request=s.TotpConfirmSerializer, responses=s.EnrolledSerializer, tags=["mfa"])
    def post(self, request: Request, factor_id: str) -> Response:
        principal, user = _person(request)
        data = s.TotpConfirmSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        enrolled = factor_services.totp_confirm(
            user=user,
            factor_id=factor_id,
            code=data.validated_data["code"],
            organization=organization_get(organization_id=principal.organization_id),
            session_id=principal.session_id,
        )
        return _enrolled(enrolled, 200)


class MfaPasskeyOptionsApi(APIView):
    """Options for navigator.credentials.create() to register a passkey or security key."""

    required_permission = ANY_PRINCIPAL
    mfa_enrolment_allowed = True
    step_up = True

    @extend_schema(request=None, responses=s.WebAuthnOptionsSerializer, tags=["mfa"])
    def post(self, request: Request) -> Response:
        _, user = _person(request)
        return Response(factor_services.passkey_register_options(user=user), headers=NO_STORE)


class MfaPasskeyRegisterApi(APIView):
    """Enrol the passkey the browser created from the options."""

    required_permission = ANY_PRINCIPAL
    mfa_enrolment_allowed = True
    step_up = True

    @extend_schema(
        request=s.PasskeyRegisterSerializer, responses={201: s.EnrolledSerializer}, tags=["mfa"]
    )
    def post(self, request: Request) -> Response:
        principal, user = _person(request)
        data = s.PasskeyRegisterSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        enrolled = factor_services.passkey_register(
            user=user,
            name=data.validated_data["name"],
            credential=data.validated_data["credential"],
            organization=organization_get(organization_id=principal.organization_id),
            session_id=principal.session_id,
        )
        return _enrolled(enrolled, 201)


class MfaRecoveryCodesApi(APIView):
    """Replace your recovery codes with ten new ones, shown this once."""

    required_permission = ANY_PRINCIPAL
    step_up = True

    @extend_schema(request=None, responses={201: s.RecoveryCodesSerializer}, tags=["mfa"])
    def post(self, request: Request) -> Response:
        principal, user = _person(request)
        codes = factor_services.recovery_codes_regenerate(
            user=user, organization=organization_get(organization_id=principal.organization_id)
        )
        return Response({"recovery_codes": codes}, status=201, headers=NO_STORE)


class MfaStepUpApi(APIView):
    """Prove a second factor again, for the sensitive actions of the next minutes."""

    required_permission = ANY_PRINCIPAL
    rate_limit = AUTH_RATE_LIMIT

    @extend_schema(request=s.FactorProofSerializer, responses=s.StepUpSerializer, tags=["mfa"])
    def post(self, request: Request) -> Response:
        data = s.FactorProofSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        principal, _ = _person(request)
        verified = second_factors.session_step_up(
            session=session_current_get(session_id=principal.session_id),
            proof=_proof(data.validated_data),
        )
        body = {
            "mfa_verified_at": verified,
            "valid_until": verified + timedelta(seconds=settings.MFA_STEP_UP_SECONDS),
        }
        return Response(s.StepUpSerializer(body).data)


class MfaStepUpPasskeyOptionsApi(APIView):
    """WebAuthn assertion options for a step-up with a passkey."""

    required_permission = ANY_PRINCIPAL

    @extend_schema(request=None, responses=s.WebAuthnOptionsSerializer, tags=["mfa"])
    def post(self, request: Request) -> Response:
        principal, _ = _person(request)
        session = session_current_get(session_id=principal.session_id)
        return Response(second_factors.step_up_passkey_options(session=session), headers=NO_STORE)


class MfaPolicyDetailApi(APIView):
    """Whether the organization's members must sign in with a second factor."""

    required_permission = ORG_ADMIN

    @extend_schema(responses=s.MfaPolicySerializer, tags=["organizations"])
    def get(self, request: Request) -> Response:
        organization = organization_get(organization_id=_principal(request).organization_id)
        return Response({"mfa_policy": organization.mfa_policy})


class MfaPolicyUpdateApi(APIView):
    """Whether the organization's members must sign in with a second factor."""

    required_permission = ORG_ADMIN
    step_up = True

    @extend_schema(
        request=s.MfaPolicySerializer, responses=s.MfaPolicySerializer, tags=["organizations"]
    )
    def patch(self, request: Request) -> Response:
        data = s.MfaPolicySerializer(data=request.data)
        data.is_valid(raise_exception=True)
        organization = factor_services.mfa_policy_set(
            organization=organization_get(organization_id=_principal(request).organization_id),
            policy=data.validated_data["mfa_policy"],
        )
        return Response({"mfa_policy": organization.mfa_policy})


class MemberMfaResetApi(APIView):
    """Remove a member's second factors (they lost them); their sessions end."""

    required_permission = ORG_ADMIN
    step_up = True

    @extend_schema(request=None, responses=s.MfaResetSerializer, tags=["organizations"])
    def post(self, request: Request, user_id: str) -> Response:
        principal = _principal(request)
        membership = member_get(organization_id=principal.organization_id, user_id=user_id)
        removed = factor_services.member_mfa_reset(membership=membership, reason="admin_reset")
        return Response({"factors_removed": removed})
