"""A real headless Chromium opens the app, clicks an example in each tab and sees an output image."""

import os
import shutil

import pytest


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
playwright = pytest.importorskip("playwright.sync_api")

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (.ci/run installs it)")

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def test_click_examples_in_both_tabs(app_url, tmp_path):
    shots = os.environ.get("SCREENSHOT_DIR", str(tmp_path))
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1100})
            page.goto(app_url, wait_until="domcontentloaded")
            page.get_by_role("tab", name="T1 → T2").wait_for(timeout=60_000)
            for tab, example, produced in (("T1 → T2", "t1w_z080.png", "t1_to_t2-translation"),
                                           ("T2 → T1", "t2w_z095.png", "t2_to_t1-translation")):
                page.get_by_role("tab", name=tab).click()
                page.get_by_text(example, exact=False).first.click()
                image = page.locator(f"img[src*='{produced}']").first
                image.wait_for(state="visible", timeout=60_000)
                assert page.evaluate("(img) => img.naturalWidth", image.element_handle()) == 181
                path = os.path.join(shots, f"app-{produced}.png")
                page.screenshot(path=path, full_page=True)
                assert os.path.getsize(path) > 10_000
        finally:
            browser.close()
