"""The base of every management command that changes something: it acts as the system."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from config.errors import DomainError
from config.request_context import SYSTEM, ClientInfo, begin_context


class SystemCommand(BaseCommand):
    """A command whose audit events name the system as their actor.

    A domain error (bad input, a conflict) becomes a clear message and a
    non-zero exit instead of a traceback.
    """

    def execute(self, *args: Any, **options: Any) -> Any:
        begin_context(client=ClientInfo(), actor=SYSTEM)
        try:
            return super().execute(*args, **options)
        except DomainError as exc:
            raise CommandError(exc.detail) from exc
        finally:
            begin_context(client=ClientInfo())
