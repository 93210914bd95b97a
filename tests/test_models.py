import keras
import numpy as np
import pytest

from cyclegan.config import preset
from cyclegan.layers import InstanceNormalization, ReflectionPadding2D
from cyclegan.models import SKIP_GAIN, build_discriminator, build_generator, resize_kernel


def test_reflection_padding_mirrors():
    x = np.arange(16, dtype="float32").reshape(1, 4, 4, 1)
    out = keras.ops.convert_to_numpy(ReflectionPadding2D(1)(x))
    assert out.shape == (1, 6, 6, 1)
    assert out[0, 0, 1, 0] == x[0, 1, 0, 0]  # row -1 mirrors row 1
    with pytest.raises(ValueError, match="padding"):
        ReflectionPadding2D(-1)


def test_instance_norm_statistics():
    rng = np.random.default_rng(0)
    x = rng.normal(3.0, 5.0, (2, 8, 8, 3)).astype("float32")
    out = keras.ops.convert_to_numpy(InstanceNormalization()(x))
    assert np.allclose(out.mean(axis=(1, 2)), 0, atol=1e-5)
    assert np.allclose(out.std(axis=(1, 2)), 1, atol=1e-3)


@pytest.mark.parametrize("size", [(32, 32), (36, 52), (184, 220)])
def test_generator_shapes(tiny_config, size):
    gen = build_generator(tiny_config, "t1_to_t2")
    out = keras.ops.convert_to_numpy(gen(np.zeros((2, *size, 1), "float32")))
    assert out.shape == (2, *size, 1)
    assert out.dtype == np.float32 and np.abs(out).max() <= 1.0


@pytest.mark.parametrize("upsampling, layer", [("transpose", "Conv2DTranspose"), ("resize", "UpSampling2D")])
def test_generator_upsampling(tiny_config, upsampling, layer):
    gen = build_generator(tiny_config.replace(upsampling=upsampling), "t1_to_t2")
    kinds = {type(l).__name__ for l in gen.layers}
    assert layer in kinds and not {"Conv2DTranspose", "UpSampling2D"} - {layer} & kinds
    out = keras.ops.convert_to_numpy(gen(np.zeros((1, 36, 52, 1), "float32")))
    assert out.shape == (1, 36, 52, 1)


def test_resize_upsampling_has_no_checkerboard():
    # A stride-2 transposed 3x3 convolution gives every other output pixel another number of
    # kernel taps, so a constant input comes out as a checkerboard; a resize and a convolution
    # give a constant input a constant output.
    def upsample(upsampling):
        gen = build_generator(preset("tiny").replace(upsampling=upsampling), "t1_to_t2")
        names = [l.name for l in gen.layers if l.name.startswith("t1_to_t2_up0_") and "norm" not in l.name
                 and "relu" not in l.name]
        x = np.full((1, 8, 8, gen.get_layer(names[0]).input.shape[-1]), 0.5, "float32")
        for name in names:
            x = gen.get_layer(name)(x)
        return keras.ops.convert_to_numpy(x)[0, 1:-1, 1:-1]

    resized = upsample("resize")
    assert resized.shape[:2] == (14, 14) and np.allclose(resized, resized[:1, :1], atol=1e-6)
    transposed = upsample("transpose")
    assert not np.allclose(transposed[0::2, 0::2], transposed[1::2, 1::2], atol=1e-4)


def _upsampled(kernel, x, resize):
    """``x`` through a stride-2 transposed convolution with ``kernel`` (``resize=False``), or through
    a nearest-neighbour resize and a zero-padded 3x3 convolution with it."""
    out = kernel.shape[-1] if resize else kernel.shape[2]
    if resize:
        layers = [keras.layers.UpSampling2D(2), keras.layers.ZeroPadding2D(1), keras.layers.Conv2D(out, 3, use_bias=False)]
    else:
        layers = [keras.layers.Conv2DTranspose(out, 3, strides=2, padding="same", use_bias=False)]
    model = keras.Sequential([keras.Input(x.shape[1:]), *layers])
    model.set_weights([kernel])
    return keras.ops.convert_to_numpy(model(x))


def test_a_transposed_kernel_a_resize_can_draw_converts_exactly():
    # A transposed 3x3 kernel whose middle tap is the sum of its outer ones in each direction gives
    # all four output phases the same smoothing: a resize and a convolution draw it exactly.
    rng = np.random.default_rng(3)
    line = lambda a, b: np.array([a, a + b, b])  # noqa: E731
    kernel = np.stack([np.stack([np.outer(line(*rng.uniform(0.1, 1, 2)), line(*rng.uniform(0.1, 1, 2)))
                                 * rng.normal() for _ in range(3)], -1) for _ in range(2)], 2)  # (3, 3, out 2, in 3)
    x = rng.normal(size=(1, 9, 11, 3)).astype("float32")
    np.testing.assert_allclose(_upsampled(resize_kernel(kernel.astype("float32")), x, True),
                               _upsampled(kernel.astype("float32"), x, False), atol=1e-5)


