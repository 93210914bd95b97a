"""Make the app's example images from the project's own spin-echo phantom.

    python examples/make_examples.py

Writes t1w_zNNN.png and t2w_zNNN.png (8-bit grayscale, 217 x 181) for a few
axial slices of the MNI152 tissue maps simulated with
S = PD * (1 - exp(-TR/T1)) * exp(-TE/T2); see cyclegan/phantom.py. Needs nilearn.
"""

from pathlib import Path

import numpy as np
from PIL import Image

from cyclegan.phantom import phantom_pairs

SLICES = (80, 95, 110)


def main() -> None:
    folder = Path(__file__).resolve().parent
    for z, t1w, t2w in phantom_pairs(SLICES):
        for name, image in (("t1w", t1w), ("t2w", t2w)):
            pixels = (np.clip(image, 0, 1) * 255 + 0.5).astype(np.uint8)
            Image.fromarray(pixels).save(folder / f"{name}_z{z:03d}.png", optimize=True)
            print(f"wrote {name}_z{z:03d}.png")


if __name__ == "__main__":
    main()
