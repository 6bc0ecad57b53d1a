"""`manage.py list_service_tokens --org SLUG [--status active/expired/revoked] [--json]`."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from accounts.api.token_serializers import ServiceTokenSerializer
from accounts.models import ServiceToken
from accounts.selectors import organization_by_slug_or_id


class Command(BaseCommand):
    help = "List an organization's service tokens (never their secrets)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--org", required=True)
        parser.add_argument("--status", choices=[s.value for s in ServiceToken.Status])
        parser.add_argument("--json", action="store_true")

    def handle(self, *args: Any, **options: Any) -> None:
        org = organization_by_slug_or_id(value=options["org"])
        if org is None:
            raise CommandError(f"No organization {options['org']!r}.")
        now = timezone.now()
        tokens = [
            token
            for token in ServiceToken.objects.filter(organization=org)
            .select_related("created_by", "organization")
            .order_by("-created_at")
            if not options["status"] or token.status_at(now) == options["status"]
        ]
        rows = ServiceTokenSerializer(tokens, many=True).data
        if options["json"]:
            self.stdout.write(json.dumps(rows, indent=2, default=str))
            return
        for row in rows:
            self.stdout.write(
                f"{row['id']}  {row['prefix']}…  {row['status']:<8}  {row['name']:<24}  "
                f"{','.join(row['scopes'])}  expires {row['expires_at']}  "
                f"used {row['usage_count']}x, last {row['last_used_at'] or 'never'}"
            )
        if not rows:
            self.stdout.write("No service tokens.")
