"""Make the app's example images from the project's own spin-echo phantom.

    python examples/make_examples.py

Writes t1w_zNNN.png and t2w_zNNN.png (8-bit grayscale, 217 x 181) for a few
axial slices of the MNI152 tissue maps simulated with
S = PD * (1 - exp(-TR/T1)) * exp(-TE/T2), and t1w_phantom.nii.gz, a T1-weighted
volume of the same phantom (every third axial slice of the brain, 8-bit, with the
template's affine); see cyclegan/phantom.py. Needs nilearn.
"""

from pathlib import Path

import numpy as np
from PIL import Image

from cyclegan.phantom import phantom_pairs, simulate, tissue_maps

SLICES = (80, 95, 110)
#: Axial slices of the example volume (every third from the base of the ventricles up).
VOLUME_SLICES = range(60, 132, 3)


def write_volume(path: Path) -> None:
    import nibabel as nib
    from nilearn import datasets

    template = datasets.load_mni152_brain_mask(resolution=1)
    volume = simulate(tissue_maps(), "t1")[:, :, list(VOLUME_SLICES)]
    affine = template.affine.copy()
    affine[:3, 3] = affine[:3, :3] @ np.array([0, 0, VOLUME_SLICES[0]]) + affine[:3, 3]
    affine[:3, 2] *= VOLUME_SLICES.step
    image = nib.Nifti1Image((np.clip(volume, 0, 1) * 255 + 0.5).astype(np.uint8), affine)
    image.header.set_xyzt_units("mm")
    nib.save(image, path)


def main() -> None:
    folder = Path(__file__).resolve().parent
    for z, t1w, t2w in phantom_pairs(SLICES):
        for name, image in (("t1w", t1w), ("t2w", t2w)):
            pixels = (np.clip(image, 0, 1) * 255 + 0.5).astype(np.uint8)
            Image.fromarray(pixels).save(folder / f"{name}_z{z:03d}.png", optimize=True)
            print(f"wrote {name}_z{z:03d}.png")
    write_volume(folder / "t1w_phantom.nii.gz")
    print("wrote t1w_phantom.nii.gz")


if __name__ == "__main__":
    main()
