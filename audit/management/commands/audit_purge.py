"""`manage.py audit_purge --older-than-days N`: retention that keeps the chains verifiable."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from audit.services import audit_purge


class Command(BaseCommand):
    help = "Remove audit events older than N days, leaving a checkpoint so the chains verify."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--older-than-days",
            type=int,
            default=settings.AUDIT_RETENTION_DAYS,
            help="retention in days (default: the AUDIT_RETENTION_DAYS setting)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        days = options["older_than_days"]
        if days < 1:
            raise CommandError("--older-than-days must be at least 1")
        removed = audit_purge(older_than_days=days)
        self.stdout.write(
            f"Purged {sum(removed.values())} event(s) older than {days} days "
            f"from {len(removed)} chain(s)"
        )
