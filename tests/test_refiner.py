"""The generators' optional refiner (``--refiner-width``) and the stage that fits it (``--refine-steps``)."""

import json
import logging

import keras
import numpy as np
import pytest

from conftest import ellipse_pairs, make_zip
from cyclegan.config import ModelConfig, TrainConfig, check_run, DataConfig
from cyclegan.errors import ConfigError
from cyclegan.models import build_generator, refiner_reach
from cyclegan.augment import Contrast, SkullStrip, refiner_examples
from cyclegan.training import CycleGAN, RefinerCrops, fit_refiners, refiner_parts
from test_data import synthetic_head
from test_train_command import main_in_process, make_subject_folder, tiny_args
from cyclegan.pipeline import init_generators as _init_generators
from train.cli import main


def numpy(x):
    return keras.ops.convert_to_numpy(x)


@pytest.mark.parametrize("layers", [3, 5])
def test_a_new_refiner_leaves_the_output_as_it_is_and_sees_only_its_neighbourhood(tiny_config, layers):
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (1, 40, 48, 1)).astype("float32")
    plain = build_generator(tiny_config, "t1_to_t2")
    refined = build_generator(tiny_config.replace(refiner_width=4, refiner_layers=layers), "t1_to_t2")
    assert [l.name for l in refined.layers if "refine" in l.name] == [
        "t1_to_t2_refine_concat", *(f"t1_to_t2_refine{i}_conv" for i in range(layers)),
        "t1_to_t2_refine_out_conv", "t1_to_t2_refine_add"]
    for layer in plain.layers:
        if layer.weights:
            refined.get_layer(layer.name).set_weights(layer.get_weights())
    np.testing.assert_array_equal(numpy(plain(x)), numpy(refined(x)))
    # Once its output convolution moves, the refiner changes the output, only near what changed:
    # with the rest of the generator's output held, a pixel of the input reaches layers + 1 px
    # around it (4 px, a 9x9 square, with 3 layers).
    out = refined.get_layer("t1_to_t2_refine_out_conv")
    kernel, bias = out.get_weights()
    out.set_weights([rng.normal(0, 0.1, kernel.shape).astype("float32"), bias])
    _, head = refiner_parts(refined)
    drawn = numpy(plain(x))
    poked = x.copy()
    poked[0, 20, 24, 0] += 1.0
    change = np.abs(numpy(head([poked, drawn])) - numpy(head([x, drawn])))[0, ..., 0]
    assert change[20, 24] > 0
    rows, cols = np.nonzero(change > 0)
    reach = (refiner_reach(layers) - 1) // 2
    assert reach == layers + 1
    assert rows.min() >= 20 - reach and rows.max() <= 20 + reach
    assert cols.min() >= 24 - reach and cols.max() <= 24 + reach
    assert rows.max() - rows.min() > 2 * reach - 2  # and it does reach that far


def test_a_refined_generator_round_trips_through_a_keras_file(tmp_path, tiny_config):
    model = build_generator(tiny_config.replace(refiner_width=3), "t2_to_t1")
    out = model.get_layer("t2_to_t1_refine_out_conv")
    out.set_weights([np.full_like(w, 0.05) for w in out.get_weights()])
    x = np.random.default_rng(1).uniform(-1, 1, (1, 32, 36, 1)).astype("float32")
    model.save(tmp_path / "g.keras")
    loaded = keras.saving.load_model(tmp_path / "g.keras", safe_mode=True, compile=False)
    np.testing.assert_array_equal(numpy(model(x)), numpy(loaded(x)))


