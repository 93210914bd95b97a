import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

from conftest import ROOT
from cyclegan.config import TrainConfig, preset
from cyclegan.training import LOSS_NAMES, CycleGAN, ImagePool, LinearDecaySchedule, make_schedule

FIT_SCRIPT = r"""
import json, sys
import numpy as np
import keras
from cyclegan.config import TrainConfig, preset
from cyclegan.training import CycleGAN

paired, augment = float(sys.argv[1]), float(sys.argv[3])
keys = ("t1", "t2", "t1_input", "t2_input") if sys.argv[2] == "inputs" else ("t1", "t2")
gan = CycleGAN(preset("tiny"), TrainConfig(epochs=1, decay_epochs=0, steps_per_epoch=2,
                                           pool_size=3, paired_weight=paired, diff_augment=augment,
                                           edge_weight=4.0 if paired else 0.0,
                                           paired_ssim_weight=5.0 if paired else 0.0))
gan.compile()
rng = np.random.default_rng(0)
data = {k: rng.uniform(-1, 1, (2, 32, 32, 1)).astype("float32") for k in keys}
before = {v.path: keras.ops.convert_to_numpy(v) for v in gan.trainable_variables}
history = gan.fit(data, batch_size=1, epochs=1, verbose=0)
changed = {}
for v in gan.trainable_variables:
    owner = "disc" if v.path.startswith("disc_") else "gen"
    moved = not np.allclose(before[v.path], keras.ops.convert_to_numpy(v))
    changed[owner] = changed.get(owner, 0) + int(moved)
print(json.dumps({
    "backend": keras.backend.backend(),
    "history": {k: [float(x) for x in v] for k, v in history.history.items()},
    "changed": changed,
    "n_vars": len(gan.trainable_variables),
    "iterations": [int(keras.ops.convert_to_numpy(o.iterations)) for o in gan.optimizer.optimizers],
    "pool_count": int(keras.ops.convert_to_numpy(gan.pool_t1.count)),
    "augment_state": (None if gan.augment_seed is None
                      else keras.ops.convert_to_numpy(gan.augment_seed.state).tolist()),
}))
"""


def run_fit(backend, paired=0.0, inputs=False, augment=0.0):
    env = {**os.environ, "KERAS_BACKEND": backend, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, "-c", FIT_SCRIPT, str(paired), "inputs" if inputs else "plain", str(augment)],
        capture_output=True, text=True, env=env, timeout=300, cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def check_result(result, paired):
    history = result["history"]
    assert set(LOSS_NAMES) <= set(history)
    assert all(np.isfinite(v).all() for v in history.values())
    assert history["gen_loss"][0] > 0 and history["disc_loss"][0] > 0
    assert (history["paired_t1"][0] > 0) == (paired > 0)
    # Every trainable variable of both sides moved, and each optimizer took two steps.
    assert result["changed"]["gen"] + result["changed"]["disc"] == result["n_vars"]
    assert result["iterations"] == [2, 2]
    assert result["pool_count"] == 2


def test_two_fit_steps_tensorflow():
    result = run_fit("tensorflow")
    check_result(result, paired=0.0)
    assert result["augment_state"] is None  # no DiffAugment, no random state for it


def test_two_fit_steps_jax_with_paired_and_edge_terms_and_separate_inputs():
    pytest.importorskip("jax")
    result = run_fit("jax", paired=1.0, inputs=True)
    assert result["backend"] == "jax"
    check_result(result, paired=1.0)


@pytest.mark.parametrize("backend", ["tensorflow", "jax"])
def test_two_fit_steps_with_diff_augment_draw_new_augmentations_each_step(backend):
    pytest.importorskip(backend)
    result = run_fit(backend, augment=1.0)
    check_result(result, paired=0.0)
    # The augmentation's random state is carried from step to step (one draw a step), so each
    # step sees other shifts and holes, under JAX's stateless step as under TensorFlow.
    assert result["augment_state"][1] == 2


