"""Image and NIfTI files in and out: what the app (or any caller) reads and writes.

- :func:`read_image_file`: an uploaded PNG / JPEG / TIFF (8- or 16-bit, grayscale or
  RGB) as grayscale pixels and its bit depth, or :class:`InputImageError`;
- :func:`load_volume` / :func:`write_volume_like`: a 3-D NIfTI volume as slices of a
  plane read from its header (anterior / superior up), resampled to the model's 1 mm pixels
  when its pixels are another size (:class:`Volume`), and a translated volume with the
  input's shape, affine and header;
- :class:`OutputFolder`: lossless PNG / TIFF outputs named after the input, each in a
  unique folder, swept when old;
- :func:`heat_map`: an error map as RGB pixels.

Every expected problem with a file is an :class:`InputImageError` with a message that
names the file, never another exception.
"""

from __future__ import annotations

import re
import shutil
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


def safe_stem(name: str, limit: int = 80) -> str:
    """A file-name stem from any text: letters, digits, ``.-_`` kept, the rest ``_``."""
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", str(name)).strip("._") or "image"
    return stem[:limit]


def input_stem(path) -> str:
    """The stem of an uploaded file's name (``brain.nii.gz`` -> ``brain``), safe for a file name."""
    name = Path(str(path)).name if path else "image"
    for suffix in (".nii.gz", ".nii", ".png", ".jpeg", ".jpg", ".tiff", ".tif", ".gz"):
        if name.lower().endswith(suffix):
            name = name[: -len(suffix)]
            break
    return safe_stem(name)


def to_uint16(image01: np.ndarray) -> np.ndarray:
    """An image of [0, 1] intensities as 16-bit pixels (clipped, rounded)."""
    return (np.clip(image01, 0.0, 1.0) * 65535.0 + 0.5).astype(np.uint16)


#: Colours of the error map from 0 (first) to its scale (last).
HEAT_COLOURS = np.array(
    [[0, 0, 4], [40, 11, 84], [101, 21, 110], [159, 42, 99], [212, 72, 66],
     [245, 125, 21], [250, 193, 39], [252, 255, 164]], np.float64,
)


def heat_map(error01: np.ndarray, scale: float = 0.25) -> np.ndarray:
    """RGB uint8 heat map of an absolute error (``scale`` maps to the hottest colour)."""
    t = np.clip(error01 / scale, 0.0, 1.0) * (len(HEAT_COLOURS) - 1)
    low = np.floor(t).astype(int)
    high = np.minimum(low + 1, len(HEAT_COLOURS) - 1)
    frac = (t - low)[..., None]
    rgb = HEAT_COLOURS[low] * (1 - frac) + HEAT_COLOURS[high] * frac
    return rgb.astype(np.uint8)


class OutputFolder:
    """Generated files in one folder, each in a unique subfolder, deleted after ``max_age_s``.

    A file keeps the name its caller gives it (the input's name, so that a download
    says what it is) inside a subfolder of its own: a web app (Gradio) caches returned
    arrays by content, so two concurrent requests with the same output would rewrite
    one cache file while the other is being downloaded. A sweep stats every entry, so
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
        """A new path ``<unique subfolder>/<stem><suffix>`` (``stem`` made safe for a file name)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(prefix="out-", dir=self.folder)) / f"{safe_stem(stem)}{suffix}"

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
                    if item.is_dir():
                        shutil.rmtree(item, ignore_errors=True)
                    else:
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


#: Planes of a volume and the anatomical axis each one is normal to (nibabel axis codes).
PLANES = {"axial": ("S", "I"), "coronal": ("A", "P"), "sagittal": ("R", "L")}
#: The axis normal to each plane once a volume is reoriented to RAS.
_RAS_AXIS = {"sagittal": 0, "coronal": 1, "axial": 2}


def volume_name(path) -> str:
    return Path(str(path)).name if path else "the volume"


def _check_plane(plane: str) -> None:
    if plane not in PLANES:
        raise InputImageError(f"plane must be one of {', '.join(PLANES)}, got {plane!r}")


def plane_axis(affine, plane: str) -> int:
    """The voxel axis normal to ``plane`` ("axial", "coronal", "sagittal") by the header's affine."""
    import nibabel as nib

    _check_plane(plane)
    codes = nib.aff2axcodes(affine)
    for axis, code in enumerate(codes):
        if code in PLANES[plane]:
            return axis
    raise InputImageError(f"the volume's header gives no {plane} axis (orientation {''.join(map(str, codes))})")


def _to_ras(image):
    """(orientation of the voxel axes, transform to RAS) of a NIfTI image by its affine."""
    import nibabel.orientations as orient

    ornt = orient.io_orientation(image.affine)
    return ornt, orient.ornt_transform(ornt, orient.axcodes2ornt(("R", "A", "S")))


