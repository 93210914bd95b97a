"""Pre- and post-processing shared by training, inference and the app.

Any numpy array or PIL image (bool, integer or float dtype; grayscale, RGB or
RGBA; 32 to 2048 pixels a side) becomes one float32 grayscale image in [-1, 1]
with robust (percentile) intensity scaling, padded to the size the network
needs; the network's output is cropped back to the input's height and width
and mapped to [0, 1]. Anything else raises :class:`InputImageError` with a
message meant for the person who supplied the image.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from cyclegan.errors import InputImageError
from cyclegan.masks import head_box

MIN_SIDE = 32
MAX_SIDE = 2048
#: Intensities below/above these percentiles are clipped before scaling.
LOW_PERCENTILE = 0.5
HIGH_PERCENTILE = 99.5
#: Padded sides are multiples of this (the generator needs 4; a coarser grid
#: keeps the number of compiled shapes small).
PAD_MULTIPLE = 16
#: ITU-R BT.601 luma weights for RGB input.
_LUMA = np.array([0.299, 0.587, 0.114])


def to_grayscale(image) -> np.ndarray:
    """Validate ``image`` and return it as a finite 2-D float64 array.

    Accepts a PIL image or anything ``np.asarray`` understands, of shape
    (H, W), (H, W, 1), (H, W, 3) or (H, W, 4). RGB is reduced to luminance;
    an alpha channel is ignored.
    """
    try:
        from PIL import Image
    except ImportError:  # pragma: no cover - pillow is a dependency
        Image = None
    if Image is not None and isinstance(image, Image.Image):
        image = _pil_to_array(image)
    try:
        array = np.asarray(image)
    except Exception as err:  # e.g. ragged nested lists
        raise InputImageError(f"cannot read the input as an image array: {err}") from None
    if array.dtype == bool:
        array = array.astype(np.uint8)
    if array.dtype.kind not in "uif":
        raise InputImageError(
            f"image must hold numbers (integer or float), got dtype {array.dtype}"
        )
    if array.size == 0:
        raise InputImageError(f"image is empty (shape {array.shape})")
    if array.ndim == 3 and array.shape[-1] in (1, 3, 4):
        channels = array.shape[-1]
        if channels == 1:
            array = array[..., 0]
        else:
            array = array[..., :3].astype(np.float64) @ _LUMA
    elif array.ndim != 2:
        raise InputImageError(
            "image must be 2-D grayscale (H, W) or (H, W, C) with 1, 3 or 4 channels, "
            f"got shape {array.shape}"
        )
    height, width = array.shape
    if min(height, width) < MIN_SIDE:
        raise InputImageError(
            f"image is too small: {height}x{width} pixels; each side must be at least {MIN_SIDE}"
        )
    if max(height, width) > MAX_SIDE:
        raise InputImageError(
            f"image is too large: {height}x{width} pixels; each side must be at most {MAX_SIDE}"
        )
    array = array.astype(np.float64)
    if not np.all(np.isfinite(array)):
        raise InputImageError("image contains NaN or infinite values")
    return array


def _pil_to_array(image) -> np.ndarray:
    mode = image.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F", "L", "1"):
        return np.asarray(image)
    if mode in ("LA", "PA", "RGBA", "P", "La", "RGBa"):
        return np.asarray(image.convert("RGBA"))
    return np.asarray(image.convert("RGB"))


@dataclasses.dataclass(frozen=True)
class Prepared:
    """A network-ready image and what is needed to undo the preparation."""

    array: np.ndarray  # float32, (padded_h, padded_w), values in [-1, 1]
    height: int
    width: int
    low: float
    high: float


def robust_range(gray: np.ndarray) -> tuple[float, float]:
    """The (low, high) intensity window of ``gray``; raises on constant images."""
    peak = float(np.max(np.abs(gray)))
    low, high = np.percentile(gray, [LOW_PERCENTILE, HIGH_PERCENTILE])
    if not high > low:
        low, high = float(gray.min()), float(gray.max())
    if not high > low or (high - low) <= peak * 1e-12:
        raise InputImageError(
            "image is constant (every pixel has the same value), so it shows no anatomy"
        )
    return float(low), float(high)


def scale_intensities(gray: np.ndarray) -> tuple[np.ndarray, float, float]:
    """Map ``gray`` to float32 [-1, 1] through its robust window."""
    peak = float(np.max(np.abs(gray)))
    if peak > 1e30:  # keep (x - low) / (high - low) finite for huge values
        gray = gray / peak
    low, high = robust_range(gray)
    scaled = np.clip((gray - low) / (high - low), 0.0, 1.0)
    return (scaled * 2.0 - 1.0).astype(np.float32), low, high


def to_uint8(image01) -> np.ndarray:
    """An image of [0, 1] intensities as 8-bit pixels (clipped, rounded)."""
    return (np.clip(np.asarray(image01, np.float64), 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def pad_to_multiple(array: np.ndarray, multiple: int = PAD_MULTIPLE, value: float = -1.0):
    """Pad a 2-D array at the bottom and right to sides that are multiples of ``multiple``."""
    height, width = array.shape[:2]
    pad_h = (-height) % multiple
    pad_w = (-width) % multiple
    if not (pad_h or pad_w):
        return array
    widths = [(0, pad_h), (0, pad_w)] + [(0, 0)] * (array.ndim - 2)
    return np.pad(array, widths, mode="constant", constant_values=value)


def prepare(image, multiple: int = PAD_MULTIPLE) -> Prepared:
    """Validate, convert to grayscale, scale to [-1, 1] and pad ``image``."""
    gray = to_grayscale(image)
    scaled, low, high = scale_intensities(gray)
    return Prepared(pad_to_multiple(scaled, multiple), gray.shape[0], gray.shape[1], low, high)


#: Mean air, in pixels, between the head and the four sides of the frame above which an input is
#: translated within a closer frame (:func:`head_window`), for a model that records no framing of
#: its own: more than any slice of the default model's two training data sets had (at most 53 px,
#: a slice near the top of a real head; the users' data set's at most 16 px).
REFRAME_ABOVE = 56
#: Pixels of air beyond the most that a model's training slices had (``framing`` in its training
#: record, :func:`most_air`) before an input is brought closer.
REFRAME_SLACK = 2
#: Air, in pixels, left on every side of the head in that closer frame.
REFRAME_MARGIN = 16


def mean_air(box, shape) -> float:
    """Pixels between the head's bounding ``box`` and the sides of a frame of ``shape``, on
    average over the four sides."""
    top, bottom, left, right = box
    return (top + (shape[0] - bottom) + left + (shape[1] - right)) / 4.0


def most_air(scaled_images) -> float | None:
    """The most :func:`mean_air` of any one of ``scaled_images`` (each in [-1, 1], any sizes):
    what a model trained on them has seen, recorded with it as ``framing``."""
    found = []
    for image in scaled_images:
        box = head_box([image])
        if box is not None:
            found.append(mean_air(box, np.shape(image)))
    return max(found) if found else None


def head_window(scaled_images, margin: int = REFRAME_MARGIN, above: float = REFRAME_ABOVE):
    """``(top, bottom, left, right)`` of a closer frame around the head, or None.

    ``scaled_images`` are one or more images of one size in [-1, 1] (a volume's slices share
    one frame; the head as :func:`head_box` finds it). When the head leaves, on average over
    the four sides, more than ``above`` pixels of air, the frame is the head's bounding box
    widened by ``margin`` on every side (within the image, at least :data:`MIN_SIDE` a side);
    otherwise None: the generators keep the input's own frame. What they make moves with the
    share of the frame the head fills (benchmarks/NOTES.md, "The field of view"), so an input
    framed far wider than any training slice is brought closer.
    """
    images = [np.asarray(image) for image in scaled_images]
    box = head_box(images)
    if box is None or mean_air(box, images[0].shape) <= above:
        return None
    height, width = images[0].shape[:2]
    window = []
    for low, high, side in ((box[0], box[1], height), (box[2], box[3], width)):
        low, high = max(low - margin, 0), min(high + margin, side)
        if high - low < MIN_SIDE:  # images are at least MIN_SIDE a side: centre a window of that
            low = max(0, min((low + high) // 2 - MIN_SIDE // 2, side - MIN_SIDE))
            high = low + MIN_SIDE
        window += [low, high]
    return tuple(window)


def recorded_air(card) -> float | None:
    """The most air around the head among a model's training images (``training.framing.most_air``
    in its config.json, written by the train command), or None where it records none."""
    most = (((card or {}).get("training") or {}).get("framing") or {}).get("most_air")
    if isinstance(most, (int, float)) and not isinstance(most, bool) and np.isfinite(most) and most >= 0:
        return float(most)
    return None


def reframe_above(card) -> float:
    """The air (pixels, mean a side) above which a model brings an input closer: the most its
    training slices had (:func:`recorded_air`) plus :data:`REFRAME_SLACK`, or
    :data:`REFRAME_ABOVE` for a model that records none."""
    most = recorded_air(card)
    return float(REFRAME_ABOVE) if most is None else most + REFRAME_SLACK


def finish(output: np.ndarray, height: int, width: int) -> np.ndarray:
    """Network output in [-1, 1] (any trailing channel axis) -> float32 [0, 1], cropped."""
    output = np.asarray(output, dtype=np.float32)
    if output.ndim == 3:
        output = output[..., 0]
    output = output[:height, :width]
    return np.clip((output + 1.0) * 0.5, 0.0, 1.0).astype(np.float32)
