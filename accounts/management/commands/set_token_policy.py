"""`manage.py set_token_policy --org SLUG [--max-lifetime-days N|none]
[--require-allowed-ips yes/no]`."""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandError, CommandParser

from accounts.selectors import organization_by_slug_or_id
from accounts.services.token_policies import UNCHANGED, token_policy, token_policy_set
from config.commands import SystemCommand

YES_NO = {"yes": True, "no": False}


def _lifetime(value: str) -> int | None:
    if value.lower() == "none":
        return None
    try:
        return int(value)
    except ValueError:
        raise CommandError(
            f"--max-lifetime-days must be a number of days or 'none', not {value!r}."
        ) from None


class Command(SystemCommand):
    help = (
        "Set an organization's service token policy: the longest lifetime a new or rotated "
        "token may get, and whether every token must name the addresses it may be used from."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--org", required=True, help="organization slug")
        parser.add_argument(
            "--max-lifetime-days", help="1..365, or 'none' for no bound beyond the service's"
        )
        parser.add_argument("--require-allowed-ips", choices=sorted(YES_NO))

    def handle(self, *args: Any, **options: Any) -> None:
        org = organization_by_slug_or_id(value=options["org"])
        if org is None:
            raise CommandError(f"No organization {options['org']!r}.")
        lifetime, required = options["max_lifetime_days"], options["require_allowed_ips"]
        if lifetime is None and required is None:
            raise CommandError("Give --max-lifetime-days, --require-allowed-ips or both.")
        org = token_policy_set(
            organization=org,
            max_lifetime_days=UNCHANGED if lifetime is None else _lifetime(lifetime),
            require_allowed_ips=UNCHANGED if required is None else YES_NO[required],
        )
        policy = token_policy(org)
        bound = policy["max_lifetime_days"]
        self.stdout.write(
            f"Token policy of {org.slug}: max_lifetime_days "
            f"{bound if bound is not None else 'none'} (the service's: "
            f"{policy['service_max_lifetime_days']}), require_allowed_ips "
            f"{'yes' if policy['require_allowed_ips'] else 'no'}."
        )
