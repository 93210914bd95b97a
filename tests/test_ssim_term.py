"""The paired SSIM term: 1 - SSIM of each translation and its aligned partner, beside the paired L1 term."""

import keras
import numpy as np
import pytest
from skimage.metrics import structural_similarity

from cyclegan.config import TrainConfig
from cyclegan.losses import ssim_loss, ssim_map
from cyclegan.training import CycleGAN


def as_np(x):
    return keras.ops.convert_to_numpy(x)


def noisy_pair(seed=0, shape=(2, 40, 36, 1), noise=0.3):
    rng = np.random.default_rng(seed)
    a = rng.uniform(-1, 1, shape).astype("float32")
    b = np.clip(a + rng.normal(0, noise, shape), -1, 1).astype("float32")
    return a, b


def test_ssim_map_mean_is_what_the_evaluation_measures():
    a, b = noisy_pair()
    scores = as_np(ssim_map(a, b))
    assert scores.shape == (2, 34, 30, 1)
    for i in range(2):
        expected = structural_similarity((a[i, ..., 0] + 1) / 2, (b[i, ..., 0] + 1) / 2, data_range=1.0)
        assert scores[i].mean() == pytest.approx(expected, abs=1e-5)
    same = as_np(ssim_map(a, a))
    np.testing.assert_allclose(same, 1.0, atol=1e-5)


def test_ssim_loss_counts_the_foreground_and_aligned_images_only():
    a, b = noisy_pair(1)
    # All foreground (every pixel above the air's level): the loss is 1 - the mean SSIM.
    a, b = np.clip(a, -0.5, 1), np.clip(b, -0.5, 1)
    full = 1.0 - as_np(ssim_map(a, b)).mean()
    assert float(ssim_loss(a, b)) == pytest.approx(full, rel=1e-5)
    # Weights: an index that is not a pair adds nothing; the batch mean still divides by 2.
    per_image = 1.0 - as_np(ssim_map(a, b)).reshape(2, -1).mean(axis=1)
    assert float(ssim_loss(a, b, np.asarray([1.0, 0.0], "float32"))) == pytest.approx(per_image[0] / 2, rel=1e-5)
    # Air far from the target's head counts nothing, however the translation paints it.
    target = -np.ones((1, 48, 48, 1), np.float32)
    target[0, 8:24, 8:24] = np.linspace(-0.2, 0.8, 16)[None, :, None]
    prediction = target.copy()
    assert float(ssim_loss(prediction, target)) == pytest.approx(0.0, abs=1e-5)
    prediction[0, 36:, 36:] = np.random.default_rng(2).uniform(-1, 1, (12, 12, 1))
    assert float(ssim_loss(prediction, target)) == pytest.approx(0.0, abs=1e-5)
    prediction[0, 10:20, 10:20] = 0.3  # wrong inside the head
    assert float(ssim_loss(prediction, target)) > 0.05
    # A crop of air only has no foreground: no term, no NaN.
    air = -np.ones((1, 16, 16, 1), np.float32)
    assert float(ssim_loss(air, air)) == 0.0


def test_paired_ssim_weight_adds_the_term_to_the_generator_loss(tiny_config):
    rng = np.random.default_rng(3)
    real_t1 = rng.uniform(-0.5, 1, (2, 32, 32, 1)).astype("float32")
    real_t2 = rng.uniform(-0.5, 1, (2, 32, 32, 1)).astype("float32")
    plain = CycleGAN(tiny_config, TrainConfig(epochs=1, decay_epochs=0, paired_weight=2.0))
    with_ssim = CycleGAN(tiny_config, TrainConfig(epochs=1, decay_epochs=0, paired_weight=2.0,
                                                  paired_ssim_weight=3.0))
    with_ssim.t1_to_t2.set_weights(plain.t1_to_t2.get_weights())
    with_ssim.t2_to_t1.set_weights(plain.t2_to_t1.get_weights())
    aligned = np.asarray([1.0, 0.0], "float32")
    _, base, _ = plain._generator_losses(real_t1, real_t2, real_t1, real_t2, aligned)
    total, logs, (fake_t1, fake_t2) = with_ssim._generator_losses(real_t1, real_t2, real_t1, real_t2, aligned)
    assert float(base["ssim_t1"]) == 0.0 and float(base["ssim_t2"]) == 0.0
    for fake, real, key in ((fake_t1, real_t1, "ssim_t1"), (fake_t2, real_t2, "ssim_t2")):
        expected = 3.0 * float(ssim_loss(fake, real, aligned))
        assert expected > 0
        assert float(logs[key]) == pytest.approx(expected, rel=1e-5)
    assert float(logs["paired_t1"]) == pytest.approx(float(base["paired_t1"]), rel=1e-5)
    assert float(logs["cycle_t1"]) == pytest.approx(float(base["cycle_t1"]), rel=1e-5)
    # The generators' loss is every term, the SSIM term included.
    assert float(total) == pytest.approx(sum(float(v) for k, v in logs.items() if k != "gen_loss"), rel=1e-5)
