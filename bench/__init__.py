"""Benchmarks that compare the app with a baseline measured in the same run."""
