"""`manage.py service_token_usage --org SLUG [--days N] [--json]`: uses per token and day."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from accounts.models import ServiceToken, TokenUsageDay
from accounts.selectors import organization_by_slug_or_id
from accounts.tokens.usage import token_usage_flush


class Command(BaseCommand):
    help = "Show how often each service token was used, per day (UTC)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--org", required=True)
        parser.add_argument("--days", type=int, default=30)
        parser.add_argument("--json", action="store_true")

    def handle(self, *args: Any, **options: Any) -> None:
        org = organization_by_slug_or_id(value=options["org"])
        if org is None:
            raise CommandError(f"No organization {options['org']!r}.")
        if not 1 <= options["days"] <= 365:
            raise CommandError("--days must be between 1 and 365.")
        tokens = list(ServiceToken.objects.filter(organization=org).order_by("name"))
        token_usage_flush([str(token.id) for token in tokens])
        since = timezone.now().date() - timedelta(days=options["days"] - 1)
        days = TokenUsageDay.objects.filter(token__organization=org, date__gte=since)
        per_token: dict[str, dict[str, int]] = {}
        for row in days.order_by("date"):
            per_token.setdefault(str(row.token_id), {})[row.date.isoformat()] = row.requests
        report: list[dict[str, Any]] = [
            {
                "id": str(t.id),
                "name": t.name,
                "prefix": t.prefix,
                "usage_count": ServiceToken.objects.get(id=t.id).usage_count,
                "daily": per_token.get(str(t.id), {}),
            }
            for t in tokens
        ]
        if options["json"]:
            self.stdout.write(json.dumps(report, indent=2))
            return
        for entry in report:
            self.stdout.write(
                f"{entry['name']} ({entry['prefix']}…): {entry['usage_count']} in all"
            )
            for day, count in entry["daily"].items():
                self.stdout.write(f"  {day}  {count}")
        if not report:
            self.stdout.write("No service tokens.")
