"""A real headless Chromium for tests and benchmarks (Selenium + Debian's chromedriver).

``open_browser()`` returns a :class:`Browser` or raises :class:`NoBrowser` with the reason
(no chromium/chromedriver on PATH, selenium not installed, the browser would not start).
Tests turn that into a skip, except under CI (the environment variable ``CI`` set), where
the browser must be there: ``.ci/run`` / ``make test`` install it.

Chromium runs with a fresh profile and every background-networking feature off, so that a
page under test is the only thing that could reach the network; ``requests()`` lists the
URLs the page asked for (from the DevTools performance log).
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

CHROME_FLAGS = [
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-default-apps", "--disable-extensions", "--mute-audio",
    "--disable-dev-shm-usage", "--hide-scrollbars", "--force-device-scale-factor=1",
]


class NoBrowser(RuntimeError):
    pass


def find_binaries() -> tuple[str, str]:
    chrome = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome")
                   if shutil.which(n)), None)
    driver = shutil.which("chromedriver")
    if not chrome or not driver:
        raise NoBrowser("chromium and chromedriver are not installed "
                        "(apt-get install chromium chromium-driver)")
    return chrome, driver


class Browser:
    def __init__(self, width: int = 1400, height: int = 1000):
        chrome, driver = find_binaries()
        try:
            from selenium import webdriver
            from selenium.webdriver.chrome.service import Service
        except ImportError:
            raise NoBrowser("selenium is not installed (pip install selenium)") from None
        self.profile = tempfile.mkdtemp(prefix="td-chromium-")
        opts = webdriver.ChromeOptions()
        opts.binary_location = chrome
        for a in CHROME_FLAGS + [f"--user-data-dir={self.profile}",
                                 f"--window-size={width},{height}"]:
            opts.add_argument(a)
        opts.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
        try:
            self.driver = webdriver.Chrome(service=Service(driver, log_output=os.devnull),
                                           options=opts)
        except Exception as e:  # the browser would not start here
            shutil.rmtree(self.profile, ignore_errors=True)
            raise NoBrowser(f"chromium did not start: {str(e).splitlines()[0]}") from None
        self.driver.set_script_timeout(120)

    def open(self, path: str | os.PathLike, *, timeout: float = 60.0) -> None:
        """Load a file and wait until the page says it is ready."""
        from selenium.webdriver.support.ui import WebDriverWait

        self.driver.get(Path(path).resolve().as_uri())
        WebDriverWait(self.driver, timeout, poll_frequency=0.05).until(
            lambda d: d.execute_script(
                "return !!(window.tdReport && (window.tdReport.ready || "
                "window.tdReport.errors.length))"))

    def js(self, script: str, *args):
        return self.driver.execute_script(script, *args)

    def js_async(self, expr: str, *args):
        """Evaluate a promise-returning expression (``arguments[0..]`` are ``args``)."""
        return self.driver.execute_async_script(
            "const done = arguments[arguments.length - 1];"
            f"Promise.resolve().then(() => ({expr})).then((v) => done({{ok: v}}),"
            " (e) => done({err: String(e && e.stack || e)}));", *args)

    def call(self, expr: str, *args):
        r = self.js_async(expr, *args)
        if "err" in r:
            raise AssertionError(f"page error: {r['err']}")
        return r["ok"]

    def console(self) -> list[dict]:
        return self.driver.get_log("browser")

    def requests(self) -> list[str]:
        """URLs of every request the page started (DevTools Network events)."""
        urls = []
        for e in self.driver.get_log("performance"):
            try:
                m = json.loads(e["message"])["message"]
            except (KeyError, ValueError):
                continue
            if m.get("method") == "Network.requestWillBeSent":
                urls.append(m["params"]["request"]["url"])
        return urls

    def screenshot(self, path: str | os.PathLike) -> Path:
        self.driver.save_screenshot(str(path))
        return Path(path)

    def png(self) -> bytes:
        return self.driver.get_screenshot_as_png()

    def close(self) -> None:
        try:
            self.driver.quit()
        finally:
            shutil.rmtree(self.profile, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def open_browser(**kw) -> Browser:
    return Browser(**kw)
