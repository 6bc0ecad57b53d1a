"""The audit log's errors."""

from __future__ import annotations


class AppendOnlyError(Exception):
    """Raised on any attempt to change or delete an audit event through the ORM."""
