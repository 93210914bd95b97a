"""Every training augmentation, in one module.

- :func:`crop_and_flip`: the reference crop and flip of every training image;
- the augmentations of :data:`AUGMENTATIONS` (skull strip, zoom, blur, contrast), as objects;
- :func:`diff_augment`: DiffAugment's shift and cutout of the discriminators' inputs (``keras.ops``,
  imported when it is called);
- :func:`refiner_examples`: the refiner stage's examples (pairs as given, skull-stripped and with
  another contrast).

Each augmentation of :data:`AUGMENTATIONS` is a class with the :class:`cyclegan.config.TrainConfig`
field that holds its fraction, the level it works at and a one-line
description. The training stream applies them (:class:`cyclegan.data.TrainingStream`),
the train command logs them and the model card lists them, all by iterating
:data:`AUGMENTATIONS`, so that a new one is declared here and in the config only.

Levels: ``"pair"`` changes both images of an aligned pair alike, ``"image"``
every training image (both images of a pair alike), ``"input"`` only what the
generators see (the targets, cycle targets and the discriminators' real
images stay as they are). Images are float arrays in [-1, 1]. NumPy and SciPy
only at import: the model card imports this module without Keras.
"""

from __future__ import annotations

import numpy as np

from cyclegan.masks import brain_mask  # noqa: F401  (the skull strip's mask)
from cyclegan.preprocessing import scale_intensities


def _unit(image: np.ndarray) -> np.ndarray:
    """A training image in [-1, 1] as float64 intensities in [0, 1]."""
    return (np.asarray(image, np.float64) + 1.0) / 2.0


