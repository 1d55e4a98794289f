"""Chromium driven by Playwright, for the tests of lmforge's pages: the playground of `lmforge serve`, and the
search, human-evaluation and analysis pages after it. The browser is Debian's `chromium` package
(`apt-get install chromium`, which `.ci/run` does as root), not Playwright's own download (not reachable
here); $LMFORGE_CHROMIUM names another binary. Without it (or without the `playwright` package) the browser
tests skip with the reason, except under CI=true, where they fail.

The fixtures in conftest.py: `browser`, one Chromium for the whole session (it takes about a second to
start), and `page`, a tab in a fresh context (its own cookies and storage) that fails its test if the page
throws a JavaScript error:

    def test_playground(page, server):
        page.goto(server.url + "/")
        page.fill("#prompt", "the cat")
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

CHROMIUM = Path(os.environ.get("LMFORGE_CHROMIUM", "/usr/bin/chromium"))
# headless, and nothing that reaches out of the machine on its own (updates, sync, field trials, QUIC)
ARGUMENTS = [
    "--no-sandbox",  # as root in a container there is no user namespace for the sandbox
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TIMEOUT_MS = 20_000  # the longest any one wait on a page may take


def unavailable(message: str) -> None:
    """Skip the test with `message`, or fail it under CI=true, where a missing tool must not pass
    silently."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message + "; CI=true, so this fails instead of skipping")
    pytest.skip(message)


@contextlib.contextmanager
def chromium() -> Iterator:
    """A headless Chromium (a Playwright `Browser`) on a fresh temporary profile, closed on exit."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        unavailable("the playwright package is not installed (pip install -e '.[dev]')")
    if not (CHROMIUM.is_file() and os.access(CHROMIUM, os.X_OK)):
        unavailable(f"no Chromium at {CHROMIUM} (apt-get install chromium, or set LMFORGE_CHROMIUM)")
    with sync_playwright() as playwright:
        # launch() gives every browser a new temporary user-data directory, removed on close
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=ARGUMENTS)
        try:
            yield browser
        finally:
            browser.close()


@contextlib.contextmanager
def fresh_page(browser) -> Iterator:
    """A tab in a new browser context; on exit the context is closed and any uncaught JavaScript error the
    page threw fails the test."""
    context = browser.new_context()
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    try:
        yield page
    finally:
        context.close()
    assert errors == [], f"the page threw: {errors}"
