"""A real headless Chromium uses the app as a newcomer would: example thumbnails, the compare view,
the verdict, the contrast warning and its one-click switch, the volume tab and About."""

import os
import shutil

import numpy as np
import pytest
from PIL import Image

from conftest import ellipse_pairs

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
playwright = pytest.importorskip("playwright.sync_api")

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (.ci/run installs it)")

#: How long to wait for the app to answer an action that runs the model (ms). A bound on a hang,
#: not a speed goal: on 2 cores shared with other work a first translation can take a minute.
MODEL_WAIT = 180_000

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def page(app_url):
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1100})
            page.goto(app_url, wait_until="domcontentloaded")
            page.get_by_role("tab", name="T1 → T2").wait_for(timeout=MODEL_WAIT)
            yield page
        finally:
            browser.close()


class Visible:
    """What is shown of the page (the other tabs' elements are hidden)."""

    def __init__(self, page):
        self.page = page

    def locator(self, css):
        return self.page.locator(f"{css} >> visible=true")

    def get_by_text(self, text):
        return self.page.get_by_text(text).locator("visible=true")

    def get_by_role(self, role, name):
        return self.page.get_by_role(role, name=name).locator("visible=true")


def width_of(page, locator):
    return page.evaluate("(img) => img.naturalWidth", locator.element_handle())


def shot(page, tmp_path, name):
    path = os.path.join(os.environ.get("SCREENSHOT_DIR", str(tmp_path)), name)
    page.screenshot(path=path, full_page=True)
    assert os.path.getsize(path) > 10_000


@pytest.mark.parametrize("tab, example, produced, width", [
    ("T1 → T2", "t1w_openmslong04_z028", "t1w_openmslong04_z028_t2w-from-t1w", 233),
    ("T2 → T1", "t2w_openmscs07_z088", "t2w_openmscs07_z088_t1w-from-t2w", 182),
])
def test_example_thumbnail_gives_input_translation_and_verdict(page, tmp_path, tab, example, produced, width):
    page.get_by_role("tab", name=tab).click()
    panel = Visible(page)
    panel.locator(f"img[src*='{example}.png']").first.click()  # a thumbnail, not a file name
    translated = panel.locator(f"img[src*='{produced}']")
    translated.first.wait_for(state="visible", timeout=MODEL_WAIT)
    # The input as the model saw it, beside the translation at the same size, and in the compare slider.
    inputs = panel.locator(f"img[src*='{example}_input']")
    inputs.nth(1).wait_for(state="visible", timeout=30_000)
    translated.nth(1).wait_for(state="visible", timeout=30_000)
    assert width_of(page, inputs.first) == width_of(page, translated.first) == width
    assert panel.locator("img[src*='round-trip-error']").first.is_visible()
    panel.get_by_text("Mean round-trip error inside the head").wait_for(timeout=30_000)
    assert panel.get_by_text("≥ 0.25").first.is_visible()  # the colour bar's scale
    assert page.get_by_text("16-bit downloads").locator("visible=true").count() == 0  # no empty box
    shot(page, tmp_path, f"app-{produced}.png")


def test_wrong_contrast_is_flagged_and_switched_in_one_click(page, tmp_path):
    _, _, t2 = ellipse_pairs(1, first_seed=91)[0]
    path = tmp_path / "looks_t2.png"
    Image.fromarray((t2 * 255).astype(np.uint8)).save(path)
    page.reload(wait_until="domcontentloaded")  # empty upload boxes again
    page.get_by_role("tab", name="T1 → T2").click()
    panel = Visible(page)
    page.locator("input[type=file]").first.set_input_files(str(path))
    panel.get_by_role("button", name="Translate to T2").click()
    panel.get_by_text("this image looks T2-weighted, not T1-weighted").wait_for(timeout=MODEL_WAIT)
    panel.get_by_role("button", name="Translate it as T2 → T1 instead").click()
    other = Visible(page)
    other.locator("img[src*='looks_t2_t1w-from-t2w']").first.wait_for(state="visible", timeout=MODEL_WAIT)
    assert other.get_by_text("looks T1-weighted").count() == 0


