"""What the second-factor API reads and writes."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from accounts.models import MfaPolicy


class FactorProofSerializer(serializers.Serializer[Any]):
    """Exactly one of a code from an authenticator app, a recovery code, or a WebAuthn assertion."""

    code = serializers.RegexField(
        r"^\s*\d{3}\s?\d{3}\s*$", required=False, help_text="The 6 digits the app shows."
    )
    recovery_code = serializers.CharField(
        max_length=32, required=False, help_text="One of your recovery codes (used up)."
    )
    webauthn = serializers.JSONField(
        required=False,
        help_text="The PublicKeyCredential from navigator.credentials.get(), as JSON "
        "(id, rawId, type, response{clientDataJSON, authenticatorData, signature, userHandle}, "
        "base64url).",
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        given = [name for name in ("code", "recovery_code", "webauthn") if attrs.get(name)]
        if len(given) != 1:
            raise serializers.ValidationError(
                "Give exactly one of code, recovery_code or webauthn."
            )
        if "webauthn" in attrs and not isinstance(attrs["webauthn"], dict):
            raise serializers.ValidationError({"webauthn": "Must be a JSON object."})
        return attrs


class TokenMfaSerializer(FactorProofSerializer):
    challenge = serializers.UUIDField(help_text="The challenge of the MFA_REQUIRED answer.")


class ChallengeSerializer(serializers.Serializer[Any]):
    challenge = serializers.UUIDField(help_text="The challenge of the MFA_REQUIRED answer.")


class WebAuthnOptionsSerializer(serializers.Serializer[Any]):
    """PublicKeyCredentialRequestOptions or CreationOptions as JSON (binary fields base64url)."""

    challenge = serializers.CharField()
    timeout = serializers.IntegerField(required=False)
    rpId = serializers.CharField(required=False)  # noqa: N815 - the WebAuthn name
    allowCredentials = serializers.ListField(  # noqa: N815
        child=serializers.DictField(), required=False
    )
    userVerification = serializers.CharField(required=False)  # noqa: N815
    rp = serializers.DictField(required=False)
    user = serializers.DictField(required=False)
    pubKeyCredParams = serializers.ListField(  # noqa: N815
        child=serializers.DictField(), required=False
    )
    excludeCredentials = serializers.ListField(  # noqa: N815
        child=serializers.DictField(), required=False
    )
    authenticatorSelection = serializers.DictField(required=False)  # noqa: N815
    attestation = serializers.CharField(required=False)


class FactorSerializer(serializers.Serializer[Any]):
    id = serializers.UUIDField()
    kind = serializers.ChoiceField(choices=["totp", "webauthn"])
    name = serializers.CharField()
    created_at = serializers.DateTimeField()
    last_used_at = serializers.DateTimeField(allow_null=True)


class FactorListSerializer(serializers.Serializer[Any]):
    factors = FactorSerializer(many=True)
    recovery_codes_remaining = serializers.IntegerField()
    enrolment_required = serializers.BooleanField(
        help_text="Your organization requires a factor this session lacks: enrol one first."
    )


class FactorNameSerializer(serializers.Serializer[Any]):
    name = serializers.CharField(max_length=64, required=False, allow_blank=True, default="")


class FactorRenameSerializer(serializers.Serializer[Any]):
    name = serializers.CharField(max_length=64)


class TotpEnrolmentSerializer(serializers.Serializer[Any]):
    id = serializers.UUIDField()
    name = serializers.CharField()
    secret = serializers.CharField(help_text="Base32; shown this once, for typing into an app.")
    otpauth_uri = serializers.CharField(help_text="What the QR code holds.")
    qr_svg = serializers.CharField(help_text="The QR code as an inline SVG element.")


class TotpConfirmSerializer(serializers.Serializer[Any]):
    code = serializers.RegexField(r"^\s*\d{3}\s?\d{3}\s*$")


class EnrolledSerializer(serializers.Serializer[Any]):
    factor = FactorSerializer()
    recovery_codes = serializers.ListField(
        child=serializers.CharField(),
        allow_null=True,
        help_text="With a first factor: ten single-use recovery codes, shown this once.",
    )


class PasskeyRegisterSerializer(serializers.Serializer[Any]):
    name = serializers.CharField(max_length=64, required=False, allow_blank=True, default="")
    credential = serializers.JSONField(
        help_text="The PublicKeyCredential from navigator.credentials.create(), as JSON "
        "(binary fields base64url)."
    )

    def validate_credential(self, value: Any) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise serializers.ValidationError("Must be a JSON object.")
        return value


class RecoveryCodesSerializer(serializers.Serializer[Any]):
    recovery_codes = serializers.ListField(child=serializers.CharField())


class StepUpSerializer(serializers.Serializer[Any]):
    mfa_verified_at = serializers.DateTimeField()
    valid_until = serializers.DateTimeField(
        help_text="Sensitive actions are allowed without another check until then."
    )


class MfaPolicySerializer(serializers.Serializer[Any]):
    mfa_policy = serializers.ChoiceField(
        choices=MfaPolicy.choices,
        help_text="Who must sign in with a second factor: off, admins or everyone.",
    )


class MfaResetSerializer(serializers.Serializer[Any]):
    factors_removed = serializers.IntegerField()
