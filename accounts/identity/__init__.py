"""Who is calling: the principal, its cached records, JWT, sessions, DRF authentication, lockout."""
