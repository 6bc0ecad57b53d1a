"""`manage.py classifier_health [--json]`: probe every classifier provider and print its state."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import CommandError, CommandParser

from classifier.chain import ProbeResult, providers_probe
from config.commands import SystemCommand

COLUMNS = f"{'provider':<12}{'state':<11}{'failing':>8}{'requests':>10}{'failures':>10}"


def _row(result: ProbeResult) -> str:
    status = result.status
    average = f"{status.avg_response_ms:.1f}ms" if status.avg_response_ms is not None else "-"
    note = result.error or "probe ok"
    if status.ejected and status.ejected_until is not None:
        note += f"; ejected until {status.ejected_until:%Y-%m-%dT%H:%M:%SZ}"
    return (
        f"{status.name:<12}{status.state:<11}{status.consecutive_failures:>8}"
        f"{status.requests:>10}{status.failures:>10}{average:>10}  {note}"
    )


class Command(SystemCommand):
    help = (
        "Probe every classifier provider with a small image and print each one's health; "
        "exit 1 when none classified the probe and is healthy."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--json", action="store_true", help="Print JSON instead of a table.")

    def handle(self, *args: Any, **options: Any) -> None:
        results = providers_probe()
        if options["json"]:
            self.stdout.write(json.dumps([result.to_dict() for result in results], indent=2))
        else:
            self.stdout.write(f"{COLUMNS}{'average':>10}  probe")
            for result in results:
                self.stdout.write(_row(result))
        if not any(result.passed for result in results):
            raise CommandError("No classifier provider is healthy.", returncode=1)
