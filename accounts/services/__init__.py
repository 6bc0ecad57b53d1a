"""Every write to identity data: atomic, audited, effective on the next request."""
