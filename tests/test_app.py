"""The Gradio app end to end: gradio_client against the app on loopback."""

import concurrent.futures
import gzip
import os
import urllib.request

import numpy as np
import pytest
from PIL import Image

from conftest import output, phantom_slice, start_app

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


@pytest.mark.parametrize("api", ["/t1_to_t2", "/t2_to_t1"])
def test_translate_8_bit(client, tmp_path, api):
    path = write_png(tmp_path / "in.png", phantom_slice(181, 217))
    translated, recon, heat, downloads = client.predict(handle_file(path), api_name=api)
    with Image.open(translated) as image:
        assert image.format == "PNG" and image.mode == "L" and image.size == (217, 181)
    with Image.open(recon) as image:
        assert image.size == (217, 181)
    with Image.open(heat) as image:
        assert image.mode == "RGB" and image.size == (217, 181)
    # 8-bit input: the translation PNG itself is the lossless download.
    assert not downloads


def test_translate_16_bit(client, tmp_path):
    path = write_png(tmp_path / "in16.png", phantom_slice(96, 80).astype(np.uint16) * 257)
    translated, _, _, downloads = client.predict(handle_file(path), api_name="/t1_to_t2")
    suffixes = sorted(os.path.splitext(d)[1] for d in downloads)
    assert suffixes == [".png", ".tiff"]
    for d in downloads:
        with Image.open(d) as image:
            assert image.mode.startswith("I;16") or image.mode == "I", image.mode
            assert image.size == (80, 96)
            assert np.asarray(image).max() > 255  # real 16-bit range


def nifti_bytes(data, affine=None):
    import nibabel as nib

    image = nib.Nifti1Image(data, np.diag([1.2, 1.0, 1.5, 1.0]) if affine is None else affine)
    return image


def test_translate_nifti_volume(client, tmp_path):
    import nibabel as nib

    slices = [phantom_slice(40, 48, seed=i).T for i in range(6)]
    data = np.stack(slices, axis=-1).astype(np.float32)  # (48, 40, 6): 6 axial slices
    data[..., 0] = 0  # a blank slice at the end of the volume
    path = tmp_path / "vol.nii.gz"
    nib.save(nifti_bytes(data), path)
    nifti, slider, view, *_ = client.predict(handle_file(str(path)), "t1_to_t2", 2, api_name="/volume")
    out = nib.load(nifti)
    assert out.shape == data.shape
    assert np.allclose(out.affine, np.diag([1.2, 1.0, 1.5, 1.0]))
    values = out.get_fdata()
    assert np.isfinite(values).all() and values.min() >= 0 and values.max() <= 1
    assert not values[..., 0].any() and values[..., 3].std() > 0
    assert slider["value"] == 3 and slider["maximum"] == 5
    with Image.open(view) as image:
        assert image.size == (2 * 48, 40)


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
        client.predict(handle_file(str(tmp_path / "nan.nii")), "t1_to_t2", 2, api_name="/volume")
    big = nib.Nifti1Image(np.zeros((40, 40, 513), np.uint8), np.eye(4))
    nib.save(big, tmp_path / "big.nii.gz")
    with pytest.raises(Exception, match="at most 512"):
        client.predict(handle_file(str(tmp_path / "big.nii.gz")), "t1_to_t2", 2, api_name="/volume")
    (tmp_path / "broken.nii.gz").write_bytes(gzip.compress(b"not nifti at all") [:20])
    with pytest.raises(Exception, match="not a readable NIfTI"):
        client.predict(handle_file(str(tmp_path / "broken.nii.gz")), "t1_to_t2", 2, api_name="/volume")


def test_still_serving_after_bad_input(client, tmp_path):
    path = write_png(tmp_path / "ok.png", phantom_slice())
    translated = client.predict(handle_file(path), api_name="/t1_to_t2")[0]
    assert os.path.getsize(translated) > 0


def test_concurrent_clients(app_url, tmp_path):
    """8 clients x 5 requests, each answered with the image of its own size."""
    def worker(k):
        local = Client(app_url, verbose=False)
        sizes = []
        for j in range(5):
            h, w = 40 + 4 * k, 40 + 4 * j
            path = write_png(tmp_path / f"c{k}_{j}.png", phantom_slice(h, w, seed=k * 10 + j))
            api = "/t1_to_t2" if (k + j) % 2 else "/t2_to_t1"
            with Image.open(local.predict(handle_file(path), api_name=api)[0]) as image:
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