def test_volume_example_runs_on_click_with_a_verdict_and_an_error_map(page, tmp_path):
    page.get_by_role("tab", name="Volume (NIfTI)").click()
    panel = Visible(page)
    panel.get_by_text("t1w_openmslong04.nii.gz").first.click()  # runs it: no button to press
    view = panel.locator("img[src*='t1w_openmslong04_t2w-from-t1w_axial_z014']").first
    view.wait_for(state="visible", timeout=MODEL_WAIT)
    # input | translation of one axial slice, on the model's 1 mm grid (256 pixels of 0.91 mm: 233)
    assert width_of(page, view) == 2 * 233
    heat = panel.locator("img[src*='t1w_openmslong04_t2w-from-t1w_round-trip-error_axial_z014']").first
    assert heat.is_visible() and width_of(page, heat) == 233
    panel.get_by_text("Mean round-trip error inside the head").wait_for(timeout=30_000)
    assert panel.locator("a[href*='t1w_openmslong04_t2w-from-t1w.nii.gz']").count() >= 1  # named after the input
    below_heat_map(page, heat, panel.locator(".colour-bar").first)
    shot(page, tmp_path, "app-volume.png")


def below_heat_map(page, heat, bar):
    """The colour bar sits right under its heat map, not under another panel (measured once the page has
    stopped moving: images still loading shift what is below them)."""
    for _ in range(20):
        heat_box, bar_box = heat.bounding_box(), bar.bounding_box()
        gap = bar_box["y"] - (heat_box["y"] + heat_box["height"])
        if 0 <= gap < 120:
            break
        page.wait_for_timeout(500)
    assert 0 <= gap < 120, (heat_box, bar_box)
    assert bar_box["x"] < heat_box["x"] + heat_box["width"] and heat_box["x"] < bar_box["x"] + bar_box["width"]


def test_an_error_clears_the_earlier_result(page, tmp_path):
    page.reload(wait_until="domcontentloaded")
    page.get_by_role("tab", name="T1 → T2").click()
    panel = Visible(page)
    panel.locator("img[src*='t1w_openmslong04_z028.png']").first.click()
    panel.locator("img[src*='t1w_openmslong04_z028_t2w-from-t1w']").first.wait_for(state="visible", timeout=MODEL_WAIT)
    panel.get_by_text("Mean round-trip error inside the head").wait_for(timeout=30_000)
    broken = tmp_path / "broken_scan.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n not an image")
    panel.get_by_role("button", name="Clear").first.click()  # the upload box takes a new file
    page.locator("input[type=file] >> nth=0").set_input_files(str(broken))
    panel.get_by_role("button", name="Translate to T2").click()
    panel.get_by_text("broken_scan.png is not a readable PNG").first.wait_for(timeout=MODEL_WAIT)
    page.wait_for_timeout(1000)
    assert panel.locator("img[src*='t1w_openmslong04_z028']").count() <= 3  # the thumbnails only
    assert panel.get_by_text("Mean round-trip error inside the head").count() == 0
    # The volume tab too: a volume, then a file that is not one.
    page.get_by_role("tab", name="Volume (NIfTI)").click()
    panel.get_by_text("t1w_openmslong04.nii.gz").first.click()
    panel.locator("img[src*='t1w_openmslong04_t2w-from-t1w_axial_z']").first.wait_for(state="visible",
                                                                                       timeout=MODEL_WAIT)
    bad = tmp_path / "bad_volume.nii.gz"
    bad.write_bytes(b"\x1f\x8b not a volume")
    panel.get_by_role("button", name="Clear").first.click()
    page.locator("input[type=file]").last.set_input_files(str(bad))
    panel.get_by_role("button", name="Translate volume").click()
    panel.get_by_text("bad_volume.nii.gz is not a readable NIfTI file").first.wait_for(timeout=MODEL_WAIT)
    page.wait_for_timeout(1000)
    assert panel.locator("img[src*='t1w_openmslong04_t2w-from-t1w']").count() == 0
    assert panel.get_by_text("Mean round-trip error inside the head").count() == 0


