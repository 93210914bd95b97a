"""Training augmentations beyond crop and flip, as objects.

Each augmentation is a class with the :class:`cyclegan.config.TrainConfig`
field that holds its fraction, the level it works at and a one-line
description. The training stream applies them (:class:`cyclegan.data.TrainingStream`),
the train command logs them and the model card lists them, all by iterating
:data:`AUGMENTATIONS`, so that a new one is declared here and in the config only.

Levels: ``"pair"`` changes both images of an aligned pair alike, ``"image"``
every training image (both images of a pair alike), ``"input"`` only what the
generators see (the targets, cycle targets and the discriminators' real
images stay as they are). Images are float arrays in [-1, 1]. NumPy and SciPy
only: the model card imports this module without Keras.
"""

from __future__ import annotations

import numpy as np

from cyclegan.masks import BRAIN_FRACTION, brain_mask  # noqa: F401
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
