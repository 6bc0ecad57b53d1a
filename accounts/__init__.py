"""Users, organizations, roles, tokens, sessions and the authorization decision point."""