@pytest.mark.parametrize("width", [1280, 390])
def test_layout_at_desktop_and_phone_width(page, app_url, tmp_path, width):
    """The examples' caption is above the thumbnails, not over them; the colour bar sits under the heat
    map; the heat map's title is not under its buttons."""
    view = page.context.browser.new_page(viewport={"width": width, "height": 1000})
    try:
        view.goto(app_url, wait_until="domcontentloaded")
        view.get_by_role("tab", name="T1 → T2").wait_for(timeout=MODEL_WAIT)
        panel = Visible(view)
        caption = panel.get_by_text("real scans of two patients held out").first
        thumbnail = panel.locator("img[src*='t1w_openmslong04_z028.png']").first
        thumbnail.wait_for(state="visible", timeout=30_000)
        caption_box, thumb_box = caption.bounding_box(), thumbnail.bounding_box()
        assert caption_box["y"] + caption_box["height"] <= thumb_box["y"] + 1, (caption_box, thumb_box)
        thumbnail.click()
        heat = panel.locator("img[src*='t1w_openmslong04_z028_round-trip-error']").first
        heat.wait_for(state="visible", timeout=MODEL_WAIT)
        below_heat_map(view, heat, panel.locator(".colour-bar").first)
        title_box = view.get_by_text("Round-trip error", exact=True).locator("visible=true").first.bounding_box()
        for button in view.locator("button >> visible=true").all():
            box = button.bounding_box()
            if box is None or box["width"] > 60 or box["height"] > 60:  # icon buttons only, not the image
                continue
            overlaps = (box["x"] < title_box["x"] + title_box["width"] and title_box["x"] < box["x"] + box["width"]
                        and box["y"] < title_box["y"] + title_box["height"]
                        and title_box["y"] < box["y"] + box["height"])
            assert not overlaps, (title_box, box)
        shot(view, tmp_path, f"app-layout-{width}.png")
    finally:
        view.close()


def test_about_names_the_model_and_its_checks(page, tmp_path):
    page.get_by_role("tab", name="About").click()
    panel = Visible(page)
    panel.get_by_text("Input checks").first.wait_for(timeout=30_000)
    assert panel.get_by_text("mri-cyclegan 0.").first.is_visible()
    shot(page, tmp_path, "app-about.png")


def test_volume_stored_s_r_a_is_cut_in_the_plane_its_header_names(page, tmp_path):
    import nibabel as nib

    from conftest import phantom_slice

    ras = np.stack([phantom_slice(48, 56, seed=i).T for i in range(4)], axis=-1).astype(np.float32)  # (56, 48, 4)
    sra = np.transpose(ras, (2, 0, 1))  # stored (S, R, A)
    permute = np.array([[0, 1, 0, 0], [0, 0, 1, 0], [1, 0, 0, 0], [0, 0, 0, 1]], float)
    path = tmp_path / "stored_sra.nii.gz"
    nib.save(nib.Nifti1Image(sra, permute), path)
    page.reload(wait_until="domcontentloaded")
    page.get_by_role("tab", name="Volume (NIfTI)").click()
    panel = Visible(page)
    page.locator("input[type=file]").last.set_input_files(str(path))  # the volume tab (the last) has it
    panel.get_by_role("button", name="Translate volume").click()
    view = panel.locator("img[src*='stored_sra_t2w-from-t1w_axial_z']").first
    view.wait_for(state="visible", timeout=MODEL_WAIT)
    # Axial slices of 56 (R) x 48 (A) voxels: input | translation is 2 x 56 wide, not 181 x 3 pixels.
    assert width_of(page, view) == 2 * 56
    assert panel.locator("a[href*='stored_sra_t2w-from-t1w.nii.gz']").count() >= 1


def test_volume_of_the_other_contrast_is_flagged_and_switched(page, tmp_path):
    import nibabel as nib

    t2 = np.stack([p[2].T for p in ellipse_pairs(6, size=64, first_seed=91)], axis=-1).astype(np.float32)
    path = tmp_path / "looks_t2_volume.nii.gz"
    nib.save(nib.Nifti1Image(t2, np.eye(4)), path)
    page.reload(wait_until="domcontentloaded")
    page.get_by_role("tab", name="Volume (NIfTI)").click()
    panel = Visible(page)
    page.locator("input[type=file]").last.set_input_files(str(path))
    panel.get_by_role("button", name="Translate volume").click()
    panel.get_by_text("looks T2-weighted, not T1-weighted").first.wait_for(timeout=MODEL_WAIT)
    panel.get_by_role("button", name="Translate it in the other direction instead").click()
    panel.locator("img[src*='looks_t2_volume_t1w-from-t2w_axial_z']").first.wait_for(state="visible",
                                                                                     timeout=MODEL_WAIT)
    assert panel.locator("a[href*='looks_t2_volume_t1w-from-t2w.nii.gz']").count() >= 1
