"""Translating images with a pair of trained generators."""

from __future__ import annotations

import contextlib
import os
import sys
from typing import Callable, Iterable

import keras
import numpy as np

from cyclegan.errors import InputImageError
from cyclegan.preprocessing import (
    PAD_MULTIPLE,
    finish,
    head_window,
    pad_to_multiple,
    reframe_above,
    scale_intensities,
    to_grayscale,
)

DIRECTIONS = ("t1_to_t2", "t2_to_t1")
#: Side of the square image used to warm the compiled path up on load.
WARMUP_SIZE = 256


PRECISIONS = ("float32", "bfloat16", "auto")


@contextlib.contextmanager
def _native_stderr_silenced():
    """Send file descriptor 2 (where native libraries log) to the null device for a while."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):
        yield
        return
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def cpu_has_native_bf16() -> bool:
    """True on CPUs with bf16 matrix instructions (AMX or AVX512-BF16)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            flags = next((line for line in handle if line.startswith("flags")), "")
    except OSError:
        return False
    return " amx_bf16" in flags or " avx512_bf16" in flags


def resolve_precision(precision: str) -> str:
    """"auto" picks bfloat16 for TensorFlow on CPUs with native bf16, else float32."""
    if precision not in PRECISIONS:
        raise InputImageError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if precision != "auto":
        return precision
    if keras.backend.backend() == "tensorflow" and cpu_has_native_bf16():
        import tensorflow as tf

        if not tf.config.list_physical_devices("GPU"):
            return "bfloat16"
    return "float32"


def compile_generator(model: keras.Model, precision: str = "float32") -> Callable[[np.ndarray], np.ndarray]:
    """A compiled inference function of ``model`` on the current backend.

    float32 runs through XLA (``jit_compile=True``): on the CPU, Keras leaves
    XLA off by default, which is about half as fast. bfloat16 ``model``s (a
    mixed_bfloat16 copy) run as a TensorFlow graph without XLA, where oneDNN
    uses the CPU's bf16 matrix units; XLA's CPU backend does not. The function
    takes and returns float32 numpy arrays of shape (batch, H, W, 1).
    """
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        spec = tf.TensorSpec((None, None, None, model.input_shape[-1]), tf.float32)
        fn = tf.function(
            lambda x: model(x, training=False),
            jit_compile=precision == "float32",
            input_signature=[spec],
        )
        return lambda x: fn(tf.constant(x, tf.float32)).numpy()
    if backend == "jax":
        import jax

        trainable = [v.value for v in model.trainable_variables]
        non_trainable = [v.value for v in model.non_trainable_variables]

        @jax.jit
        def jitted(trainable, non_trainable, x):
            return model.stateless_call(trainable, non_trainable, x, training=False)[0]

        return lambda x: np.asarray(jitted(trainable, non_trainable, x), dtype=np.float32)
    return lambda x: keras.ops.convert_to_numpy(model(x, training=False))


def _bf16_copy(model: keras.Model, config) -> keras.Model:
    from cyclegan.models import build_generator

    copy = build_generator(config, model.name, dtype="mixed_bfloat16")
    copy.set_weights(model.get_weights())
    return copy


def check_direction(direction: str) -> str:
    if direction not in DIRECTIONS:
        raise InputImageError(
            f"direction must be one of {', '.join(DIRECTIONS)}, got {direction!r}"
        )
    return direction


