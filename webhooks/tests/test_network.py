"""SSRF safety: which addresses may receive webhooks, checked at delivery on the address used."""

from __future__ import annotations

import ipaddress
import ssl
import time
from typing import Any

import httpx
import pytest
from django.core.management import call_command
from django.core.management.base import SystemCheckError

from config.testing.webhook_receiver import WebhookReceiver
from webhooks.errors import TargetRefused
from webhooks.models import WebhookAttempt, WebhookDelivery
from webhooks.network import address_refusal, target_parse, url_check
from webhooks.services.deliveries import delivery_attempt
from webhooks.services.events import webhook_event_emit
from webhooks.tests.factories import PUBLIC_ADDRESS, RECEIVER_HOST, endpoint_for
from webhooks.transport import AttemptTransport

REFUSED = [
    ("127.0.0.1", "loopback"),
    ("127.8.9.10", "loopback"),
    ("::1", "loopback"),
    ("10.1.2.3", "private"),
    ("172.16.0.1", "private"),
    ("172.31.255.254", "private"),
    ("192.168.1.1", "private"),
    ("fc00::1", "private"),
    ("fd12:3456::1", "private"),
    ("169.254.10.20", "link-local"),
    ("fe80::1", "link-local"),
    ("224.0.0.1", "multicast"),
    ("239.255.255.250", "multicast"),
    ("ff02::1", "multicast"),
    ("0.0.0.0", "unspecified"),  # noqa: S104 - the address under test
    ("::", "unspecified"),
    ("240.0.0.1", "reserved"),
    ("100.64.0.1", "not public"),
    ("192.0.2.10", "private"),
    ("2001:db8::1", "private"),
    ("169.254.169.254", "metadata"),
    ("fd00:ec2::254", "metadata"),
    ("::ffff:127.0.0.1", "loopback"),
    ("::ffff:10.0.0.1", "private"),
    ("::ffff:169.254.169.254", "metadata"),
    ("2002:7f00:1::1", "loopback"),  # 6to4 of 127.0.0.1
    ("2002:a9fe:a9fe::1", "metadata"),  # 6to4 of 169.254.169.254
    ("64:ff9b::a00:1", "private"),  # NAT64 of 10.0.0.1
    ("64:ff9b::a9fe:a9fe", "metadata"),
    ("64:ff9b:1::a00:1", "NAT64"),
    ("2001:0:4136:e378:8000:63bf:f5ff:fffe", "private"),  # Teredo, client 10.0.0.1
    ("fec0::1", "site-local"),  # deprecated, but still not of the public internet
    ("::7f00:1", "loopback"),  # IPv4-compatible 127.0.0.1
    ("::a9fe:a9fe", "metadata"),  # IPv4-compatible 169.254.169.254
]


@pytest.mark.parametrize(("address", "kind"), REFUSED)
def test_an_address_that_is_not_public_is_refused(address: str, kind: str) -> None:
    reason = address_refusal(ipaddress.ip_address(address))

    assert reason is not None
    assert kind in reason


@pytest.mark.parametrize(
    "address", [PUBLIC_ADDRESS, "8.8.8.8", "2606:4700:4700::1111", "64:ff9b::808:808"]
)
def test_a_public_address_is_allowed(address: str) -> None:
    assert address_refusal(ipaddress.ip_address(address)) is None


def test_allowing_private_targets_never_allows_the_metadata_service(settings: Any) -> None:
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = True

    assert address_refusal(ipaddress.ip_address("127.0.0.1")) is None
    assert address_refusal(ipaddress.ip_address("10.0.0.1")) is None
    metadata = ("169.254.169.254", "fd00:ec2::254", "::ffff:169.254.169.254", "::a9fe:a9fe")
    for address in (*metadata, "224.0.0.1"):
        assert address_refusal(ipaddress.ip_address(address)) is not None


def test_only_https_is_accepted_unless_plain_http_is_allowed(settings: Any) -> None:
    with pytest.raises(TargetRefused, match="https://"):
        target_parse("http://hooks.example.com/x")
    with pytest.raises(TargetRefused, match="https://"):
        target_parse("ftp://hooks.example.com/x")
    with pytest.raises(TargetRefused, match="user name"):
        target_parse("https://user:pw@hooks.example.com/x")

    settings.WEBHOOK_ALLOW_HTTP = True
    assert target_parse("http://hooks.example.com:8080/x?a=1").path == "/x?a=1"


