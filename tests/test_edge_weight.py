"""The edge term: the paired L1 term weighted up within a few pixels of the head's or brain's edge."""

import keras
import numpy as np
import pytest

from cyclegan.config import TrainConfig
from cyclegan.masks import EDGE_BAND
from cyclegan.losses import edge_band, l1_loss
from cyclegan.training import CycleGAN


def as_np(x):
    return keras.ops.convert_to_numpy(x)


def square(size=32, low=8, high=24, inside=0.5):
    image = -np.ones((1, size, size, 1), np.float32)
    image[0, low:high, low:high] = inside
    return image


def test_edge_band_lies_on_both_sides_of_the_edge_and_nowhere_else():
    band = as_np(edge_band(square()))[0, ..., 0]
    # Chebyshev distance outside the square (rows and columns 8-23), and pixels to its edge inside.
    ys, xs = np.mgrid[:32, :32]
    outside = np.maximum.reduce([8 - ys, ys - 23, 8 - xs, xs - 23])
    inside = -outside  # 0 on the square's border pixels
    expected = ((outside >= 1) & (outside <= EDGE_BAND)) | ((inside >= 0) & (inside < EDGE_BAND))
    assert set(np.unique(band)) == {0.0, 1.0}
    np.testing.assert_array_equal(band.astype(bool), expected)
    # Dark tissue above the air's level is foreground; a speck of noise in the air is not an edge.
    dim = square(inside=-0.8)
    dim[0, 2, 28] = 0.9
    np.testing.assert_array_equal(as_np(edge_band(dim))[0, ..., 0].astype(bool), expected)
    # An image without an edge (all air, all tissue) has no band.
    assert as_np(edge_band(-np.ones((1, 16, 16, 1), np.float32))).max() == 0.0
    assert as_np(edge_band(np.zeros((1, 16, 16, 1), np.float32))).max() == 0.0


def test_l1_loss_weighs_pixels_on_top_of_the_plain_mean():
    rng = np.random.default_rng(0)
    a, b = (rng.uniform(-1, 1, (2, 8, 8, 1)).astype("float32") for _ in range(2))
    weights = np.ones_like(a)
    assert float(l1_loss(a, b, pixel_weights=weights)) == pytest.approx(float(l1_loss(a, b)), rel=1e-6)
    weights[0, :4] = 3.0
    diff = np.abs(a - b)
    assert float(l1_loss(a, b, pixel_weights=weights)) == pytest.approx((diff * weights).mean(), rel=1e-5)
    assert float(l1_loss(a, b, np.asarray([1.0, 0.0], "float32"), weights)) == pytest.approx(
        (diff * weights)[0].mean() / 2, rel=1e-5)


def test_edge_weight_weighs_the_paired_term_in_the_targets_edge_band(tiny_config):
    rng = np.random.default_rng(3)
    real_t1 = np.concatenate([square(inside=0.2), square(low=4, high=20, inside=0.6)])
    real_t2 = np.concatenate([square(inside=0.9), square(low=4, high=20, inside=-0.2)])
    real_t1 += rng.normal(0, 0.05, real_t1.shape).astype("float32") * (real_t1 > -1)
    plain = CycleGAN(tiny_config, TrainConfig(epochs=1, decay_epochs=0, paired_weight=2.0))
    edged = CycleGAN(tiny_config, TrainConfig(epochs=1, decay_epochs=0, paired_weight=2.0, edge_weight=4.0))
    edged.t1_to_t2.set_weights(plain.t1_to_t2.get_weights())
    edged.t2_to_t1.set_weights(plain.t2_to_t1.get_weights())
    _, base, (fake_t1, fake_t2) = plain._generator_losses(real_t1, real_t2, real_t1, real_t2)
    _, logs, _ = edged._generator_losses(real_t1, real_t2, real_t1, real_t2)
    for fake, real, key in ((as_np(fake_t2), real_t2, "paired_t2"), (as_np(fake_t1), real_t1, "paired_t1")):
        band = as_np(edge_band(real))
        diff = np.abs(fake - real)
        assert float(base[key]) == pytest.approx(2.0 * diff.mean(), rel=1e-4)
        assert float(logs[key]) == pytest.approx(2.0 * (diff * (1 + 4.0 * band)).mean(), rel=1e-4)
        assert float(logs[key]) > 1.5 * float(base[key])
    # The other terms are untouched.
    assert float(logs["cycle_t1"]) == pytest.approx(float(base["cycle_t1"]), rel=1e-5)
