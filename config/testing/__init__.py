"""Test support shared by every app's tests: HTTP helpers, real server and worker processes,
and a throw-away Redis. Imported by tests and by the benchmarks; never by the product."""
