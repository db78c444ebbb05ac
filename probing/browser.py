"""Headless Chromium driven through the DevTools protocol over a pipe: no Python package, no port.

Chromium started with ``--remote-debugging-pipe`` reads protocol commands from its fd 3 and writes
replies and events to its fd 4, each message JSON ended by a NUL byte. That is all the explorer's
screenshots and browser tests need: open a ``file://`` page, evaluate JavaScript, move and click
the real mouse, take screenshots, and watch console errors, network requests and downloads.

    with Chromium() as browser:
        page = browser.page()
        page.goto(Path("explorer.html").resolve().as_uri())
        page.click('[data-layer="2"][data-head="3"]', shift=True)
"""

from __future__ import annotations

import base64
import json
import os
import select
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

# flags that work on a headless server; the user-data-dir is a fresh folder per browser
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--hide-scrollbars", "--mute-audio")
SHIFT = 8  # Input.dispatchMouseEvent modifier bit
LOCAL_SCHEMES = ("file:", "data:", "blob:", "about:", "chrome:", "devtools:")


class BrowserError(RuntimeError):
    pass


def find_chromium() -> str | None:
    """``$PROBING_CHROMIUM``, else the first of chromium / chromium-browser / google-chrome on PATH."""
    env = os.environ.get("PROBING_CHROMIUM")
    if env:
        return env if Path(env).is_file() else None
    return next(filter(None, map(shutil.which, ("chromium", "chromium-browser", "google-chrome"))), None)


