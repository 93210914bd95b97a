"""Paired image-quality metrics inside the head, on intensities in [0, 1]."""

from __future__ import annotations

import numpy as np
from scipy import ndimage
from skimage.metrics import structural_similarity


def head_mask(*images: np.ndarray, threshold: float = 0.05) -> np.ndarray:
    """Pixels inside the head: above ``threshold`` in any image, holes filled."""
    mask = np.zeros(images[0].shape, bool)
    for image in images:
        mask |= np.asarray(image) > threshold
    mask = ndimage.binary_closing(mask, iterations=2)
    return ndimage.binary_fill_holes(mask)


def paired_metrics(prediction: np.ndarray, truth: np.ndarray, mask: np.ndarray | None = None) -> dict:
    """SSIM, PSNR (dB) and MAE of ``prediction`` against ``truth`` inside ``mask``.

    Both images are float arrays in [0, 1]. SSIM is the mean of the SSIM map
    over the mask; PSNR and MAE use the masked pixels only.
    """
    prediction = np.asarray(prediction, np.float64)
    truth = np.asarray(truth, np.float64)
    if prediction.shape != truth.shape:
        raise ValueError(f"shapes differ: {prediction.shape} vs {truth.shape}")
    if mask is None:
        mask = head_mask(truth)
    if not mask.any():
        raise ValueError("the mask is empty")
    _, ssim_map = structural_similarity(prediction, truth, data_range=1.0, full=True)
    error = prediction[mask] - truth[mask]
    mse = float(np.mean(error**2))
    return {
        "ssim": float(ssim_map[mask].mean()),
        "psnr": float(10 * np.log10(1.0 / mse)) if mse > 0 else float("inf"),
        "mae": float(np.mean(np.abs(error))),
    }


def mean_metrics(rows: list[dict]) -> dict:
    """Average each metric over a list of :func:`paired_metrics` results."""
    return {key: float(np.mean([row[key] for row in rows])) for key in rows[0]} if rows else {}
