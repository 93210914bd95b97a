"""Masks of the head, the brain and their edges: one definition of each, for the translator's
closer frame, the losses, the augmentations and the evaluation alike. NumPy and SciPy only; the
losses' tensor versions (:func:`cyclegan.losses.foreground`, :func:`cyclegan.losses.edge_band`)
threshold at the same levels.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

#: Fraction of the intensity range above which a pixel belongs to the head: the evaluation's
#: head mask (:func:`head_mask`), the translator's closer frame (:func:`head_box`) and the
#: losses' foreground (:data:`FOREGROUND_LEVEL`).
HEAD_LEVEL = 0.05
#: :data:`HEAD_LEVEL` on the [0, 1] scale of the evaluation.
HEAD_THRESHOLD = HEAD_LEVEL
#: :data:`HEAD_LEVEL` on the [-1, 1] scale of the generators.
FOREGROUND_LEVEL = 2.0 * HEAD_THRESHOLD - 1.0
#: Width in pixels of the bands on either side of an edge (:func:`edge_bands`, and the losses'
#: edge band).
EDGE_BAND = 3
#: The head's interior (:func:`interior`) lies deeper than this fraction of its depth (its edge 0,
#: its centre 1): the ring of scalp and skull around a clinical slice, and the skull base and face
#: of its coronal and sagittal cuts, are left out of it. On the registered with-skull pairs of
#: ``real-t1t2-volumes`` the real image of the other contrast read in tissue order on 73 % of
#: slices deeper than half the depth, on 34 % deeper than a fifth; on skull-stripped and simulated
#: pairs on 99-100 % either way (benchmarks/NOTES.md, "Where the tissue order is read").
INTERIOR_DEPTH = 0.5
#: A brain mask is used only when it covers this fraction of the head (else the slice stays
#: whole): low slices, where scalp and brain touch, fail it.
BRAIN_FRACTION = (0.35, 0.85)


def head_mask(*images: np.ndarray, threshold: float = HEAD_THRESHOLD) -> np.ndarray:
    """Pixels inside the head: above ``threshold`` in any image (in [0, 1]), holes filled."""
    mask = np.zeros(images[0].shape, bool)
    for image in images:
        mask |= np.asarray(image) > threshold
    mask = ndimage.binary_closing(mask, iterations=2)
    return ndimage.binary_fill_holes(mask)


def interior(mask: np.ndarray, depth: float = INTERIOR_DEPTH) -> np.ndarray:
    """The part of ``mask`` deeper than ``depth`` of its greatest depth (the distance to its edge):
    inside a head with skull, mostly the brain; scalp fat (bright on both contrasts) and bone (dark
    on both) are left out."""
    mask = np.asarray(mask, bool)
    if not mask.any():
        return mask
    distance = ndimage.distance_transform_edt(mask)
    return mask & (distance >= depth * distance.max())


def head_box(scaled_images):
    """``(top, bottom, left, right)`` bounding the head in one or more images of one size in
    [-1, 1], or None when there is none. The head is every pixel above :data:`HEAD_LEVEL` of
    the range that has a 4-neighbour above it too: lone noise pixels in the air do not count."""
    images = [np.asarray(image) for image in scaled_images]
    if not images:
        return None
    head = np.zeros(images[0].shape[:2], bool)
    for image in images:
        bright = image > HEAD_LEVEL * 2.0 - 1.0
        neighbour = np.zeros_like(bright)
        neighbour[1:] |= bright[:-1]
        neighbour[:-1] |= bright[1:]
        neighbour[:, 1:] |= bright[:, :-1]
        neighbour[:, :-1] |= bright[:, 1:]
        head |= bright & neighbour
    rows, cols = np.flatnonzero(head.any(axis=1)), np.flatnonzero(head.any(axis=0))
    if not rows.size:
        return None
    return int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1


def brain_mask(t1_image: np.ndarray, threshold: float = 0.12, radius: int = 3) -> np.ndarray | None:
    """A rough brain mask of a T1-weighted slice in [-1, 1], or None when unsure.

    On T1w images the skull and the CSF around the brain are dark, so eroding
    the tissue above ``threshold`` (on the [0, 1] scale) by ``radius`` pixels
    cuts the scalp off the brain; the largest piece, grown back by
    ``radius + 2`` pixels (the outer CSF) and with its holes filled, is the
    brain. Slices where the result is implausibly small or large (the scalp
    still attached) give None.
    """
    unit = (np.asarray(t1_image, np.float64) + 1.0) / 2.0
    head = head_mask(unit)
    core = ndimage.binary_erosion((unit > threshold) & head, iterations=radius)
    labels, count = ndimage.label(core)
    if count == 0:
        return None
    sizes = ndimage.sum(core, labels, range(1, count + 1))
    brain = labels == 1 + int(np.argmax(sizes))
    brain = ndimage.binary_fill_holes(ndimage.binary_dilation(brain, iterations=radius + 2) & head)
    fraction = brain.sum() / max(int(head.sum()), 1)
    if not BRAIN_FRACTION[0] <= fraction <= BRAIN_FRACTION[1]:
        return None
    return brain


def edge_bands(mask: np.ndarray, width: int = EDGE_BAND) -> tuple:
    """(the ``width`` pixels just inside the edge of ``mask``, the ``width`` pixels just outside
    it, the rest inside)."""
    core = ndimage.binary_erosion(mask, iterations=width)
    outside = ndimage.binary_dilation(mask, iterations=width) & ~mask
    return mask & ~core, outside, core
