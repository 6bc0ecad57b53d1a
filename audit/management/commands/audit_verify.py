"""`manage.py audit_verify [--org SLUG]`: prove the hash chains intact or name the first break."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from accounts.selectors import organization_by_slug_or_id
from audit.selectors import audit_chain_verify, audit_chains


class Command(BaseCommand):
    help = "Verify the audit log's hash chains; exit 1 naming the first broken event."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--org", help="verify only this organization's chain (slug or id)")

    def handle(self, *args: Any, **options: Any) -> None:
        chains = [_org_chain(options["org"])] if options["org"] else audit_chains()
        total = 0
        for chain in chains:
            checked, broken = audit_chain_verify(chain=chain)
            total += checked
            if broken is not None:
                self.stderr.write(
                    f"BROKEN chain {broken.chain} at position {broken.position}"
                    f" (event {broken.event_id or '-'}): {broken.reason}"
                )
                raise SystemExit(1)
        self.stdout.write(f"OK: {total} events in {len(chains)} chain(s) verified")


def _org_chain(value: str) -> str:
    org = organization_by_slug_or_id(value=value)
    if org is None:
        raise CommandError(f"no organization with slug or id {value!r}")
    return str(org.id)
