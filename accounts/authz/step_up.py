"""Sensitive actions ask a person for a recent second factor (a "step-up"), if they have one."""

from __future__ import annotations

import time

from django.conf import settings

from accounts.errors import MfaEnrolmentRequired, MfaStepUpRequired
from accounts.identity.principal import Principal
from accounts.selectors import user_has_factor


def step_up_fresh(principal: Principal) -> bool:
    """Tell whether the principal's session proved a second factor recently enough."""
    verified = principal.mfa_verified_at
    return verified is not None and time.time() - verified < settings.MFA_STEP_UP_SECONDS


def step_up_needed(principal: Principal) -> bool:
    """Tell whether the principal must prove a second factor before a sensitive action.

    Service tokens and people without a second factor are not asked.
    """
    if principal.kind != "user" or principal.user_id is None or step_up_fresh(principal):
        return False
    return user_has_factor(user_id=principal.user_id)


def step_up_check(principal: Principal) -> None:
    """Raise MfaStepUpRequired unless the principal may do a sensitive action now."""
    if step_up_needed(principal):
        raise MfaStepUpRequired()


def enrolment_check(principal: Principal, *, allowed: bool) -> None:
    """Raise MfaEnrolmentRequired if the session may only enrol a factor and this is not that."""
    if principal.mfa_enrolment_required and not allowed:
        raise MfaEnrolmentRequired()
