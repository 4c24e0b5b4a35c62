"""A real browser for tests: headless Chromium (Debian's ``chromium``) driven by
Playwright. Used by the S3 website tests; reusable by anything that serves pages
(API Gateway CORS pages, the examples)::

    from browser import chromium

    def test_page(unkai):
        with chromium() as browser:
            page = browser.new_page()
            page.goto(url)

When Chromium or Playwright is missing the test is skipped with a reason that says
so (``-ra`` lists it); it never passes without having run. ``.ci/run`` installs both.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def executable() -> str | None:
    for candidate in (os.environ.get("UNKAI_CHROMIUM"), "/usr/bin/chromium", shutil.which("chromium"),
                      shutil.which("chromium-browser")):
        if candidate and os.path.exists(candidate):
            return candidate
    return None


@contextmanager
def chromium(args: list[str] | None = None) -> Iterator[Any]:
    """A launched headless Chromium (a Playwright Browser), closed afterwards; ``args`` are
    extra command-line switches (``--host-resolver-rules=MAP evil.test 127.0.0.1``)."""
    path = executable()
    if path is None:
        pytest.skip("BROWSER TEST NOT RUN: Chromium was not found (apt-get install chromium, or set "
                    "UNKAI_CHROMIUM); .ci/run installs it")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("BROWSER TEST NOT RUN: Playwright is not installed (pip install -e '.[test]')")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=path, args=ARGS + (args or []), headless=True)
        try:
            yield browser
        finally:
            browser.close()
