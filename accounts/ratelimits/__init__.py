"""How often: tiers, rate-limit windows and the DRF throttles."""
