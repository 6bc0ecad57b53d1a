#!/usr/bin/env python3
"""Upload every file of a folder to Vantage, wait for the jobs, and report each file.

Usage: vantage_upload.py FOLDER [BUCKET]

Environment:
  VANTAGE_URL             the server, e.g. https://vantage.example.com (required)
  VANTAGE_TOKEN           a service token (sk_...) with image:upload and image:read (required)
  VANTAGE_BUCKET          the bucket when none is given as an argument (default: the server's)
  VANTAGE_WAIT_TIMEOUT    seconds to wait for all the jobs to finish (default 600)
  VANTAGE_MAX_RETRIES     retries of one request refused with 429 or failed in transit (default 5)
  VANTAGE_MAX_RETRY_WAIT  the longest Retry-After worth waiting for, in seconds (default 120)

Every regular, non-hidden file of FOLDER (not its subfolders) is sent; the
server decides what is an image. Each upload carries an Idempotency-Key made
from the bucket and the file's SHA-256, so running this again with the same
token within 24 hours answers with the first jobs instead of uploading again.

Output: one line per file on stdout, tab-separated: NAME, STATUS, DETAIL.
STATUS is succeeded (DETAIL: the top label, if classified), failed (the job's
error), rejected (refused by the server: its problem code and detail), error
(no answer, or a server error, after the retries), or queued/running when the
job had not finished within VANTAGE_WAIT_TIMEOUT. Progress goes to stderr.

Exit status: 0 when every job succeeded; 1 when a file was not uploaded, a job
failed or did not finish, or the server refused the token; 2 on bad usage.

Python 3.9 or newer, standard library only.
"""

from __future__ import annotations

import hashlib
import json
import mimetypes
import os
import re
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

TOKEN_SHAPE = re.compile(r"sk_[0-9a-f]{64}")
RETRIED_STATUSES = {0, 409, 429, 500, 502, 503, 504}
UNFINISHED = ("queued", "running")


class UsageError(Exception):
    """Bad arguments or environment: exit status 2."""


class TokenRefused(Exception):
    """The server refused the token itself, so every other request would be refused too."""


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
        return f"{data.get('code') or f'HTTP_{self.status}'}: {data.get('detail') or 'no detail'}"

    def retry_after(self) -> int | None:
        """Return the Retry-After in whole seconds; None when absent or an HTTP date."""
        value = self.headers.get("retry-after", "").strip()
        return int(value) if value.isdigit() else None


