"""Driving the dashboard in a real headless Chromium (Debian's), through Playwright.

The browser talks to pytest-django's live server; jobs run as soon as they
are queued (Celery's eager mode) so a page can watch them finish without a
worker. Screenshots go to a temporary directory, or to VANTAGE_SCREENSHOTS_DIR
when set (the README's pictures are made that way).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM_NAMES = ("chromium", "chromium-browser")


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
    from playwright.sync_api import sync_playwright

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


def new_page(chromium: Any, live_server: Any, *, width: int = 1280, height: int = 860) -> Any:
    """A fresh browser context (no cookies) and page on the live server."""
    context = chromium.new_context(base_url=live_server.url,
                                   viewport={"width": width, "height": height})  # fmt: skip
    context.set_default_timeout(15_000)
    return context.new_page()


def sign_in(page: Any, username: str, password: str) -> None:
    """Sign in through the login page, as a person does."""
    page.goto("/login/")
    page.get_by_label("Username or email").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(lambda url: "/login/" not in url)
