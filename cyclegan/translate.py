"""Translating a file's worth of pixels with the model's input checks: one implementation for the app,
the ``mri-cyclegan translate`` command and library users.

- :func:`translate_image`: one 2-D image, translated and back (the cycle check), with its report;
- :func:`translate_volume`: a NIfTI volume (:class:`cyclegan.files.Volume`) slice by slice in one
  plane, on the model's 1 mm grid and back on the volume's own, with its report;
- :func:`report`: what a caller shows of one input: the mean round-trip error inside the head, the
  verdict by the levels stored with the model, the contrast check and the closer frame;
- :func:`looks_like`: the contrast check of an image or a volume, for choosing a direction.

A report is plain data (numbers, strings, None), as the app's API and ``report.csv`` give it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from cyclegan.errors import InputImageError
from cyclegan.inference import DIRECTIONS, check_direction

#: The contrast each direction reads and writes.
CONTRASTS = {"t1_to_t2": ("T1", "T2"), "t2_to_t1": ("T2", "T1")}
#: Mean round-trip error at the hottest colour of an error map.
ERROR_SCALE = 0.25
#: Slices of a volume the contrast check reads (those with the most head, near its middle).
CHECKED_SLICES = 9


def other_direction(direction: str) -> str:
    return DIRECTIONS[1] if check_direction(direction) == DIRECTIONS[0] else DIRECTIONS[0]


def output_stem(stem: str, direction: str) -> str:
    """The name of a translation of ``stem``: ``scan`` -> ``scan_t2w-from-t1w``."""
    source, target = CONTRASTS[check_direction(direction)]
    return f"{stem}_{target.lower()}w-from-{source.lower()}w"


def calibration_of(translator) -> dict:
    """The input checks stored with a model (``calibration`` in its config.json), or {}."""
    return (getattr(translator, "card", None) or {}).get("calibration") or {}


def _frame(frame) -> dict | None:
    return dict(zip(("top", "bottom", "left", "right"), map(int, frame))) if frame else None


def contrast_of(translator, images01: Sequence[np.ndarray]) -> float | None:
    """The mean probability that ``images01`` ([0, 1] intensities, as the model sees them) are
    T2-weighted by the model's contrast check; None without a check or without tissue to read."""
    from cyclegan.calibration import t2_probability

    check = calibration_of(translator).get("contrast_check")
    if not check:
        return None
    probabilities = []
    for image in images01:
        try:
            probabilities.append(t2_probability(check, image))
        except ValueError:  # too little tissue in this one
            continue
    return float(np.mean(probabilities)) if probabilities else None


def _contrast_entry(p_t2: float | None, expected: str) -> dict | None:
    if p_t2 is None:
        return None
    looks = "T2" if p_t2 > 0.5 else "T1"
    return {"expected": expected, "looks_like": looks, "t2_probability": round(p_t2, 3),
            "mismatch": looks != expected}


def report(translator, direction: str, error: float, p_t2: float | None = None, frame=None,
           order: dict | None = None, **extra) -> dict:
    """The report of one input translated in ``direction``: ``error`` is its mean round-trip error
    inside the head, ``p_t2`` what the contrast check says of it, ``frame`` the closer frame it
    was translated within (None: its own), ``order`` the translation's tissue order
    (:func:`cyclegan.evaluation.order_in_brain`; a translation out of order is never "typical").
    ``extra`` fields (shape, bit depth, plane) come first."""
    from cyclegan.calibration import verdict

    levels = (calibration_of(translator).get("cycle_error") or {}).get(direction)
    in_order = order is None or order["in_order"]
    return {"direction": direction, **extra, "mean_cycle_error": round(float(error), 4),
            "verdict": verdict(error, levels, in_order), "levels": levels, "error_scale": ERROR_SCALE,
            "frame": _frame(frame), "contrast": _contrast_entry(p_t2, CONTRASTS[direction][0]),
            "tissue_order": order}


@dataclass
class ImageResult:
    """One image translated and back, on the input's grid, intensities in [0, 1]."""

    shown: np.ndarray           #: the input as the model saw it (its percentile window)
    translation: np.ndarray
    reconstruction: np.ndarray  #: the translation translated back
    report: dict

    @property
    def error_map(self) -> np.ndarray:
        """|input - reconstruction| per pixel."""
        return np.abs(self.shown - self.reconstruction)


def translate_image(translator, image, direction: str, bits: int | None = None) -> ImageResult:
    """Translate one 2-D image (any array or PIL image :mod:`cyclegan.preprocessing` accepts) in
    ``direction`` and back, and check it (:func:`report`)."""
    from cyclegan.calibration import mean_cycle_error
    from cyclegan.evaluation import order_in_brain, tissue_sums
    from cyclegan.preprocessing import to_grayscale

    check_direction(direction)
    gray = to_grayscale(image)
    forward, back, shown = translator.cycle_check(gray, direction)
    extra = {"height": int(shown.shape[0]), "width": int(shown.shape[1])}
    if bits is not None:
        extra["bit_depth"] = int(bits)
    order = order_in_brain(direction, [tissue_sums(direction, shown, forward)])
    result = report(translator, direction, mean_cycle_error(shown, back), contrast_of(translator, [shown]),
                    translator.closer_frame(gray), order, **extra)
    return ImageResult(shown, forward, back, result)


