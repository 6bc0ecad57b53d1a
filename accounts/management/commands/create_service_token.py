"""`manage.py create_service_token --org SLUG --name NAME --scopes a,b [--expires-in-days N]
[--allowed-ips CIDR,CIDR] [--created-by USERNAME]`."""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandError, CommandParser

from accounts.selectors import organization_by_slug_or_id, user_by_login
from accounts.services.tokens import token_create
from config.commands import SystemCommand


class Command(SystemCommand):
    help = "Create a service token; prints the secret alone on the last line (shown once)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--org", required=True, help="organization slug")
        parser.add_argument("--name", required=True)
        parser.add_argument("--scopes", required=True, help="comma-separated permissions")
        parser.add_argument("--expires-in-days", type=int, default=None)
        parser.add_argument(
            "--created-by", help="username of the member whose permissions bound the token"
        )
        parser.add_argument(
            "--allowed-ips",
            default="",
            help="comma-separated IPv4/IPv6 addresses or networks the token may be used from",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        org = organization_by_slug_or_id(value=options["org"])
        if org is None:
            raise CommandError(f"No organization {options['org']!r}.")
        creator = None
        if options["created_by"]:
            creator = user_by_login(login=options["created_by"])
            if creator is None or not creator.memberships.filter(organization=org).exists():
                raise CommandError(f"{options['created_by']!r} is not a member of {org.slug}.")
        else:
            admin = org.memberships.filter(role="admin", user__is_active=True).order_by(
                "created_at"
            )
            first = admin.select_related("user").first()
            if first is None:
                raise CommandError(f"{org.slug} has no active admin; give --created-by.")
            creator = first.user
        scopes = [scope.strip() for scope in options["scopes"].split(",") if scope.strip()]
        networks = [entry.strip() for entry in options["allowed_ips"].split(",") if entry.strip()]
        issued = token_create(
            organization=org,
            name=options["name"],
            scopes=scopes,
            expires_in_days=options["expires_in_days"],
            created_by=creator,
            allowed_ips=networks,
        )
        token = issued.token
        self.stdout.write(
            f"Created service token {token.name} ({token.prefix}…) id {token.id} for "
            f"{org.slug}, scopes {','.join(token.scopes)}, expires {token.expires_at:%Y-%m-%d}, "
            f"usable from {', '.join(token.allowed_ips) or 'any address'}; "
            f"bounded by {creator.username}'s permissions. The token (shown once):"
        )
        self.stdout.write(issued.secret)
