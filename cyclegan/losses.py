"""Loss functions of the CycleGAN objective, in pure ``keras.ops``."""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

from keras import ops

from cyclegan.masks import EDGE_BAND, FOREGROUND_LEVEL


def lsgan_loss(predictions, real: bool):
    """Least-squares GAN loss: mean squared distance of the logits to 1 or 0."""
    predictions = ops.cast(predictions, "float32")
    target = 1.0 if real else 0.0
    return ops.mean(ops.square(predictions - target))


def l1_loss(a, b, weights=None, pixel_weights=None):
    """Mean absolute difference, computed in float32.

    ``weights`` (shape ``(batch,)``) weigh each image's mean difference; the
    result is still divided by the batch size, so that images with weight 0
    add nothing and the others count as much as in an unweighted batch.
    ``pixel_weights`` (the shape of ``a``) weigh each pixel's difference; the
    mean is still over every pixel, so a weight above 1 adds to the term.
    """
    diff = ops.abs(ops.cast(a, "float32") - ops.cast(b, "float32"))
    if pixel_weights is not None:
        diff = diff * ops.cast(pixel_weights, "float32")
    if weights is None:
        return ops.mean(diff)
    per_image = ops.mean(ops.reshape(diff, (ops.shape(diff)[0], -1)), axis=1)
    return ops.mean(per_image * ops.cast(weights, "float32"))


def foreground(images):
    """1 where a batch in [-1, 1] lies above :data:`FOREGROUND_LEVEL` (head or brain), else 0."""
    return ops.cast(ops.cast(images, "float32") > FOREGROUND_LEVEL, "float32")


def edge_band(images, width: int = EDGE_BAND):
    """1 on the pixels within ``width`` pixels of the edge of each image's foreground, on either
    side, else 0, for a batch ``(batch, height, width, 1)`` in [-1, 1]; by default the width of the
    bands the evaluation's edge check measures. The foreground is what lies above
    :data:`FOREGROUND_LEVEL`, cleared of specks of noise in the air by a 3x3 opening; its edge is
    the head's edge, or on a skull-stripped slice the brain's."""

    def grow(mask, size):
        return ops.max_pool(mask, size, strides=1, padding="same")

    def shrink(mask, size):
        return 1.0 - grow(1.0 - mask, size)

    solid = grow(shrink(foreground(images), 3), 3)
    size = 2 * width + 1
    return ops.stop_gradient(grow(solid, size) - shrink(solid, size))


def edge_weights(targets, edge_weight: float):
    """Pixel weights of a paired L1 term: ``1 + edge_weight`` within :func:`edge_band` of each
    target's edge, 1 elsewhere; None when ``edge_weight`` is 0 (every pixel counts once)."""
    if edge_weight <= 0:
        return None
    return 1.0 + edge_weight * edge_band(targets)


#: Side of the SSIM windows of :func:`ssim_map`: 7 pixels, as the evaluation's SSIM
#: (scikit-image's default) measures it.
SSIM_WINDOW = 7
#: SSIM's stabilising constants for intensities in [0, 1] (K1 = 0.01, K2 = 0.03).
_SSIM_C1 = 0.01**2
_SSIM_C2 = 0.03**2


def ssim_map(a, b, window: int = SSIM_WINDOW):
    """Local SSIM of two batches ``(batch, height, width, 1)`` in [-1, 1], seen as [0, 1]
    intensities: one value per ``window`` x ``window`` square of pixels that lies inside the
    image (``(batch, height - window + 1, width - window + 1, 1)``). Uniform windows and the
    sample covariance, as scikit-image's ``structural_similarity`` with its defaults, so that
    the map's mean is the mean SSIM that function gives."""
    x = (ops.cast(a, "float32") + 1.0) * 0.5
    y = (ops.cast(b, "float32") + 1.0) * 0.5

    def mean(z):
        return ops.average_pool(z, window, strides=1, padding="valid")

    n = float(window * window)
    unbiased = n / (n - 1.0)
    mx, my = mean(x), mean(y)
    vx = unbiased * (mean(x * x) - mx * mx)
    vy = unbiased * (mean(y * y) - my * my)
    cxy = unbiased * (mean(x * y) - mx * my)
    return ((2.0 * mx * my + _SSIM_C1) * (2.0 * cxy + _SSIM_C2)) / (
        (mx * mx + my * my + _SSIM_C1) * (vx + vy + _SSIM_C2))


def ssim_loss(prediction, target, weights=None, window: int = SSIM_WINDOW):
    """1 - the mean SSIM (:func:`ssim_map`) of each image in a batch, averaged over the batch;
    ``weights`` (shape ``(batch,)``) weigh each image as in :func:`l1_loss` (0 for an index whose
    two images are not a pair). Only the windows that touch the target's foreground count (the
    head, or a skull-stripped slice's brain; air beside air is alike in every translation), as the
    evaluation measures SSIM inside the head."""
    scores = ssim_map(prediction, target, window)
    near = ops.stop_gradient(ops.max_pool(foreground(target), window, strides=1, padding="valid"))
    batch = ops.shape(scores)[0]
    per_image = ops.sum(ops.reshape((1.0 - scores) * near, (batch, -1)), axis=1) / ops.maximum(
        ops.sum(ops.reshape(near, (batch, -1)), axis=1), 1.0)
    if weights is not None:
        per_image = per_image * ops.cast(weights, "float32")
    return ops.mean(per_image)