def test_refiner_options_are_checked():
    with pytest.raises(ConfigError, match="refiner_width must be between 0 and 256"):
        ModelConfig(refiner_width=-1)
    with pytest.raises(ConfigError, match="refine_steps must be"):
        TrainConfig(refine_steps=-5)
    with pytest.raises(ConfigError, match="refine_learning_rate must be positive"):
        TrainConfig(refine_learning_rate=0.0)
    with pytest.raises(ConfigError, match="cannot be combined with generator_ema"):
        TrainConfig(refine_steps=10, generator_ema=0.99)
    with pytest.raises(ConfigError, match="refine_steps needs a pair list"):
        check_run(TrainConfig(refine_steps=10), DataConfig())
    with pytest.raises(ConfigError, match="refiner_layers must be between 1 and 16"):
        ModelConfig(refiner_width=8, refiner_layers=0)
    # Models saved before the options have no refiner, and a refiner of 3 layers.
    old = ModelConfig(refiner_width=8).to_dict()
    del old["refiner_width"], old["refiner_layers"]
    assert ModelConfig.from_dict(old).refiner_width == 0
    assert ModelConfig.from_dict(old).refiner_layers == 3


def test_refiner_examples_add_skull_stripped_pairs_and_inputs_of_another_contrast():
    head_t1, _ = synthetic_head()
    head_t2 = -head_t1
    blank = np.full((40, 40), -1.0, np.float32)
    pairs = [(head_t1, head_t2), (blank, blank), (blank, np.zeros((40, 44), np.float32))]
    plain = refiner_examples(pairs)
    assert len(plain) == 2  # as given, the pair of two sizes left out
    assert all(e[2] is e[0] and e[3] is e[1] for e in plain)  # each image its own input
    examples = refiner_examples(pairs, [SkullStrip(1.0)])
    assert len(examples) == 3  # the blank pair has no brain mask
    stripped_t1, stripped_t2, _, _ = examples[1]
    assert stripped_t1.dtype == np.float32 and stripped_t1.shape == head_t1.shape
    outside = stripped_t1 <= -1.0
    assert outside.sum() > (head_t1 <= -1.0).sum()  # the scalp is gone
    assert np.all(stripped_t2[outside] <= -1.0)  # both images cut with one mask
    contrasted = refiner_examples(pairs, [SkullStrip(1.0), Contrast(1.0)], seed=4)
    assert len(contrasted) == 5  # the blank pair has no contrast to change
    for (t1, t2, _, _), (u1, u2, in1, in2) in zip(contrasted[:3], contrasted[3:]):
        assert u1 is t1 and u2 is t2  # the targets stay as they are
        head = t1 > -0.9
        if head.any():
            assert np.abs(in1 - t1)[head].mean() > 0.01  # the inputs get another contrast
        assert in1.dtype == np.float32 and in2.shape == t2.shape
    again = refiner_examples(pairs, [SkullStrip(1.0), Contrast(1.0)], seed=4)
    np.testing.assert_array_equal(again[3][2], contrasted[3][2])


def test_refiner_crops_pad_small_images_with_background_of_no_weight():
    small = [np.zeros((40, 30), np.float32) + k for k in range(3)] + [np.ones((40, 30), np.float32)]
    crops = RefinerCrops([tuple(small)], steps=3, seed=1)
    assert len(crops) == 3
    (source, drawn), target, weight = crops[0]
    assert source.shape == drawn.shape == target.shape == (16, 96, 96, 1) and weight.shape == (16, 96, 96)
    assert weight.sum() == 16 * 40 * 30  # only the image's own pixels count
    assert np.all(source[weight == 0] == -1.0) and np.all(target[..., 0][weight > 0] == 2.0)
    np.testing.assert_array_equal(crops[2][0][0], RefinerCrops([tuple(small)], 3, seed=1)[2][0][0])
    with pytest.raises(ValueError, match="needs aligned pairs"):
        RefinerCrops([], 3)