class Chromium:
    """One headless browser; ``page()`` opens tabs. Use as a context manager (or call ``close``)."""

    def __init__(self, executable: str | None = None, timeout: float = 30.0):
        executable = executable or find_chromium()
        if not executable:
            raise BrowserError("no Chromium found: install Debian's chromium (make browser) or set PROBING_CHROMIUM")
        self.timeout = timeout
        self.profile = tempfile.mkdtemp(prefix="probing-chromium-")
        to_child, self._out = os.pipe()
        self._in, from_child = os.pipe()

        def at_3_and_4():  # in the child: its fds 3 and 4 are the protocol pipe
            a, b = os.dup(to_child), os.dup(from_child)
            os.dup2(a, 3)
            os.dup2(b, 4)

        self.proc = subprocess.Popen(
            [executable, *FLAGS, f"--user-data-dir={self.profile}", "--remote-debugging-pipe", "about:blank"],
            preexec_fn=at_3_and_4, close_fds=False, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL)
        os.close(to_child)
        os.close(from_child)
        self._buf = b""
        self._id = 0
        self.events: list[dict] = []
        self.call("Browser.getVersion")

    # --- the protocol --------------------------------------------------------------------------
    def _read(self, deadline: float) -> dict | None:
        """The next message, or None when ``deadline`` passes first."""
        while b"\0" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._in], [], [], left)[0]:
                return None
            chunk = os.read(self._in, 1 << 20)
            if not chunk:
                raise BrowserError(f"Chromium exited (code {self.proc.poll()})")
            self._buf += chunk
        msg, _, self._buf = self._buf.partition(b"\0")
        return json.loads(msg)

    def call(self, method: str, params: dict | None = None, session: str | None = None) -> dict:
        """Send one command and wait for its reply; events read meanwhile go to ``events``."""
        self._id += 1
        msg = {"id": self._id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self._out, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + self.timeout
        while True:
            reply = self._read(deadline)
            if reply is None:
                raise BrowserError(f"{method}: no reply within {self.timeout:.0f} s")
            if reply.get("id") == self._id:
                if "error" in reply:
                    raise BrowserError(f"{method}: {reply['error'].get('message')}")
                return reply.get("result", {})
            self.events.append(reply)

    def wait_event(self, method: str, until=lambda params: True, timeout: float | None = None,
                   since: int = 0) -> dict:
        """The params of the first event ``method`` from ``events[since]`` on (seen already or coming)
        for which ``until`` holds."""
        deadline = time.monotonic() + (timeout or self.timeout)
        seen = since
        while True:
            for event in self.events[seen:]:
                if event.get("method") == method and until(event.get("params", {})):
                    return event["params"]
            seen = len(self.events)
            msg = self._read(deadline)
            if msg is None:
                raise BrowserError(f"no {method} event within {timeout or self.timeout:.0f} s")
            self.events.append(msg)

    def page(self, width: int = 1400, height: int = 1000) -> Page:
        target = self.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        page = Page(self, session, target)
        for domain in ("Page", "Runtime", "Log", "Network"):
            page.call(f"{domain}.enable")
        page.call("Emulation.setDeviceMetricsOverride",
                  {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False})
        return page

    def close(self) -> None:
        try:
            if self.proc.poll() is None:
                self.call("Browser.close")
                self.proc.wait(10)
        except (BrowserError, OSError, subprocess.TimeoutExpired):
            self.proc.kill()
            self.proc.wait()
        finally:
            for fd in (self._in, self._out):
                try:
                    os.close(fd)
                except OSError:
                    pass
            shutil.rmtree(self.profile, ignore_errors=True)

    def __enter__(self) -> Chromium:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class Page:
    """One tab: navigation, JavaScript, real mouse input, screenshots, and what the page did."""

    def __init__(self, browser: Chromium, session: str, target: str):
        self.browser, self.session, self.target = browser, session, target

    def close(self) -> None:
        self.browser.call("Target.closeTarget", {"targetId": self.target})

    def call(self, method: str, params: dict | None = None) -> dict:
        return self.browser.call(method, params, self.session)

    def _mine(self, method: str) -> list[dict]:
        return [e["params"] for e in self.browser.events
                if e.get("sessionId") == self.session and e.get("method") == method]

    def goto(self, url: str, ready: str = "document.readyState === 'complete'", timeout: float = 30.0) -> float:
        """Open ``url`` and wait until the JavaScript ``ready`` is true; returns the seconds taken."""
        start = time.monotonic()
        reply = self.call("Page.navigate", {"url": url})
        if reply.get("errorText"):
            raise BrowserError(f"{url}: {reply['errorText']}")
        self.wait_for(ready, timeout)
        return time.monotonic() - start

    def evaluate(self, expression: str):
        """The JSON value of ``expression`` (a promise is awaited); a thrown error raises."""
        reply = self.call("Runtime.evaluate", {"expression": expression, "returnByValue": True,
                                               "awaitPromise": True})
        if "exceptionDetails" in reply:
            details = reply["exceptionDetails"]
            text = details.get("exception", {}).get("description") or details.get("text")
            raise BrowserError(f"{expression[:80]!r} threw: {text}")
        return reply["result"].get("value")

    def wait_for(self, expression: str, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        # false, not an error, while the new document has no body yet
        while not self.evaluate(f"(() => {{ try {{ return Boolean({expression}); }} catch (e) {{ return false; }} }})()"):
            if time.monotonic() > deadline:
                raise BrowserError(f"waited {timeout:.0f} s for {expression!r}")
            time.sleep(0.02)

    def box(self, selector: str) -> dict:
        """The element's viewport box ``{x, y, width, height}`` and the page's scroll ``{sx, sy}``
        (scrolled into view first where it is out of it)."""
        box = self.evaluate(f"""(() => {{
            const el = document.querySelector({json.dumps(selector)});
            if (!el) return null;
            let r = el.getBoundingClientRect();
            if (r.top < 0 || r.left < 0 || r.bottom > innerHeight || r.right > innerWidth) {{
                // "nearest": a panel that scrolls sideways is left where it is when it can be
                el.scrollIntoView({{block: "center", inline: "nearest"}});
                r = el.getBoundingClientRect();
            }}
            return {{x: r.left, y: r.top, width: r.width, height: r.height, sx: scrollX, sy: scrollY}};
        }})()""")
        if box is None:
            raise BrowserError(f"no element matches {selector!r}")
        return box

    def _mouse(self, kind: str, x: float, y: float, modifiers: int = 0, **extra) -> None:
        self.call("Input.dispatchMouseEvent", {"type": kind, "x": x, "y": y, "modifiers": modifiers, **extra})

    def hover(self, selector: str) -> None:
        b = self.box(selector)
        self._mouse("mouseMoved", b["x"] + b["width"] / 2, b["y"] + b["height"] / 2)

    def click(self, selector: str, shift: bool = False) -> None:
        """A real left click in the element's middle (with Shift held when ``shift``)."""
        b = self.box(selector)
        x, y, mods = b["x"] + b["width"] / 2, b["y"] + b["height"] / 2, SHIFT if shift else 0
        self._mouse("mouseMoved", x, y, mods)
        self._mouse("mousePressed", x, y, mods, button="left", clickCount=1)
        self._mouse("mouseReleased", x, y, mods, button="left", clickCount=1)

    def type(self, selector: str, text: str) -> None:
        """Focus the element and type ``text`` into it (an ``input`` event, as from a keyboard)."""
        self.click(selector)
        self.call("Input.insertText", {"text": text})

    def screenshot(self, path: Path, selector: str | None = None, max_pixels: int | None = None) -> Path:
        """A PNG of the element (the whole page without ``selector``), scaled down to at most
        ``max_pixels`` pixels where given (a tall panel would otherwise be megabytes)."""
        params = {"format": "png", "captureBeyondViewport": True}
        if selector:
            b = self.box(selector)
            w, h = max(b["width"], 1), max(b["height"], 1)
            scale = min(1.0, (max_pixels / (w * h)) ** 0.5) if max_pixels else 1
            params["clip"] = {"x": b["x"] + b["sx"], "y": b["y"] + b["sy"], "width": w, "height": h, "scale": scale}
        data = self.call("Page.captureScreenshot", params)["data"]
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(data))
        return path

    def console_errors(self) -> list[str]:
        """Console errors, uncaught exceptions and browser-logged errors (a blocked load, a CSP breach)."""
        out = [" ".join(str(a.get("value", a.get("description", ""))) for a in p.get("args", []))
               for p in self._mine("Runtime.consoleAPICalled") if p.get("type") in ("error", "assert")]
        out += [p["exceptionDetails"].get("exception", {}).get("description") or p["exceptionDetails"]["text"]
                for p in self._mine("Runtime.exceptionThrown")]
        out += [p["entry"]["text"] for p in self._mine("Log.entryAdded") if p["entry"].get("level") == "error"]
        return out

    def requests(self) -> list[str]:
        """Every URL the page asked for."""
        return [p["request"]["url"] for p in self._mine("Network.requestWillBeSent")]

    def network_requests(self) -> list[str]:
        """The requests that would leave the machine (not file:, data:, blob: ...)."""
        return [u for u in self.requests() if not u.startswith(LOCAL_SCHEMES)]

    def allow_downloads(self, folder: Path) -> None:
        Path(folder).mkdir(parents=True, exist_ok=True)
        self.browser.call("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(folder),
                                                          "eventsEnabled": True})

    def download(self, selector: str, folder: Path, timeout: float = 30.0) -> Path:
        """Click ``selector`` and wait for the download it starts; returns the saved file."""
        seen = len(self.browser.events)
        self.click(selector)
        begun = self.browser.wait_event("Browser.downloadWillBegin", timeout=timeout, since=seen)
        done = self.browser.wait_event(
            "Browser.downloadProgress", lambda p: p.get("guid") == begun["guid"] and p.get("state") != "inProgress",
            timeout, since=seen)
        if done["state"] != "completed":
            raise BrowserError(f"the download from {selector!r} was {done['state']}")
        return Path(folder) / begun["suggestedFilename"]
