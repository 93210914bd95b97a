"""Property and fuzz tests: any input either translates or raises the library's own clear error."""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from PIL import Image

from cyclegan.errors import InputImageError
from cyclegan.preprocessing import prepare

from conftest import phantom_slice

DTYPES = [np.bool_, np.uint8, np.int8, np.uint16, np.int16, np.int32, np.int64, np.uint64,
          np.float16, np.float32, np.float64]

shapes = st.one_of(
    hnp.array_shapes(min_dims=2, max_dims=2, min_side=1, max_side=72),
    st.tuples(st.integers(1, 72), st.integers(1, 72), st.sampled_from([1, 2, 3, 4, 5])),
    hnp.array_shapes(min_dims=0, max_dims=5, min_side=0, max_side=4),
)


@st.composite
def arrays(draw):
    dtype = np.dtype(draw(st.sampled_from(DTYPES)))
    shape = draw(shapes)
    kind = draw(st.sampled_from(["random", "constant", "special", "huge"]))
    size = int(np.prod(shape)) if shape else 1
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    if kind == "constant" or size == 0:
        data = np.zeros(shape, dtype)
    elif dtype.kind == "f":
        data = rng.normal(0, 1e3 if kind != "huge" else 1e300, shape)
        if kind == "special":
            flat = data.reshape(-1)
            flat[rng.integers(0, size, max(1, size // 50))] = rng.choice([np.nan, np.inf, -np.inf])
        with np.errstate(over="ignore"):
            data = data.astype(dtype)
    elif dtype.kind == "b":
        data = rng.integers(0, 2, shape).astype(bool)
    else:
        info = np.iinfo(dtype)
        data = rng.integers(info.min, info.max, shape, dtype=dtype, endpoint=True)
    return data


def check_output(out, image):
    height, width = np.asarray(image).shape[:2]
    assert out.shape == (height, width) and out.dtype == np.float32
    assert np.isfinite(out).all() and out.min() >= 0.0 and out.max() <= 1.0


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(arrays())
def test_preprocessing_never_fails_otherwise(image):
    try:
        prepared = prepare(image)
    except InputImageError as err:
        assert str(err)
        return
    assert np.isfinite(prepared.array).all()
    assert prepared.array.min() >= -1.0 and prepared.array.max() <= 1.0


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                 HealthCheck.function_scoped_fixture])
@given(image=arrays(), direction=st.sampled_from(["t1_to_t2", "t2_to_t1"]))
def test_translator_either_translates_or_explains(tiny_translator, image, direction):
    try:
        out = tiny_translator.translate(image, direction)
    except InputImageError as err:
        assert str(err)
        return
    check_output(out, image)


# -- file fuzzing through the code the app calls ----------------------------------
@pytest.fixture(scope="module")
def app_logic(tiny_translator):
    import app

    return app.TranslationApp(tiny_translator)


def test_fuzzed_files_end_in_clear_errors(tiny_folder):
    """The fuzz benchmark, bounded: every damaged file ends in a translation or a clear error."""
    import json
    import subprocess
    import sys

    from conftest import ROOT

    proc = subprocess.run([sys.executable, "benchmarks/fuzz.py", "--cases", "12", "--seed", "1",
                           "--model", str(tiny_folder)], capture_output=True, text=True, cwd=ROOT, timeout=600)
    rows = {r["file_type"]: r for r in map(json.loads, (l for l in proc.stdout.splitlines() if l.startswith("{")))}
    assert set(rows) == {"png8", "png16", "jpeg", "tiff16", "nifti", "all"}, proc.stderr[-2000:]
    for name, row in rows.items():
        assert row["failures"] == 0, row
        if name != "all":
            assert row["cases"] == 2 * (12 + 3)
            assert row["refused_clearly"] >= 6, name  # truncated and empty files, both extensions
    assert proc.returncode == 0


def test_wrong_kind_of_file(app_logic, tmp_path):
    png = tmp_path / "image.nii.gz"
    Image.fromarray(phantom_slice()).save(png, format="PNG")
    with pytest.raises(InputImageError, match="not a readable NIfTI"):
        app_logic.translate_volume(str(png), "t1_to_t2", "axial")
    with pytest.raises(InputImageError, match="x.png: volumes must be NIfTI files"):
        app_logic.translate_volume(str(tmp_path / "x.png"), "t1_to_t2", "axial")
    with pytest.raises(InputImageError, match="plane must be one of axial, coronal, sagittal"):
        app_logic.translate_volume(str(png), "t1_to_t2", "oblique")
    with pytest.raises(InputImageError, match="direction"):
        app_logic.translate_volume(str(png), "t1_to_t3", "axial")
    with pytest.raises(InputImageError, match="no file"):
        app_logic.translate_file(None, "t1_to_t2")


def test_outputs_are_unique_files(app_logic, tmp_path):
    """Identical concurrent requests must not share output files (Gradio caches arrays by content)."""
    path = tmp_path / "same.png"
    Image.fromarray(phantom_slice()).save(path)
    first = app_logic.translate_file(str(path), "t1_to_t2")
    second = app_logic.translate_file(str(path), "t1_to_t2")
    for a, b in zip(first[:3], second[:3]):
        assert isinstance(a, str) and isinstance(b, str) and a != b
        assert open(a, "rb").read() == open(b, "rb").read()


def test_old_outputs_are_swept_at_most_once_per_interval(tmp_path):
    import os
    import time

    from cyclegan.files import OutputFolder

    outputs = OutputFolder(tmp_path, max_age_s=3600, clean_interval_s=60)
    old, young = tmp_path / "old.png", tmp_path / "young.png"
    for item in (old, young):
        item.write_bytes(b"x")
    old_folder = outputs.path("scan", ".png").parent  # outputs live in folders of their own
    (old_folder / "scan.png").write_bytes(b"x")
    hour_ago = time.time() - 2 * outputs.max_age_s
    for item in (old, old_folder):
        os.utime(item, (hour_ago, hour_ago))
    outputs.clean(force=True)
    assert not old.exists() and not old_folder.exists() and young.exists()
    # Within the interval a sweep is skipped (each one stats the whole folder) ...
    os.utime(young, (hour_ago, hour_ago))
    outputs.clean()
    assert young.exists()
    # ... and after it the next request sweeps again.
    outputs.last_clean = time.monotonic() - outputs.clean_interval_s - 1
    outputs.clean()
    assert not young.exists()
    # Every saved file has its own path, even for the same name and pixels.
    pixels = np.zeros((4, 4), np.uint8)
    first, second = outputs.save_pixels(pixels, "x"), outputs.save_pixels(pixels, "x")
    assert first != second and first.name == second.name == "x.png"
