"""A real headless Chromium (Debian's `chromium`, driven by Playwright) for the dashboard.

Nothing is downloaded: Playwright drives the system's browser by its path. Every
page opened through `Pages` records console errors, warnings and uncaught
exceptions; `Pages.check` fails a test that produced any.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from playwright.sync_api import Browser, ConsoleMessage, Page, sync_playwright

#: Debian's package puts it here; `.ci/run` installs it with apt-get when missing.
CHROMIUM_NAMES = ("chromium", "chromium-browser")
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}


def chromium_path() -> str:
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    raise AssertionError("no chromium on PATH: `apt-get install chromium` (.ci/run does)")


@contextmanager
def chromium() -> Iterator[Browser]:
    """A headless Chromium, closed on exit."""
    with sync_playwright() as p:
        # --no-sandbox: CI runs as root, where Chromium's sandbox refuses to start.
        browser = p.chromium.launch(executable_path=chromium_path(), args=["--no-sandbox"])
        try:
            yield browser
        finally:
            browser.close()


@dataclass
class Pages:
    """Pages of one test, on one server, each watched for console trouble."""

    browser: Browser
    base: str
    problems: list[str] = field(default_factory=list)
    _open: list[Page] = field(default_factory=list)

    def open(self, path: str, viewport: dict[str, int] | None = None) -> Page:
        """A new page at `base + path`, loaded."""
        context = self.browser.new_context(viewport=viewport or DESKTOP)  # type: ignore[arg-type]
        page = context.new_page()
        page.on("console", self._console)
        page.on("pageerror", lambda exc: self.problems.append(f"uncaught: {exc}"))
        self._open.append(page)
        page.goto(self.base + path)
        return page

    def _console(self, message: ConsoleMessage) -> None:
        if message.type in ("error", "warning"):
            self.problems.append(f"console {message.type}: {message.text}")

    def close(self) -> None:
        for page in self._open:
            page.context.close()

    def check(self) -> None:
        assert not self.problems, "the pages logged problems:\n" + "\n".join(self.problems)