AVERAGE_SCRIPT = r"""
import json
import numpy as np
import keras
from cyclegan.callbacks import translator_of
from cyclegan.config import TrainConfig, preset
from cyclegan.training import CycleGAN

gan = CycleGAN(preset("tiny"), TrainConfig(epochs=1, decay_epochs=0, steps_per_epoch=3, pool_size=3,
                                           generator_ema=0.5, learning_rate=0.01))
gan.compile()
rng = np.random.default_rng(0)
batches = [{k: rng.uniform(-1, 1, (1, 32, 32, 1)).astype("float32") for k in ("t1", "t2")} for _ in range(4)]
gen_vars = [v for g in gan.generators for v in g.trainable_variables]
disc_vars = [v for d in gan.discriminators for v in d.trainable_variables]
now = lambda vs: [keras.ops.convert_to_numpy(v).copy() for v in vs]
image = batches[0]["t1"][0, :, :, 0]
initial = now(gen_vars)
with gan.averaged_generators():  # no step yet: nothing to average, the generators stay
    untouched = all(np.array_equal(a, b) for a, b in zip(now(gen_vars), initial))
expected = None
for batch in batches[:3]:
    gan.train_on_batch(batch)
    weights = now(gen_vars)
    expected = weights if expected is None else [0.5 * e + 0.5 * w for e, w in zip(expected, weights)]
raw, discs = now(gen_vars), now(disc_vars)


def fits():
    # Keras leaves the generators holding their average when fit ends; fit runs again after that.
    data = {k: np.concatenate([b[k] for b in batches]) for k in ("t1", "t2")}
    gan.fit(data, batch_size=2, epochs=1, verbose=0)
    after_fit = now(gen_vars)
    with gan.averaged_generators():
        held = max(float(np.abs(a - b).max()) for a, b in zip(now(gen_vars), after_fit))
    history = gan.fit(data, batch_size=2, epochs=1, verbose=0)
    return {"fit_leaves_average": held, "fits_again": bool(np.isfinite(history.history["gen_loss"][-1]))}


averaged_copy = translator_of(gan).generators["t1_to_t2"]  # made outside the block below
exported = keras.ops.convert_to_numpy(averaged_copy(image[None, ..., None]))
with gan.averaged_generators():
    inside = now(gen_vars)
    averaged_translation = keras.ops.convert_to_numpy(gan.t1_to_t2(image[None, ..., None]))
print(json.dumps({
    "untouched": untouched,
    "inside_is_average": max(float(np.abs(a - e).max()) for a, e in zip(inside, expected)),
    "average_differs_from_raw": max(float(np.abs(a - r).max()) for a, r in zip(inside, raw)),
    "raw_back": all(np.array_equal(a, b) for a, b in zip(now(gen_vars), raw)),
    "discriminators_kept": all(np.array_equal(a, b) for a, b in zip(now(disc_vars), discs)),
    "translator_uses_average": float(np.abs(exported - averaged_translation).max()),
    "trains_on": bool(np.isfinite(gan.train_on_batch(batches[3], return_dict=True)["gen_loss"])),
    **fits(),
}))
"""


