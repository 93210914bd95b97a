"""The networks: the reference ResNet generator and the PatchGAN discriminator.

Both are Keras functional models with free height and width, so one set of
weights translates any image whose sides are multiples of 4 (the generator's
two stride-2 steps). Every layer name starts with the model's name, which keeps
variable paths unique inside :class:`cyclegan.training.CycleGAN` and lets the
optimizers be chosen by path.
"""

from __future__ import annotations

import keras
import numpy as np

from cyclegan.config import ModelConfig
from cyclegan.layers import InstanceNormalization, ReflectionPadding2D

#: Side lengths fed to a generator must be multiples of this.
SIZE_MULTIPLE = 4

#: What each skip connection's 1x1 convolution is multiplied by. Adam's steps do not grow with the
#: gradient, so a constant factor on a layer's output makes it learn that many times faster (the
#: run-time weight scaling of Karras et al. 2018, "equalized learning rate"): skips that start at
#: zero in a fine-tune at a low learning rate stayed near zero without it (benchmarks/NOTES.md).
SKIP_GAIN = 10.0


def _init():
    # The reference initialises every convolution with N(0, 0.02).
    return keras.initializers.RandomNormal(mean=0.0, stddev=0.02)


def build_generator(config: ModelConfig, name: str, dtype=None) -> keras.Model:
    """ResNet generator of the reference CycleGAN, sized by ``config``.

    7x7 conv -> 2 stride-2 convs -> ``generator_blocks`` residual blocks
    (reflection padding, instance norm) -> 2 upsamples (stride-2 transposed convs, or with
    ``upsampling="resize"`` a nearest-neighbour resize and a 3x3 conv) -> 7x7 conv -> tanh.
    With ``config.skips`` each upsample's output also gets the encoder's features of the same
    resolution (the stem's, the first downsample's) through a 1x1 convolution initialised to zero,
    times :data:`SKIP_GAIN`: a generator with skips computes exactly what the same weights compute
    without them until training moves those convolutions.
    The output is float32 in [-1, 1] whatever the compute ``dtype`` policy.
    """
    f = config.generator_filters
    inputs = keras.Input(shape=(None, None, config.channels), name=f"{name}_input")

    def conv(x, filters, kernel, stride, tag, padding="same"):
        return keras.layers.Conv2D(
            filters, kernel, strides=stride, padding=padding, kernel_initializer=_init(),
            name=f"{name}_{tag}_conv", dtype=dtype,
        )(x)

    def norm_relu(x, tag):
        x = InstanceNormalization(name=f"{name}_{tag}_norm", dtype=dtype)(x)
        return keras.layers.ReLU(name=f"{name}_{tag}_relu", dtype=dtype)(x)

    x = ReflectionPadding2D(3, name=f"{name}_stem_pad", dtype=dtype)(inputs)
    x = norm_relu(conv(x, f, 7, 1, "stem", padding="valid"), "stem")
    encoder = [x]  # the features at full, then half resolution, for the skips
    for i, mult in enumerate((2, 4)):
        x = norm_relu(conv(x, f * mult, 3, 2, f"down{i}"), f"down{i}")
        encoder.append(x)

    for b in range(config.generator_blocks):
        tag = f"block{b}"
        y = ReflectionPadding2D(1, name=f"{name}_{tag}_pad0", dtype=dtype)(x)
        y = norm_relu(conv(y, 4 * f, 3, 1, f"{tag}a", padding="valid"), f"{tag}a")
        y = ReflectionPadding2D(1, name=f"{name}_{tag}_pad1", dtype=dtype)(y)
        y = conv(y, 4 * f, 3, 1, f"{tag}b", padding="valid")
        y = InstanceNormalization(name=f"{name}_{tag}b_norm", dtype=dtype)(y)
        x = keras.layers.Add(name=f"{name}_{tag}_add", dtype=dtype)([x, y])

    for i, mult in enumerate((2, 1)):
        if config.upsampling == "resize":
            x = keras.layers.UpSampling2D(2, interpolation="nearest", name=f"{name}_up{i}_resize", dtype=dtype)(x)
            x = ReflectionPadding2D(1, name=f"{name}_up{i}_pad", dtype=dtype)(x)
            x = conv(x, f * mult, 3, 1, f"up{i}", padding="valid")
        else:
            x = keras.layers.Conv2DTranspose(
                f * mult, 3, strides=2, padding="same", kernel_initializer=_init(),
                name=f"{name}_up{i}_conv", dtype=dtype,
            )(x)
        x = norm_relu(x, f"up{i}")
        if config.skips:
            skip = keras.layers.Conv2D(
                f * mult, 1, padding="same", kernel_initializer="zeros", name=f"{name}_skip{i}_conv",
                dtype=dtype,
            )(encoder[1 - i])
            skip = keras.layers.Rescaling(SKIP_GAIN, name=f"{name}_skip{i}_gain", dtype=dtype)(skip)
            x = keras.layers.Add(name=f"{name}_skip{i}_add", dtype=dtype)([x, skip])

    x = ReflectionPadding2D(3, name=f"{name}_head_pad", dtype=dtype)(x)
    x = conv(x, config.channels, 7, 1, "head", padding="valid")
    outputs = keras.layers.Activation("tanh", dtype="float32", name=f"{name}_tanh")(x)
    if config.refiner_width:
        outputs = refined(config, name, inputs, outputs, dtype)
    return keras.Model(inputs, outputs, name=name)


