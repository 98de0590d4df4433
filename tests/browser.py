"""Real headless browsers for tests and benchmarks.

* :class:`Browser`: Chromium through Selenium and Debian's chromedriver.
* :class:`Firefox`: Firefox (Debian's ``firefox-esr``) through its own remote protocol,
  Marionette, with Mozilla's ``marionette_driver`` client (no geckodriver needed).

Both offer one interface, so a test runs unchanged in either: ``open`` (load a file and
wait until the page says it is ready), ``js``/``call`` (run script in the page),
``png`` (a screenshot of the window), ``console_errors``, ``requests`` and real input
events built as W3C WebDriver action sequences (``hover``, ``drag``, ``click``,
``type_into``), at client (viewport) coordinates.

``open_browser(name)`` returns one or raises :class:`NoBrowser` with the reason (the
browser or its driver not installed, or it would not start). Tests turn that into a
skip, except under CI (the environment variable ``CI`` set), where the browsers must be
there: ``.ci/run`` / ``make test`` install them.

Chromium runs with a fresh profile and every background-networking feature off, so that a
page under test is the only thing that could reach the network; ``requests()`` lists the
URLs the page asked for (from the DevTools performance log). Firefox runs with a fresh
profile; its ``requests()`` lists what the page's Resource Timing saw, and its console
messages are read from the browser's standard output.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

CHROME_FLAGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-extensions",
    "--mute-audio",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
    "--force-device-scale-factor=1",
]


class NoBrowser(RuntimeError):
    pass


def find_binaries() -> tuple[str, str]:
    chrome = next(
        (
            shutil.which(n)
            for n in ("chromium", "chromium-browser", "google-chrome")
            if shutil.which(n)
        ),
        None,
    )
    driver = shutil.which("chromedriver")
    if not chrome or not driver:
        raise NoBrowser(
            "chromium and chromedriver are not installed (apt-get install chromium chromium-driver)"
        )
    return chrome, driver


SHIFT = "\ue008"  # the WebDriver key code of Shift


class _Inputs:
    """Real input events, as W3C action sequences at client (viewport) coordinates; what
    a user's mouse and keyboard send. Subclasses provide ``perform`` and ``js``."""

    name = "browser"

    def _point(self, x: float, y: float) -> dict:
        return {
            "type": "pointerMove",
            "x": int(round(x)),
            "y": int(round(y)),
            "origin": "viewport",
            "duration": 0,
        }

    def _mouse(self, moves: list[dict]) -> dict:
        return {
            "type": "pointer",
            "id": "mouse",
            "parameters": {"pointerType": "mouse"},
            "actions": moves,
        }

    def hover(self, x: float, y: float) -> None:
        self.perform([self._mouse([self._point(x, y)])])

    def drag(
        self, p0: tuple[float, float], p1: tuple[float, float], *, shift: bool = False
    ) -> None:
        """Press at p0, move to p1, release (holding Shift throughout if asked)."""
        mouse = [
            self._point(*p0),
            {"type": "pointerDown", "button": 0},
            self._point((p0[0] + p1[0]) / 2, (p0[1] + p1[1]) / 2),
            self._point(*p1),
            {"type": "pointerUp", "button": 0},
        ]
        if not shift:
            self.perform([self._mouse(mouse)])
            return
        keys = (
            [{"type": "keyDown", "value": SHIFT}]
            + [{"type": "pause", "duration": 0}] * (len(mouse) - 1)
            + [{"type": "keyUp", "value": SHIFT}]
        )
        mouse = [{"type": "pause", "duration": 0}] + mouse
        self.perform([{"type": "key", "id": "keyboard", "actions": keys}, self._mouse(mouse)])

    def centre_of(self, css: str) -> tuple[float, float]:
        r = self.js(
            "const e = document.querySelector(arguments[0]);"
            "e.scrollIntoView({block: 'nearest', inline: 'nearest'});"
            "return e.getBoundingClientRect().toJSON()",
            css,
        )
        return r["left"] + r["width"] / 2, r["top"] + r["height"] / 2

    def click(self, css: str) -> None:
        """A real mouse click at the centre of the first element matching css."""
        x, y = self.centre_of(css)
        self.perform(
            [
                self._mouse(
                    [
                        self._point(x, y),
                        {"type": "pointerDown", "button": 0},
                        {"type": "pointerUp", "button": 0},
                    ]
                )
            ]
        )

    def type_into(self, css: str, text: str) -> None:
        """Click into a text input, select what it holds, and type text with key events."""
        self.click(css)
        self.js("document.querySelector(arguments[0]).select()", css)
        keys = []
        for ch in text:
            keys += [{"type": "keyDown", "value": ch}, {"type": "keyUp", "value": ch}]
        self.perform([{"type": "key", "id": "keyboard", "actions": keys}])

    def wait_for(self, script: str, *args, timeout: float = 20.0):
        """Poll a script until it returns something truthy; return that."""
        end = time.monotonic() + timeout
        while True:
            v = self.js(script, *args)
            if v or end < time.monotonic():
                return v
            time.sleep(0.05)

    def wait_ready(self, timeout: float) -> None:
        ok = self.wait_for(
            "return !!(window.tdReport && (window.tdReport.ready || "
            "window.tdReport.errors.length))",
            timeout=timeout,
        )
        if not ok:
            raise AssertionError(f"{self.name}: the page did not become ready in {timeout} s")


