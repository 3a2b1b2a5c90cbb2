"""A real headless Chromium (Debian's chromium + chromium-driver) driven by selenium."""

from __future__ import annotations

import base64
import shutil
from pathlib import Path

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By

CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--window-size=1440,1000")


def start(workdir: Path) -> webdriver.Chrome:
    """A browser with a fresh profile under ``workdir``; its driver log beside it.
    Prompts are left open (not auto-dismissed), so a test can see an ``alert()``."""
    binary = shutil.which("chromium") or "/usr/bin/chromium"
    driver_path = shutil.which("chromedriver") or "/usr/bin/chromedriver"
    opts = webdriver.ChromeOptions()
    opts.binary_location = binary
    for flag in CHROMIUM_FLAGS:
        opts.add_argument(flag)
    opts.add_argument(f"--user-data-dir={workdir / 'profile'}")
    opts.set_capability("unhandledPromptBehavior", "ignore")
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    service = Service(executable_path=driver_path, log_output=str(workdir / "chromedriver.log"))
    return webdriver.Chrome(options=opts, service=service)


def table_rows(driver, table_id: str) -> list[list[str]]:
    """The visible text of each cell, row by row (empty if the table is absent)."""
    return [[td.text for td in tr.find_elements(By.TAG_NAME, "td")]
            for tr in driver.find_elements(By.CSS_SELECTOR, f"#{table_id} tbody tr")]


def row_named(driver, table_id: str, name: str) -> list[str] | None:
    return next((r for r in table_rows(driver, table_id) if r and r[0] == name), None)


def page_origin(driver) -> float:
    """When the current document was loaded: changes with every (self-)reload."""
    return driver.execute_script("return performance.timeOrigin")


def full_page_screenshot(driver, path: Path) -> Path:
    """The whole page, not only the window (Chromium's DevTools capture)."""
    width, height = driver.execute_script(
        "var d = document.documentElement; return [d.scrollWidth, d.scrollHeight]")
    shot = driver.execute_cdp_cmd("Page.captureScreenshot", {
        "format": "png", "captureBeyondViewport": True,
        "clip": {"x": 0, "y": 0, "width": width, "height": height, "scale": 1}})
    path.write_bytes(base64.b64decode(shot["data"]))
    return path
