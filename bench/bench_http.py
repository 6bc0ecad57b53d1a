"""The HTTP plumbing: a bare DRF view (baseline) and the health endpoints."""

from django.test import Client

from bench.harness import compare, report, request


def run() -> None:
    client = Client()
    results = compare(
        {
            "bare DRF view (baseline)": request(client, "/bench/bare"),
            "GET /health (database, cache, broker)": request(client, "/health"),
            "GET /api/v1/health": request(client, "/api/v1/health"),
        }
    )
    report("HTTP plumbing (in-process, full middleware stack)", results)
    scrape = compare(
        {
            "bare DRF view (baseline)": request(client, "/bench/bare"),
            "GET /metrics (scrape token)": request(
                client, "/metrics", HTTP_AUTHORIZATION="Bearer test-metrics-token"
            ),
        },
        warmup=10,
        rounds=5,
        per_round=10,
    )
    report("Metrics scrape", scrape)