class Browser(_Inputs):
    name = "chromium"

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
        for a in CHROME_FLAGS + [
            f"--user-data-dir={self.profile}",
            f"--window-size={width},{height}",
        ]:
            opts.add_argument(a)
        opts.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
        try:
            self.driver = webdriver.Chrome(
                service=Service(driver, log_output=os.devnull), options=opts
            )
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
                "window.tdReport.errors.length))"
            )
        )

    def blank(self) -> None:
        """Leave the current page (the next ``open`` is a fresh load)."""
        self.driver.get("about:blank")

    def js(self, script: str, *args):
        return self.driver.execute_script(script, *args)

    def js_async(self, expr: str, *args):
        """Evaluate a promise-returning expression (``arguments[0..]`` are ``args``)."""
        return self.driver.execute_async_script(
            "const done = arguments[arguments.length - 1];"
            f"Promise.resolve().then(() => ({expr})).then((v) => done({{ok: v}}),"
            " (e) => done({err: String(e && e.stack || e)}));",
            *args,
        )

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

    def console_errors(self) -> list[str]:
        return [
            f"{c['level']}: {c['message']}"
            for c in self.console()
            if c["level"] in ("SEVERE", "WARNING")
        ]

    def perform(self, actions: list[dict]) -> None:
        from selenium.webdriver.remote.command import Command

        self.driver.execute(Command.W3C_ACTIONS, {"actions": actions})
        self.driver.execute(Command.W3C_CLEAR_ACTIONS, {})

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