def skull_stripped(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """``image`` (in [-1, 1]) with everything outside ``mask`` set to background,
    rescaled through its own robust window as a skull-stripped upload would be."""
    unit = np.where(mask, _unit(image), 0.0)
    return scale_intensities(unit)[0]


#: Range of the zoom factor of zoomed training images (drawn log-uniformly): under 1 the
#: head shrinks inside a wider field of view, over 1 it fills the frame, as another
#: scanner's field of view or pixel size shows it.
ZOOM_SCALE = (0.6, 1.4)


def zoomed(image: np.ndarray, scale: float) -> np.ndarray:
    """``image`` (in [-1, 1]) magnified ``scale`` times about its centre on its own grid
    (background beyond its edges; low-pass filtered first when it shrinks), rescaled
    through its own robust window as an upload with that field of view would be."""
    from scipy import ndimage

    scale = float(scale)
    if not scale > 0:
        raise ValueError(f"scale must be positive, got {scale}")
    unit = _unit(image)
    if scale < 1.0:  # keep the shrunk image free of aliasing, as a coarser scan would be
        unit = ndimage.gaussian_filter(unit, 0.5 * (1.0 / scale - 1.0), mode="constant")
    centre = (np.asarray(unit.shape, np.float64) - 1.0) / 2.0
    # Output pixel o samples the input at centre + (o - centre) / scale.
    out = ndimage.affine_transform(unit, np.full(2, 1.0 / scale), offset=centre * (1.0 - 1.0 / scale),
                                   order=1, mode="constant", cval=0.0)
    if not out.max() > out.min():
        return np.asarray(image, np.float32)
    return scale_intensities(out)[0]


#: Range of the Gaussian sigma (pixels) of blurred training images.
BLUR_SIGMA = (0.5, 2.0)


def blurred(image: np.ndarray, sigma: float) -> np.ndarray:
    """``image`` (in [-1, 1]) Gaussian-blurred by ``sigma`` pixels, rescaled through
    its own robust window as a smooth, low-resolution upload would be."""
    from scipy import ndimage

    unit = ndimage.gaussian_filter(_unit(image), sigma, mode="constant")
    return scale_intensities(unit)[0]


#: Range of the random gamma of contrast-changed generator inputs (drawn
#: log-uniformly, so a gamma and its inverse are equally likely).
CONTRAST_GAMMA = (0.5, 2.0)


def gamma_contrast(image: np.ndarray, gamma: float) -> np.ndarray:
    """``image`` (in [-1, 1]) with its [0, 1] intensities raised to ``gamma``,
    rescaled through its own robust window. A gamma above 1 darkens the mid
    tones and stretches the bright end (more contrast between the bright
    tissues), below 1 the reverse: the tissue ratios of another scanner or
    sequence, with the background kept black and the order of the
    intensities kept."""
    if gamma <= 0:
        raise ValueError(f"gamma must be positive, got {gamma}")
    unit = np.clip(_unit(image), 0.0, 1.0)
    return scale_intensities(unit**gamma)[0]


class Augmentation:
    """One augmentation drawn with probability ``fraction`` (no random draw when 0)."""

    field = ""  # the TrainConfig field of its fraction
    level = ""  # "pair", "image" or "input"
    summary = ""  # "{share} of ...": the run log and the model card

    def __init__(self, fraction: float):
        fraction = float(fraction)
        if not 0.0 <= fraction <= 1.0:
            raise ValueError(f"{self.field} must be a fraction in [0, 1], got {fraction}")
        self.fraction = fraction

    def describe(self) -> str:
        return self.summary.format(share=f"{self.fraction:.0%}")

    def __call__(self, rng: np.random.Generator, images: tuple) -> tuple:
        if self.fraction > 0 and self.applies(images) and rng.random() < self.fraction:
            return self.apply(rng, images)
        return images

    def applies(self, images: tuple) -> bool:
        return True

    def apply(self, rng: np.random.Generator, images: tuple) -> tuple:
        raise NotImplementedError


class SkullStrip(Augmentation):
    """Both images of an aligned pair cut with the T1 image's brain mask (pairs
    without a trustworthy mask stay whole, and draw nothing)."""

    field = "skull_strip"
    level = "pair"
    summary = "{share} of the aligned pairs with a brain mask shown skull-stripped"

    def __init__(self, fraction: float):
        super().__init__(fraction)
        self._cache = {}  # id of the T1 array -> (the array, stripped pair or None)

    def stripped(self, images: tuple):
        t1, t2 = images
        key = id(t1)
        if key not in self._cache or self._cache[key][0] is not t1:
            mask = brain_mask(t1) if t1.shape == t2.shape else None
            self._cache[key] = (t1, None if mask is None else (skull_stripped(t1, mask), skull_stripped(t2, mask)))
        return self._cache[key][1]

    def applies(self, images: tuple) -> bool:
        return self.stripped(images) is not None

    def apply(self, rng, images):
        return self.stripped(images)


class Zoom(Augmentation):
    """Magnified or shrunk about the centre by a factor from :data:`ZOOM_SCALE`, drawn
    log-uniformly, every image of the tuple alike."""

    field = "zoom"
    level = "image"
    summary = (f"{{share}} of the training images zoomed {ZOOM_SCALE[0]:g}-{ZOOM_SCALE[1]:g} times about "
               "their centre (both images of a pair alike)")

    def apply(self, rng, images):
        low, high = np.log(ZOOM_SCALE)
        scale = float(np.exp(rng.uniform(low, high)))
        return tuple(zoomed(image, scale) for image in images)


class Blur(Augmentation):
    """Gaussian blur with a sigma drawn from :data:`BLUR_SIGMA`, every image of the tuple alike."""

    field = "blur"
    level = "image"
    summary = (f"{{share}} of the training images Gaussian-blurred (sigma {BLUR_SIGMA[0]:g}-{BLUR_SIGMA[1]:g} px; "
               "both images of a pair alike)")

    def apply(self, rng, images):
        sigma = float(rng.uniform(*BLUR_SIGMA))
        return tuple(blurred(image, sigma) for image in images)


class Contrast(Augmentation):
    """A random gamma from :data:`CONTRAST_GAMMA`, drawn log-uniformly, on the generator input."""

    field = "contrast"
    level = "input"
    summary = (f"{{share}} of the generator inputs with a random gamma ({CONTRAST_GAMMA[0]:g}-"
               f"{CONTRAST_GAMMA[1]:g}; their targets stay)")

    def apply(self, rng, images):
        low, high = np.log(CONTRAST_GAMMA)
        gamma = float(np.exp(rng.uniform(low, high)))
        return tuple(gamma_contrast(image, gamma) for image in images)


#: Every augmentation, in the order the training stream applies them.
AUGMENTATIONS = (SkullStrip, Zoom, Blur, Contrast)


def augmentations(train_config) -> list:
    """The augmentations a :class:`cyclegan.config.TrainConfig` turns on (fraction > 0)."""
    return [cls(getattr(train_config, cls.field)) for cls in AUGMENTATIONS if getattr(train_config, cls.field) > 0]


def crop_and_flip(image: np.ndarray, size: int, rng: np.random.Generator, flip: bool | None = None,
            offset: tuple[int, int] | None = None):
    """The reference augmentation of every training image: pad with background, random ``size``
    crop, random flip.

    Returns (crop, flip, offset) so that a partner image can get the same crop.
    """
    margin = size // 8
    height, width = image.shape
    pad_h = max(size - height, 0) + 2 * margin
    pad_w = max(size - width, 0) + 2 * margin
    top, left = pad_h // 2, pad_w // 2
    padded = np.pad(image, [(top, pad_h - top), (left, pad_w - left)], constant_values=-1.0)
    if offset is None:
        offset = (
            int(rng.integers(0, padded.shape[0] - size + 1)),
            int(rng.integers(0, padded.shape[1] - size + 1)),
        )
    y, x = offset
    crop = padded[y : y + size, x : x + size]
    if flip is None:
        flip = bool(rng.random() < 0.5)
    if flip:
        crop = crop[:, ::-1]
    return np.ascontiguousarray(crop, dtype=np.float32), flip, offset


#: DiffAugment's settings (Zhao et al. 2020, "Differentiable augmentation for data-efficient GAN
#: training"): shifts of up to this fraction of the image size each way, and one square hole
#: this fraction of the image size on a side.
AUGMENT_TRANSLATION = 0.125
AUGMENT_CUTOUT = 0.5
#: Uniform numbers one image's augmentation draws: whether to augment, shift y, shift x, hole y, hole x.
AUGMENT_DRAWS = 5
#: Discriminator inputs augmented each step: the generators' fakes (2), then real and pooled
#: fake images of each contrast (4).
AUGMENT_VIEWS = 6


def diff_augment(images, draws, probability: float):
    """DiffAugment's translation and cutout, differentiable in ``images``.

    ``draws`` (shape ``(batch, AUGMENT_DRAWS)``, uniform in [0, 1)) decide each image's
    augmentation: with probability ``probability`` the image is shifted by up to
    ``AUGMENT_TRANSLATION`` of its size in each direction (uncovered pixels become -1, the
    background) and a square of ``AUGMENT_CUTOUT`` of its size is set to 0; otherwise it is
    returned as it is. Real and generated images go through the same random map before a
    discriminator, so the discriminator cannot learn the training images by heart, and the
    generators' gradients pass through the map unchanged in kind.
    """
    from keras import ops

    height, width = int(images.shape[1]), int(images.shape[2])
    draws = ops.cast(draws, "float32")

    def offsets(u, reach):
        return ops.cast(ops.floor(u * (2 * reach + 1)), "int32") - reach

    def hole_start(u, size, side):
        return ops.cast(ops.floor(u * (size - side + 1)), "int32")

    dy = offsets(draws[:, 1], int(height * AUGMENT_TRANSLATION))
    dx = offsets(draws[:, 2], int(width * AUGMENT_TRANSLATION))
    rows = ops.arange(height, dtype="int32")[None, :] - dy[:, None]  # source row of each row
    cols = ops.arange(width, dtype="int32")[None, :] - dx[:, None]
    inside = ((rows >= 0) & (rows < height))[:, :, None] & ((cols >= 0) & (cols < width))[:, None, :]
    rows = ops.clip(rows, 0, height - 1)
    cols = ops.clip(cols, 0, width - 1)
    shape = ops.shape(images)
    moved = ops.take_along_axis(images, ops.broadcast_to(rows[:, :, None, None], shape), axis=1)
    moved = ops.take_along_axis(moved, ops.broadcast_to(cols[:, None, :, None], shape), axis=2)
    background = -ops.ones_like(moved)
    moved = ops.where(inside[..., None], moved, background)

    side_y, side_x = int(round(height * AUGMENT_CUTOUT)), int(round(width * AUGMENT_CUTOUT))
    y0 = hole_start(draws[:, 3], height, side_y)[:, None]
    x0 = hole_start(draws[:, 4], width, side_x)[:, None]
    ys = ops.arange(height, dtype="int32")[None, :]
    xs = ops.arange(width, dtype="int32")[None, :]
    hole = ((ys >= y0) & (ys < y0 + side_y))[:, :, None] & ((xs >= x0) & (xs < x0 + side_x))[:, None, :]
    moved = ops.where(hole[..., None], ops.zeros_like(moved), moved)

    apply = (draws[:, 0] < probability)[:, None, None, None]
    return ops.where(apply, moved, images)


def refiner_examples(pairs, skull_strip: bool = False, contrast: bool = False, seed: int = 0) -> list:
    """[(t1, t2, t1 input, t2 input)] float32 arrays in [-1, 1] for :func:`fit_refiners`: every
    aligned pair of ``pairs`` as given (each image its own input) and, with ``skull_strip``, both
    images cut to the brain mask of the T1 where it has a trustworthy one
    (:class:`cyclegan.augment.SkullStrip`); with ``contrast``, each of those once more with a
    random gamma on each input (:class:`cyclegan.augment.Contrast`), the targets as they
    are (as ``TrainConfig.contrast`` shows generator inputs; blank pairs have none). Pairs of two
    sizes are left out."""
    strip, contrasted = SkullStrip(1.0), Contrast(1.0)
    rng = np.random.default_rng(seed)
    plain = []
    for t1, t2 in pairs:
        pair = (np.asarray(t1, np.float32), np.asarray(t2, np.float32))
        if pair[0].shape != pair[1].shape:
            continue
        plain.append(pair)
        stripped = strip.stripped(pair) if skull_strip else None
        if stripped is not None:
            plain.append(tuple(np.asarray(image, np.float32) for image in stripped))
    examples = [(t1, t2, t1, t2) for t1, t2 in plain]
    if contrast:
        for t1, t2 in plain:
            if not (t1.max() > t1.min() and t2.max() > t2.min()):
                continue  # a blank image has no contrast to change
            # One gamma for each input, as the training stream draws them (one image at a time).
            inputs = [contrasted.apply(rng, (image,))[0] for image in (t1, t2)]
            examples.append((t1, t2, *(np.asarray(image, np.float32) for image in inputs)))
    return examples