def refined(config: ModelConfig, name: str, inputs, outputs, dtype=None):
    """``outputs`` plus the refiner's correction: ``config.refiner_layers`` 3x3 convolutions of
    ``config.refiner_width`` channels (ReLU) at full resolution on the input and ``outputs``
    side by side, then a 3x3 convolution initialised to zero, so that a new refiner leaves the
    output as it is (the others start at Glorot's scale, not the reference's N(0, 0.02), under
    which several layers pass almost nothing on to learn from). It sees a square of
    :func:`refiner_reach` pixels around each pixel (9x9 with 3 layers) and nothing of the frame,
    so it can mend what the downsampled path draws soft (a skull-stripped brain's edge) without
    making the output depend on the field of view."""
    x = keras.layers.Concatenate(name=f"{name}_refine_concat", dtype=dtype)([inputs, outputs])
    for i in range(config.refiner_layers):
        x = keras.layers.Conv2D(config.refiner_width, 3, padding="same", activation="relu",
                                kernel_initializer="glorot_uniform", name=f"{name}_refine{i}_conv",
                                dtype=dtype)(x)
    x = keras.layers.Conv2D(config.channels, 3, padding="same", kernel_initializer="zeros",
                            name=f"{name}_refine_out_conv", dtype=dtype)(x)
    return keras.layers.Add(dtype="float32", name=f"{name}_refine_add")([outputs, x])


def refiner_reach(layers: int) -> int:
    """The side of the square of input pixels a refiner of ``layers`` 3x3 convolutions (and its
    3x3 output convolution) sees around each pixel."""
    return 2 * (layers + 1) + 1


def _tap_responses() -> tuple:
    """(resize, transposed): each a (196, 9) matrix, one column per tap of a 3x3 kernel, of that tap's
    response to one impulse on a 7x7 grid: through a nearest-neighbour x2 resize and a 3x3
    convolution, and through a stride-2 transposed convolution (Keras's ``padding="same"``, which
    puts the kernel at twice the impulse's position)."""
    impulse = np.zeros((7, 7))
    impulse[3, 3] = 1.0
    upsampled = np.pad(np.repeat(np.repeat(impulse, 2, 0), 2, 1), 1)
    resize, transposed = [], []
    for a in range(3):
        for b in range(3):
            resize.append(np.ravel(upsampled[a:a + 14, b:b + 14]))
            placed = np.zeros((14, 14))
            placed[6 + a, 6 + b] = 1.0
            transposed.append(np.ravel(placed))
    return np.stack(resize, 1), np.stack(transposed, 1)


def resize_kernel(transposed: np.ndarray) -> np.ndarray:
    """The 3x3 kernel of a resize convolution (``upsampling="resize"``) that comes closest, in
    least squares, to a stride-2 3x3 transposed convolution's ``transposed`` kernel (Keras's
    layout, ``(3, 3, out, in)``); returned in a convolution's layout, ``(3, 3, in, out)``.

    A transposed convolution gives each of the four output phases its own taps, which is what
    draws a checkerboard; a resize convolution has one kernel for all four, so the closest one keeps
    what the phases share and drops their differences. This lets a model trained with transposed
    convolutions start a run with resize ones (``--init-from``); the bias carries over unchanged."""
    transposed = np.asarray(transposed)
    if transposed.shape[:2] != (3, 3) or transposed.ndim != 4:
        raise ValueError(f"expected a (3, 3, out, in) transposed-convolution kernel, got {transposed.shape}")
    fit, *_ = np.linalg.lstsq(*_tap_responses(), rcond=None)
    flat = transposed.reshape(9, *transposed.shape[2:])  # (9, out, in)
    return np.einsum("st,toi->sio", fit, flat).reshape(3, 3, transposed.shape[3], transposed.shape[2]).astype(
        transposed.dtype)


def build_discriminator(config: ModelConfig, name: str, dtype=None) -> keras.Model:
    """PatchGAN discriminator (70x70 receptive field with 3 layers).

    Returns one float32 logit per patch; the LSGAN loss compares it with 1
    (real) or 0 (fake).
    """
    f = config.discriminator_filters
    inputs = keras.Input(shape=(None, None, config.channels), name=f"{name}_input")

    def block(x, filters, stride, tag, norm=True):
        x = keras.layers.ZeroPadding2D(1, name=f"{name}_{tag}_pad", dtype=dtype)(x)
        x = keras.layers.Conv2D(
            filters, 4, strides=stride, padding="valid", kernel_initializer=_init(),
            name=f"{name}_{tag}_conv", dtype=dtype,
        )(x)
        if norm:
            x = InstanceNormalization(name=f"{name}_{tag}_norm", dtype=dtype)(x)
        return keras.layers.LeakyReLU(0.2, name=f"{name}_{tag}_lrelu", dtype=dtype)(x)

    x = block(inputs, f, 2, "layer0", norm=False)
    for n in range(1, config.discriminator_layers):
        x = block(x, f * min(2**n, 8), 2, f"layer{n}")
    x = block(x, f * min(2**config.discriminator_layers, 8), 1, f"layer{config.discriminator_layers}")
    x = keras.layers.ZeroPadding2D(1, name=f"{name}_head_pad", dtype=dtype)(x)
    outputs = keras.layers.Conv2D(
        1, 4, strides=1, padding="valid", kernel_initializer=_init(),
        name=f"{name}_head_conv", dtype=dtype,
    )(x)
    outputs = keras.layers.Activation("linear", dtype="float32", name=f"{name}_logits")(outputs)
    return keras.Model(inputs, outputs, name=name)
