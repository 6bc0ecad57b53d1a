"""A service token's format: `sk_` + 64 lowercase hex, the last 8 a checksum.

The last 8 hex are the CRC32 of `sk_` + the first 56, so a mistyped token is
refused without any lookup. Only its SHA-256 digest is stored; `prefix` (the
first 12 characters) is a non-secret handle for people and commands.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import zlib

TOKEN_PATTERN = re.compile(r"sk_[0-9a-f]{64}")
PREFIX_LENGTH = 12  # "sk_" and 9 hex


def token_checksum(body: str) -> str:
    """Return the 8-hex CRC32 that ends a token whose first 56 hex are `body`."""
    return format(zlib.crc32(b"sk_" + body.encode()), "08x")


def token_generate() -> str:
    """Return a new secret token."""
    body = secrets.token_hex(28)
    return f"sk_{body}{token_checksum(body)}"


def token_well_formed(value: str) -> bool:
    """Tell whether `value` has a token's shape and a valid checksum (no lookup)."""
    if not TOKEN_PATTERN.fullmatch(value):
        return False
    return hmac.compare_digest(value[-8:], token_checksum(value[3:59]))


def token_digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def token_prefix(value: str) -> str:
    return value[:PREFIX_LENGTH]