class Firefox(_Inputs):
    """Headless Firefox driven over Marionette (Firefox's built-in remote protocol)."""

    name = "firefox"

    def __init__(self, width: int = 1400, height: int = 1000):
        binary = next(
            (shutil.which(n) for n in ("firefox-esr", "firefox") if shutil.which(n)), None
        )
        if not binary:
            raise NoBrowser("firefox is not installed (apt-get install firefox-esr)")
        try:
            from marionette_driver.marionette import Marionette
        except ImportError:
            raise NoBrowser(
                "marionette_driver is not installed (pip install marionette_driver)"
            ) from None
        with socket.socket() as sock:  # a free port for Marionette
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        self.profile = tempfile.mkdtemp(prefix="td-firefox-")
        prefs = {
            "marionette.port": port,
            # console messages of pages on stdout: what console_errors() reads
            "devtools.console.stdout.content": True,
            # a fresh profile that phones nowhere
            "browser.shell.checkDefaultBrowser": False,
            "app.update.enabled": False,
            "app.normandy.enabled": False,
            "datareporting.policy.dataSubmissionEnabled": False,
            "toolkit.telemetry.enabled": False,
            "browser.ping-centre.telemetry": False,
            "network.captive-portal-service.enabled": False,
            "network.connectivity-service.enabled": False,
            "extensions.update.enabled": False,
            "browser.safebrowsing.malware.enabled": False,
            "browser.safebrowsing.phishing.enabled": False,
            "browser.startup.homepage_override.mstone": "ignore",
            "browser.aboutwelcome.enabled": False,
            "browser.backup.enabled": False,
            "browser.backup.scheduled.enabled": False,
        }
        with open(os.path.join(self.profile, "user.js"), "w") as f:
            for k, v in prefs.items():
                f.write(f"user_pref({json.dumps(k)}, {json.dumps(v)});\n")
        self.log_path = os.path.join(self.profile, "stdout.log")
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            [
                binary,
                "--headless",
                "--marionette",
                "--no-remote",
                "--profile",
                self.profile,
                "--width",
                str(width),
                "--height",
                str(height),
            ],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, "MOZ_HEADLESS": "1"},
        )
        self.m = None
        end = time.monotonic() + 90
        last = ""
        while end > time.monotonic() and self.proc.poll() is None:
            try:
                m = Marionette(host="127.0.0.1", port=port, startup_timeout=5)
                m.start_session()
                self.m = m
                break
            except Exception as e:  # not listening yet
                last = str(e).splitlines()[0] if str(e) else type(e).__name__
                time.sleep(0.5)
        if self.m is None:
            self.close()
            raise NoBrowser(f"firefox did not start: {last or 'exited'}")
        self.m.set_window_rect(width=width, height=height)
        self.m.timeout.script = 120
        self._log_seen = 0

    def blank(self) -> None:
        self.m.navigate("about:blank")

    def open(self, path: str | os.PathLike, *, timeout: float = 60.0) -> None:
        self.m.navigate(Path(path).resolve().as_uri())
        self.wait_ready(timeout)

    def js(self, script: str, *args):
        # sandbox=None: the page's own globals (window.tdReport), as WebDriver does
        return self.m.execute_script(script, script_args=list(args), sandbox=None)

    def js_async(self, expr: str, *args):
        return self.m.execute_async_script(
            "const done = arguments[arguments.length - 1];"
            f"Promise.resolve().then(() => ({expr})).then((v) => done({{ok: v}}),"
            " (e) => done({err: String(e && e.stack || e)}));",
            script_args=list(args),
            sandbox=None,
        )

    def call(self, expr: str, *args):
        r = self.js_async(expr, *args)
        if "err" in r:
            raise AssertionError(f"page error: {r['err']}")
        return r["ok"]

    def perform(self, actions: list[dict]) -> None:
        self.m.actions.perform(actions)
        self.m.actions.release()

    def _new_log(self) -> list[str]:
        self._log.flush()
        with open(self.log_path, "rb") as f:
            f.seek(self._log_seen)
            data = f.read()
        self._log_seen += len(data)
        return data.decode("utf-8", "replace").splitlines()

    def console(self) -> list[str]:
        """Console lines the browser printed since the last call."""
        return self._new_log()

    # what the page says: script errors located in a page (not in the browser's own
    # chrome:// or resource:// modules), and console.error/warn calls, except the lines of
    # the browser's own module loggers ("console.error: RSLoader: ...", which pages' calls
    # never look like: their strings are printed quoted)
    _PAGE_ERROR = re.compile(r"^JavaScript (error|warning): (?!chrome:|resource:|moz-)")
    _PAGE_CONSOLE = re.compile(r"^console\.(error|warn): (?![A-Za-z][\w.]*: )")

    def console_errors(self) -> list[str]:
        return [
            line
            for line in self._new_log()
            if self._PAGE_ERROR.match(line) or self._PAGE_CONSOLE.match(line)
        ]

    def requests(self) -> list[str]:
        """URLs the current page loaded: the document and every Resource Timing entry."""
        return self.js(
            "return [location.href].concat(performance.getEntriesByType("
            "'resource').map((e) => e.name))"
        )

    def png(self) -> bytes:
        return self.m.screenshot(format="binary", full=False)

    def screenshot(self, path: str | os.PathLike) -> Path:
        Path(path).write_bytes(self.png())
        return Path(path)

    def close(self) -> None:
        try:
            if self.m is not None:
                try:
                    self.m.delete_session()
                except Exception:  # the browser may be gone already
                    pass
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
            self.proc.wait()
            self._log.close()
            shutil.rmtree(self.profile, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


BROWSERS = ("chromium", "firefox")


def open_browser(name: str = "chromium", **kw):
    return {"chromium": Browser, "firefox": Firefox}[name](**kw)
