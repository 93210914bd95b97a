"""The augmentation pipeline: one object per augmentation, composed by level, read from the config."""

import keras
import numpy as np
import pytest

from cyclegan.augment import (AUGMENT_DRAWS, AUGMENTATIONS, LEVELS, Blur, Contrast, CropAndFlip, DiffAugment,
                              Pipeline, SkullStrip, Zoom, crop_and_flip, diff_augment, refiner_examples)
from cyclegan.config import TrainConfig
from test_data import synthetic_head


def test_every_augmentation_is_a_config_field_with_a_level_and_a_description():
    fields = TrainConfig.__dataclass_fields__
    for cls in AUGMENTATIONS:
        assert cls.field in fields and fields[cls.field].default == 0.0, cls
        assert cls.level in LEVELS, cls
        assert "25%" in cls(0.25).describe(), cls
        with pytest.raises(ValueError, match=cls.field):
            cls(1.5)
    assert len({cls.field for cls in AUGMENTATIONS}) == len(AUGMENTATIONS)


def test_the_pipeline_holds_what_the_config_turns_on_in_level_order():
    pipeline = Pipeline.of(TrainConfig(contrast=0.2, zoom=0.5, diff_augment=0.3, skull_strip=0.1, paired_weight=1.0),
                           image_size=64)
    assert [type(a) for a in pipeline] == [SkullStrip, Zoom, Contrast, DiffAugment]
    assert pipeline.fractions["blur"] == 0.0 and pipeline.fractions["zoom"] == 0.5
    assert [type(a) for a in Pipeline.of(TrainConfig())] == []
    with pytest.raises(ValueError, match="no augmentation is called sharpen"):
        Pipeline({"sharpen": 0.5})
    with pytest.raises(ValueError, match="level must be one of"):
        pipeline.apply("discriminator", np.random.default_rng(0), np.zeros((8, 8)))
    with pytest.raises(ValueError, match="no crop size"):
        Pipeline.of(TrainConfig()).crops(np.random.default_rng(0), np.zeros((8, 8)))


def test_levels_apply_in_order_and_always_at_fraction_one():
    image, _ = synthetic_head()
    rng = np.random.default_rng(3)
    on = Pipeline({"zoom": 1.0, "blur": 1.0})
    (changed,) = on.apply("image", rng, image)
    assert changed.shape == image.shape and not np.array_equal(changed, image)
    # Zoom then blur, each its own draw, as the objects do one after the other.
    rng_a, rng_b = np.random.default_rng(3), np.random.default_rng(3)
    (expected,) = Blur(1.0)(rng_b, Zoom(1.0)(rng_b, (image,)))
    np.testing.assert_array_equal(on.apply("image", rng_a, image)[0], expected)
    # A level with no augmentation turned on hands its images back as they are.
    a, b = on.apply("pair", rng, image, -image)
    assert a is image


def test_crops_cut_target_and_input_alike_and_only_the_input_changes():
    image, _ = synthetic_head()
    pipeline = Pipeline({"contrast": 1.0}, image_size=64)
    crop, source, flip, offset = pipeline.crops(np.random.default_rng(1), image)
    reference, flip_ref, offset_ref = crop_and_flip(image, 64, np.random.default_rng(1))
    np.testing.assert_array_equal(crop, reference)
    assert (flip, offset) == (flip_ref, offset_ref)
    assert source.shape == crop.shape and not np.array_equal(source, crop)
    assert np.array_equal(source <= -1.0, crop <= -1.0)  # the same crop: background where the target's is
    again = CropAndFlip(64)(np.random.default_rng(9), image, flip, offset)[0]
    np.testing.assert_array_equal(again, crop)  # a partner image cut alike
    with pytest.raises(ValueError, match="crop size"):
        CropAndFlip(0)


def test_diff_augment_is_the_discriminator_level_of_the_pipeline():
    images = np.random.default_rng(0).uniform(-0.9, 0.9, (4, 16, 16, 1)).astype("float32")
    draws = np.random.default_rng(1).uniform(size=(4, AUGMENT_DRAWS)).astype("float32")
    pipeline = Pipeline.of(TrainConfig(diff_augment=0.6))
    out = keras.ops.convert_to_numpy(pipeline.discriminator(images, draws))
    np.testing.assert_array_equal(out, keras.ops.convert_to_numpy(diff_augment(images, draws, 0.6)))
    assert not np.array_equal(out, images)
    np.testing.assert_array_equal(Pipeline.of(TrainConfig()).discriminator(images, draws), images)
    with pytest.raises(TypeError, match="batch"):
        DiffAugment(0.5)(np.random.default_rng(0), (images[0],))


