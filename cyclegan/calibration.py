"""What a model knows about its own inputs, measured on data and stored with it.

Two checks the app (or any caller) runs on every input, each calibrated on
images whose answer is known and saved in the model's ``config.json`` under
``calibration``, so that no threshold is typed into the app:

- the **contrast check** (:func:`fit_contrast_check`, :func:`t2_probability`): a
  logistic regression on a handful of intensity features inside the head (tissue
  quantiles, skewness, the bright fraction, and the mean intensity from the head's
  edge to its centre: white matter, the core of the brain, is the brightest tissue
  on T1 and among the darkest on T2, CSF the other way round). Fitted on training
  images of both contrasts, with its accuracy on held-out images stored beside it.
- the **cycle-error verdict** (:func:`cycle_levels`, :func:`verdict`): the mean
  round-trip error inside the head (``|input - reconstruction|``) on held-out
  slices of the right contrast sets what is *typical*; the same slices fed in as
  the wrong contrast set what is *likely a wrong input*; in between is *unusual*.
  A translation that does not order the tissues as its target contrast demands
  (:func:`cyclegan.evaluation.order_in_brain`: CSF brighter than white matter on T2, darker on
  T1) is
  never *typical*, however low its round-trip error: both generators can agree on
  a wrong contrast.

NumPy and SciPy only (no Keras): a model's calibration is plain numbers.
"""

from __future__ import annotations

from typing import Iterable, Mapping

import numpy as np
from scipy import ndimage, stats

from cyclegan.evaluation import DIRECTIONS, source_and_target
from cyclegan.masks import head_mask

#: Names of :func:`contrast_features`, in order (stored with a fitted check).
FEATURES = ("q10", "q25", "q50", "q75", "q90", "skewness", "bright_fraction",
            "edge_ring", "outer_band", "inner_band", "core")
#: Bands of the distance from the head's edge (0) to its centre (1).
_BANDS = ((0.0, 0.1), (0.1, 0.3), (0.3, 0.6), (0.6, 1.01))
LEVELS = ("typical", "unusual", "likely wrong input")


def contrast_features(image01: np.ndarray) -> np.ndarray:
    """The :data:`FEATURES` of one image with intensities in [0, 1]."""
    image = np.asarray(image01, np.float64)
    mask = head_mask(image)
    values = image[mask & (image > 0.02)]
    if values.size < 16:
        raise ValueError("the image shows too little tissue to check its contrast")
    quantiles = np.percentile(values, [10, 25, 50, 75, 90])
    depth = ndimage.distance_transform_edt(mask)
    depth = depth / max(depth.max(), 1.0)
    mean = values.mean()
    bands = []
    for low, high in _BANDS:
        band = mask & (depth >= low) & (depth < high)
        bands.append(image[band].mean() - mean if band.any() else 0.0)
    skew = float(stats.skew(values)) if values.std() > 0 else 0.0
    return np.array([*quantiles, skew, float((values > 0.8).mean()), *bands])


def fit_contrast_check(t1_images: Iterable, t2_images: Iterable, steps: int = 4000,
                       learning_rate: float = 0.1, l2: float = 1e-3) -> dict:
    """A logistic regression (T2 = 1) on :func:`contrast_features`, as plain numbers."""
    t1_features = [contrast_features(i) for i in t1_images]
    t2_features = [contrast_features(i) for i in t2_images]
    if not t1_features or not t2_features:
        raise ValueError("the contrast check needs images of both contrasts")
    n_t1 = len(t1_features)
    x = np.array(t1_features + t2_features)
    y = np.r_[np.zeros(n_t1), np.ones(len(t2_features))]
    mean, scale = x.mean(0), x.std(0)
    scale = np.where(scale > 1e-9, scale, 1.0)
    z = (x - mean) / scale
    weights, bias = np.zeros(z.shape[1]), 0.0
    for _ in range(steps):
        p = 1.0 / (1.0 + np.exp(-(z @ weights + bias)))
        grad = p - y
        weights -= learning_rate * (z.T @ grad / len(y) + l2 * weights)
        bias -= learning_rate * float(grad.mean())
    check = {"features": list(FEATURES), "mean": mean.tolist(), "scale": scale.tolist(),
             "weights": weights.tolist(), "bias": bias, "fitted_on": {"t1": n_t1, "t2": len(x) - n_t1}}
    check["accuracy"] = {"training": _accuracy(check, x, y)}
    return check


def _logit(check: Mapping, features: np.ndarray) -> np.ndarray:
    if list(check.get("features", [])) != list(FEATURES):
        raise ValueError("the stored contrast check uses other features than this version computes")
    z = (features - np.asarray(check["mean"])) / np.asarray(check["scale"])
    return z @ np.asarray(check["weights"]) + float(check["bias"])


