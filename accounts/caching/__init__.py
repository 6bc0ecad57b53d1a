"""Safe access to the shared identity cache, and invalidations that survive its outages."""
