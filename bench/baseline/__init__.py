"""A minimal Django + DRF application: the yardstick the project's throughput is measured by."""