class Translator:
    """T1-weighted <-> T2-weighted translation with two generators.

    Every method takes a numpy array or PIL image (see
    :mod:`cyclegan.preprocessing` for what is accepted) and returns a float32
    numpy array in [0, 1] with the input's height and width.
    """

    def __init__(
        self,
        t1_to_t2: keras.Model,
        t2_to_t1: keras.Model,
        config=None,
        source: str | None = None,
        card: dict | None = None,
        warmup: bool = True,
        precision: str = "float32",
        reframe: bool = True,
    ):
        self.generators = {"t1_to_t2": t1_to_t2, "t2_to_t1": t2_to_t1}
        #: Translate an input whose head leaves far more air around it than the training slices
        #: did within a closer frame around the head (:func:`cyclegan.preprocessing.head_window`),
        #: the rest of the frame left black; False keeps every input's own frame.
        self.reframe = bool(reframe)
        self.config = config
        self.source = source
        #: Contents of config.json (metrics, training record), when loaded from a folder.
        self.card = card or {}
        #: Mean air a side (pixels) above which an input is brought closer: what the model's
        #: training slices had at most (its training record), or the default model's.
        self.reframe_above = reframe_above(self.card)
        #: "float32" (XLA, the reference) or "bfloat16" (faster on CPUs with bf16 units;
        #: outputs within about 0.01 mean absolute difference, see benchmarks/speed.py).
        self.precision = resolve_precision(precision)
        if self.precision == "bfloat16" and config is None:
            raise InputImageError("bfloat16 inference needs the model's config")
        runners = {
            name: _bf16_copy(model, config) if self.precision == "bfloat16" else model
            for name, model in self.generators.items()
        }
        self._compiled = {
            name: compile_generator(model, self.precision) for name, model in runners.items()
        }
        if warmup:
            self.warmup()

    def __repr__(self):
        return (f"Translator(source={self.source!r}, precision={self.precision!r}, reframe={self.reframe!r}, "
                f"config={self.config!r})")

    def warmup(self, size: int = WARMUP_SIZE) -> None:
        """Compile both directions for one ``size`` x ``size`` slice.

        XLA's native logger announces its first compilation on the process's
        stderr whatever the log level; that line is kept out unless
        ``TF_CPP_MIN_LOG_LEVEL`` asks for info messages.
        """
        dummy = np.zeros((1, size, size, 1), np.float32)
        quiet = os.environ.get("TF_CPP_MIN_LOG_LEVEL", "0") not in ("0", "")
        with _native_stderr_silenced() if quiet else contextlib.nullcontext():
            for fn in self._compiled.values():
                fn(dummy)

    def _run(self, direction: str, batch: np.ndarray) -> np.ndarray:
        return self._compiled[check_direction(direction)](batch)

    def _framed(self, image) -> tuple:
        """(the input's shape, the closer frame or None, the input within it in [-1, 1])."""
        gray = to_grayscale(image)
        scaled = scale_intensities(gray)[0]
        window = head_window([scaled], above=self.reframe_above) if self.reframe else None
        if window is not None:
            top, bottom, left, right = window
            scaled = scale_intensities(gray[top:bottom, left:right])[0]
        return gray.shape, window, scaled

    def closer_frame(self, image) -> tuple | None:
        """``(top, bottom, left, right)`` of the frame around the head that ``image`` is translated
        within, or None when it keeps its own frame (see :attr:`reframe`)."""
        return self._framed(image)[1]

    def _stack(self, slices: Iterable) -> tuple:
        """(grayscale slices of one size, the indices of those not blank, the stack's one closer
        frame or None); raises :class:`InputImageError` for no slices or slices of several sizes."""
        grays = [to_grayscale(s) for s in slices]
        if not grays:
            raise InputImageError("no slices to translate")
        shapes = {g.shape for g in grays}
        if len(shapes) > 1:
            raise InputImageError(f"all slices must have the same size, got {sorted(shapes)}")
        # Blank slices (common at the ends of a volume) stay blank.
        todo = [i for i, g in enumerate(grays) if g.max() > g.min()]
        window = None
        if self.reframe and todo:
            window = head_window([scale_intensities(grays[i])[0] for i in todo], above=self.reframe_above)
        return grays, todo, window

    def closer_frame_of_slices(self, slices: Iterable) -> tuple | None:
        """The frame :meth:`translate_slices` translates a stack of slices of one size within,
        or None when the stack keeps its own frame."""
        return self._stack(slices)[2]

    @staticmethod
    def _pasted(image: np.ndarray, shape: tuple, window) -> np.ndarray:
        """``image`` (made within ``window``) back on the input's grid, black around it."""
        if window is None:
            return image
        top, bottom, left, right = window
        full = np.zeros(shape, np.float32)
        full[top:bottom, left:right] = image
        return full

    def translate(self, image, direction: str) -> np.ndarray:
        """Translate one image in ``direction`` ("t1_to_t2" or "t2_to_t1")."""
        check_direction(direction)
        shape, window, scaled = self._framed(image)
        output = self._run(direction, pad_to_multiple(scaled, PAD_MULTIPLE)[None, ..., None])[0]
        return self._pasted(finish(output, *scaled.shape), shape, window)

    def t1_to_t2(self, image) -> np.ndarray:
        """A T2-weighted image of the anatomy in a T1-weighted ``image``."""
        return self.translate(image, "t1_to_t2")

    def t2_to_t1(self, image) -> np.ndarray:
        """A T1-weighted image of the anatomy in a T2-weighted ``image``."""
        return self.translate(image, "t2_to_t1")

    def cycle(self, image, direction: str) -> np.ndarray:
        """Translate in ``direction`` and back: the reconstruction of ``image``."""
        return self.translate_with_cycle(image, direction)[1]

    def translate_with_cycle(self, image, direction: str) -> tuple[np.ndarray, np.ndarray]:
        """(translation, reconstruction) of one image, sharing the forward pass."""
        translation, reconstruction, _ = self.cycle_check(image, direction)
        return translation, reconstruction

    def cycle_check(self, image, direction: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(translation, reconstruction, input), all in [0, 1] on the input's grid.

        The input comes back scaled exactly as the network saw it, so that
        ``abs(input - reconstruction)`` is the round-trip error.
        """
        check_direction(direction)
        back = "t2_to_t1" if direction == "t1_to_t2" else "t1_to_t2"
        shape, window, scaled = self._framed(image)
        height, width = scaled.shape
        padded = pad_to_multiple(scaled, PAD_MULTIPLE)
        forward = self._run(direction, padded[None, ..., None])
        # The reconstruction starts from the translation as the network made
        # it, cropped and re-padded like a fresh input.
        cropped = forward[0, :height, :width, 0]
        backward = self._run(back, pad_to_multiple(cropped, PAD_MULTIPLE)[None, ..., None])
        return tuple(self._pasted(finish(array, height, width), shape, window)
                     for array in (forward[0], backward[0], padded))

    def translate_slices(
        self,
        slices: Iterable,
        direction: str,
        batch_size: int = 8,
        progress: Callable[[int, int], None] | None = None,
    ) -> np.ndarray:
        """Translate a stack of 2-D slices of one size, ``batch_size`` at a time.

        Each slice is scaled on its own window, as single images are; blank
        (constant) slices come back as zeros. With :attr:`reframe`, one closer
        frame around the head of every slice serves the whole stack. Returns a float32 array
        (n, H, W) in [0, 1]. ``progress(done, total)`` is called
        after each batch.
        """
        check_direction(direction)
        grays, todo, window = self._stack(slices)
        shape = grays[0].shape
        if window is not None:  # one closer frame for the whole stack
            top, bottom, left, right = window
            grays = [g[top:bottom, left:right] for g in grays]
            todo = [i for i in todo if grays[i].max() > grays[i].min()]
        height, width = grays[0].shape
        out = np.zeros((len(grays), *shape), np.float32)
        for start in range(0, len(todo), batch_size):
            chunk = todo[start : start + batch_size]
            batch = np.stack(
                [pad_to_multiple(scale_intensities(grays[i])[0]) for i in chunk]
            )[..., None]
            if len(chunk) < batch_size and len(todo) > batch_size:
                # Keep one batch shape, so the compiled function is reused.
                filler = np.full((batch_size - len(chunk), *batch.shape[1:]), -1.0, np.float32)
                batch = np.concatenate([batch, filler])
            result = self._run(direction, batch)
            for row, i in enumerate(chunk):
                out[i] = self._pasted(finish(result[row], height, width), shape, window)
            if progress is not None:
                progress(min(start + batch_size, len(todo)), len(todo))
        return out
