"""Structured logging: one JSON object a line, with the request's context and no secrets.

At a terminal the same events are rendered as readable lines instead.
"""

from __future__ import annotations

import codecs
import contextlib
import functools
import json
import logging
import os
import re
import sys
import threading
import traceback
from collections.abc import Mapping, MutableMapping
from typing import Any, TextIO

import orjson
import structlog

REDACTED = "[redacted]"

# Keys whose values are credentials whatever they contain.
_SECRET_KEYS = frozenset(
    {
        "password",
        "passwd",
        "secret",
        "token",
        "access",
        "refresh",
        "authorization",
        "proxy-authorization",
        "http_authorization",
        "api_key",
        "apikey",
        "x-api-key",
        "http_x_api_key",
        "cookie",
        "http_cookie",
        "set-cookie",
        "sessionid",
        "csrftoken",
        "secret_key",
    }
)
_SECRET_SUFFIXES = ("_password", "_secret", "_token", "_api_key")

# Credentials that may appear inside any text: service tokens, JWTs, the value
# of an Authorization header and `password=...` pairs. One alternation, so a
# string is scanned once.
_SECRET_PATTERN = re.compile(
    "|".join(
        (
            r"sk_[0-9a-fA-F]{8,}",
            r"eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*",
            r"(?i:\b(?:bearer|basic)\s+[A-Za-z0-9._~+/=-]+)",
            r"(?i:\b(?:password|passwd|secret|api_key|token)=[^\s&,;'\"]+)",
        )
    )
)


@functools.lru_cache(maxsize=4096)
def _secret_key(key: str) -> bool:
    lowered = key.lower()
    return lowered in _SECRET_KEYS or lowered.endswith(_SECRET_SUFFIXES)


def _is_secret_key(key: object) -> bool:
    return isinstance(key, str) and _secret_key(key)


def _scrub_text(text: str) -> str:
    return _SECRET_PATTERN.sub(REDACTED, text)


def _may_hold_secret(text: str) -> bool:
    """Tell whether `_SECRET_PATTERN` could match: each of its forms needs one of these.

    A token or a JWT starts `sk_` or `eyJ`; a header value or a pair needs
    whitespace or `=`. Every whitespace character but the space is unprintable.
    """
    return "sk_" in text or "eyJ" in text or "=" in text or " " in text or not text.isprintable()


# Values that cannot hold a credential, returned as they are.
_PLAIN_TYPES = frozenset({int, float, bool, type(None)})