@dataclass
class Client:
    """Requests to one Vantage server with one service token."""

    base_url: str
    token: str

    def request(
        self,
        method: str,
        url: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> Answer:
        """Make one request to a URL or a path of the server; never raise for an HTTP status."""
        if url.startswith("/"):
            parts = urllib.parse.urlsplit(self.base_url)
            url = f"{parts.scheme}://{parts.netloc}{url}"
        request = urllib.request.Request(  # noqa: S310 (the scheme is checked in `main`)
            url,
            data=body,
            method=method,
            headers={
                "Authorization": f"Bearer {self.token}",
                "Accept": "application/json",
                **(headers or {}),
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=300) as response:  # noqa: S310
                return Answer(response.status, _lower(response.headers), response.read())
        except urllib.error.HTTPError as error:
            return Answer(error.code, _lower(error.headers), error.read())
        except (urllib.error.URLError, OSError) as error:
            return Answer(0, {}, str(getattr(error, "reason", error)).encode())


def _lower(headers: Any) -> dict[str, str]:
    return {name.lower(): value for name, value in headers.items()}


@dataclass
class FileReport:
    """One file of the folder: its outcome so far."""

    path: Path
    status: str = "rejected"
    detail: str = ""
    status_url: str = ""
    hint: int | None = field(default=None, repr=False)


def multipart(fields: dict[str, str], path: Path) -> tuple[bytes, str]:
    """Return a multipart/form-data body with `fields` and the file, and its content type."""
    boundary = f"vantage-{uuid.uuid4().hex}"
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
        for name, value in fields.items()
    ]
    quoted = path.name.replace("\\", "\\\\").replace('"', '\\"')
    kind = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    parts.append(
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{quoted}"\r\n'
        f"Content-Type: {kind}\r\n\r\n".encode()
        + path.read_bytes()
        + f"\r\n--{boundary}--\r\n".encode()
    )
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


def upload_one(client: Client, report: FileReport, bucket: str, settings: dict[str, int]) -> None:
    """Upload one file, retrying what may be retried; record the outcome in `report`."""
    digest = hashlib.sha256(report.path.read_bytes()).hexdigest()
    headers = {"Idempotency-Key": f"vantage-upload:{bucket or 'default'}:{digest}"}
    body, headers["Content-Type"] = multipart({"bucket": bucket} if bucket else {}, report.path)
    for attempt in range(settings["max_retries"] + 1):
        answer = client.request("POST", "/api/v1/images/upload", body, headers)
        if answer.status == 202:
            report.status, report.status_url = "queued", str(answer.json()["status_url"])
            return
        if answer.status in (401, 403):
            raise TokenRefused(answer.problem())
        report.detail = answer.problem()
        delay = answer.retry_after()
        delay = 2**attempt if delay is None else delay
        # CONFLICT: the same key is still being answered; IDEMPOTENCY_KEY_REUSED is final.
        conflict = answer.status == 409 and report.detail.startswith("CONFLICT:")
        retried = answer.status in RETRIED_STATUSES and (answer.status != 409 or conflict)
        if not retried or attempt == settings["max_retries"] or delay > settings["max_wait"]:
            break
        log(f"{report.path.name}: {report.detail}; retry {attempt + 1} in {delay}s")
        time.sleep(delay)
    report.status = "error" if answer.status == 0 or answer.status >= 500 else "rejected"


def poll_one(client: Client, report: FileReport) -> int:
    """Ask once for the job's status and record it, with the wait the server asks for.

    Return the answer's HTTP status.
    """
    answer = client.request("GET", report.status_url)
    report.hint = answer.retry_after()
    if answer.status in (401, 403):
        raise TokenRefused(answer.problem())
    if answer.status == 404:
        report.status, report.detail = "failed", answer.problem()
    elif answer.status == 200:
        _job_record(report, answer.json())
    return answer.status  # 429, 5xx, no answer: the job is asked again later


def _job_record(report: FileReport, job: dict[str, Any]) -> None:
    report.status = job["status"]
    if job["status"] == "succeeded":
        classification = (job.get("result") or {}).get("classification") or {}
        report.detail = classification.get("top_label") or ""
    elif job["status"] == "failed":
        error = job.get("error") or {}
        report.detail = f"{error.get('code') or 'FAILED'}: {error.get('message') or ''}"


def jobs_wait(client: Client, reports: list[FileReport], timeout: int) -> None:
    """Poll the unfinished jobs, as often as the server asks, until all finish or time runs out."""
    deadline = time.monotonic() + timeout
    while True:
        hints = []
        for report in [report for report in reports if report.status in UNFINISHED]:
            status = poll_one(client, report)
            if report.status in UNFINISHED:
                hints.append(report.hint or 2)
            if status == 429:  # every other job would be refused too, until the Retry-After
                hints = [report.hint or 2]
                break
        pending = [report for report in reports if report.status in UNFINISHED]
        if not pending:
            return
        left = deadline - time.monotonic()
        if left <= 0:
            log(f"{len(pending)} job(s) did not finish within {timeout}s")
            return
        pause = min(max(1, min(hints, default=2)), left)
        log(f"{len(pending)} job(s) not finished; asking again in {pause:.0f}s")
        time.sleep(pause)


def log(message: str) -> None:
    sys.stderr.write(f"vantage-upload: {message}\n")


def configuration(argv: list[str]) -> tuple[Client, Path, str, dict[str, int]]:
    """Return the client, folder, bucket and limits from the arguments and environment."""
    if not 1 <= len(argv) <= 2:
        raise UsageError("expected a folder and an optional bucket")
    folder = Path(argv[0])
    if not folder.is_dir():
        raise UsageError(f"no such folder: {folder}")
    url, token = os.environ.get("VANTAGE_URL", ""), os.environ.get("VANTAGE_TOKEN", "")
    if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
        raise UsageError("set VANTAGE_URL, e.g. https://vantage.example.com")
    if not TOKEN_SHAPE.fullmatch(token):
        raise UsageError("set VANTAGE_TOKEN to a service token (sk_ and 64 hex characters)")
    names = {
        "wait_timeout": ("VANTAGE_WAIT_TIMEOUT", "600"),
        "max_retries": ("VANTAGE_MAX_RETRIES", "5"),
        "max_wait": ("VANTAGE_MAX_RETRY_WAIT", "120"),
    }
    settings = {}
    for key, (variable, default) in names.items():
        value = os.environ.get(variable, default)
        if not value.isdigit():
            raise UsageError(f"{variable} must be a whole number")
        settings[key] = int(value)
    bucket = argv[1] if len(argv) == 2 else os.environ.get("VANTAGE_BUCKET", "")
    return Client(url.rstrip("/"), token), folder, bucket, settings


def main(argv: list[str]) -> int:
    try:
        client, folder, bucket, settings = configuration(argv)
    except UsageError as error:
        log(f"{error}\nusage: vantage_upload.py FOLDER [BUCKET]")
        return 2
    files = sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))
    if not files:
        log(f"no files in {folder}; nothing to upload")
        return 0
    reports = [FileReport(path) for path in files]
    try:
        for report in reports:
            upload_one(client, report, bucket, settings)
            log(f"{report.path.name}: {report.status}")
        jobs_wait(client, reports, settings["wait_timeout"])
    except TokenRefused as error:
        log(f"the server refused the token: {error}")
        return 1
    for report in reports:
        sys.stdout.write(f"{report.path.name}\t{report.status}\t{report.detail}\n")
    succeeded = sum(report.status == "succeeded" for report in reports)
    log(f"{succeeded} of {len(reports)} file(s) succeeded")
    return 0 if succeeded == len(reports) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
