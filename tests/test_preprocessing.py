import numpy as np
import pytest
from PIL import Image

from cyclegan.errors import InputImageError
from cyclegan.preprocessing import (
    MAX_SIDE,
    MIN_SIDE,
    PAD_MULTIPLE,
    finish,
    pad_to_multiple,
    prepare,
    to_grayscale,
)

from conftest import phantom_slice


@pytest.mark.parametrize(
    "dtype, scale",
    [(np.uint8, 1), (np.uint16, 257), (np.int32, 1000), (np.float16, 1 / 255),
     (np.float32, 1 / 255), (np.float64, 3.7)],
)
def test_dtypes_give_the_same_scaled_image(dtype, scale):
    base = phantom_slice()
    reference = prepare(base).array
    converted = prepare((base.astype(np.float64) * scale).astype(dtype)).array
    assert converted.dtype == np.float32
    assert np.abs(converted - reference).max() < 0.02


def test_bool_image():
    image = np.zeros((40, 40), bool)
    image[10:30, 10:30] = True
    out = prepare(image).array
    assert out.min() == -1.0 and out.max() == 1.0


def test_scaling_is_robust_to_outliers():
    base = phantom_slice().astype(np.float32)
    spiked = base.copy()
    spiked[0, 0] = 1e6  # one hot pixel must not squash the rest
    assert np.abs(prepare(spiked).array[1:, 1:] - prepare(base).array[1:, 1:]).max() < 0.05


@pytest.mark.parametrize("channels", [1, 3, 4])
def test_channel_layouts(channels):
    gray = phantom_slice()
    stacked = np.repeat(gray[..., None], channels, axis=-1)
    if channels == 4:
        stacked[..., 3] = 255
    assert np.allclose(to_grayscale(stacked), gray, atol=1e-6)


@pytest.mark.parametrize("mode", ["L", "RGB", "RGBA", "I;16", "I", "F", "P", "LA"])
def test_pil_modes(mode):
    gray = phantom_slice()
    if mode == "I;16":
        image = Image.fromarray(gray.astype(np.uint16) * 257)
    else:
        image = Image.fromarray(gray).convert(mode)
    out = to_grayscale(image)
    assert out.shape == gray.shape
    assert np.corrcoef(out.ravel(), gray.ravel())[0, 1] > 0.99


@pytest.mark.parametrize("shape", [(33, 47), (181, 217), (64, 64), (32, 2048)])
def test_pad_and_crop_back(shape):
    rng = np.random.default_rng(1)
    image = rng.integers(0, 255, shape).astype(np.uint8)
    prepared = prepare(image)
    assert prepared.array.shape[0] % PAD_MULTIPLE == 0 and prepared.array.shape[1] % PAD_MULTIPLE == 0
    assert (prepared.height, prepared.width) == shape
    restored = finish(prepared.array[..., None], prepared.height, prepared.width)
    assert restored.shape == shape and restored.dtype == np.float32
    assert 0.0 <= restored.min() and restored.max() <= 1.0


def test_pad_value_and_noop():
    a = np.zeros((32, 32), np.float32)
    assert pad_to_multiple(a, 16) is a
    padded = pad_to_multiple(np.zeros((33, 32), np.float32), 16)
    assert padded.shape == (48, 32) and padded[40, 0] == -1.0


@pytest.mark.parametrize(
    "image, message",
    [
        (np.zeros((0, 0)), "empty"),
        (np.zeros((64, 0)), "empty"),
        (np.full((64, 64), 7, np.uint8), "constant"),
        (np.full((64, 64), np.nan), "NaN"),
        (np.where(np.eye(64) > 0, np.inf, 1.0), "NaN or infinite"),
        (np.ones((MIN_SIDE - 1, 64)), "too small"),
        (np.ones((MAX_SIDE + 1, 64)), "too large"),
        (np.ones((64,)), "shape"),
        (np.ones((2, 64, 64, 1)), "shape"),
        (np.ones((64, 64, 2)), "shape"),
        (np.array([["a"] * 64] * 64), "dtype"),
        (np.ones((64, 64), complex), "dtype"),
        ([[1, 2], [3]], "cannot read"),
    ],
)
def test_bad_input_gives_clear_error(image, message):
    with pytest.raises(InputImageError, match=message):
        prepare(image)


def test_huge_values_stay_finite():
    image = phantom_slice().astype(np.float64) * 1e300
    out = prepare(image).array
    assert np.all(np.isfinite(out)) and out.max() == 1.0
