"""Vehicle classification providers, their health and failover."""
