"""Driving the dashboard in a real headless Chromium (Debian's), through Playwright.

The browser talks to pytest-django's live server; jobs run as soon as they
are queued (Celery's eager mode) so a page can watch them finish without a
worker. Screenshots go to a temporary directory, or to VANTAGE_SCREENSHOTS_DIR
when set (the README's pictures are made that way).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM_NAMES = ("chromium", "chromium-browser")
BROWSER_TIMEOUT_MS = 15_000


def chromium_path() -> str | None:
    """Return the path of the machine's Chromium, if it has one."""
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    return None


def _browser_required() -> bool:
    return os.environ.get("VANTAGE_REQUIRE_INTEGRATION", "") not in ("", "0", "false")


@pytest.fixture(scope="session")
def chromium() -> Iterator[Any]:
    """A headless Chromium for the whole run (`make test` installs Debian's when missing)."""
    executable = chromium_path()
    if executable is None:
        message = "Chromium is not installed: `make test` installs Debian's chromium package"
        if _browser_required():
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import expect, sync_playwright

    # Jobs run inside the live server while the page waits: give them the same
    # time as every other browser action rather than assertions' 5 s default.
    expect.set_options(timeout=BROWSER_TIMEOUT_MS)

    # Playwright's synchronous API runs an event loop in this thread; the tests
    # still use the ORM synchronously, outside it.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def jobs_run_at_once() -> Iterator[None]:
    """Run each queued job in the process that queued it, as soon as it is queued."""
    from config.celery import app

    saved = app.conf.task_always_eager, app.conf.task_eager_propagates
    app.conf.task_always_eager, app.conf.task_eager_propagates = True, False
    try:
        yield
    finally:
        app.conf.task_always_eager, app.conf.task_eager_propagates = saved


@pytest.fixture
def screenshots(tmp_path: Path) -> Path:
    """Where the tests save what the browser showed."""
    chosen = os.environ.get("VANTAGE_SCREENSHOTS_DIR")
    directory = Path(chosen) if chosen else tmp_path / "screenshots"
    directory.mkdir(parents=True, exist_ok=True)
    return directory


@pytest.fixture
def new_page(chromium: Any, live_server: Any) -> Iterator[Callable[..., Any]]:
    """Open pages, each in a fresh browser context (no cookies), on the live server.

    The contexts close with the test: their kept-alive connections would otherwise
    hold the live server's threads, and those threads' database connections, open.
    """
    contexts: list[Any] = []

    def open_page(*, width: int = 1280, height: int = 860) -> Any:
        context = chromium.new_context(
            base_url=live_server.url, viewport={"width": width, "height": height}
        )
        context.set_default_timeout(BROWSER_TIMEOUT_MS)
        contexts.append(context)
        return context.new_page()

    yield open_page
    for context in contexts:
        context.close()


def sign_in(page: Any, username: str, password: str) -> None:
    """Sign in through the login page, as a person does."""
    page.goto("/login/")
    page.get_by_label("Username or email").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(lambda url: "/login/" not in url)