@pytest.mark.parametrize("backend", ["tensorflow", "jax"])
def test_the_generators_moving_average_is_used_within_its_block_and_training_goes_on_from_the_last_step(backend):
    pytest.importorskip(backend)
    env = {**os.environ, "KERAS_BACKEND": backend, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-c", AVERAGE_SCRIPT], capture_output=True, text=True, env=env,
                          timeout=300, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["untouched"]
    # Inside the block the generators hold the running average of their weights after each step
    # (momentum 0.5, computed here from the weights themselves), which is not the last step's...
    assert result["inside_is_average"] < 1e-5
    assert result["average_differs_from_raw"] > 1e-3
    # ... and afterwards their own weights are back; the discriminators never change.
    assert result["raw_back"] and result["discriminators_kept"]
    # What the train command exports and checks (translator_of) is the average.
    assert result["translator_uses_average"] < 1e-5
    assert result["trains_on"]
    assert result["fit_leaves_average"] < 1e-6 and result["fits_again"]


def test_diff_augment_shifts_and_cuts_a_hole_differentiably():
    from cyclegan.augment import AUGMENT_DRAWS, diff_augment

    rng = np.random.default_rng(0)
    images = rng.uniform(-0.9, 0.9, (3, 16, 24, 1)).astype("float32")
    draws = np.zeros((3, AUGMENT_DRAWS), "float32")
    # Image 0: shifted 2 rows down (the most, 1/8 of 16) and 3 columns left (1/8 of 24), the
    # hole at the bottom-right corner; image 1: not augmented (its draw is over the fraction);
    # image 2: no shift (the middle draw), the hole at the top-left corner.
    draws[0] = [0.0, 0.999, 0.0, 0.999, 0.999]
    draws[1] = [0.9, 0.3, 0.3, 0.3, 0.3]
    draws[2] = [0.1, 0.5, 0.5, 0.0, 0.0]
    out = keras.ops.convert_to_numpy(diff_augment(images, draws, 0.5))
    assert out.shape == images.shape
    assert np.array_equal(out[1], images[1])

    expected = np.full_like(images[0], -1.0)  # uncovered pixels are background
    expected[2:, :-3] = images[0, :-2, 3:]
    expected[8:, 12:] = 0.0  # an 8 x 12 hole, half the size each way
    assert np.array_equal(out[0], expected)

    expected = images[2].copy()
    expected[:8, :12] = 0.0
    assert np.array_equal(out[2], expected)

    # Gradients reach the images through the map: one for each pixel that is kept.
    import tensorflow as tf

    x = tf.constant(images)
    with tf.GradientTape() as tape:
        tape.watch(x)
        total = tf.reduce_sum(diff_augment(x, draws, 0.5))
    grad = tape.gradient(total, x).numpy()
    assert grad[1].sum() == images[1].size
    kept = (out[0] != 0.0) & (out[0] != -1.0)  # neither in the hole nor uncovered by the shift
    source = np.zeros_like(grad[0])  # where each kept output pixel came from: 2 rows up, 3 columns right
    source[:-2, 3:] = kept[2:, :-3]
    assert np.array_equal(grad[0], source)


def test_fit_in_process_updates_only_through_both_optimizers(tiny_config):
    gan = CycleGAN(tiny_config, TrainConfig(epochs=1, decay_epochs=0, steps_per_epoch=1))
    gan.compile()
    disc_opt_vars = {v.path for v in gan.discriminator_optimizer.variables}
    gen_opt_vars = {v.path for v in gan.generator_optimizer.variables}
    assert any("disc_t1" in p for p in disc_opt_vars) and not any("disc_t" in p for p in gen_opt_vars)
    assert any("t1_to_t2" in p for p in gen_opt_vars) and any("t2_to_t1" in p for p in gen_opt_vars)


def test_batches_must_be_dicts(tiny_gan):
    with pytest.raises(ValueError, match='"t1" and "t2"'):
        tiny_gan._unpack(np.zeros((1, 32, 32, 1)))


def test_generators_see_the_inputs_and_are_judged_against_the_targets(tiny_config):
    gan = CycleGAN(tiny_config, TrainConfig(epochs=1, decay_epochs=0, paired_weight=2.0, identity_weight=0.5))
    rng = np.random.default_rng(3)
    real_t1, real_t2, input_t1, input_t2 = (rng.uniform(-1, 1, (1, 32, 32, 1)).astype("float32") for _ in range(4))
    batch = {"t1": real_t1, "t2": real_t2, "t1_input": input_t1, "t2_input": input_t2}
    unpacked = gan._unpack(batch)
    assert all(a is b for a, b in zip(unpacked, (real_t1, real_t2, input_t1, input_t2)))
    assert gan._unpack({"t1": real_t1, "t2": real_t2})[2] is real_t1  # no inputs given: the images themselves

    _, logs, (fake_t1, fake_t2) = gan._generator_losses(*unpacked)
    as_np = keras.ops.convert_to_numpy
    seen_t2 = as_np(gan.t1_to_t2(input_t1))
    seen_t1 = as_np(gan.t2_to_t1(input_t2))
    assert np.allclose(as_np(fake_t2), seen_t2, atol=1e-5) and np.allclose(as_np(fake_t1), seen_t1, atol=1e-5)
    # The paired and cycle terms compare against the real images, not the inputs.
    assert float(logs["paired_t2"]) == pytest.approx(2.0 * np.mean(np.abs(seen_t2 - real_t2)), rel=1e-4)
    back_t1 = as_np(gan.t2_to_t1(seen_t2))
    assert float(logs["cycle_t1"]) == pytest.approx(10.0 * np.mean(np.abs(back_t1 - real_t1)), rel=1e-4)
    # The inputs make a difference: translating the real images instead gives other outputs (so the
    # match with the inputs' translations above is no coincidence).
    for generator, real, seen in ((gan.t1_to_t2, real_t1, seen_t2), (gan.t2_to_t1, real_t2, seen_t1)):
        assert np.max(np.abs(as_np(generator(real)) - seen)) > 1e-3
    assert np.allclose(as_np(gan(batch)["t1_to_t2"]), seen_t2, atol=1e-5)


def test_image_pool_fills_then_swaps():
    pool = ImagePool(3, (4, 4, 1), seed=1)
    first = np.full((2, 4, 4, 1), 1.0, "float32")
    assert np.array_equal(keras.ops.convert_to_numpy(pool.query(first)), first)
    second = np.full((2, 4, 4, 1), 2.0, "float32")
    out = keras.ops.convert_to_numpy(pool.query(second))
    assert np.array_equal(out[0], second[0])  # slot 2 was still free
    assert int(keras.ops.convert_to_numpy(pool.count)) == 3
    stored = keras.ops.convert_to_numpy(pool.images)[:3]
    assert sorted(stored[:, 0, 0, 0]) == [1.0, 1.0, 2.0]
    swapped = 0
    for i in range(40):
        value = 10.0 + i
        out = keras.ops.convert_to_numpy(pool.query(np.full((1, 4, 4, 1), value, "float32")))
        swapped += out[0, 0, 0, 0] != value
    assert 5 < swapped < 35  # about half the queries return a stored image


def test_image_pool_of_size_zero_passes_through():
    pool = ImagePool(0, (4, 4, 1))
    x = np.ones((2, 4, 4, 1), "float32")
    assert np.array_equal(keras.ops.convert_to_numpy(pool.query(x)), x)


def test_schedule_constant_then_linear_to_zero():
    schedule = make_schedule(TrainConfig(epochs=4, decay_epochs=2, steps_per_epoch=10, learning_rate=1e-3))
    lr = [float(keras.ops.convert_to_numpy(schedule(s))) for s in (0, 19, 20, 30, 40, 50)]
    assert lr[:3] == pytest.approx([1e-3, 1e-3, 1e-3])
    assert lr[3] == pytest.approx(5e-4)
    assert lr[4:] == pytest.approx([0.0, 0.0])
    restored = LinearDecaySchedule.from_config(schedule.get_config())
    assert float(keras.ops.convert_to_numpy(restored(30))) == pytest.approx(5e-4)


def test_cyclegan_config_round_trip(tiny_gan):
    clone = CycleGAN.from_config(tiny_gan.get_config())
    assert clone.model_config == tiny_gan.model_config
    assert clone.train_config == tiny_gan.train_config
    assert [v.path for v in clone.trainable_variables] == [v.path for v in tiny_gan.trainable_variables]


def test_mixed_precision_model_builds_bf16(tiny_config):
    gan = CycleGAN(tiny_config, TrainConfig(mixed_precision=True))
    layer = gan.t1_to_t2.get_layer("t1_to_t2_stem_conv")
    assert layer.compute_dtype == "bfloat16" and layer.variable_dtype == "float32"
    assert preset("tiny").image_size == 32


def test_paired_term_counts_only_the_aligned_batch_indices(tiny_config):
    gan = CycleGAN(tiny_config, TrainConfig(epochs=1, decay_epochs=0, paired_weight=3.0))
    rng = np.random.default_rng(5)
    real_t1, real_t2 = (rng.uniform(-1, 1, (2, 32, 32, 1)).astype("float32") for _ in range(2))
    as_np = keras.ops.convert_to_numpy
    fake_t2 = as_np(gan.t1_to_t2(real_t1))
    per_image = np.abs(fake_t2 - real_t2).reshape(2, -1).mean(axis=1)
    for flags, expected in (([1.0, 1.0], per_image.mean()), ([1.0, 0.0], per_image[0] / 2),
                            ([0.0, 1.0], per_image[1] / 2), ([0.0, 0.0], 0.0)):
        batch = {"t1": real_t1, "t2": real_t2, "paired": np.asarray(flags, "float32")}
        _, logs, _ = gan._generator_losses(*gan._unpack(batch), gan._aligned(batch))
        assert float(logs["paired_t2"]) == pytest.approx(3.0 * expected, rel=1e-4, abs=1e-7)
    # Without flags every index is a pair (single data set runs, as before).
    _, logs, _ = gan._generator_losses(real_t1, real_t2, real_t1, real_t2)
    assert float(logs["paired_t2"]) == pytest.approx(3.0 * per_image.mean(), rel=1e-4)


def test_every_loss_term_is_one_registry_entry_with_a_weight_a_log_and_a_card_phrase(tiny_config):
    """Each term of cyclegan.losses.LOSS_TERMS: a TrainConfig weight field, logged per contrast, 0 when its
    weight is 0 and positive otherwise on a step of random images, and named in the card's recipe."""
    import dataclasses

    from cyclegan.card import recipe
    from cyclegan.losses import LOSS_TERMS

    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    rng = np.random.default_rng(0)
    size = tiny_config.image_size
    real = {c: rng.uniform(-1, 1, (2, size, size, 1)).astype("float32") for c in ("t1", "t2")}
    for term in LOSS_TERMS:
        assert term.field in fields and {f"{term.name}_t1", f"{term.name}_t2"} <= set(LOSS_NAMES)
        others = {t.field: 0.0 for t in LOSS_TERMS if t.field != "cycle_weight"}
        needs = {"paired_weight": 1.0} if term.field == "paired_ssim_weight" else {}  # the SSIM term sits beside it
        on = TrainConfig(**{**others, **needs, "cycle_weight": 1.0, term.field: 2.0, "edge_weight": 0.0})
        off = on.replace(**{term.field: 0.0})
        for config, positive in ((on, True), (off, False)):
            gan = CycleGAN(tiny_config, config)
            _, logs, _ = gan._generator_losses(real["t1"], real["t2"], real["t1"], real["t2"],
                                                aligned=np.ones(2, "float32"))
            for contrast in ("t1", "t2"):
                value = float(keras.ops.convert_to_numpy(logs[f"{term.name}_{contrast}"]))
                assert (value > 0) == positive, (term.name, contrast, value)
        assert term.phrase(on) and term.phrase(on) in recipe(on)
