"""A real browser (Debian's chromium, driven by Playwright) against a real ``minicloud up``."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, ViewportSize, expect, sync_playwright

from tests.support.server import MinicloudServer

CHROMIUM = os.environ.get("MINICLOUD_CHROMIUM", "/usr/bin/chromium")
VIEWPORT: ViewportSize = {"width": 1280, "height": 800}
# expect() waits 5 s by default, not the context's 15 s: as long as the context's, on a busy machine
expect.set_options(timeout=15_000)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """One browser per module: Playwright's sync API keeps an event loop running on this thread
    while it is open, which would break every later test that runs one (asyncio.run)."""
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is missing (Debian's chromium package, installed by scripts/install.sh)")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM)
        yield launched
        launched.close()


@pytest.fixture(scope="session")
def artefacts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Screenshots of the main pages: in $MINICLOUD_CONSOLE_ARTEFACTS when set (CI keeps them), else in
    pytest's temporary directory; never committed."""
    chosen = os.environ.get("MINICLOUD_CONSOLE_ARTEFACTS")
    if chosen:
        Path(chosen).mkdir(parents=True, exist_ok=True)
        return Path(chosen)
    return tmp_path_factory.mktemp("console-artefacts")


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    ctx = browser.new_context(viewport=VIEWPORT, accept_downloads=True)
    ctx.set_default_timeout(15_000)
    yield ctx
    ctx.close()


@pytest.fixture
def page(context: BrowserContext) -> Page:
    page = context.new_page()
    page.on("dialog", lambda dialog: dialog.accept())  # the console confirms destructive actions
    return page


def console(server: MinicloudServer, path: str = "/") -> str:
    return f"{server.endpoint}/_minicloud/console{path}"


def sign_in_root(page: Page, server: MinicloudServer) -> None:
    assert server.root is not None
    page.goto(console(server, "/signin?mode=root"))
    page.get_by_label("Root access key ID").fill(server.root.access_key_id)
    page.get_by_label("Secret access key").fill(server.root.secret_access_key)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(console(server, "/"))


def sign_in_user(page: Page, server: MinicloudServer, account: str, user: str, password: str) -> None:
    page.goto(console(server, "/signin"))
    page.get_by_label("Account ID or alias").fill(account)
    page.get_by_label("IAM user name").fill(user)
    page.get_by_label("Password", exact=True).fill(password)
    page.get_by_role("button", name="Sign in").click()
