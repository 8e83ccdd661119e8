"""The status page in headless Chromium (Debian's, driven by Playwright) during a live show.

A publisher, one target broadcasting (nginx-rtmp) and one unreachable: the page must show
each for what it is, in colour, with sparklines, keep itself up to date, and fit a
phone. Screenshots go to the test's output folder (printed); set RELAY_SCREENSHOT to
also write the desktop one there (the README's docs/status-page.png is made this way).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.browser import headless_chromium
from tests.support.show import TOKEN, Show, live_show

# One show for the module: its tests share one worker in a parallel run (pytest-xdist, --dist loadgroup).
pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("page-show")]

GREEN, RED = "rgb(47, 191, 113)", "rgb(239, 78, 78)"

sync_api = pytest.importorskip("playwright.sync_api")


@pytest.fixture(scope="module")
def show(source_flv: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Show]:
    with live_show(tmp_path_factory.mktemp("page-show"), source_flv) as running:
        yield running


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    with headless_chromium(sync_api) as chromium:
        yield chromium


def sign_in(page: object, show: Show) -> None:
    page.goto(show.base + "/")  # type: ignore[attr-defined]
    page.fill("input[name=token]", TOKEN)  # type: ignore[attr-defined]
    page.click("button[type=submit]")  # type: ignore[attr-defined]


def test_the_page_shows_each_target_for_what_it_is(browser: object, show: Show, tmp_path: Path) -> None:
    context = browser.new_context(viewport={"width": 1100, "height": 720}, color_scheme="dark")  # type: ignore
    page = context.new_page()
    sign_in(page, show)  # the sign-in form itself comes with a 401: errors count from here on
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)

    stream = page.locator("[data-live-stream=studio]")
    good = stream.locator("[data-target=nginx]")
    bad = stream.locator("[data-target=nowhere]")
    sync_api.expect(stream).to_have_attribute("data-status", "active", timeout=15_000)
    sync_api.expect(good).to_have_attribute("data-status", "broadcasting")
    sync_api.expect(bad).to_have_attribute("data-status", "errored", timeout=15_000)
    assert good.locator("[data-role=status]").evaluate("e => getComputedStyle(e).backgroundColor") == GREEN
    assert bad.locator("[data-role=status]").evaluate("e => getComputedStyle(e).backgroundColor") == RED
    sync_api.expect(bad.locator("[data-role=last-error]")).to_contain_text("connection refused")
    sync_api.expect(good.locator("[data-role=last-error]")).to_have_count(0)
    ingest = stream.locator("[data-role=ingest]")
    sync_api.expect(ingest).to_contain_text("h264")
    sync_api.expect(ingest).to_contain_text("640×360")
    sync_api.expect(ingest).to_contain_text("keyframes every 2.0 s")
    sync_api.expect(stream).to_contain_text("uptime")
    sync_api.expect(good).to_contain_text("dropped 0 frames")
    sync_api.expect(good).not_to_contain_text("attempts")
    # A target that keeps failing shows its attempts since it last worked, and that it never did.
    sync_api.expect(bad).to_contain_text("attempts")
    sync_api.expect(bad).to_contain_text("last connected never")
    sync_api.expect(stream).to_contain_text("received")
    # Sparklines fill as samples come (every 2 s); the page redraws itself without a reload.
    page.wait_for_function(
        "() => [...document.querySelectorAll('[data-target=nginx] svg.spark')].some(s => +s.dataset.samples >= 2)",
        timeout=20_000)
    first = page.locator("#updated").text_content()
    page.wait_for_function(f"() => document.querySelector('#updated').textContent !== {first!r}", timeout=10_000)
    assert "active" in stream.locator("h2").inner_text().lower()
    assert TOKEN not in page.content()

    shot = tmp_path / "status-page.png"
    page.screenshot(path=str(shot), full_page=True)
    print(f"status page screenshot: {shot}")
    if wanted := os.environ.get("RELAY_SCREENSHOT"):
        shutil.copyfile(shot, wanted)
    assert not errors, errors
    context.close()


def test_the_page_fits_a_phone(browser: object, show: Show, tmp_path: Path) -> None:
    context = browser.new_context(viewport={"width": 375, "height": 740}, device_scale_factor=2,  # type: ignore
                                  is_mobile=True, has_touch=True)
    page = context.new_page()
    sign_in(page, show)
    sync_api.expect(page.locator("[data-target=nowhere]")).to_have_attribute("data-status", "errored",
                                                                             timeout=15_000)

    overflow = page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"the page is {overflow} px wider than a phone's screen"
    font = page.locator("[data-target=nginx] .name").evaluate("e => parseFloat(getComputedStyle(e).fontSize)")
    assert font >= 14
    shot = tmp_path / "status-page-phone.png"
    page.screenshot(path=str(shot), full_page=True)
    print(f"status page screenshot (phone): {shot}")
    context.close()