def _shown(slices) -> list:
    """Slices as the model sees them ([0, 1], each on its own percentile window; blank ones zero)."""
    from cyclegan.preprocessing import scale_intensities

    return [(scale_intensities(np.asarray(s, np.float64))[0] + 1.0) / 2.0 if np.ptp(s) > 0
            else np.zeros(np.shape(s), np.float32) for s in slices]


def _checked(shown: list) -> list:
    """The indices of the slices the checks of a volume read: those with the most head."""
    from cyclegan.masks import head_mask

    area = [int(head_mask(s).sum()) if s.any() else 0 for s in shown]
    order = sorted(range(len(shown)), key=lambda i: -area[i])
    return [i for i in order[:CHECKED_SLICES] if area[i] > 0]


@dataclass
class VolumeResult:
    """A volume translated slice by slice: ``translation`` on the volume's own grid (ready for
    :meth:`cyclegan.files.Volume.write`); ``shown`` and ``model_translation`` on the model's grid
    (for viewing); the report."""

    volume: object
    translation: list
    shown: list
    model_translation: list
    reconstruction: list
    report: dict


def native_frame(frame, model_shape, native_shape):
    """A closer frame on the model's grid as rows and columns of the volume's own grid, widened so
    that every pixel outside it stays black after resampling (None stays None)."""
    if frame is None or tuple(model_shape) == tuple(native_shape):
        return frame
    out = []
    for k, (edge, model, native) in enumerate(zip(frame, np.repeat(model_shape, 2), np.repeat(native_shape, 2))):
        scale = model / native  # model pixels per pixel of the volume
        margin = int(np.ceil(1.0 / scale))
        if k % 2 == 0:  # top or left
            out.append(max(0, int(np.floor(edge / scale)) - margin))
        else:
            out.append(min(int(native), int(np.ceil(edge / scale)) + margin))
    return tuple(out)


def translate_volume(translator, volume, direction: str, batch_size: int = 8,
                     progress: Callable[[str, int, int], None] | None = None) -> VolumeResult:
    """Translate a :class:`cyclegan.files.Volume` slice by slice in its plane and back (the cycle
    check), on the model's grid; the translation comes back on the volume's own grid.
    ``progress(stage, done, total)`` is called after each batch of each stage."""
    from cyclegan.calibration import mean_cycle_error
    from cyclegan.evaluation import order_in_brain, tissue_sums

    check_direction(direction)
    if batch_size < 1:
        raise InputImageError(f"the batch size must be at least 1, got {batch_size}")
    slices = volume.model_slices()

    def stage(name):
        return None if progress is None else (lambda done, total: progress(name, done, total))

    out = translator.translate_slices(slices, direction, batch_size=batch_size, progress=stage("translating"))
    back = translator.translate_slices(out, other_direction(direction), batch_size=batch_size,
                                       progress=stage("cycle check"))
    shown = _shown(slices)
    errors = [mean_cycle_error(shown[i], back[i]) for i in range(len(out)) if shown[i].any() and out[i].any()]
    error = float(np.mean(errors)) if errors else 0.0
    rows, columns = volume.model_shape
    frame = native_frame(translator.closer_frame_of_slices(slices), volume.model_shape, volume.slices[0].shape)
    checked = _checked(shown)
    order = order_in_brain(direction, [tissue_sums(direction, shown[i], out[i]) for i in checked])
    result = report(translator, direction, error, contrast_of(translator, [shown[i] for i in checked]), frame,
                    order, plane=volume.plane, shape=list(volume.shape),
                    slices=len(out), translated_slices=len(errors),
                    pixel_mm=[round(z, 4) for z in volume.pixel_mm],
                    model_grid=[int(rows), int(columns)], resampled=bool(volume.resampled))
    return VolumeResult(volume, volume.from_model(list(out)), shown, list(out), list(back), result)


def looks_like(translator, image=None, volume=None) -> tuple[str, float]:
    """("t1_to_t2" or "t2_to_t1", probability of T2) for an image or a volume by the model's
    contrast check: the direction that reads the contrast the input looks like."""
    from cyclegan.preprocessing import to_grayscale

    if not calibration_of(translator).get("contrast_check"):
        raise InputImageError("the model stores no contrast check, so the direction cannot be chosen "
                              "automatically; give the direction")
    if volume is not None:
        every = _shown(volume.model_slices())
        shown = [every[i] for i in _checked(every)]
    else:
        shown = _shown([to_grayscale(image)])
    p_t2 = contrast_of(translator, shown)
    if p_t2 is None:
        raise InputImageError("the input shows too little tissue for the contrast check")
    return ("t2_to_t1" if p_t2 > 0.5 else "t1_to_t2"), p_t2
