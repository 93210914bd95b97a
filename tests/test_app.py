"""The Gradio app end to end: gradio_client against the app on loopback."""

import concurrent.futures
import gzip
import os
import urllib.request

import numpy as np
import pytest
from PIL import Image

from conftest import ellipse_pairs, output, phantom_slice, start_app

gradio_client = pytest.importorskip("gradio_client")
from gradio_client import Client, handle_file  # noqa: E402


@pytest.fixture(scope="module")
def client(app_url):
    return Client(app_url, verbose=False)


def write_png(path, array):
    Image.fromarray(array).save(path)
    return str(path)


def test_api_names(client):
    names = set(client.view_api(return_format="dict")["named_endpoints"])
    assert {"/t1_to_t2", "/t2_to_t1", "/volume"} <= names


def plain(value) -> bool:
    """JSON-like data only: no Gradio update dicts or other internals."""
    if isinstance(value, dict):
        return "__type__" not in value and all(plain(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return all(plain(v) for v in value)
    return value is None or isinstance(value, (str, int, float, bool))


@pytest.mark.parametrize("api", ["/t1_to_t2", "/t2_to_t1"])
def test_translate_8_bit(client, tmp_path, api):
    path = write_png(tmp_path / "brain slice #3.png", phantom_slice(181, 217))
    result = client.predict(handle_file(path), api_name=api)
    assert plain(result)
    shown, translated, recon, heat, downloads, report = result
    for png in (shown, translated, recon):
        with Image.open(png) as image:
            assert image.format == "PNG" and image.mode == "L" and image.size == (217, 181)
    with Image.open(heat) as image:
        assert image.mode == "RGB" and image.size == (217, 181)
    # Every output is named after the input (which was sanitised), and says what it is.
    target = "t2w-from-t1w" if api == "/t1_to_t2" else "t1w-from-t2w"
    assert os.path.basename(translated) == f"brain_slice_3_{target}.png"
    assert os.path.basename(shown) == "brain_slice_3_input.png"
    assert os.path.basename(heat) == "brain_slice_3_round-trip-error.png"
    # 8-bit input: the translation PNG itself is the lossless download.
    assert not downloads
    assert report["direction"] == api[1:] and report["bit_depth"] == 8
    assert report["height"] == 181 and report["width"] == 217
    assert 0 <= report["mean_cycle_error"] <= 1
    assert report["verdict"] in ("typical", "unusual", "likely wrong input")
    assert report["frame"] is None  # the head fills its frame as in the training slices


def test_a_head_in_a_wide_frame_is_translated_closer_and_the_report_says_so(client, tmp_path):
    import app

    path = write_png(tmp_path / "wide.png", np.pad(phantom_slice(120, 100), 110))
    shown, translated, recon, heat, downloads, report = client.predict(handle_file(path), api_name="/t1_to_t2")
    frame = report["frame"]
    assert 0 < frame["top"] < 110 < 230 < frame["bottom"] < 340 and 0 < frame["left"] < 110 < 210 < frame["right"]
    with Image.open(translated) as image:
        pixels = np.asarray(image)
    assert pixels.shape == (340, 320) and pixels[: frame["top"]].max() == 0 and pixels[:, frame["right"]:].max() == 0
    text = app.report_markdown(report)
    assert "fills little of this image" in text and f"rows {frame['top']}-{frame['bottom']}" in text
    assert "fills little" not in app.report_markdown({**report, "frame": None})


def test_translate_16_bit(client, tmp_path):
    path = write_png(tmp_path / "in16.png", phantom_slice(96, 80).astype(np.uint16) * 257)
    _, translated, _, _, downloads, report = client.predict(handle_file(path), api_name="/t1_to_t2")
    assert report["bit_depth"] == 16
    names = sorted(os.path.basename(d) for d in downloads)
    assert names == ["in16_t2w-from-t1w-16bit.png", "in16_t2w-from-t1w.tiff"]
    for d in downloads:
        with Image.open(d) as image:
            assert image.mode.startswith("I;16") or image.mode == "I", image.mode
            assert image.size == (80, 96)
            assert np.asarray(image).max() > 255  # real 16-bit range


def test_verdict_levels_come_from_the_model(client, tmp_path, tiny_calibration):
    path = write_png(tmp_path / "in.png", phantom_slice())
    report = client.predict(handle_file(path), api_name="/t2_to_t1")[-1]
    levels = tiny_calibration["cycle_error"]["t2_to_t1"]
    assert report["levels"] == levels
    error = report["mean_cycle_error"]
    expected = ("typical" if error <= levels["typical"] else
                "unusual" if error <= levels["likely_wrong"] else "likely wrong input")
    assert report["verdict"] == expected


def test_contrast_check_flags_the_other_contrast(client, tmp_path):
    _, t1, t2 = ellipse_pairs(1, first_seed=77)[0]
    as_png = lambda image, name: write_png(tmp_path / name, (image * 255).astype(np.uint8))  # noqa: E731
    right = client.predict(handle_file(as_png(t1, "t1.png")), api_name="/t1_to_t2")[-1]["contrast"]
    wrong = client.predict(handle_file(as_png(t2, "t2.png")), api_name="/t1_to_t2")[-1]["contrast"]
    assert right["expected"] == "T1" and right["looks_like"] == "T1" and not right["mismatch"]
    assert wrong["looks_like"] == "T2" and wrong["mismatch"] and wrong["t2_probability"] > 0.5
    swapped = client.predict(handle_file(as_png(t2, "t2.png")), api_name="/t2_to_t1")[-1]["contrast"]
    assert swapped["expected"] == "T2" and not swapped["mismatch"]


def test_report_reads_in_plain_language(tiny_translator):
    import app

    report = {"mean_cycle_error": 0.31, "verdict": "likely wrong input",
              "levels": {"typical": 0.05, "likely_wrong": 0.2},
              "contrast": {"expected": "T1", "looks_like": "T2", "t2_probability": 0.93, "mismatch": True}}
    text = app.report_markdown(report)
    assert "0.310" in text and "Likely a wrong input" in text and "at most 0.050" in text
    assert "this image looks T2-weighted, not T1-weighted" in text and "93% T2" in text
    calm = app.report_markdown({**report, "verdict": "typical", "contrast": {**report["contrast"], "mismatch": False,
                                                                             "looks_like": "T1"}})
    assert "Typical" in calm and "looks" not in calm
    assert "no calibrated levels" in app.report_markdown({"mean_cycle_error": 0.1, "verdict": None})
    wrong_order = app.report_markdown({"direction": "t1_to_t2", "mean_cycle_error": 0.04, "verdict": "unusual",
                                       "levels": {"typical": 0.05, "likely_wrong": 0.2},
                                       "tissue_order": {"csf": 0.29, "gm": 0.37, "wm": 0.46, "in_order": False}})
    assert "Unusual" in wrong_order and "tissue order below is wrong" in wrong_order
    assert "does not look T2-weighted inside the brain" in wrong_order and "CSF (0.29)" in wrong_order


def nifti_bytes(data, affine=None):
    import nibabel as nib

    image = nib.Nifti1Image(data, np.diag([1.2, 1.0, 1.5, 1.0]) if affine is None else affine)
    return image


def test_translate_nifti_volume(client, tmp_path):
    import nibabel as nib

    slices = [phantom_slice(40, 48, seed=i).T for i in range(6)]
    data = np.stack(slices, axis=-1).astype(np.float32)  # (48, 40, 6): 6 axial slices
    data[..., 0] = 0  # a blank slice at the end of the volume
    path = tmp_path / "head scan.nii.gz"
    nib.save(nifti_bytes(data), path)
    result = client.predict(handle_file(str(path)), "t1_to_t2", "axial", api_name="/volume")
    assert plain(result)
    nifti, report = result
    assert os.path.basename(nifti) == "head_scan_t2w-from-t1w.nii.gz"
    out = nib.load(nifti)
    assert out.shape == data.shape
    assert np.allclose(out.affine, np.diag([1.2, 1.0, 1.5, 1.0]))
    values = out.get_fdata()
    assert np.isfinite(values).all() and values.min() >= 0 and values.max() <= 1
    assert not values[..., 0].any() and values[..., 3].std() > 0
    assert report["plane"] == "axial" and report["slices"] == 6 and report["translated_slices"] == 5
    assert report["shape"] == [48, 40, 6] and report["direction"] == "t1_to_t2"
    assert 0 < report["mean_cycle_error"] < 1 and report["verdict"] in ("typical", "unusual", "likely wrong input")
    assert report["frame"] is None


def test_a_volume_framed_wide_is_translated_within_one_closer_frame(client, tmp_path):
    import nibabel as nib

    import app

    slices = [np.pad(phantom_slice(60, 50, seed=i), 90).T for i in range(3)]  # (230, 240) each, much air
    data = np.stack(slices, axis=-1).astype(np.float32)
    path = tmp_path / "wide.nii.gz"
    nib.save(nifti_bytes(data), path)
    nifti, report = client.predict(handle_file(str(path)), "t2_to_t1", "axial", api_name="/volume")
    frame = report["frame"]
    assert frame and 0 < frame["top"] < 90 < frame["bottom"] and 0 < frame["left"] < 90 < frame["right"]
    values = nib.load(nifti).get_fdata()
    assert values.shape == data.shape and values[: frame["top"]].max() == 0 and values[frame["bottom"]:].max() == 0
    assert values[frame["top"]:frame["bottom"], frame["left"]:frame["right"]].std() > 0
    assert "fills little of these slices" in app.report_markdown(report)


def test_a_thick_slice_volume_translates_in_every_plane(client, tmp_path):
    """12 axial slices 5 mm apart, 0.8 mm pixels: every plane translates (on 1 mm pixels for the model)
    and comes back with the input's shape, affine and header."""
    import nibabel as nib

    data = np.stack([phantom_slice(72, 64, seed=i).T for i in range(12)], axis=-1).astype(np.float32)
    affine = np.diag([0.8, 0.8, 5.0, 1.0])
    nib.save(nib.Nifti1Image(data, affine), tmp_path / "thick.nii.gz")
    for plane in ("axial", "coronal", "sagittal"):
        nifti, report = client.predict(handle_file(str(tmp_path / "thick.nii.gz")), "t1_to_t2", plane,
                                       api_name="/volume")
        out = nib.load(nifti)
        assert out.shape == data.shape and np.allclose(out.affine, affine), plane
        assert report["resampled"] and report["pixel_mm"][0] == pytest.approx(0.8 if plane == "axial" else 5.0)
        assert report["translated_slices"] > 0 and np.isfinite(out.get_fdata()).all()
        assert out.get_fdata().std() > 0


def test_the_example_volume_translates_in_every_plane(client):
    """The shipped example has 28 slices 3 mm apart of 0.91 mm pixels: every plane is resampled to 1 mm."""
    import nibabel as nib

    import app

    example = app.example_volumes()[0]
    source = nib.load(example)
    for plane in ("axial", "coronal", "sagittal"):
        nifti, report = client.predict(handle_file(example), "t1_to_t2", plane, api_name="/volume")
        out = nib.load(nifti)
        assert out.shape == source.shape and np.allclose(out.affine, source.affine), plane
        assert report["translated_slices"] > 0 and report["resampled"]
        assert report["contrast"]["looks_like"] in ("T1", "T2") and report["verdict"]


def test_volume_plane_comes_from_the_header(client, tmp_path):
    """The same head stored (R, A, S) and (S, R, A): the axial plane is the same either way."""
    import nibabel as nib

    ras = np.stack([phantom_slice(40, 48, seed=i).T for i in range(5)], axis=-1).astype(np.float32)  # (48, 40, 5)
    sra = np.transpose(ras, (2, 0, 1))  # (5, 48, 40)
    permute = np.array([[0, 1, 0, 0], [0, 0, 1, 0], [1, 0, 0, 0], [0, 0, 0, 1]], float)
    nib.save(nib.Nifti1Image(ras, np.eye(4)), tmp_path / "ras.nii.gz")
    nib.save(nib.Nifti1Image(sra, permute), tmp_path / "sra.nii.gz")
    a, report_a = client.predict(handle_file(str(tmp_path / "ras.nii.gz")), "t2_to_t1", "axial", api_name="/volume")
    b, report_b = client.predict(handle_file(str(tmp_path / "sra.nii.gz")), "t2_to_t1", "axial", api_name="/volume")
    assert report_a["slices"] == report_b["slices"] == 5
    out_a, out_b = nib.load(a), nib.load(b)
    assert out_b.shape == sra.shape and np.allclose(out_b.affine, permute)
    assert np.allclose(np.transpose(out_a.get_fdata(), (2, 0, 1)), out_b.get_fdata(), atol=1e-5)
    with pytest.raises(Exception, match="coronal slices of the volume sra.nii.gz are 5x48"):
        client.predict(handle_file(str(tmp_path / "sra.nii.gz")), "t2_to_t1", "coronal", api_name="/volume")


BAD = {
    "corrupt.png": (b"\x89PNG\r\n\x1a\n" + bytes(100), "not a readable PNG, JPEG or TIFF"),
    "text.png": (b"hello, this is not an image", "not a readable PNG, JPEG or TIFF"),
}


@pytest.mark.parametrize("name", sorted(BAD))
def test_bad_files(client, tmp_path, name):
    content, message = BAD[name]
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(Exception, match=message):
        client.predict(handle_file(str(path)), api_name="/t1_to_t2")


@pytest.mark.parametrize("array, message", [
    (np.full((64, 64), 128, np.uint8), "constant"),
    (np.zeros((20, 64), np.uint8) + np.arange(64, dtype=np.uint8), "too small"),
    (np.tile(np.arange(2100, dtype=np.uint16) % 255, (40, 1)).astype(np.uint8), "too large"),
])
def test_bad_images(client, tmp_path, array, message):
    path = write_png(tmp_path / "bad.png", array)
    with pytest.raises(Exception, match=message):
        client.predict(handle_file(path), api_name="/t2_to_t1")


def test_bad_volumes(client, tmp_path):
    import nibabel as nib

    data = np.random.default_rng(0).uniform(0, 1, (40, 40, 4)).astype(np.float32)
    data[3, 3, 1] = np.nan
    nib.save(nifti_bytes(data), tmp_path / "nan.nii")
    with pytest.raises(Exception, match="NaN"):
        client.predict(handle_file(str(tmp_path / "nan.nii")), "t1_to_t2", "axial", api_name="/volume")
    big = nib.Nifti1Image(np.zeros((40, 40, 513), np.uint8), np.eye(4))
    nib.save(big, tmp_path / "big.nii.gz")
    with pytest.raises(Exception, match="big.nii.gz has 513 axial slices; at most 512"):
        client.predict(handle_file(str(tmp_path / "big.nii.gz")), "t1_to_t2", "axial", api_name="/volume")
    (tmp_path / "broken.nii.gz").write_bytes(gzip.compress(b"not nifti at all") [:20])
    with pytest.raises(Exception, match="not a readable NIfTI"):
        client.predict(handle_file(str(tmp_path / "broken.nii.gz")), "t1_to_t2", "axial", api_name="/volume")
    with pytest.raises(Exception, match="plane must be one of axial, coronal, sagittal, got 'oblique'"):
        client.predict(handle_file(str(tmp_path / "big.nii.gz")), "t1_to_t2", "oblique", api_name="/volume")


def test_still_serving_after_bad_input(client, tmp_path, app_process):
    # Its own bad input first, so that the test does not rest on which tests ran before it.
    bad = tmp_path / "text.png"
    bad.write_bytes(BAD["text.png"][0])
    with pytest.raises(Exception, match=BAD["text.png"][1]):
        client.predict(handle_file(str(bad)), api_name="/t1_to_t2")
    path = write_png(tmp_path / "ok.png", phantom_slice())
    translated = client.predict(handle_file(path), api_name="/t1_to_t2")[1]
    assert os.path.getsize(translated) > 0
    # Expected input errors are one log line each, with no traceback.
    log = output(app_process[0])
    assert "refused input: text.png is not a readable PNG, JPEG or TIFF image" in log
    assert "Traceback" not in log


def test_concurrent_clients(app_url, tmp_path):
    """8 clients x 5 requests, each answered with the image of its own size."""
    def worker(k):
        local = Client(app_url, verbose=False)
        sizes = []
        for j in range(5):
            h, w = 40 + 4 * k, 40 + 4 * j
            path = write_png(tmp_path / f"c{k}_{j}.png", phantom_slice(h, w, seed=k * 10 + j))
            api = "/t1_to_t2" if (k + j) % 2 else "/t2_to_t1"
            with Image.open(local.predict(handle_file(path), api_name=api)[1]) as image:
                sizes.append(image.size == (w, h))
        return sizes

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        results = list(pool.map(worker, range(8)))
    assert all(all(r) and len(r) == 5 for r in results)


def test_unloadable_model_falls_back_or_exits_cleanly():
    from cyclegan.hub import default_model_dir

    proc, url = start_app("--model", "nobody/does-not-exist")
    try:
        if (default_model_dir() / "config.json").is_file():
            assert url, "the app must fall back to the default model"
            page = urllib.request.urlopen(url, timeout=10).read().decode()
            assert "Could not load the model" in page
        else:
            assert url is None and proc.returncode == 2
            assert "no default model is shipped" in output(proc)
    finally:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(timeout=30)


def test_about_shows_quality_tables_and_training_data(tiny_translator, monkeypatch):
    import app

    card = {"metrics": {"holdout_t1_to_t2_ssim": 0.98, "holdout_t1_to_t2_psnr": 29.2, "real_t2_to_t1_ssim": 0.7},
            "training": {"data_config": {"datasets": ["/data/mri-t1t2-unpaired", "../data/real-t1t2"]}}}
    monkeypatch.setattr(tiny_translator, "card", card)
    text = app.TranslationApp(tiny_translator).about()
    assert "| T1 → T2 | 0.980 | 29.2 dB |" in text and "holdout_t1_to_t2_ssim" not in text
    assert "Held-out real patients" in text
    assert "`nitishpandey04/MRI-Unpaired-T1-and-T2-Images`" in text and "`real-t1t2`: real T1-weighted" in text
    assert "CC-BY" in text
    from cyclegan import __version__

    assert f"mri-cyclegan {__version__}" in text and "### The model" in text


def test_about_says_what_the_last_training_run_did(tiny_translator, monkeypatch):
    import app
    from cyclegan.config import TrainConfig

    monkeypatch.setattr(tiny_translator, "card", {"training": {"epochs_done": 1, "backend": "jax"},
                                                  "train_config": TrainConfig(refine_steps=2000)})
    text = app.TranslationApp(tiny_translator).about()
    assert "its last training run: 1 epoch, then 2000 steps fitting its refiners (jax)." in text
    monkeypatch.setattr(tiny_translator, "card", {"training": {"epochs_done": 6}})
    assert "its last training run: 6 epochs." in app.TranslationApp(tiny_translator).about()


def test_about_credits_the_examples_it_shows(tiny_translator, monkeypatch, tmp_path):
    """The examples are CC-BY scans: About names their source and what to cite; without examples it
    says nothing of them."""
    import app

    text = app.TranslationApp(tiny_translator).about()
    assert app.example_files("t1_to_t2") and "### The examples" in text
    assert "open_ms" in text and "CC-BY" in text and "Neuroinformatics 2016" in text and "2017" in text
    monkeypatch.setattr(app, "EXAMPLES", tmp_path)  # an app without examples
    assert "### The examples" not in app.TranslationApp(tiny_translator).about()
