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