def test_the_refiner_examples_follow_the_pipeline_at_full_strength():
    head_t1, _ = synthetic_head()
    pairs = [(head_t1, -head_t1), (np.full((40, 40), -1.0), np.full((40, 40), -1.0))]
    pipeline = Pipeline.of(TrainConfig(skull_strip=0.3, contrast=0.25, zoom=0.5, diff_augment=0.2,
                                        paired_weight=1.0))
    examples = pipeline.refiner_examples(pairs, seed=4)
    expected = refiner_examples(pairs, [SkullStrip(1.0), Contrast(1.0)], seed=4)
    assert len(examples) == len(expected) == 5  # 2 as given + 1 stripped, then 2 with another contrast
    for got, want in zip(examples, expected):
        for a, b in zip(got, want):
            np.testing.assert_array_equal(a, b)
    # Image-level augmentations (zoom) and the discriminators' are not the refiner's.
    assert len(Pipeline.of(TrainConfig(zoom=1.0, diff_augment=0.5)).refiner_examples(pairs)) == 2


def test_a_bias_field_is_smooth_bounded_and_only_on_the_input():
    from cyclegan.augment import BIAS_STRENGTH, BiasField, bias_field, biased

    rng = np.random.default_rng(2)
    field = bias_field((64, 80), 0.3, rng)
    assert field.shape == (64, 80) and field.min() >= 0.7 - 1e-9 and field.max() <= 1.3 + 1e-9
    assert max(field.max() - 1.0, 1.0 - field.min()) > 0.2  # it reaches its strength on one side
    assert np.abs(np.diff(field, axis=1)).max() < 0.05  # smooth: no pixel-scale change
    image, _ = synthetic_head()
    out = biased(image, bias_field(image.shape, 0.4, rng))
    assert out.shape == image.shape and out.dtype == np.float32
    assert np.all(out[image <= -1.0] <= -1.0)  # the air stays black
    assert BiasField.level == "input" and BIAS_STRENGTH[1] < 1.0
    with pytest.raises(ValueError, match="strength"):
        bias_field((8, 8), 1.0, rng)


def test_rician_noise_lifts_the_air_and_keeps_the_anatomy():
    from cyclegan.augment import rician_noise

    image, _ = synthetic_head()
    noisy = rician_noise(image, 0.04, np.random.default_rng(0))
    air = image <= -1.0
    assert noisy[air].mean() > -0.95  # a noise floor, as magnitude images have
    assert np.corrcoef(noisy.ravel(), image.ravel())[0, 1] > 0.9
    assert not np.array_equal(noisy, rician_noise(image, 0.04, np.random.default_rng(1)))


def test_thick_slices_average_along_one_axis_only():
    from cyclegan.augment import THICKNESS, SliceThickness, thick

    stripes = np.full((30, 60), -1.0, np.float32)
    stripes[:, :40] = np.where(np.arange(40) % 2 == 0, 1.0, -1.0)  # vertical stripes beside background
    across = thick(stripes, 2, axis=1)  # across the stripes: they average out
    along = thick(stripes, 4, axis=0)  # along them: each stripe stays
    assert np.ptp(across[10:20, 10:30]) < 0.05
    np.testing.assert_allclose(along[10:20, :40], stripes[10:20, :40], atol=1e-6)
    blank = np.full((20, 20), -1.0, np.float32)
    assert thick(blank, 3, 0) is not None and np.all(thick(blank, 3, 0) == -1.0)  # nothing to change
    pair = (stripes, -stripes)
    a, b = SliceThickness(1.0).apply(np.random.default_rng(5), pair)
    assert a.shape == stripes.shape and not (np.array_equal(a, stripes) and np.array_equal(b, -stripes))
    assert THICKNESS[0] >= 2
    with pytest.raises(ValueError, match="thickness"):
        thick(stripes, 0, 0)


def test_site_augmentations_join_the_stream_from_their_config_fields():
    from cyclegan.data import Slice, TrainingStream

    image, _ = synthetic_head()
    t1, t2 = Slice("a_t1.png", "t1", image.astype(np.float32)), Slice("a_t2.png", "t2", (-image).astype(np.float32))
    config = TrainConfig(bias_field=1.0, noise=1.0, slice_thickness=1.0, paired_weight=1.0)
    stream = TrainingStream({"t1": [t1], "t2": [t2]}, 64, 2, 1, seed=0, pairs=[(t1, t2)],
                            **{cls.field: getattr(config, cls.field) for cls in AUGMENTATIONS})
    batch = stream[0]
    assert set(batch) >= {"t1_input", "t2_input"}
    assert not np.array_equal(batch["t1_input"], batch["t1"])  # the inputs carry the field and the noise
    assert batch["t1"][batch["t1"] > -1.0].size  # the targets stay images
    with pytest.raises(Exception, match="noise"):
        TrainConfig(noise=2.0)