def redact(key: object, value: Any) -> Any:
    """Return `value` with every credential in it replaced by a marker."""
    if _is_secret_key(key):
        return REDACTED
    kind = type(value)
    if kind is str:
        return _SECRET_PATTERN.sub(REDACTED, value) if _may_hold_secret(value) else value
    if kind in _PLAIN_TYPES:
        return value
    if isinstance(value, str):
        return _scrub_text(value)
    if isinstance(value, Mapping):
        return {k: redact(k, v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact(None, v) for v in value]
    return value


def redact_secrets(_logger: Any, _method: str, event_dict: MutableMapping[str, Any]) -> Any:
    """Structlog processor: the last step before rendering, so nothing escapes it."""
    return {key: redact(key, value) for key, value in event_dict.items()}


_LEADING_KEYS = ("timestamp", "level", "event")


def leading_keys_first(_logger: Any, _method: str, event_dict: MutableMapping[str, Any]) -> Any:
    """Structlog processor putting when, how bad and what first, for a reader's eye."""
    ordered = {key: event_dict[key] for key in _LEADING_KEYS if key in event_dict}
    ordered.update((key, value) for key, value in event_dict.items() if key not in ordered)
    return ordered


def add_pid(_logger: Any, _method: str, event_dict: MutableMapping[str, Any]) -> Any:
    """Structlog processor naming the process, to tell web and worker lines apart."""
    event_dict.setdefault("pid", os.getpid())
    return event_dict


_SHARED_PROCESSORS: list[Any] = [
    structlog.contextvars.merge_contextvars,
    structlog.processors.add_log_level,
    structlog.stdlib.add_logger_name,
    structlog.processors.TimeStamper(fmt="iso", utc=True, key="timestamp"),
    add_pid,
]


LOG_STREAMS = ("stdout", "stderr")


def log_stream_default() -> str:
    """Return where logs go: stdout for the servers, stderr where stdout carries results.

    `manage.py` sets LOG_STREAM=stderr for every command but the development
    server, so a command's output can be read or piped without log lines in it.
    """
    stream = os.environ.get("LOG_STREAM", "stdout")
    return stream if stream in LOG_STREAMS else "stdout"


def log_format_default(stream: str) -> str:
    """Return LOG_FORMAT, or `console` when the logs go to a terminal and `json` elsewhere."""
    chosen = os.environ.get("LOG_FORMAT", "")
    if chosen in ("json", "console"):
        return chosen
    return "console" if getattr(sys, stream).isatty() else "json"


class LogOutput:
    """Where rendered lines go: the process's log stream, chosen once at start.

    Chosen at configuration, not at each write, so that a program that later
    replaces `sys.stdout` (Celery's worker does) still gets lines, not lines
    wrapped in lines. As the standard library's handlers do, it writes one
    line at a time whichever thread writes it, and a line it cannot write is
    reported on stderr, never raised into the request or task that logged it.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.stream = sys.stdout

    @property
    def stream(self) -> TextIO:
        return self._stream

    @stream.setter
    def stream(self, stream: TextIO) -> None:
        self._stream = stream
        # A stream that does not take UTF-8 gets each character beyond ASCII escaped
        # as JSON escapes it (a console line, as Python escapes it).
        encoding = getattr(stream, "encoding", None) or "utf-8"
        self._escaped = codecs.lookup(encoding).name != "utf-8"

    def write(self, line: str | bytes) -> None:
        text = (line.decode() if isinstance(line, bytes) else line) + "\n"
        if self._escaped:
            text = _ascii_escaped(text)
        try:
            with self._lock:
                self._stream.write(text)
                self._stream.flush()
        except Exception:  # as logging.Handler.handleError: reported, not raised
            if logging.raiseExceptions:
                with contextlib.suppress(Exception):
                    traceback.print_exc(file=sys.stderr)

    def forked(self) -> None:
        """Give a child process a lock of its own (a thread of the parent may hold this one)."""
        self._lock = threading.Lock()


def _ascii_escaped(text: str) -> str:
    """Return `text` with every character beyond ASCII escaped as JSON escapes it."""
    return _BEYOND_ASCII.sub(_json_escape, text)


_BEYOND_ASCII = re.compile(r"[^\x00-\x7f]")


def _json_escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    if code < 0x10000:
        return f"\\u{code:04x}"
    code -= 0x10000  # beyond the first plane: a surrogate pair
    return f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}"


OUTPUT = LogOutput()
os.register_at_fork(after_in_child=OUTPUT.forked)


class LineLogger:
    """structlog's logger: its name for the `logger` key, every level written as one line."""

    def __init__(self, name: str = "") -> None:
        self.name = name

    def msg(self, line: str | bytes) -> None:
        OUTPUT.write(line)

    debug = info = warning = warn = error = critical = fatal = exception = log = msg


def line_logger(*args: Any) -> LineLogger:
    """structlog's logger factory: `structlog.get_logger(name)` names the logger."""
    return LineLogger(str(args[0]) if args else "")


def _orjson_dumps(value: Any, **_: Any) -> bytes:
    """Render a line: values orjson does not know (a Decimal, a lazy string) as text."""
    try:
        return orjson.dumps(value, default=str, option=orjson.OPT_NON_STR_KEYS)
    except TypeError:
        # What orjson refuses and the standard library's encoder takes: a lone
        # surrogate (a path that was not UTF-8), an integer beyond 64 bits.
        return json.dumps(value, default=str).encode()


def _orjson_text(value: Any, **_: Any) -> str:
    # For the standard library's handler: ASCII, whatever the stream's encoding.
    return _ascii_escaped(_orjson_dumps(value).decode())


def logging_config(*, level: str, fmt: str, stream: str = "stdout") -> dict[str, Any]:
    """Configure structlog and return the matching `LOGGING` dict for Django.

    The project's own events (structlog's) are rendered and written directly,
    one line each: the standard library's logger, record and handler add
    nothing they need, and cost half of a line's price. What other libraries
    log through the standard library is rendered the same way by the
    `structured` formatter, to the same stream.
    """
    # What the standard library gathers for every record and no line here shows (the
    # caller's frame, the thread, the process; the pid is added by add_pid): the
    # logging HOWTO's "Optimization" switches, worth several µs a line.
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    console = structlog.dev.ConsoleRenderer(colors=False)
    renderer: Any = (
        console if fmt == "console" else structlog.processors.JSONRenderer(serializer=_orjson_dumps)
    )
    # The standard library's handler writes text.
    text_renderer: Any = (
        console if fmt == "console" else structlog.processors.JSONRenderer(serializer=_orjson_text)
    )
    OUTPUT.stream = getattr(sys, stream)
    structlog.configure(
        processors=[
            *_SHARED_PROCESSORS,
            structlog.processors.format_exc_info,
            redact_secrets,
            leading_keys_first,
            renderer,
        ],
        logger_factory=line_logger,
        # Below the level, an event is dropped before any work is spent on it.
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelNamesMapping()[level]),
        cache_logger_on_first_use=True,
    )
    final_processors = [
        structlog.stdlib.ProcessorFormatter.remove_processors_meta,
        structlog.processors.format_exc_info,
        redact_secrets,
        leading_keys_first,
        text_renderer,
    ]
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "structured": {
                "()": structlog.stdlib.ProcessorFormatter,
                "processors": final_processors,
                "foreign_pre_chain": [*_SHARED_PROCESSORS, structlog.stdlib.ExtraAdder()],
            },
        },
        "handlers": {
            "structured": {
                "class": "logging.StreamHandler",
                "stream": f"ext://sys.{stream}",
                "formatter": "structured",
            },
        },
        "root": {"handlers": ["structured"], "level": level},
        "loggers": {
            # Each request is logged once, by the request middleware; Django's
            # own per-response warnings would repeat it. Errors still pass.
            "django.request": {"level": "ERROR"},
            "django.server": {"level": "ERROR"},
            "django.db.backends": {"level": "INFO"},
            "celery": {"level": level},
        },
    }
