"""A paired T1w/T2w phantom simulated with the spin-echo signal equation.

Tissue fractions come from the MNI152 (ICBM 2009a) grey- and white-matter
maps that nilearn ships inside its package (no download); CSF is the rest of
the brain mask. Each voxel's signal is the fraction-weighted sum of

    S = PD * (1 - exp(-TR / T1)) * exp(-TE / T2)

with textbook 1.5 T relaxation times. Both contrasts show exactly the same
anatomy, so the phantom gives paired ground truth for both directions. It is
skull-stripped (no fat, skin or bone), unlike the training data.

Needs ``nilearn`` (a development dependency).
"""

from __future__ import annotations

import numpy as np

#: (T1 ms, T2 ms, proton density) at 1.5 T.
TISSUES = {
    "csf": (4000.0, 2000.0, 1.00),
    "gm": (1200.0, 100.0, 0.80),
    "wm": (800.0, 80.0, 0.70),
}
#: (TR ms, TE ms) of a T1-weighted and a T2-weighted spin echo.
SEQUENCES = {"t1": (500.0, 15.0), "t2": (4000.0, 100.0)}
#: In-plane size of the users' data set (height, width).
SLICE_SHAPE = (217, 181)


def ellipse_slice(height: int = 96, width: int = 80, seed: int = 0) -> np.ndarray:
    """A small synthetic head-like uint8 image (an ellipse with rings and noise).

    No anatomy and no nilearn: a cheap valid input for tests and fuzzing.
    """
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    r = ((y - height / 2) / (0.42 * height)) ** 2 + ((x - width / 2) / (0.42 * width)) ** 2
    image = np.where(r < 1, 120 + 80 * np.cos(6 * r), 0) + rng.normal(0, 3, (height, width))
    return np.clip(image, 0, 255).astype(np.uint8)


def spin_echo(t1: float, t2: float, pd: float, tr: float, te: float) -> float:
    return pd * (1.0 - np.exp(-tr / t1)) * np.exp(-te / t2)


def tissue_maps() -> dict:
    """Fractions of CSF, grey and white matter on the MNI152 1 mm grid."""
    from nilearn import datasets

    gm = datasets.load_mni152_gm_template(resolution=1).get_fdata()
    wm = datasets.load_mni152_wm_template(resolution=1).get_fdata()
    brain = datasets.load_mni152_brain_mask(resolution=1).get_fdata() > 0
    gm, wm = np.clip(gm, 0, 1), np.clip(wm, 0, 1)
    total = gm + wm
    scale = np.where(total > 1, 1.0 / np.maximum(total, 1e-6), 1.0)
    gm, wm = gm * scale, wm * scale
    csf = np.where(brain, np.clip(1.0 - gm - wm, 0, 1), 0.0)
    return {"csf": csf, "gm": gm, "wm": wm}


def simulate(maps: dict, contrast: str) -> np.ndarray:
    """Signal volume of one contrast ("t1" or "t2"), normalised to [0, 1]."""
    tr, te = SEQUENCES[contrast]
    volume = sum(maps[t] * spin_echo(*TISSUES[t], tr, te) for t in TISSUES)
    return volume / volume.max()


def _axial(volume: np.ndarray, z: int) -> np.ndarray:
    """Axial slice z, anterior at the top, centre-cropped/padded to SLICE_SHAPE."""
    image = np.flipud(volume[:, :, z].T)
    out = np.zeros(SLICE_SHAPE, np.float32)
    h, w = image.shape
    H, W = SLICE_SHAPE
    sy, sx = max((h - H) // 2, 0), max((w - W) // 2, 0)
    crop = image[sy : sy + H, sx : sx + W]
    oy, ox = (H - crop.shape[0]) // 2, (W - crop.shape[1]) // 2
    out[oy : oy + crop.shape[0], ox : ox + crop.shape[1]] = crop
    return out


def phantom_pairs(slices=None) -> list:
    """[(z, t1w, t2w)] axial slices (float32 in [0, 1], 217 x 181) of the same anatomy.

    By default, 12 slices spread over the ventricles and the upper brain.
    """
    maps = tissue_maps()
    t1, t2 = simulate(maps, "t1"), simulate(maps, "t2")
    if slices is None:
        slices = np.linspace(70, 125, 12).round().astype(int).tolist()
    return [(int(z), _axial(t1, z), _axial(t2, z)) for z in slices]


#: Intensities of the ellipse phantom's classes (background, CSF, grey, white matter) in each
#: contrast: T1 orders them WM > GM > CSF, T2 the reverse, as real tissue does.
ELLIPSE_CONTRASTS = {"t1": (0.0, 0.15, 0.5, 0.85), "t2": (0.0, 0.95, 0.6, 0.3)}


def ellipse_tissues(size: int = 32, seed: int = 0) -> np.ndarray:
    """A random head-like label map (uint8: 0 background, 1 CSF, 2 grey, 3 white matter): an
    ellipse whose rim is grey matter, with white matter inside and a CSF 'ventricle' in it."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size] / size - 0.5
    cy, cx = rng.uniform(-0.05, 0.05, 2)
    ry, rx = rng.uniform(0.33, 0.45, 2)
    angle = rng.uniform(0, np.pi)
    yy = (y - cy) * np.cos(angle) + (x - cx) * np.sin(angle)
    xx = -(y - cy) * np.sin(angle) + (x - cx) * np.cos(angle)
    r = (yy / ry) ** 2 + (xx / rx) ** 2
    labels = np.where(r < 1, 2, 0)
    labels = np.where(r < rng.uniform(0.45, 0.6), 3, labels)
    vy, vx = rng.uniform(-0.08, 0.08, 2)
    vr = ((y - cy - vy) / rng.uniform(0.06, 0.12)) ** 2 + ((x - cx - vx) / rng.uniform(0.04, 0.09)) ** 2
    return np.where(vr < 1, 1, labels).astype(np.uint8)


def ellipse_image(labels: np.ndarray, contrast: str, seed: int = 0, noise: float = 0.02) -> np.ndarray:
    """The label map drawn in ``contrast`` ("t1" or "t2"), float32 in [0, 1], slightly noisy."""
    values = np.asarray(ELLIPSE_CONTRASTS[contrast], np.float32)
    image = values[labels] + np.random.default_rng(seed).normal(0, noise, labels.shape)
    return np.clip(np.where(labels > 0, image, 0.0), 0, 1).astype(np.float32)
