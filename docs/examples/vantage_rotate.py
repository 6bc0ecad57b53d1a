#!/usr/bin/env python3
"""Renew the service token this job holds: rotate it when it expires soon; print the successor.

Usage: vantage_rotate.py [--force] [--days N] [--grace-seconds N]

Environment:
  VANTAGE_URL            the server, e.g. https://vantage.example.com (required)
  VANTAGE_TOKEN          the token to renew, with the scope token:self_rotate (required)
  VANTAGE_ROTATE_DAYS    rotate when the token expires within this many days (default 14)
  VANTAGE_GRACE_SECONDS  how long the current token keeps working after the rotation,
                         0 to 86400 (default 3600); store the successor within it

--days and --grace-seconds override the environment. A token that has been
rotated already (status rotating: a successor exists) is not rotated again:
the run fails, saying until when the token still works. --force rotates now,
whatever the expiry, and even a token rotated already, which makes the server
revoke its whole rotation family, the successor included (a rotated token
presented again is taken for a stolen copy): a way to cut a leaked token off.

Output: when the token was rotated, the successor's secret alone on one line
of stdout, once the successor has been seen to work; nothing on stdout when no
rotation was due. Everything else goes to stderr, which never shows a secret.

Exit status: 0 when rotated or when nothing was due; 1 on any failure (then
stdout is empty and there is nothing to store); 2 on bad usage.

Never run two of these at once with the same token: the second would present
a token rotated already, and the whole family would be revoked.

Python 3.9 or newer, standard library only.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

TOKEN_SHAPE = re.compile(r"sk_[0-9a-f]{64}")
TRANSIENT = {0, 429, 500, 502, 503, 504}
MAX_ATTEMPTS = 5
MAX_RETRY_WAIT = 120


class Failure(Exception):
    """The renewal failed: nothing is printed on stdout; exit status 1."""


@dataclass
class Answer:
    """An HTTP answer; status 0 when none came (the reason is in `body`)."""

    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        try:
            return json.loads(self.body)
        except ValueError:
            return None

    def problem(self) -> str:
        """Return "CODE: detail" of a problem-details answer, or what is known without one."""
        if self.status == 0:
            return f"no answer: {self.body.decode(errors='replace')}"
        data = self.json()
        if not isinstance(data, dict):
            return f"HTTP_{self.status}: the answer was not problem details"
        errors = "".join(
            f" {error.get('field')}: {error.get('message')};" for error in data.get("errors") or []
        )
        return f"{data.get('code') or f'HTTP_{self.status}'}: {data.get('detail')}{errors}"

    @property
    def code(self) -> str:
        data = self.json()
        return str(data.get("code", "")) if isinstance(data, dict) else ""

    def retry_after(self) -> int | None:
        """Return the Retry-After in whole seconds; None when absent or an HTTP date."""
        value = self.headers.get("retry-after", "").strip()
        return int(value) if value.isdigit() else None


def call(base_url: str, token: str, method: str, path: str, payload: Any = None) -> Answer:
    """Make one request with `token`; never raise for an HTTP status."""
    body = None if payload is None else json.dumps(payload).encode()
    request = urllib.request.Request(  # noqa: S310 (the scheme is checked in `options`)
        f"{base_url}{path}",
        data=body,
        method=method,
        headers={
            "Authorization": f"Bearer {token}",
            "Accept": "application/json",
            "Content-Type": "application/json",
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310
            return Answer(response.status, _lower(response.headers), response.read())
    except urllib.error.HTTPError as error:
        return Answer(error.code, _lower(error.headers), error.read())
    except (urllib.error.URLError, OSError) as error:
        return Answer(0, {}, str(getattr(error, "reason", error)).encode())


def _lower(headers: Any) -> dict[str, str]:
    return {name.lower(): value for name, value in headers.items()}


def self_get(base_url: str, token: str) -> Answer:
    """GET tokens/self with `token`, asking again after a refusal or failure that may pass."""
    for attempt in range(MAX_ATTEMPTS + 1):
        answer = call(base_url, token, "GET", "/api/v1/tokens/self")
        delay = answer.retry_after()
        delay = 2**attempt if delay is None else delay
        if answer.status not in TRANSIENT or attempt == MAX_ATTEMPTS or delay > MAX_RETRY_WAIT:
            return answer
        log(f"tokens/self: {answer.problem()}; asking again in {delay}s")
        time.sleep(delay)
    raise AssertionError("unreachable")


def seconds_left(expires_at: str) -> float:
    """Return the seconds from now until an ISO 8601 UTC instant."""
    moment = datetime.fromisoformat(expires_at.replace("Z", "+00:00"))
    return (moment - datetime.now(timezone.utc)).total_seconds()  # noqa: UP017 (Python 3.9)


def record_read(base_url: str, token: str) -> dict[str, Any]:
    """Return the token's own record, or fail saying why it cannot be read."""
    answer = self_get(base_url, token)
    if answer.status == 200:
        return dict(answer.json())
    why = answer.problem()
    if answer.code == "TOKEN_REVOKED":
        raise Failure(
            f"the token is revoked ({why}). If it was rotated, its successor is the token to "
            "use; if a rotated token was presented again, its whole rotation family was "
            "revoked and an organization admin must create a new token."
        )
    if answer.code == "TOKEN_EXPIRED":
        raise Failure(f"the token has expired ({why}); an organization admin must create one.")
    raise Failure(f"could not read the token's own record: {why}")


