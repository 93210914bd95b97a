"""Every training augmentation, in one module, as one pipeline of objects.

A run's augmentations are a :class:`Pipeline` (``Pipeline.of(train_config, image_size)``), applied by
level, in this order:

- ``"pair"``: both images of an aligned pair alike (:class:`SkullStrip`);
- ``"image"``: every training image, both images of a pair alike (:class:`Zoom`, :class:`Blur`,
  :class:`SliceThickness`);
- :class:`CropAndFlip`: the reference crop and flip of every training image (always on);
- ``"input"``: only what the generators see; the targets, cycle targets and the discriminators'
  real images stay as they are (:class:`Contrast`, :class:`BiasField`, :class:`Noise`);
- ``"discriminator"``: the discriminators' inputs, real and generated alike, inside the train step
  (:class:`DiffAugment`, ``keras.ops``, imported when it is called).

The refiner stage's examples (:meth:`Pipeline.refiner_examples`) are the aligned pairs as given,
through each pair-level augmentation and with each input-level one.

Each augmentation of :data:`AUGMENTATIONS` is a class with the :class:`cyclegan.config.TrainConfig`
field that holds its fraction, its level and a one-line description. The training stream
(:class:`cyclegan.data.TrainingStream`), the train step, the run log and the model card all
iterate :data:`AUGMENTATIONS`, so that a new augmentation is one class here, one config field and
one test. Images are float arrays in [-1, 1]. NumPy and SciPy only at import: the model card
imports this module without Keras.
"""

from __future__ import annotations

import numpy as np

from cyclegan.masks import brain_mask  # noqa: F401  (the skull strip's mask)
from cyclegan.preprocessing import scale_intensities


def _unit(image: np.ndarray) -> np.ndarray:
    """A training image in [-1, 1] as float64 intensities in [0, 1]."""
    return (np.asarray(image, np.float64) + 1.0) / 2.0


def _rescaled(unit: np.ndarray, image: np.ndarray) -> np.ndarray:
    """``unit`` through its own robust window, or ``image`` as it was when ``unit`` is flat (a
    blank image has nothing to change)."""
    if not unit.max() > unit.min():
        return np.asarray(image, np.float32)
    return scale_intensities(unit)[0]


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


#: Range of a bias field's strength: the field's largest excursion from 1, up or down.
BIAS_STRENGTH = (0.1, 0.4)


def bias_field(shape, strength: float, rng: np.random.Generator) -> np.ndarray:
    """A smooth multiplicative field over ``shape``, as a receive coil's uneven sensitivity draws
    it: the exponential of a random polynomial of degree 3 in the image's coordinates, scaled so that
    its largest excursion from 1 is ``strength`` (up or down)."""
    if not 0.0 <= strength < 1.0:
        raise ValueError(f"strength must be in [0, 1), got {strength}")
    y, x = np.meshgrid(np.linspace(-1, 1, shape[0]), np.linspace(-1, 1, shape[1]), indexing="ij")
    terms = [x**i * y**j for i in range(4) for j in range(4 - i) if i + j > 0]
    log = sum(c * t for c, t in zip(rng.normal(size=len(terms)), terms))
    peak = float(np.abs(log).max())
    if peak == 0.0:
        return np.ones(shape)
    # exp(+-a) with a = log(1 + strength) up, log(1 - strength) down: scaled on the larger side.
    return np.exp(log / peak * np.log1p(strength))


def biased(image: np.ndarray, field: np.ndarray) -> np.ndarray:
    """``image`` (in [-1, 1]) times ``field``, rescaled through its own robust window."""
    return _rescaled(np.clip(_unit(image), 0.0, 1.0) * field, image)


#: Range of the noise's standard deviation, as a fraction of the image's intensity range.
NOISE_SIGMA = (0.01, 0.05)


