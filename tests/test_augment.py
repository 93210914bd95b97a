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