#: Offsets of the MIND descriptor: the four neighbours at ``distance`` pixels.
_MIND_OFFSETS = ((0, 1), (1, 0), (0, -1), (-1, 0))


def mind_descriptor(images, distance: int = 2, patch: int = 3):
    """MIND (Heinrich et al. 2012, "modality independent neighbourhood descriptor") of a batch
    ``(batch, height, width, 1)``: for each pixel and each of four neighbours at ``distance``,
    ``exp(-D / V)`` with ``D`` the patch-mean squared difference to the neighbour and ``V`` the mean
    of ``D`` over the neighbours; ``(batch, height, width, 4)`` in (0, 1]. It describes local
    structure whatever the contrast: a T1 image and a T2 image of one anatomy have nearly the same
    descriptor, even where their intensities order the tissues the other way round."""
    x = ops.cast(images, "float32")
    distances = []
    for dy, dx in _MIND_OFFSETS:
        shifted = ops.roll(ops.roll(x, dy * distance, axis=1), dx * distance, axis=2)
        distances.append(ops.average_pool(ops.square(x - shifted), patch, strides=1, padding="same"))
    d = ops.concatenate(distances, axis=-1)
    variance = ops.mean(d, axis=-1, keepdims=True)
    variance = ops.maximum(variance, 1e-3 * ops.mean(variance) + 1e-6)
    descriptor = ops.exp(-d / variance)
    return descriptor / ops.max(descriptor, axis=-1, keepdims=True)


def mind_loss(a, b, distance: int = 2):
    """Mean absolute difference of the MIND descriptors of ``a`` and ``b`` (a structure term between
    an input and its translation: it keeps the anatomy and leaves the contrast to the discriminators)."""
    return ops.mean(ops.abs(mind_descriptor(a, distance) - mind_descriptor(b, distance)))


# -- the registry of the generators' loss terms ---------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Views:
    """What a training step's generator losses read, per contrast: the real images, what the
    generators were shown, their translations and reconstructions, which batch indices are aligned
    pairs, and ``same(contrast)``: the generator that makes ``contrast`` applied to a real image of
    that contrast (the identity term's)."""

    real: dict
    shown: dict
    fake: dict
    rec: dict
    aligned: Any = None
    same: Callable | None = None


@dataclasses.dataclass(frozen=True)
class LossTerm:
    """One term of the generators' objective, logged per contrast as ``<name>_t1`` and
    ``<name>_t2``: its ``weight`` (of a :class:`~cyclegan.config.TrainConfig`; 0 leaves the term
    out), its unweighted ``loss(views, contrast, train_config)`` for the images of ``contrast``,
    and its ``phrase`` in the model card's recipe (empty: not mentioned)."""

    name: str
    field: str
    weight: Callable
    loss: Callable
    phrase: Callable


def _other(contrast: str) -> str:
    return "t2" if contrast == "t1" else "t1"


#: The generators' loss terms beside the adversarial one, in the order they are logged and
#: described. A new term is one entry here and one weight field of ``TrainConfig``.
LOSS_TERMS = (
    LossTerm("cycle", "cycle_weight", lambda tc: tc.cycle_weight,
             lambda v, c, tc: l1_loss(v.rec[c], v.real[c]),
             lambda tc: f"cycle weight {tc.cycle_weight:g}"),
    LossTerm("identity", "identity_weight", lambda tc: tc.cycle_weight * tc.identity_weight,
             lambda v, c, tc: l1_loss(v.same(c), v.real[c]),
             lambda tc: f"identity weight {tc.identity_weight:g} x cycle"),
    LossTerm("paired", "paired_weight", lambda tc: tc.paired_weight,
             lambda v, c, tc: l1_loss(v.fake[c], v.real[c], v.aligned, edge_weights(v.real[c], tc.edge_weight)),
             lambda tc: f"paired L1 weight {tc.paired_weight:g}" + (
                 f" ({1 + tc.edge_weight:g} times within {EDGE_BAND} px of the head's or brain's edge)"
                 if tc.edge_weight else "")),
    LossTerm("ssim", "paired_ssim_weight", lambda tc: tc.paired_ssim_weight,
             lambda v, c, tc: ssim_loss(v.fake[c], v.real[c], v.aligned),
             lambda tc: (f"paired SSIM weight {tc.paired_ssim_weight:g} (1 - SSIM of each translation and its "
                         "pair)") if tc.paired_ssim_weight else ""),
    LossTerm("structure", "structure_weight", lambda tc: tc.structure_weight,
             lambda v, c, tc: mind_loss(v.fake[c], v.shown[_other(c)]),
             lambda tc: f"MIND structure weight {tc.structure_weight:g}" if tc.structure_weight else ""),
)


def generator_terms(views: Views, train_config) -> dict:
    """``{<name>_t1: weighted loss, <name>_t2: ...}`` of every term of :data:`LOSS_TERMS` (0 for a
    term whose weight is 0, so that every step logs the same losses)."""
    logs = {}
    for term in LOSS_TERMS:
        weight = term.weight(train_config)
        for contrast in ("t1", "t2"):
            logs[f"{term.name}_{contrast}"] = (weight * term.loss(views, contrast, train_config) if weight > 0
                                               else ops.zeros((), "float32"))
    return logs


def objective_phrase(train_config) -> str:
    """The card's words for the objective: LSGAN and each term's phrase."""
    return ", ".join(["LSGAN", *(p for p in (t.phrase(train_config) for t in LOSS_TERMS) if p)])
