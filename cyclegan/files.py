"""Image and NIfTI files in and out: what the app (or any caller) reads and writes.

- :func:`read_image_file`: an uploaded PNG / JPEG / TIFF (8- or 16-bit, grayscale or
  RGB) as grayscale pixels and its bit depth, or :class:`InputImageError`;
- :func:`read_volume` / :func:`write_volume_like`: a 3-D NIfTI volume as slices along
  an axis (anterior / superior up), and a translated volume with the input's affine and
  header;
- :class:`OutputFolder`: lossless PNG / TIFF outputs under unique names, swept when old;
- :func:`heat_map`: an error map as RGB pixels.

Every expected problem with a file is an :class:`InputImageError` with a message that
names the file, never another exception.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import numpy as np

from cyclegan.errors import InputImageError
from cyclegan.preprocessing import MAX_SIDE, to_grayscale, to_uint8

#: Uploaded files larger than this are refused before decoding.
MAX_UPLOAD_BYTES = 200 * 1024 * 1024
#: Most slices a volume may have along the translated axis.
MAX_SLICES = 512


def read_image_file(path, max_bytes: int = MAX_UPLOAD_BYTES) -> tuple[np.ndarray, int]:
    """Decode an uploaded PNG/JPEG/TIFF; returns (grayscale pixels, bit depth 8 or 16)."""
    from PIL import Image

    if path is None:
        raise InputImageError("no file was uploaded")
    path = Path(path)
    if path.stat().st_size > max_bytes:
        raise InputImageError(f"the file is larger than {max_bytes // 2**20} MB")
    try:
        with Image.open(path) as image:
            if max(image.size) > MAX_SIDE:
                raise InputImageError(
                    f"image is too large: {image.size[1]}x{image.size[0]} pixels; "
                    f"each side must be at most {MAX_SIDE}"
                )
            if image.format not in ("PNG", "JPEG", "TIFF", "MPO"):
                raise InputImageError(
                    f"{image.format or 'this'} files are not supported; upload a PNG, JPEG or TIFF image"
                )
            image.seek(0)
            image.load()
            sixteen = image.mode.startswith("I;16") or image.mode == "I"
            gray = to_grayscale(image)
    except InputImageError:
        raise
    except Exception as err:  # PIL raises many kinds of errors on damaged files
        raise InputImageError(
            f"{path.name} is not a readable PNG, JPEG or TIFF image ({type(err).__name__})"
        ) from None
    return gray, 16 if sixteen else 8


def to_uint16(image01: np.ndarray) -> np.ndarray:
    """An image of [0, 1] intensities as 16-bit pixels (clipped, rounded)."""
    return (np.clip(image01, 0.0, 1.0) * 65535.0 + 0.5).astype(np.uint16)


_HEAT_ANCHORS = np.array(
    [[0, 0, 4], [40, 11, 84], [101, 21, 110], [159, 42, 99], [212, 72, 66],
     [245, 125, 21], [250, 193, 39], [252, 255, 164]], np.float64,
)


def heat_map(error01: np.ndarray, scale: float = 0.25) -> np.ndarray:
    """RGB uint8 heat map of an absolute error (``scale`` maps to the hottest colour)."""
    t = np.clip(error01 / scale, 0.0, 1.0) * (len(_HEAT_ANCHORS) - 1)
    low = np.floor(t).astype(int)
    high = np.minimum(low + 1, len(_HEAT_ANCHORS) - 1)
    frac = (t - low)[..., None]
    rgb = _HEAT_ANCHORS[low] * (1 - frac) + _HEAT_ANCHORS[high] * frac
    return rgb.astype(np.uint8)


class OutputFolder:
    """Generated files under unique names in one folder, deleted after ``max_age_s``.

    Outputs are always files with unique names: a web app (Gradio) caches returned
    arrays by content, so two concurrent requests with the same output would rewrite
    one cache file while the other is being downloaded. A sweep stats every file, so
    :meth:`clean` sweeps at most once per ``clean_interval_s``.
    """

    def __init__(self, folder, max_age_s: float = 3600, clean_interval_s: float = 60, png_level: int = 1):
        self.folder = Path(folder)
        self.max_age_s = max_age_s
        self.clean_interval_s = clean_interval_s
        #: zlib level of PNGs: lossless at any level; 1 encodes several times faster than 6.
        self.png_level = png_level
        self.last_clean = float("-inf")

    def path(self, stem: str, suffix: str) -> Path:
        self.folder.mkdir(parents=True, exist_ok=True)
        handle, name = tempfile.mkstemp(prefix=f"{stem}-", suffix=suffix, dir=self.folder)
        os.close(handle)
        return Path(name)

    def clean(self, force: bool = False) -> None:
        """Delete files older than ``max_age_s`` (at most once per interval unless ``force``)."""
        now = time.monotonic()
        if not force and now - self.last_clean < self.clean_interval_s:
            return
        self.last_clean = now
        if not self.folder.is_dir():
            return
        cutoff = time.time() - self.max_age_s
        for item in self.folder.iterdir():
            try:
                if item.stat().st_mtime < cutoff:
                    item.unlink()
            except OSError:
                pass

    def save_pixels(self, pixels: np.ndarray, stem: str, suffix: str = ".png") -> Path:
        """A lossless PNG (or TIFF) of an 8/16-bit grayscale or 8-bit RGB array."""
        from PIL import Image

        path = self.path(stem, suffix)
        if suffix == ".png":
            Image.fromarray(pixels).save(path, format="PNG", compress_level=self.png_level)
        else:
            Image.fromarray(pixels).save(path, format="TIFF")
        return path

    def save_png(self, image01: np.ndarray, stem: str, bits: int = 8) -> Path:
        """Lossless grayscale PNG of a [0, 1] image (16-bit when ``bits`` is 16)."""
        return self.save_pixels(to_uint16(image01) if bits == 16 else to_uint8(image01), stem)

    def save_tiff16(self, image01: np.ndarray, stem: str) -> Path:
        return self.save_pixels(to_uint16(image01), stem, ".tiff")


def read_volume(path, axis: int, max_slices: int = MAX_SLICES):
    """(NIfTI image, float32 data, slices) of a 3-D volume; slices along ``axis``, each with the
    anterior / superior side up."""
    import nibabel as nib

    if path is None:
        raise InputImageError("no file was uploaded")
    name = Path(path).name.lower()
    if not (name.endswith(".nii") or name.endswith(".nii.gz")):
        raise InputImageError("volumes must be NIfTI files (.nii or .nii.gz)")
    try:
        image = nib.load(path)
        shape = image.shape
    except Exception as err:
        raise InputImageError(f"{Path(path).name} is not a readable NIfTI file ({type(err).__name__})") from None
    if len(shape) == 4 and shape[3] == 1:
        shape = shape[:3]
    if len(shape) != 3:
        raise InputImageError(f"the volume must be 3-D, got shape {tuple(image.shape)}")
    axis = int(axis)
    if axis not in (0, 1, 2):
        raise InputImageError(f"axis must be 0, 1 or 2, got {axis}")
    if shape[axis] > max_slices:
        raise InputImageError(f"the volume has {shape[axis]} slices along axis {axis}; at most {max_slices} are allowed")
    if shape[axis] == 0:
        raise InputImageError("the volume is empty")
    try:
        data = np.asarray(image.dataobj, dtype=np.float32).reshape(shape)
    except Exception as err:
        raise InputImageError(f"the volume's data cannot be read ({type(err).__name__})") from None
    if not np.all(np.isfinite(data)):
        raise InputImageError("the volume contains NaN or infinite values")
    slices = [np.flipud(s.T) for s in np.moveaxis(data, axis, 0)]
    return image, data, slices


def write_volume_like(image, slices, axis: int, path) -> Path:
    """Write translated ``slices`` (as :func:`read_volume` gave them) as a float32 NIfTI volume with
    ``image``'s affine and header."""
    import nibabel as nib

    back = np.stack([np.flipud(s).T for s in slices])
    result = np.moveaxis(back, 0, int(axis)).astype(np.float32)
    header = image.header.copy()
    header.set_data_dtype(np.float32)
    nifti = nib.Nifti1Image(result, image.affine, header)
    nifti.header.set_slope_inter(1.0, 0.0)
    nib.save(nifti, str(path))
    return Path(path)