def test_the_resize_kernel_is_the_closest_to_any_transposed_one():
    rng = np.random.default_rng(4)
    kernel = rng.normal(size=(3, 3, 2, 3)).astype("float32")
    x = rng.normal(size=(1, 12, 12, 3)).astype("float32")
    target = _upsampled(kernel, x, False)[:, 2:-2, 2:-2]
    converted = resize_kernel(kernel)
    assert converted.shape == (3, 3, 3, 2) and converted.dtype == np.float32
    error = lambda k: np.mean((_upsampled(k, x, True)[:, 2:-2, 2:-2] - target) ** 2)  # noqa: E731
    best = error(converted)
    # It keeps more than half of the output of a kernel of random taps, whose four phases differ
    # most, and no kernel near it comes closer; a resize cannot draw the phases' differences.
    assert best < 0.6 * np.mean(target ** 2)
    for _ in range(5):
        assert error(converted + 0.05 * rng.normal(size=converted.shape).astype("float32")) > best
    assert best > 0.1 * np.mean(target ** 2)
    with pytest.raises(ValueError, match="transposed-convolution kernel"):
        resize_kernel(np.zeros((5, 5, 2, 3)))


def test_skips_start_at_zero_and_carry_the_encoder_features(tiny_config):
    rng = np.random.default_rng(5)
    x = rng.uniform(-1, 1, (2, 36, 52, 1)).astype("float32")
    plain = build_generator(tiny_config, "t1_to_t2")
    assert not [l for l in plain.layers if "skip" in l.name]
    skipped = build_generator(tiny_config.replace(skips=True), "t1_to_t2")
    convs = [skipped.get_layer(f"t1_to_t2_skip{i}_conv") for i in (0, 1)]
    # Half resolution (the first downsample's features) into the first upsample, full
    # resolution (the stem's) into the second.
    f = tiny_config.generator_filters
    assert [c.kernel.shape for c in convs] == [(1, 1, 2 * f, 2 * f), (1, 1, f, f)]
    assert all(not np.any(keras.ops.convert_to_numpy(w)) for c in convs for w in c.weights)
    for layer in plain.layers:
        if layer.weights:
            skipped.get_layer(layer.name).set_weights(layer.get_weights())
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(plain(x)), keras.ops.convert_to_numpy(skipped(x)))
    # Once the full-resolution skip is not zero, the stem's features reach the output, SKIP_GAIN
    # times what the convolution gives.
    kernel, bias = convs[1].get_weights()
    convs[1].set_weights([rng.normal(0, 0.05, kernel.shape).astype("float32"), bias])
    assert np.abs(keras.ops.convert_to_numpy(skipped(x)) - keras.ops.convert_to_numpy(plain(x))).max() > 1e-3
    probe = keras.Model(skipped.input, [convs[1].output, skipped.get_layer("t1_to_t2_skip1_gain").output])
    conv_out, gained = (keras.ops.convert_to_numpy(t) for t in probe(x))
    assert np.abs(conv_out).max() > 0
    np.testing.assert_allclose(gained, SKIP_GAIN * conv_out, rtol=1e-6)


def test_reference_generator_size():
    gen = build_generator(preset("reference"), "t1_to_t2")
    # The reference ResNet-9 (11,378,179 parameters on RGB) minus the two
    # RGB-only parts of its first and last convolutions.
    assert gen.count_params() == 11_378_179 - 2 * 7 * 7 * 64 * 2 - 2


def test_patchgan_receptive_field_and_output():
    disc = build_discriminator(preset("reference"), "disc_t1")
    out = disc(np.zeros((1, 256, 256, 1), "float32"))
    assert tuple(out.shape) == (1, 30, 30, 1)  # the reference 70x70 PatchGAN on 256x256
    assert 2.7e6 < disc.count_params() < 2.8e6


def test_mixed_precision_generator_outputs_float32(tiny_config):
    gen = build_generator(tiny_config, "t2_to_t1", dtype="mixed_bfloat16")
    assert gen.get_layer("t2_to_t1_stem_conv").compute_dtype == "bfloat16"
    out = gen(np.zeros((1, 32, 32, 1), "float32"))
    assert keras.backend.standardize_dtype(out.dtype) == "float32"


def test_keras_file_round_trip_safe_mode(tmp_path, tiny_config):
    rng = np.random.default_rng(3)
    x = rng.uniform(-1, 1, (1, 48, 40, 1)).astype("float32")
    for model in (build_generator(tiny_config, "t1_to_t2"), build_discriminator(tiny_config, "disc_t2"),
                  build_generator(tiny_config.replace(upsampling="resize"), "t2_to_t1"),
                  build_generator(tiny_config.replace(skips=True), "t1_to_t2")):
        path = tmp_path / f"{model.name}.keras"
        model.save(path)
        loaded = keras.saving.load_model(path, safe_mode=True, compile=False)
        assert np.array_equal(
            keras.ops.convert_to_numpy(model(x)), keras.ops.convert_to_numpy(loaded(x))
        )