@pytest.mark.parametrize(("address", "kind"), REFUSED)
def test_a_host_resolving_to_a_refused_address_is_refused(
    address: str, kind: str, resolver: dict[str, list[str]]
) -> None:
    resolver["hooks.example.com"] = [PUBLIC_ADDRESS, address]

    with pytest.raises(TargetRefused, match="resolves to"):
        url_check("https://hooks.example.com/x")


def test_an_address_in_the_url_itself_is_checked(resolver: dict[str, list[str]]) -> None:
    for url in ("https://127.0.0.1/x", "https://[::1]/x", "https://[::ffff:a9fe:a9fe]/x"):
        with pytest.raises(TargetRefused):
            url_check(url)


def test_a_name_that_does_not_resolve_is_refused(resolver: dict[str, list[str]]) -> None:
    with pytest.raises(TargetRefused, match="could not be resolved"):
        url_check("https://nowhere.example.com/x")


@pytest.mark.django_db
def test_a_dns_answer_that_changes_after_registration_is_refused_at_delivery(
    org: Any, resolver: dict[str, list[str]]
) -> None:
    resolver["rebind.example.com"] = [PUBLIC_ADDRESS]
    url_check("https://rebind.example.com/hooks")  # registration passes
    endpoint = endpoint_for(org, url="https://rebind.example.com/hooks")
    resolver["rebind.example.com"] = ["169.254.169.254"]
    event = webhook_event_emit(organization_id=org.id, type="job.failed", data={"id": "j"})

    delivery = WebhookDelivery.objects.get(event=event, endpoint=endpoint)
    assert delivery_attempt(delivery.id) == "refused"

    attempt = WebhookAttempt.objects.get(delivery=delivery)
    assert attempt.status_code is None
    assert "169.254.169.254, a cloud metadata address" in attempt.error
    delivery.refresh_from_db()
    assert delivery.status == "pending"  # retried: the name may point elsewhere again


@pytest.mark.django_db
def test_the_connection_goes_to_the_address_that_was_checked(
    org: Any, receiver: WebhookReceiver, resolver: dict[str, list[str]], settings: Any
) -> None:
    # The name exists only in the checked answer: a second lookup anywhere would fail.
    endpoint = endpoint_for(org, url=f"https://{RECEIVER_HOST}:{receiver.port}/")
    event = webhook_event_emit(organization_id=org.id, type="job.failed", data={"id": "j"})
    delivery = WebhookDelivery.objects.get(event=event, endpoint=endpoint)

    assert delivery_attempt(delivery.id) == "succeeded"

    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = False
    again = webhook_event_emit(organization_id=org.id, type="job.failed", data={"id": "k"})
    assert delivery_attempt(WebhookDelivery.objects.get(event=again).id) == "refused"
    assert len(receiver.received) == 1


@pytest.mark.django_db
def test_a_certificate_for_another_name_is_refused(
    org: Any, receiver: WebhookReceiver, resolver: dict[str, list[str]]
) -> None:
    resolver["impostor.example.test"] = ["127.0.0.1"]
    endpoint_for(org, url=f"https://impostor.example.test:{receiver.port}/")
    webhook_event_emit(organization_id=org.id, type="job.failed", data={"id": "j"})

    assert delivery_attempt(WebhookDelivery.objects.get().id) == "failed"

    assert "CERTIFICATE_VERIFY_FAILED" in WebhookAttempt.objects.get().error
    assert receiver.received == []


def _deploy_check_says() -> str:
    """What `check --deploy` reports at warning level (other settings warn here too)."""
    try:
        call_command("check", "--deploy", "--fail-level", "WARNING", "--tag", "security")
    except SystemCheckError as exc:
        return str(exc)
    return ""


def test_check_deploy_warns_when_private_targets_or_plain_http_are_allowed(
    settings: Any,
) -> None:
    assert "webhooks.W00" not in _deploy_check_says()

    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = True
    settings.WEBHOOK_ALLOW_HTTP = True

    said = _deploy_check_says()
    assert "webhooks.W001" in said
    assert "webhooks.W002" in said


def test_the_attempts_transport_connects_to_no_other_address_than_the_checked_one() -> None:
    transport = AttemptTransport(
        ssl_context=ssl.create_default_context(),
        address="127.0.0.1",
        deadline=time.monotonic() + 5,
    )

    with (
        httpx.Client(transport=transport) as client,
        pytest.raises(httpx.ConnectError, match="not the address that was checked"),
    ):
        client.post("https://10.1.2.3:9/x")