#: The in-plane pixel size (mm) the models were trained at: volume slices are resampled to it.
MODEL_PIXEL_MM = 1.0
#: Pixel sides within this fraction of :data:`MODEL_PIXEL_MM` are translated on their own grid.
PIXEL_TOLERANCE = 0.05


def resample(image: np.ndarray, shape: tuple) -> np.ndarray:
    """``image`` on a grid of ``shape`` covering the same field of view (linear; smoothed first
    along a side that shrinks, so that thin detail is averaged rather than aliased)."""
    from skimage.transform import resize

    shape = tuple(int(n) for n in shape)
    if tuple(image.shape) == shape:
        return np.asarray(image, np.float32)
    shrinks = any(new < old for new, old in zip(shape, image.shape))
    return resize(np.asarray(image, np.float64), shape, order=1, mode="edge", preserve_range=True,
                  anti_aliasing=shrinks).astype(np.float32)


class Volume:
    """A 3-D NIfTI volume cut in one plane, as :func:`load_volume` reads it.

    ``slices`` are on the volume's own grid, each shown as a radiologist reads it (anterior or
    superior at the top); ``pixel_mm`` is their (row, column) spacing from the header. A model
    translates :meth:`model_slices`, the same slices resampled to :data:`MODEL_PIXEL_MM` pixels
    when the volume's pixels are another size or not square (thick-slice volumes cut across their
    slices), and :meth:`from_model` brings its output back onto the volume's grid, so that
    :meth:`write` gives a volume with the input's shape, affine and header.
    """

    def __init__(self, image, data: np.ndarray, plane: str, slices: list, pixel_mm: tuple, label: str):
        self.image, self.data, self.plane, self.slices = image, data, plane, slices
        self.pixel_mm = tuple(float(z) for z in pixel_mm)
        self.label = label

    @property
    def shape(self) -> tuple:
        """The volume's shape (its voxel order, as stored)."""
        return tuple(int(n) for n in self.data.shape)

    @property
    def model_shape(self) -> tuple:
        """(rows, columns) of a slice as the model sees it."""
        rows, columns = self.slices[0].shape
        if not self.resampled:
            return rows, columns
        return (max(1, round(rows * self.pixel_mm[0] / MODEL_PIXEL_MM)),
                max(1, round(columns * self.pixel_mm[1] / MODEL_PIXEL_MM)))

    @property
    def resampled(self) -> bool:
        """Whether the slices are resampled for the model (pixels not within tolerance of 1 mm)."""
        return any(abs(z / MODEL_PIXEL_MM - 1.0) > PIXEL_TOLERANCE for z in self.pixel_mm)

    def model_slices(self) -> list:
        """The slices on the model's grid (:data:`MODEL_PIXEL_MM` pixels), resampled once per volume (the
        contrast check and the translation both read them)."""
        if getattr(self, "_model_slices", None) is None:
            shape = self.model_shape
            self._model_slices = [resample(s, shape) for s in self.slices] if self.resampled else list(self.slices)
        return list(self._model_slices)

    def from_model(self, slices) -> list:
        """Slices on the model's grid brought back onto the volume's own grid."""
        shape = self.slices[0].shape
        return [resample(s, shape) for s in slices] if self.resampled else list(slices)

    def write(self, slices, path, keep_dtype: bool = False) -> Path:
        """Write translated ``slices`` (on the volume's own grid) with the input's shape, affine and
        header (:func:`write_volume_like`)."""
        return write_volume_like(self.image, slices, self.plane, path, keep_dtype=keep_dtype)


def _ras_zooms(image, ornt) -> np.ndarray:
    """The voxel sizes (mm) along R, A and S of a NIfTI image reoriented by ``ornt``."""
    zooms = np.sqrt((np.asarray(image.affine, np.float64)[:3, :3] ** 2).sum(axis=0))
    ras = np.empty(3)
    for axis, (target, _) in enumerate(ornt):
        ras[int(target)] = zooms[axis]
    return ras


def load_volume(path, plane: str = "axial", max_slices: int = MAX_SLICES) -> Volume:
    """A 3-D NIfTI volume cut in ``plane`` (a :class:`Volume`).

    The plane comes from the header (the affine's orientation, whatever order the
    voxel axes are stored in); each slice is shown as a radiologist reads it,
    anterior (axial) or superior (coronal, sagittal) at the top. Every expected
    problem is an :class:`InputImageError` that names the file.
    """
    import nibabel as nib

    _check_plane(plane)  # before the file is read
    if path is None:
        raise InputImageError("no volume was uploaded")
    label = volume_name(path)
    name = label.lower()
    if not (name.endswith(".nii") or name.endswith(".nii.gz")):
        raise InputImageError(f"{label}: volumes must be NIfTI files (.nii or .nii.gz)")
    try:
        image = nib.load(path)
        image.shape
    except Exception as err:
        raise InputImageError(f"{label} is not a readable NIfTI file ({type(err).__name__})") from None
    return volume_of(image, plane, label, max_slices)