def t2_probability(check: Mapping, image01: np.ndarray) -> float:
    """How likely ``image01`` is T2-weighted (0: T1-weighted), by a fitted check."""
    return float(1.0 / (1.0 + np.exp(-_logit(check, contrast_features(image01)))))


def contrast_accuracy(check: Mapping, t1_images=(), t2_images=()) -> float:
    """Fraction of images whose contrast the check names rightly."""
    t1_images, t2_images = list(t1_images), list(t2_images)
    x = np.array([contrast_features(i) for i in t1_images + t2_images])
    return _accuracy(check, x, np.r_[np.zeros(len(t1_images)), np.ones(len(t2_images))])


def _accuracy(check: Mapping, features: np.ndarray, is_t2: np.ndarray) -> float:
    if len(features) == 0:
        return float("nan")
    return round(float(np.mean((_logit(check, features) > 0) == (is_t2 > 0.5))), 4)


def mean_cycle_error(source: np.ndarray, reconstruction: np.ndarray) -> float:
    """Mean ``|input - reconstruction|`` inside the head of the input."""
    mask = head_mask(source)
    if not mask.any():
        mask = np.ones(source.shape, bool)
    return float(np.mean(np.abs(np.asarray(reconstruction, np.float64) - source)[mask]))


def cycle_levels(right: Iterable[float], wrong: Iterable[float]) -> dict:
    """Thresholds of the verdict from per-slice cycle errors of right- and wrong-contrast inputs.

    ``typical``: the 95th percentile of the right inputs' errors; ``likely_wrong``:
    the wrong inputs' median, or 1.5 x ``typical`` when the wrong inputs do not
    come back worse (a cycle can hide its input), whichever is higher.
    """
    right, wrong = np.asarray(list(right), float), np.asarray(list(wrong), float)
    if right.size == 0:
        raise ValueError("no right-contrast slices to calibrate on")
    typical = float(np.percentile(right, 95))
    likely_wrong = max(float(np.median(wrong)) if wrong.size else 0.0, 1.5 * typical)
    return {"typical": round(typical, 4), "likely_wrong": round(likely_wrong, 4),
            "right_median": round(float(np.median(right)), 4),
            "wrong_median": round(float(np.median(wrong)), 4) if wrong.size else None,
            "wrong_above_typical": round(float(np.mean(wrong > typical)), 4) if wrong.size else None,
            "slices": int(right.size)}


def verdict(error: float, levels: Mapping | None, in_order: bool = True) -> str | None:
    """One of :data:`LEVELS` for a mean cycle error, or None without calibration. A translation whose
    tissues are not ``in_order`` (:func:`cyclegan.evaluation.order_in_brain`) is at best *unusual*."""
    if not levels:
        return None
    if error <= levels["typical"]:
        return LEVELS[0] if in_order else LEVELS[1]
    return LEVELS[1] if error <= levels["likely_wrong"] else LEVELS[2]


def calibrate(translator, pairs: Iterable, t1_images: Iterable, t2_images: Iterable,
              measured_on: str = "", kinds: Mapping[str, str] | None = None) -> dict:
    """A model's ``calibration``: the contrast check fitted on training images (``t1_images``,
    ``t2_images``) and the cycle-error levels of each direction on held-out ``pairs``
    (``(name, t1, t2)``, [0, 1]), fed in the right and the wrong way round. With ``kinds`` (a pair's
    name to its kind of input, such as "with skull"), each direction's levels also hold the levels
    each kind alone would give (``by_kind``), to tell whether one set of levels serves every kind."""
    pairs = list(pairs)
    check = fit_contrast_check(list(t1_images), list(t2_images))
    held_t1 = [t1 for _, t1, _ in pairs]
    held_t2 = [t2 for _, _, t2 in pairs]
    if pairs:
        check["accuracy"]["held_out"] = contrast_accuracy(check, held_t1, held_t2)
    levels = {}
    for direction in DIRECTIONS:
        right, wrong, of_kind = [], [], {}
        for name, t1, t2 in pairs:
            source, other = source_and_target(direction, t1, t2)
            right.append(mean_cycle_error(*_scaled_cycle(translator, source, direction)))
            wrong.append(mean_cycle_error(*_scaled_cycle(translator, other, direction)))
            if kinds and name in kinds:
                of_kind.setdefault(kinds[name], []).append(len(right) - 1)
        if right:
            levels[direction] = cycle_levels(right, wrong)
            if of_kind:
                levels[direction]["by_kind"] = {
                    kind: cycle_levels([right[i] for i in at], [wrong[i] for i in at]) for kind, at in of_kind.items()}
    return {"contrast_check": check, "cycle_error": levels, "measured_on": measured_on}


def _scaled_cycle(translator, image, direction):
    _, back, scaled = translator.cycle_check(image, direction)
    return scaled, back