def test_fit_refiners_trains_the_refiner_alone_and_lowers_its_error(tiny_config):
    gan = CycleGAN(tiny_config.replace(refiner_width=4),
                   TrainConfig(refine_learning_rate=3e-3, edge_weight=4.0, paired_weight=1.0))
    examples = refiner_examples([(t1 * 2 - 1, t2 * 2 - 1) for _, t1, t2 in ellipse_pairs(4, size=48)])
    before = {v.path: numpy(v) for g in gan.generators for v in g.weights}
    results = fit_refiners(gan, examples, steps=40, seed=3)
    for direction in ("t1_to_t2", "t2_to_t1"):
        start, end = results[direction]
        assert end < 0.9 * start, results
    for g in gan.generators:
        for v in g.weights:
            moved = not np.array_equal(before[v.path], numpy(v))
            assert moved == ("_refine" in v.path), v.path
    with pytest.raises(ConfigError, match="no refiner"):
        fit_refiners(CycleGAN(tiny_config, TrainConfig()), examples, steps=1)


def test_init_from_a_model_without_a_refiner_grows_one_that_starts_at_zero(tiny_folder, tiny_gan, tiny_config):
    grown = CycleGAN(tiny_config.replace(refiner_width=4, image_size=48), TrainConfig())
    _init_generators(grown, str(tiny_folder))
    x = np.random.default_rng(2).uniform(-1, 1, (1, 40, 44, 1)).astype("float32")
    for name in ("t1_to_t2", "t2_to_t1"):
        np.testing.assert_allclose(numpy(getattr(grown, name)(x)), numpy(getattr(tiny_gan, name)(x)), atol=1e-6)
    with pytest.raises(ConfigError, match="architecture"):
        _init_generators(CycleGAN(tiny_config.replace(refiner_width=4, generator_blocks=2), TrainConfig()),
                         str(tiny_folder))


def test_init_from_a_model_whose_refiner_has_another_shape_starts_the_refiner_anew(tmp_path, tiny_config, caplog):
    from cyclegan.hub import save_pretrained

    saved = CycleGAN(tiny_config.replace(refiner_width=4), TrainConfig())
    for generator in saved.generators:  # a refiner that does something, to be left behind
        out = generator.get_layer(f"{generator.name}_refine_out_conv")
        out.set_weights([np.full_like(w, 0.05) for w in out.get_weights()])
    save_pretrained(saved, tmp_path / "refined", tiny_config.replace(refiner_width=4))
    x = np.random.default_rng(5).uniform(-1, 1, (1, 40, 44, 1)).astype("float32")
    for shape in ({"refiner_layers": 5}, {"refiner_width": 6}):
        deeper = CycleGAN(tiny_config.replace(**{"refiner_width": 4, "image_size": 48, **shape}), TrainConfig())
        with caplog.at_level(logging.INFO, logger="cyclegan.pipeline"):
            _init_generators(deeper, str(tmp_path / "refined"))
        assert "its refiner (3 layers of 4 channels) is not copied" in caplog.text
        for name in ("t1_to_t2", "t2_to_t1"):
            # the saved generator's own output, without its refiner's correction
            base, _ = refiner_parts(getattr(saved, name))
            np.testing.assert_allclose(numpy(getattr(deeper, name)(x)), numpy(base(x)), atol=1e-6)
            assert not np.allclose(numpy(getattr(saved, name)(x)), numpy(base(x)), atol=1e-3)
    # The same shape is copied whole; taking the refiner away is refused.
    same = CycleGAN(tiny_config.replace(refiner_width=4, image_size=48), TrainConfig())
    _init_generators(same, str(tmp_path / "refined"))
    np.testing.assert_allclose(numpy(same.t1_to_t2(x)), numpy(saved.t1_to_t2(x)), atol=1e-6)
    with pytest.raises(ConfigError, match="architecture"):
        _init_generators(CycleGAN(tiny_config.replace(image_size=48), TrainConfig()), str(tmp_path / "refined"))


