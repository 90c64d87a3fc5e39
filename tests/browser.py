"""Headless Chromium for the browser tests: one launcher, so every test drives the same browser the same way.

Debian's chromium and chromedriver (tests/browser_setup.sh installs them) and selenium (the test extras); a missing
one fails the test with what to install, never skips it.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
BASE_FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)


@contextmanager
def headless_chromium(*flags: str, timeout_s: float) -> Iterator[Any]:
    """A selenium driver of a fresh headless Chromium profile with `flags` added; page loads and scripts time out
    after `timeout_s`. The profile is removed afterwards."""
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()]
    if missing:
        pytest.fail(
            f"{' and '.join(missing)} not installed; "
            "run tests/browser_setup.sh (apt-get install chromium chromium-driver)"
        )
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        pytest.fail("selenium is not installed; run `.venv/bin/pip install -e '.[test]'` (and tests/browser_setup.sh)")

    profile = tempfile.mkdtemp(prefix="zeb-chromium-")
    opts = webdriver.ChromeOptions()
    opts.binary_location = str(CHROMIUM)
    for flag in (*BASE_FLAGS, f"--user-data-dir={profile}", *flags):
        opts.add_argument(flag)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=opts)
    driver.set_page_load_timeout(timeout_s)
    driver.set_script_timeout(timeout_s)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)
