"""Debian's `chromium`, headless, driven over the Chrome DevTools Protocol (a websocket; `websockets`'
sync client): open a page, wait until its rendered text holds what a user should read, screenshot it.

No WebDriver and no browser download: the tests need `apt-get install chromium` (.ci/run installs it)
and skip, naming it, where it is absent. What is asserted is the DOM as rendered (`innerText`, links'
`href`), never the API behind the page.
"""

from __future__ import annotations

import base64
import itertools
import json
import shutil
import subprocess
import time
from pathlib import Path

import httpx
import pytest

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--disable-extensions", "--no-first-run",
         "--no-default-browser-check", "--mute-audio", "--window-size=1600,1100", "--remote-debugging-port=0")
START_TIMEOUT_S = 60


def chromium_or_skip() -> str:
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    # at a test module's top: skipped before any fixture starts a server for it
    pytest.skip("chromium is not installed (apt-get install -y chromium): the browser tests need it", allow_module_level=True)


class Page:
    """One tab of a headless Chromium, and the calls the tests make on it."""

    def __init__(self, executable: str, root: Path):
        from websockets.sync.client import connect

        self.root = root
        profile = root / "profile"
        profile.mkdir(parents=True, exist_ok=True)
        (profile / "DevToolsActivePort").unlink(missing_ok=True)  # a former browser's port
        self.log = open(root / "chromium.log", "wb")
        self.process = subprocess.Popen([executable, *FLAGS, f"--user-data-dir={profile}", "about:blank"],
                                        stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        self.socket = None
        try:
            port = self._devtools_port(profile / "DevToolsActivePort")
            pages = [t for t in httpx.get(f"http://127.0.0.1:{port}/json/list", timeout=10).json() if t["type"] == "page"]
            self.socket = connect(pages[0]["webSocketDebuggerUrl"], max_size=None, open_timeout=20)
        except BaseException:
            self.close()
            raise
        self.ids = itertools.count(1)
        self.call("Page.enable")
        self.shots = 0

    def _devtools_port(self, active_port: Path) -> int:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if active_port.exists() and active_port.read_text().strip():
                return int(active_port.read_text().split()[0])
            if self.process.poll() is not None:
                break
            time.sleep(0.2)
        raise AssertionError(f"chromium did not open its DevTools port:\n{(self.root / 'chromium.log').read_text()[-3000:]}")

    def call(self, method: str, **params):
        """One DevTools command; its result (events in between are dropped)."""
        number = next(self.ids)
        self.socket.send(json.dumps({"id": number, "method": method, "params": params}))
        while True:
            message = json.loads(self.socket.recv(timeout=60))
            if message.get("id") == number:
                if "error" in message:
                    raise AssertionError(f"{method}: {message['error']}")
                return message.get("result", {})

    def evaluate(self, expression: str):
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise AssertionError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def open(self, url: str) -> None:
        self.call("Page.navigate", url=url)

    def text(self) -> str:
        return self.evaluate("document.body ? document.body.innerText : ''") or ""

    def links(self) -> list[tuple[str, str]]:
        """(text, href) of every link on the page."""
        return [tuple(pair) for pair in self.evaluate(
            "Array.from(document.querySelectorAll('a[href]')).map(a => [a.innerText.trim(), a.href])")]

    def url(self) -> str:
        return self.evaluate("location.href")

    def wait_for(self, *needles: str, absent: tuple[str, ...] = (), timeout_s: float = 60, shot: str | None = None,
                 scroll_to: str | None = None) -> str:
        """The page's text once it holds every needle (and, then, none of `absent`); a screenshot named
        `shot` of it (scrolled to the text `scroll_to`). Fails with the text it saw and a screenshot when the
        needles do not all appear."""
        deadline = time.monotonic() + timeout_s
        text = ""
        while time.monotonic() < deadline:
            text = self.text()
            if all(needle in text for needle in needles):
                time.sleep(0.5)  # let the page finish the render that brought the last needle
                text = self.text()
                if scroll_to:
                    self.scroll_to(scroll_to)
                if shot:
                    self.screenshot(shot)
                shown = [word for word in absent if word in text]
                assert not shown, f"{shown} on {self.url()} (screenshot {self.root / (shot or '')}):\n{text[:3000]}"
                return text
            time.sleep(0.5)
        path = self.screenshot(f"failed-{shot or 'page'}")
        missing = [needle for needle in needles if needle not in text]
        raise AssertionError(f"{missing} never appeared on {self.url()} within {timeout_s:.0f} s "
                             f"(screenshot {path}); the page read:\n{text[:4000]}")

    def scroll_to(self, text: str) -> None:
        """Scroll the innermost element holding `text` into view (for a screenshot of it)."""
        self.evaluate(f"""(() => {{
            const hits = Array.from(document.querySelectorAll("*")).filter(e => e.innerText && e.innerText.includes({json.dumps(text)}));
            if (hits.length) hits[hits.length - 1].scrollIntoView({{block: "center"}});
        }})()""")
        time.sleep(0.3)

    def click(self, text: str, href_part: str = "", prefix: bool = False) -> None:
        """Click, as a user would, the innermost element whose text is `text` (or, `prefix`, starts with
        it; a link: whose address holds `href_part`)."""
        found = self.evaluate(f"""(() => {{
            const wanted = {json.dumps(text)}, prefix = {json.dumps(prefix)};
            const named = e => e.innerText && (prefix ? e.innerText.trim().startsWith(wanted) : e.innerText.trim() === wanted);
            const hits = Array.from(document.querySelectorAll({json.dumps("a[href]" if href_part else "*")}))
                .filter(e => named(e) && (e.href || "").includes({json.dumps(href_part)}))
                .filter(e => !Array.from(e.children).some(named));
            if (!hits.length) return false;
            hits[0].click();
            return true;
        }})()""")
        assert found, f"nothing to click named {text!r} on {self.url()}:\n{self.text()[:3000]}"

    def dialog(self, timeout_s: float = 20) -> str:
        """The text of the dialog the page opened (a modal), once it has some."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            text = self.evaluate("Array.from(document.querySelectorAll('[role=dialog]')).map(d => d.innerText).join('\\n')")
            if text and text.strip():
                return text
            time.sleep(0.3)
        raise AssertionError(f"no dialog opened on {self.url()} within {timeout_s:.0f} s")

    def close_dialog(self) -> None:
        """Click the open dialog's close button (its `aria-label` says Close), and wait until it has gone."""
        assert self.evaluate("""(() => {
            const close = document.querySelector('[role=dialog] [aria-label="Close" i]');
            if (close) close.click();
            return !!close;
        })()"""), f"no dialog with a close button on {self.url()}"
        deadline = time.monotonic() + 10
        while self.evaluate("document.querySelectorAll('[role=dialog]').length") and time.monotonic() < deadline:
            time.sleep(0.2)

    def screenshot(self, name: str) -> Path:
        self.shots += 1
        path = self.root / f"{self.shots:02d}-{name}.png"
        path.write_bytes(base64.b64decode(self.call("Page.captureScreenshot", format="png")["data"]))
        return path

    def close(self) -> None:
        if self.socket is not None:
            self.socket.close()
        from engineforge.processes.serving import stop_process_group

        stop_process_group(self.process, 10)
        self.log.close()