def test_the_train_command_fits_the_refiners_after_its_schedule(tmp_path, tiny_folder, caplog):
    data = make_zip(tmp_path / "mri.zip")
    real = make_subject_folder(tmp_path / "real")
    out = tmp_path / "run"
    args = tiny_args(data, out, "--epochs", "1", "--dataset", str(real), "--holdout-pairs", "none",
                     "--holdout-pairs", str(real / "PAIRS.csv"), "--holdout-subjects", "beta",
                     "--paired-weight", "1", "--init-from", str(tiny_folder), "--refiner-width", "4",
                     "--refine-steps", "3")
    with caplog.at_level(logging.INFO, logger="cyclegan.pipeline"):
        assert main(args) == 0
    assert "the refiner starts at zero" in caplog.text
    assert "refiner stage: 3 steps fitting each generator's refiner to 4 examples of 4 aligned training pairs" \
        in caplog.text
    assert "refiner stage done" in caplog.text
    saved = json.loads((out / "config.json").read_text())
    assert saved["model_config"]["refiner_width"] == 4 and saved["train_config"]["refine_steps"] == 3
    assert (out / "samples" / "refined.png").is_file()  # the card's grid shows the refined translations
    assert (out / "samples.png").read_bytes() == (out / "samples" / "refined.png").read_bytes()
    card = (out / "README.md").read_text()
    assert "a refiner at full resolution (3 layers of 4-channel" in card and "then 3 steps fitting each generator's refiner" in card
    from cyclegan.hub import load_generators

    translator = load_generators(str(out))
    assert translator.generators["t1_to_t2"].get_layer("t1_to_t2_refine_out_conv").get_weights()[0].any()
    # Resumed without the architecture flag, the run keeps its refiner.
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="cyclegan.pipeline"):
        assert main([a for a in args if a not in ("--refiner-width", "4")]) == 0
    assert "refiner_width: the run's recorded 4" in caplog.text


@pytest.mark.parametrize("extra, message", [
    (["--holdout-pairs", "none", "--holdout-pairs", "REAL_PAIRS", "--refine-steps", "2"],
     "--refine-steps needs generators with a refiner"),
    (["--holdout-pairs", "none", "--holdout-pairs", "none", "--refine-steps", "2", "--refiner-width", "2"],
     "refine_steps needs a pair list"),
    (["--refine-steps", "2", "--refiner-width", "2", "--generator-ema", "0.9"], "cannot be combined"),
    (["--refiner-layers", "5"], "--refiner-layers sets the depth of a refiner, and these generators have none"),
    (["--refiner-width", "2", "--refiner-layers", "0"], "refiner_layers must be between 1 and 16"),
])
def test_bad_refiner_options_give_clear_errors(tmp_path, extra, message, capsys):
    data = make_zip(tmp_path / "mri.zip")
    real = make_subject_folder(tmp_path / "real")
    extra = [str(real / "PAIRS.csv") if a == "REAL_PAIRS" else a for a in extra]
    code, err = main_in_process([*tiny_args(data, tmp_path / "run", "--epochs", "1", "--dataset", str(real)),
                                 *extra], capsys)
    assert code == 2, err[-2000:]
    assert message in err and "Traceback" not in err


def test_the_refiner_stage_translates_examples_of_several_shapes_in_batches_as_one_by_one(tiny_config):
    from cyclegan.preprocessing import pad_to_multiple
    from cyclegan.training import SIZE_MULTIPLE, _by_shape

    gan = CycleGAN(tiny_config.replace(refiner_width=4), TrainConfig())
    base, _ = refiner_parts(gan.t1_to_t2)
    rng = np.random.default_rng(0)
    images = [rng.uniform(-1, 1, shape).astype(np.float32) for shape in [(30, 41), (48, 48), (30, 41), (13, 20)] * 3]
    batched = _by_shape(lambda batch: base(batch, training=False), images, batch_size=4, multiple=SIZE_MULTIPLE)
    for image, out in zip(images, batched):
        alone = numpy(base(pad_to_multiple(image, SIZE_MULTIPLE)[None, ..., None], training=False))[0, ..., 0]
        assert out.shape == image.shape
        np.testing.assert_allclose(out, alone[:image.shape[0], :image.shape[1]], atol=1e-5)
