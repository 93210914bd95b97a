"""Screenshots of each tab of the app, as a newcomer sees them, for the README.

    python docs/screenshots.py [--model FOLDER_OR_REPO] [--out docs/screenshots]

Starts the app on a free loopback port, opens it in headless Chromium (Debian's
``chromium`` and the ``playwright`` package), clicks an example in each tab and
saves one PNG per tab: ``t1-to-t2.png``, ``t2-to-t1.png``, ``volume.png``, ``about.png``.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def take(url: str, out: Path, chromium: str) -> list[Path]:
    from playwright.sync_api import sync_playwright

    out.mkdir(parents=True, exist_ok=True)
    shots = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1000})
            page.goto(url, wait_until="domcontentloaded")
            page.get_by_role("tab", name="T1 → T2").wait_for(timeout=120_000)
            for tab, example, produced, name in (
                ("T1 → T2", "t1w_openmslong04_z028", "t1w_openmslong04_z028_t2w-from-t1w", "t1-to-t2.png"),
                ("T2 → T1", "t2w_openmslong04_z023", "t2w_openmslong04_z023_t1w-from-t2w", "t2-to-t1.png"),
            ):
                page.get_by_role("tab", name=tab).click()
                page.locator(f"img[src*='{example}.png'] >> visible=true").first.click()
                page.locator(f"img[src*='{produced}'] >> visible=true").first.wait_for(timeout=120_000)
                page.get_by_text("Mean round-trip error").locator("visible=true").first.wait_for(timeout=60_000)
                page.wait_for_timeout(1000)  # the compare slider's images
                shots.append(out / name)
                page.screenshot(path=str(shots[-1]), full_page=True)
            page.get_by_role("tab", name="Volume (NIfTI)").click()
            page.get_by_text("t1w_openmslong04.nii.gz").locator("visible=true").first.click()  # runs it
            page.locator("img[src*='t1w_openmslong04_t2w-from-t1w_axial_z'] >> visible=true").first.wait_for(
                timeout=300_000)
            page.wait_for_timeout(1000)
            shots.append(out / "volume.png")
            page.screenshot(path=str(shots[-1]), full_page=True)
            page.get_by_role("tab", name="About").click()
            page.get_by_text("Training data").locator("visible=true").first.wait_for(timeout=60_000)
            shots.append(out / "about.png")
            page.screenshot(path=str(shots[-1]), full_page=True)
        finally:
            browser.close()
    return shots


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None, help="model folder or Hub repo (default: the shipped model)")
    parser.add_argument("--out", default=str(ROOT / "docs" / "screenshots"), help="folder for the PNGs")
    args = parser.parse_args(argv)
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        print("error: Debian's chromium is needed (apt-get install chromium)", file=sys.stderr)
        return 2
    from benchmarks._harness import spawn

    proc, url = spawn(*(["--model", args.model] if args.model else []), timeout=300)
    if url is None:
        print("error: the app did not start", file=sys.stderr)
        return 2
    try:
        for path in take(url, Path(args.out), chromium):
            print(f"wrote {path}")
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
