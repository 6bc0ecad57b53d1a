"""The HTTP plumbing: a bare DRF view (baseline) and the health endpoints."""

from django.test import Client

from bench.harness import measure, report, request


def run() -> None:
    client = Client()
    baseline = measure("bare DRF view (baseline)", request(client, "/bench/bare"))
    results = [
        measure("GET /health (database, cache, broker)", request(client, "/health")),
        measure("GET /api/v1/health", request(client, "/api/v1/health")),
        measure(
            "GET /metrics (scrape token)",
            request(client, "/metrics", HTTP_AUTHORIZATION="Bearer test-metrics-token"),
            rounds=5,
            per_round=20,
        ),
    ]
    report("HTTP plumbing (in-process, full middleware stack)", baseline, results)