def volume_of(image, plane: str, label: str, max_slices: int = MAX_SLICES) -> Volume:
    """A :class:`Volume` of a NIfTI image already opened (nibabel), cut in ``plane``; ``label`` names it
    in errors."""
    import nibabel.orientations as orient

    _check_plane(plane)
    shape = image.shape
    if len(shape) == 4 and shape[3] == 1:
        shape = shape[:3]
    if len(shape) != 3:
        raise InputImageError(f"the volume {label} must be 3-D, got shape {tuple(image.shape)}")
    axis = plane_axis(image.affine, plane)
    if shape[axis] > max_slices:
        raise InputImageError(f"the volume {label} has {shape[axis]} {plane} slices; at most {max_slices} "
                              "are allowed")
    if min(shape) == 0:
        raise InputImageError(f"the volume {label} is empty")
    ornt, to_ras = _to_ras(image)
    zooms = _ras_zooms(image, ornt)
    ras_axis = _RAS_AXIS[plane]
    in_plane = [a for a in range(3) if a != ras_axis]
    # Rows of a shown slice run along the second in-plane RAS axis, columns along the first.
    pixel_mm = (zooms[in_plane[1]], zooms[in_plane[0]])
    if not all(np.isfinite(z) and 0.01 <= z <= 100 for z in pixel_mm):
        raise InputImageError(f"the header of the volume {label} gives no usable voxel size "
                              f"({pixel_mm[0]:.3g} x {pixel_mm[1]:.3g} mm)")
    try:
        data = np.asarray(image.dataobj, dtype=np.float32).reshape(shape)
    except Exception as err:
        raise InputImageError(f"the data of the volume {label} cannot be read ({type(err).__name__})") from None
    if not np.all(np.isfinite(data)):
        raise InputImageError(f"the volume {label} contains NaN or infinite values")
    ras = orient.apply_orientation(data, to_ras)
    slices = [np.flipud(s.T) for s in np.moveaxis(ras, ras_axis, 0)]
    volume = Volume(image, data, plane, slices, pixel_mm, label)
    rows, columns = volume.model_shape
    at = f" pixels at {MODEL_PIXEL_MM:g} mm" if volume.resampled else " voxels"
    if min(rows, columns) < 32:
        raise InputImageError(f"the {plane} slices of the volume {label} are {rows}x{columns}{at}; "
                              "each side must be at least 32 (is it a 3-D volume of the brain?)")
    if max(rows, columns) > MAX_SIDE:
        raise InputImageError(f"the {plane} slices of the volume {label} are {rows}x{columns}{at}; "
                              f"each side must be at most {MAX_SIDE}")
    return volume


def read_volume(path, plane: str = "axial", max_slices: int = MAX_SLICES):
    """(NIfTI image, float32 data, slices) of a 3-D volume cut in ``plane``, on its own grid
    (:func:`load_volume`)."""
    volume = load_volume(path, plane, max_slices)
    return volume.image, volume.data, volume.slices


def assemble(image, slices, plane: str) -> np.ndarray:
    """Slices of ``plane`` as :func:`read_volume` cut them, back in ``image``'s own voxel order (float32)."""
    import nibabel.orientations as orient

    ras = np.moveaxis(np.stack([np.flipud(s).T for s in slices]), 0, _RAS_AXIS[plane])
    ornt, _ = _to_ras(image)
    back = orient.ornt_transform(orient.axcodes2ornt(("R", "A", "S")), ornt)
    return orient.apply_orientation(ras, back).astype(np.float32)


#: Integer NIfTI data types a translation can keep (its [0, 1] intensities stored with a scale factor).
_KEPT_INTEGERS = ("uint8", "int8", "uint16", "int16", "uint32", "int32")


def write_volume_like(image, slices, plane: str, path, keep_dtype: bool = False) -> Path:
    """Write translated ``slices`` (as :func:`read_volume` gave them for ``plane``) as a NIfTI volume
    with ``image``'s shape, affine and header.

    The data are float32 intensities in [0, 1]; with ``keep_dtype`` an integer input keeps its
    data type (the intensities stored as its whole range, with the header's scale factor bringing
    them back to [0, 1]) and a float64 input stays float64."""
    import nibabel as nib

    result = assemble(image, slices, plane)
    header = image.header.copy()
    dtype = np.dtype(image.get_data_dtype()) if keep_dtype else np.dtype(np.float32)
    slope = 1.0
    if dtype.name in _KEPT_INTEGERS:
        top = float(np.iinfo(dtype).max)
        result = np.round(np.clip(result, 0.0, 1.0) * top).astype(dtype)
        slope = 1.0 / top
    elif dtype != np.float64:
        dtype = np.dtype(np.float32)
    header.set_data_dtype(dtype)
    if len(image.shape) == 4:
        result = result[..., None]
    nifti = nib.Nifti1Image(result.astype(dtype, copy=False), image.affine, header)
    nifti.header.set_slope_inter(slope, 0.0)
    nib.save(nifti, str(path))
    return Path(path)
