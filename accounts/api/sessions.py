"""Your login sessions: list them, end one, end them all."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.api import serializers as s
from accounts.authz.decision_point import ANY_PRINCIPAL
from accounts.authz.permissions import principal_required as _principal
from accounts.selectors import (
    person_get,
    session_list,
    session_live_get,
)
from accounts.services import sessions as session_services


class SessionCollectionApi(APIView):
    """Your live sessions on every device, the current one marked."""

    required_permission = ANY_PRINCIPAL

    @extend_schema(responses=s.SessionSerializer(many=True), tags=["auth"])
    def get(self, request: Request) -> Response:
        principal = _principal(request)
        sessions = session_list(user_id=person_get(user_id=principal.user_id).id)
        context = {"current_session_id": principal.session_id}
        return Response(s.SessionSerializer(sessions, many=True, context=context).data)


class SessionDetailApi(APIView):
    required_permission = ANY_PRINCIPAL

    @extend_schema(responses={204: None}, tags=["auth"])
    def delete(self, request: Request, session_id: str) -> Response:
        """End one of your sessions."""
        principal = _principal(request)
        session = session_live_get(
            user_id=person_get(user_id=principal.user_id).id, session_id=session_id
        )
        session_services.session_revoke(session=session, reason="revoked_by_user")
        return Response(status=204)


class SessionRevokeAllApi(APIView):
    """End all your sessions, by default except this one."""

    required_permission = ANY_PRINCIPAL
    step_up = True

    @extend_schema(request=s.RevokeAllSerializer, responses=s.RevokedCountSerializer, tags=["auth"])
    def post(self, request: Request) -> Response:
        data = s.RevokeAllSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        principal = _principal(request)
        keep = principal.session_id if data.validated_data["keep_current"] else None
        revoked = session_services.sessions_revoke_all(
            user=person_get(user_id=principal.user_id),
            reason="revoked_by_user",
            keep_session_id=keep,
        )
        return Response({"revoked": revoked})
