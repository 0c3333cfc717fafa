"""Take the README's screenshots from a running site (`make run`) with Playwright and Debian's Chromium.

    make run &                              # the demo campaign on http://127.0.0.1:8000
    .venv/bin/python scripts/screenshots.py # writes docs/screenshot.png and docs/screenshot-phone.png

Each shot opens the demo campaign as a new voter until the battle is the wanted one (the hand-out is
random): the desktop shot's prompt is the mutable-default Python question, the phone shot's first answer
is short enough for its scores to show above the vote buttons. Emoji in the demo answers need a
colour emoji font (Debian: fonts-noto-color-emoji). Every shot votes nothing.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path

from playwright.sync_api import Browser, Page, sync_playwright

DOCS = Path(__file__).resolve().parent.parent / "docs"
CHROMIUM = os.environ.get("ARENA_CHROMIUM", shutil.which("chromium") or "/usr/bin/chromium")
PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True, "device_scale_factor": 2}
SHOTS = [
    # file, context options, text the battle's prompt must contain, whether A's scores must be in the first screen
    ("screenshot.png", {"viewport": {"width": 1366, "height": 900}}, "add_item", False),
    ("screenshot-phone.png", PHONE, "", True),
]


def battle_showing(browser: Browser, base: str, options: dict, text: str, scores: bool, tries: int) -> Page:
    """A page (of a new voter each try) whose battle's prompt contains ``text`` (and, with ``scores``,
    whose first answer is short enough for its scores to show above the vote buttons)."""
    for _ in range(tries):
        context = browser.new_context(**options)
        page = context.new_page()
        page.goto(f"{base}/c/demo/")
        page.click("#start-voting")
        page.wait_for_selector("#answer-a")
        if text in page.inner_text(".conversation") and (not scores or _scores_in_view(page)):
            return page
        context.close()
    raise SystemExit(f"no battle showed {text!r} in {tries} tries")


def _scores_in_view(page: Page) -> bool:
    last_score = page.locator(".side").first.locator(".score").last.bounding_box()
    buttons = page.locator(".verdicts").bounding_box()
    return last_score["y"] + last_score["height"] <= buttons["y"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", default="http://127.0.0.1:8000", help="the running site")
    parser.add_argument("--tries", type=int, default=200, help="new voters to try per shot")
    args = parser.parse_args()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        for name, options, text, scores in SHOTS:
            page = battle_showing(browser, args.base, options, text, scores, args.tries)
            page.evaluate("document.fonts.ready")
            page.screenshot(path=str(DOCS / name))
            print(f"{DOCS / name}: {page.url}", file=sys.stderr)
            page.context.close()
        browser.close()


if __name__ == "__main__":
    main()