def rician_noise(image: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """``image`` (in [-1, 1]) as a magnitude image with Gaussian noise of ``sigma`` (a fraction of
    its range) on its real and imaginary parts: Rician, with the air's noise floor a scanner's
    magnitude images have; rescaled through its own robust window."""
    unit = np.clip(_unit(image), 0.0, 1.0)
    real = unit + rng.normal(0.0, sigma, unit.shape)
    imaginary = rng.normal(0.0, sigma, unit.shape)
    return _rescaled(np.sqrt(real**2 + imaginary**2), image)


#: Range of the slice thickness (pixels of the model's 1 mm grid) thick-slice cuts are shown with.
THICKNESS = (2, 5)


def thick(image: np.ndarray, thickness: int, axis: int) -> np.ndarray:
    """``image`` (in [-1, 1]) averaged over ``thickness`` pixels along ``axis`` and sampled back at
    every pixel, as a coronal or sagittal cut of slices that thick shows its anatomy (partial
    volume along one direction); rescaled through its own robust window."""
    from scipy import ndimage

    if int(thickness) < 1 or axis not in (0, 1):
        raise ValueError(f"thickness must be at least 1 and axis 0 or 1, got {thickness}, {axis}")
    unit = ndimage.uniform_filter1d(_unit(image), int(thickness), axis=axis, mode="constant")
    return _rescaled(unit, image)


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


class BiasField(Augmentation):
    """A smooth multiplicative field (:func:`bias_field`, strength from :data:`BIAS_STRENGTH`) on the
    generator input, a field of its own for each image: another coil's uneven sensitivity."""

    field = "bias_field"
    level = "input"
    summary = (f"{{share}} of the generator inputs under a smooth bias field ({BIAS_STRENGTH[0] * 100:g}-"
               f"{BIAS_STRENGTH[1]:.0%} from flat; their targets stay)")

    def apply(self, rng, images):
        strength = float(rng.uniform(*BIAS_STRENGTH))
        return tuple(biased(image, bias_field(image.shape, strength, rng)) for image in images)


class Noise(Augmentation):
    """Rician noise (:func:`rician_noise`, sigma from :data:`NOISE_SIGMA`) on the generator input."""

    field = "noise"
    level = "input"
    summary = (f"{{share}} of the generator inputs with Rician noise (sigma {NOISE_SIGMA[0] * 100:g}-"
               f"{NOISE_SIGMA[1]:.0%} of the range; their targets stay)")

    def apply(self, rng, images):
        sigma = float(rng.uniform(*NOISE_SIGMA))
        return tuple(rician_noise(image, sigma, rng) for image in images)


class SliceThickness(Augmentation):
    """Thick-slice cuts (:func:`thick`): averaged over 2-5 px along rows or columns, every image of
    the tuple alike, as coronal and sagittal cuts of clinical 2-D scans (3-6 mm slices) look."""

    field = "slice_thickness"
    level = "image"
    summary = (f"{{share}} of the training images shown as cut across slices {THICKNESS[0]}-{THICKNESS[1]} px "
               "thick (a box average along rows or columns; both images of a pair alike)")

    def apply(self, rng, images):
        thickness = int(rng.integers(THICKNESS[0], THICKNESS[1] + 1))
        axis = int(rng.integers(0, 2))
        return tuple(thick(image, thickness, axis) for image in images)


class CropAndFlip:
    """The reference augmentation of every training image, always on (:func:`crop_and_flip`):
    pad with background, a random ``size`` crop, a random horizontal flip."""

    def __init__(self, size: int):
        if int(size) < 1:
            raise ValueError(f"the crop size must be at least 1, got {size}")
        self.size = int(size)

    def __call__(self, rng: np.random.Generator, image: np.ndarray, flip: bool | None = None,
                 offset: tuple[int, int] | None = None):
        """(crop, flip, offset); pass ``flip`` and ``offset`` to cut a partner image alike."""
        return crop_and_flip(image, self.size, rng, flip, offset)


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


class DiffAugment(Augmentation):
    """DiffAugment's shift and cutout (:func:`diff_augment`) of the discriminators' inputs, real and
    generated alike, in the train step: its draws are ``keras.random`` numbers of the step
    (:data:`AUGMENT_DRAWS` per image), so :meth:`batch` replaces the per-image ``__call__``."""

    field = "diff_augment"
    level = "discriminator"
    summary = "DiffAugment (shift and cutout) on {share} of the discriminators' inputs"

    def __call__(self, rng, images):
        raise TypeError("DiffAugment works on batches in the train step: call batch(images, draws)")

    def batch(self, images, draws):
        return diff_augment(images, draws, self.fraction)


#: Every augmentation with a fraction in the config, in the order the pipeline applies them.
AUGMENTATIONS = (SkullStrip, Zoom, Blur, SliceThickness, Contrast, BiasField, Noise, DiffAugment)
#: The levels the training stream applies, in order (crop and flip after "image");
#: "discriminator" augmentations run in the train step.
LEVELS = ("pair", "image", "input", "discriminator")


class Pipeline:
    """A run's augmentations, composed: ``fractions`` maps an augmentation's config field to its
    fraction (missing or 0: off; each is checked by its class). ``image_size`` is the crop's size
    (None: a pipeline that does not crop, as the train step's)."""

    def __init__(self, fractions: dict, image_size: int | None = None):
        unknown = set(fractions) - {cls.field for cls in AUGMENTATIONS}
        if unknown:
            raise ValueError(f"no augmentation is called {', '.join(sorted(unknown))}")
        made = [cls(fractions.get(cls.field, 0.0)) for cls in AUGMENTATIONS]
        self.fractions = {augmentation.field: augmentation.fraction for augmentation in made}
        self.stages = {level: [a for a in made if a.level == level and a.fraction > 0] for level in LEVELS}
        self.crop = CropAndFlip(image_size) if image_size is not None else None

    @classmethod
    def of(cls, train_config, image_size: int | None = None) -> "Pipeline":
        """The pipeline a :class:`cyclegan.config.TrainConfig` turns on."""
        return cls({c.field: getattr(train_config, c.field) for c in AUGMENTATIONS}, image_size)

    def __iter__(self):
        return (augmentation for level in LEVELS for augmentation in self.stages[level])

    def apply(self, level: str, rng: np.random.Generator, *images: np.ndarray) -> tuple:
        """``images`` through this pipeline's augmentations of ``level`` ("pair", "image" or "input")."""
        if level not in LEVELS[:3]:
            raise ValueError(f"level must be one of {', '.join(LEVELS[:3])}, got {level!r}")
        for augmentation in self.stages[level]:
            images = augmentation(rng, images)
        return images

    def crops(self, rng: np.random.Generator, image: np.ndarray, flip=None, offset=None) -> tuple:
        """(target crop, input crop, flip, offset): ``image`` cropped and flipped, and the input the
        generators see: ``image`` after the input-level augmentations, cut with the same crop and flip."""
        if self.crop is None:
            raise ValueError("this pipeline has no crop size")
        crop, flip, offset = self.crop(rng, image, flip, offset)
        (changed,) = self.apply("input", rng, image)
        source = crop if changed is image else self.crop(rng, changed, flip, offset)[0]
        return crop, source, flip, offset

    def discriminator(self, images, draws):
        """A batch of discriminator inputs through the discriminator-level augmentations, with the
        step's ``draws`` (shape ``(batch, AUGMENT_DRAWS)``)."""
        for augmentation in self.stages["discriminator"]:
            images = augmentation.batch(images, draws)
        return images

    def refiner_examples(self, pairs, seed: int = 0) -> list:
        """The refiner stage's examples of ``pairs`` with this pipeline's pair- and input-level
        augmentations, each drawn for every pair (:func:`refiner_examples`)."""
        return refiner_examples(pairs, self.stages["pair"] + self.stages["input"], seed)


def refiner_examples(pairs, augmentations=(), seed: int = 0) -> list:
    """[(t1, t2, t1 input, t2 input)] float32 arrays in [-1, 1] for the refiner stage
    (:func:`cyclegan.training.fit_refiners`): every aligned pair of ``pairs`` as given (each image its
    own input), then once more through each pair-level augmentation of ``augmentations`` that
    applies to it (the skull strip: where the T1 has a trustworthy brain mask); then each of those
    once more with the input-level augmentations on each input (one draw per image, as the training
    stream draws them), the targets as they are (blank pairs have no contrast to change). Every
    augmentation is drawn for every pair, whatever its fraction. Pairs of two sizes are left out."""
    rng = np.random.default_rng(seed)
    levels = {level: [a for a in augmentations if a.level == level] for level in ("pair", "input")}
    plain = []
    for t1, t2 in pairs:
        pair = (np.asarray(t1, np.float32), np.asarray(t2, np.float32))
        if pair[0].shape != pair[1].shape:
            continue
        plain.append(pair)
        for augmentation in levels["pair"]:
            if augmentation.applies(pair):
                plain.append(tuple(np.asarray(image, np.float32) for image in augmentation.apply(rng, pair)))
    examples = [(t1, t2, t1, t2) for t1, t2 in plain]
    if levels["input"]:
        for t1, t2 in plain:
            if not (t1.max() > t1.min() and t2.max() > t2.min()):
                continue
            inputs = []
            for image in (t1, t2):
                for augmentation in levels["input"]:
                    (image,) = augmentation.apply(rng, (image,))
                inputs.append(np.asarray(image, np.float32))
            examples.append((t1, t2, *inputs))
    return examples
