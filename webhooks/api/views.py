"""The webhooks API (`webhook:manage`): endpoints, their secrets, test pings and delivery log."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.authz.permissions import principal_required as _principal
from accounts.selectors import organization_get
from config.pagination import PageNumberPagination, paginated
from webhooks.api import serializers as s
from webhooks.models import WebhookEndpoint
from webhooks.selectors import delivery_get, delivery_list, endpoint_get, endpoint_list
from webhooks.services import deliveries, endpoints

MANAGE = "webhook:manage"
NO_STORE = {"Cache-Control": "no-store"}


def _endpoint(request: Request, endpoint_id: str) -> WebhookEndpoint:
    return endpoint_get(
        organization_id=_principal(request).organization_id, endpoint_id=endpoint_id
    )


class EndpointListApi(APIView):
    required_permission = MANAGE

    @extend_schema(responses=paginated(s.EndpointSerializer), tags=["webhooks"])
    def get(self, request: Request) -> Response:
        """The organization's webhook endpoints, newest first; never a secret."""
        paginator = PageNumberPagination()
        found = endpoint_list(organization_id=_principal(request).organization_id)
        page = paginator.paginate_queryset(found, request, view=self) or []
        return paginator.get_paginated_response(s.EndpointSerializer(page, many=True).data)


class EndpointCreateApi(APIView):
    required_permission = MANAGE
    step_up = True

    @extend_schema(
        request=s.EndpointCreateSerializer,
        responses={201: s.IssuedEndpointSerializer},
        tags=["webhooks"],
    )
    def post(self, request: Request) -> Response:
        """Register an endpoint; the answer holds its signing secret, shown this once."""
        data = s.EndpointCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        principal = _principal(request)
        issued = endpoints.endpoint_create(
            organization=organization_get(organization_id=principal.organization_id),
            url=data.validated_data["url"],
            description=data.validated_data.get("description", ""),
            event_types=data.validated_data["event_types"],
            created_by_id=principal.user_id,
        )
        issued.endpoint.secret = issued.secret
        body = s.IssuedEndpointSerializer(issued.endpoint).data
        return Response(body, status=201, headers=NO_STORE)


class EndpointDetailApi(APIView):
    required_permission = MANAGE

    @extend_schema(responses=s.EndpointSerializer, tags=["webhooks"])
    def get(self, request: Request, endpoint_id: str) -> Response:
        """One webhook endpoint."""
        return Response(s.EndpointSerializer(_endpoint(request, endpoint_id)).data)


class EndpointUpdateApi(APIView):
    required_permission = MANAGE
    step_up = True

    @extend_schema(
        request=s.EndpointUpdateSerializer, responses=s.EndpointSerializer, tags=["webhooks"]
    )
    def patch(self, request: Request, endpoint_id: str) -> Response:
        """Change the address, description or event types, or enable or disable the endpoint."""
        endpoint = _endpoint(request, endpoint_id)
        data = s.EndpointUpdateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        endpoint = endpoints.endpoint_update(endpoint=endpoint, **data.validated_data)
        return Response(s.EndpointSerializer(endpoint).data)


class EndpointDeleteApi(APIView):
    required_permission = MANAGE

    @extend_schema(responses={204: None}, tags=["webhooks"])
    def delete(self, request: Request, endpoint_id: str) -> Response:
        """Delete the endpoint, its pending deliveries and its log."""
        endpoint = _endpoint(request, endpoint_id)
        endpoints.endpoint_delete(endpoint=endpoint)
        return Response(status=204)


class EndpointSecretRotateApi(APIView):
    required_permission = MANAGE
    step_up = True

    @extend_schema(request=None, responses={201: s.IssuedEndpointSerializer}, tags=["webhooks"])
    def post(self, request: Request, endpoint_id: str) -> Response:
        """A new signing secret, shown once; the previous one signs too for the overlap."""
        endpoint = _endpoint(request, endpoint_id)
        issued = endpoints.endpoint_secret_rotate(endpoint=endpoint)
        body = s.IssuedEndpointSerializer(issued.endpoint).data
        return Response(body, status=201, headers=NO_STORE)


class EndpointPingApi(APIView):
    required_permission = MANAGE

    @extend_schema(request=None, responses={202: s.DeliverySerializer}, tags=["webhooks"])
    def post(self, request: Request, endpoint_id: str) -> Response:
        """Send a `ping` event to this endpoint; follow it in the delivery log."""
        endpoint = _endpoint(request, endpoint_id)
        delivery = deliveries.endpoint_ping(endpoint=endpoint)
        return Response(s.DeliverySerializer(delivery).data, status=202)


class DeliveryCollectionApi(APIView):
    required_permission = MANAGE

    @extend_schema(
        parameters=[s.DeliveryFilterSerializer],
        responses=paginated(s.DeliverySerializer),
        tags=["webhooks"],
    )
    def get(self, request: Request, endpoint_id: str) -> Response:
        """The endpoint's delivery log, newest first: each delivery with its attempts."""
        endpoint = _endpoint(request, endpoint_id)
        query = s.DeliveryFilterSerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        found = delivery_list(endpoint=endpoint, status=query.validated_data.get("status"))
        paginator = PageNumberPagination()
        page = paginator.paginate_queryset(found, request, view=self) or []
        return paginator.get_paginated_response(s.DeliverySerializer(page, many=True).data)


class DeliveryResendApi(APIView):
    required_permission = MANAGE

    @extend_schema(request=None, responses={202: s.DeliverySerializer}, tags=["webhooks"])
    def post(self, request: Request, endpoint_id: str, delivery_id: str) -> Response:
        """Send the delivery's event again (same `webhook-id`), as a new delivery."""
        endpoint = _endpoint(request, endpoint_id)
        again = deliveries.delivery_resend(
            delivery=delivery_get(endpoint=endpoint, delivery_id=delivery_id)
        )
        shown = delivery_get(endpoint=endpoint, delivery_id=again.id)
        return Response(s.DeliverySerializer(shown).data, status=202)


class EventTypeCollectionApi(APIView):
    required_permission = MANAGE

    @extend_schema(responses=s.EventTypeSerializer(many=True), tags=["webhooks"])
    def get(self, request: Request) -> Response:
        """Every event type, with what it announces and whether endpoints may subscribe to it."""
        return Response(s.EventTypeSerializer(s.event_type_rows(), many=True).data)