def rotate(base_url: str, token: str, grace: int) -> dict[str, Any]:
    """POST tokens/self/rotate once (again only after a 429); return the successor's record.

    A request with no answer is not repeated: it may have been carried out, and a
    second rotation with this token would then revoke the whole family.
    """
    for attempt in range(MAX_ATTEMPTS + 1):
        answer = call(
            base_url, token, "POST", "/api/v1/tokens/self/rotate", {"grace_seconds": grace}
        )
        delay = answer.retry_after()
        if answer.status != 429 or attempt == MAX_ATTEMPTS or (delay or 10**9) > MAX_RETRY_WAIT:
            break
        log(f"rotation: {answer.problem()}; trying again in {delay}s")
        time.sleep(delay or 0)
    if answer.status == 201:
        return dict(answer.json())
    why = answer.problem()
    if answer.status == 0:
        raise Failure(
            f"the rotation got no answer ({why}). It may have been carried out: run this "
            "again without --force, which reads the token's status first; status rotating "
            "means a successor was issued and lost, and an organization admin must create a "
            "new token before this one's grace ends."
        )
    if answer.status == 409:
        raise Failure(
            "another request rotated this token at the same moment and received the "
            f"successor; nothing to store from this run: {why}"
        )
    if answer.code == "TOKEN_REVOKED":
        raise Failure(
            "the token had been rotated already, so its whole rotation family, the successor "
            f"included, is now revoked; an organization admin must create a new token (the "
            f"server said {why})"
        )
    if answer.status == 403:
        raise Failure(
            f"rotation refused: {why} (the token needs the scope token:self_rotate, and its "
            "creator must still hold token:manage)"
        )
    raise Failure(f"rotation refused: {why}")


def renew(base_url: str, token: str, *, days: int, grace: int, force: bool) -> str | None:
    """Return the verified successor's secret, or None when no rotation was due."""
    record = record_read(base_url, token)
    label = f"{record['name']} ({record['prefix']}...)"
    if "token:self_rotate" not in record.get("scopes", []):
        raise Failure(
            f"the token {label} lacks the scope token:self_rotate; an admin with "
            "token:manage must create one that has it"
        )
    left = seconds_left(record["expires_at"])
    if record.get("status") == "rotating":
        if not force:
            raise Failure(
                f"{label} has been rotated already and stops working at "
                f"{record.get('grace_until')}: use its successor. If the successor was lost, an "
                "organization admin must create a new token; rotating this one again (--force) "
                "revokes its whole rotation family, the successor included."
            )
        log(
            f"{label} has been rotated already: rotating it again (--force) revokes its whole "
            "rotation family"
        )
    elif not force and left >= days * 86400:
        log(
            f"{label} expires at {record['expires_at']}, in {int(left // 86400)} days: not "
            f"rotated (rotation is due within {days} days; --force rotates now)"
        )
        return None
    successor = rotate(base_url, token, grace)
    secret = str(successor.get("token") or "")
    if not TOKEN_SHAPE.fullmatch(secret):
        raise Failure("the rotation's answer holds no well-formed token")
    check = self_get(base_url, secret)
    seen = check.json() if check.status == 200 else None
    seen = seen if isinstance(seen, dict) else {}
    if (seen.get("id"), seen.get("status")) != (successor["id"], "active"):
        raise Failure(
            f"the successor ({successor['prefix']}...) was issued but does not answer as "
            f"itself ({check.problem()}); it is not printed. The current token keeps working "
            f"for {grace}s; ask an organization admin to look at the token."
        )
    log(
        f"rotated {record['name']}: {record['prefix']}... -> {successor['prefix']}..., which "
        f"expires at {successor['expires_at']}; the old token keeps working for {grace}s: "
        "store the new one before then"
    )
    return secret


def log(message: str) -> None:
    sys.stderr.write(f"vantage-rotate: {message}\n")


def options(argv: list[str]) -> argparse.Namespace:
    """Return the parsed arguments, with the environment's defaults; exit 2 when bad."""
    parser = argparse.ArgumentParser(description="Renew the service token this job holds.")
    parser.add_argument("--force", action="store_true", help="rotate whatever the expiry")
    parser.add_argument(
        "--days",
        type=int,
        default=os.environ.get("VANTAGE_ROTATE_DAYS", "14"),
        help="rotate when the token expires within this many days",
    )
    parser.add_argument(
        "--grace-seconds",
        type=int,
        default=os.environ.get("VANTAGE_GRACE_SECONDS", "3600"),
        help="how long the current token keeps working after the rotation",
    )
    args = parser.parse_args(argv)
    args.url = os.environ.get("VANTAGE_URL", "").rstrip("/")
    args.token = os.environ.get("VANTAGE_TOKEN", "")
    if args.days < 0 or not 0 <= args.grace_seconds <= 86400:
        parser.error("--days must be 0 or more and --grace-seconds 0 to 86400")
    if urllib.parse.urlsplit(args.url).scheme not in ("http", "https"):
        parser.error("set VANTAGE_URL, e.g. https://vantage.example.com")
    if not TOKEN_SHAPE.fullmatch(args.token):
        parser.error("set VANTAGE_TOKEN to a service token (sk_ and 64 hex characters)")
    return args


def main(argv: list[str]) -> int:
    args = options(argv)
    try:
        secret = renew(
            args.url, args.token, days=args.days, grace=args.grace_seconds, force=args.force
        )
    except Failure as failure:
        log(str(failure))
        return 1
    if secret is not None:
        sys.stdout.write(f"{secret}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
