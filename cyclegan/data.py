"""Training data: read a data set with ``datasets``, split it, stream batches.

A data set is a Hub data set id, a local folder or a local zip in the layout of
``nitishpandey04/MRI-Unpaired-T1-and-T2-Images``: images under folders whose
names say the domain (``Tr1/TrainT1/*.png``, ``Tr2/TrainT2/*.png``). A data set
with a ``label`` column whose class names say T1/T2 works too. A NIfTI data set
(a BIDS folder, ``sub-*/[ses-*/]anat/*_T1w.nii[.gz]`` and ``*_T2w.nii[.gz]``, or a
Hub data set of such files) is read with ``datasets``' NIfTI folder builder and cut
into slices in the planes asked (:func:`volume_slices`): by the header's orientation,
resampled in-plane to the model's 1 mm pixels, scaled per volume, near-empty slices
left out; a visit's T1w and T2w on one grid give aligned pairs, and so do those that
registration (:mod:`cyclegan.registration`) aligns. It is read once
with ``datasets`` in streaming mode; the images are decoded here so that an
unreadable file is skipped and counted instead of stopping the run.

Training draws two independent shuffled streams, one per domain (unpaired),
with the reference augmentation: pad, random crop, horizontal flip. A
deterministic validation split (by file name) and held-out pairs stay out of
training.
"""

from __future__ import annotations

import csv
import dataclasses
import logging
import os
import re
import zlib
from pathlib import Path
from typing import Iterable

import keras
import numpy as np

from cyclegan.augment import AUGMENTATIONS, Pipeline, SkullStrip
from cyclegan.errors import DataError, InputImageError
from cyclegan.preprocessing import scale_intensities, to_grayscale

log = logging.getLogger(__name__)

DOMAINS = ("t1", "t2")
#: Fewest training images per domain that make a run meaningful.
MIN_TRAIN_IMAGES = 2
_IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")


@dataclasses.dataclass
class Slice:
    """One decoded image: its name (path inside the data set), domain and pixels."""

    name: str
    domain: str
    image: np.ndarray  # float32 (H, W) in [-1, 1]
    source: int = 0  # index of its data set in a run that mixes several
    subject: str | None = None  # named by the run's subject pattern, when it matches
    volume: str | None = None  # the NIfTI volume it was cut from (its path inside the data set)


@dataclasses.dataclass
class Source:
    """The training images of one data set, its aligned pairs and its sampling weight."""

    train: dict  # domain -> list[Slice]
    pairs: list  # [(Slice t1, Slice t2)] aligned pairs inside the training split
    weight: float = 1.0
    name: str = ""
    share: float | None = None  # fraction of draws that are pairs; None: len(pairs) / images
    #: For a NIfTI data set: its participants, and its aligned pairs (held-out ones included) as
    #: given (a visit's T1w and T2w on one grid) and by registration.
    participants: tuple = ()
    planes: tuple = ()
    pairs_as_given: int = 0
    pairs_registered: int = 0
    registered_unpaired: bool = False  # its registered pairs train unpaired (DataConfig.registered_pairs)

    def volumes_text(self) -> str:
        """What a NIfTI data set gave (empty for a data set of images)."""
        if not self.participants:
            return ""
        text = (f"{len(self.participants)} participants ({', '.join(self.participants)}), "
                f"{' and '.join(self.planes)} slices, pairs aligned as given {self.pairs_as_given}, by registration "
                f"{self.pairs_registered}")
        if self.registered_unpaired and self.pairs_registered:
            text += " (trained unpaired)"
        return text

    @property
    def pair_share(self) -> float:
        """Fraction of this data set's draws that are aligned pairs (paired training): the
        share it was given, or its pairs over its images of the larger contrast."""
        if not self.pairs:
            return 0.0
        if self.share is not None:
            return self.share
        most = max(len(self.train["t1"]), len(self.train["t2"]), 1)
        return min(1.0, len(self.pairs) / most)


@dataclasses.dataclass
class DataSplit:
    """Images split into training and validation, per domain (all data sets together)
    and per data set (``sources``)."""

    train: dict  # domain -> list[Slice]
    val: dict  # domain -> list[Slice]
    train_pairs: list  # [(Slice t1, Slice t2)] aligned pairs inside the training split
    holdout_pairs: list  # [(Slice t1, Slice t2)] aligned pairs kept out of training
    skipped: int = 0
    sources: list = dataclasses.field(default_factory=list)  # [Source], one per data set
    holdout_subjects: tuple = ()

    def describe(self) -> str:
        text = (
            f"train: {len(self.train['t1'])} T1 / {len(self.train['t2'])} T2"
            f" ({len(self.train_pairs)} aligned pairs); validation: {len(self.val['t1'])} T1 /"
            f" {len(self.val['t2'])} T2; held-out pairs: {len(self.holdout_pairs)};"
            f" unreadable images skipped: {self.skipped}"
        )
        if self.holdout_subjects:
            text += f"; held-out subjects: {', '.join(self.holdout_subjects)}"
        volumes = [f"{s.name}: {s.volumes_text()}" for s in self.sources if s.participants]
        if volumes:
            text += "; volumes of " + "; ".join(volumes)
        if len(self.sources) > 1:
            total = sum(s.weight for s in self.sources) or 1.0
            text += "; data sets: " + ", ".join(
                f"{s.name} ({len(s.train['t1'])} T1 / {len(s.train['t2'])} T2, {len(s.pairs)} pairs,"
                f" weight {s.weight / total:.2f}" + (f", pair share {s.share:.2f}" if s.share is not None else "")
                + ")" for s in self.sources
            )
        return text


def subject_of(name: str, pattern: str) -> str | None:
    """The subject a file belongs to: the first group of ``pattern`` searched in its
    file name (``patient07_z052.png`` -> ``patient07`` with the default pattern)."""
    match = re.search(pattern, Path(name.replace("\\", "/")).name)
    return match.group(1) if match else None


def domain_of(text: str) -> str | None:
    """'t1' or 't2' when ``text`` (a folder or class name) names exactly one of them."""
    lower = text.lower()
    found = {d for d in DOMAINS if re.search(d, lower)}
    return found.pop() if len(found) == 1 else None


def _domain_from_path(name: str) -> str | None:
    for part in reversed(Path(name).parts[:-1]):
        domain = domain_of(part)
        if domain:
            return domain
    return None


def _inner_name(path: str, root: str | None) -> str:
    """The image's path inside the data set (zip member, or relative to the folder)."""
    if "::" in path:  # fsspec chain such as zip://Tr1/x.png::/data.zip
        path = path.split("::", 1)[0]
        path = re.sub(r"^[a-z0-9]+://", "", path)
    elif root is not None:
        try:
            path = os.path.relpath(path, root)
        except ValueError:
            pass
    return path.replace(os.sep, "/")


def _has_volumes(folder: Path) -> bool:
    return any(True for pattern in ("*.nii", "*.nii.gz") for _ in folder.rglob(pattern))


#: The environment variable naming a folder of data sets given by name: a ``--dataset`` or
#: ``--holdout-pairs`` value that is no path from here is looked up under it
#: (``real-t1t2-volumes``, ``mri-t1t2-unpaired/PAIRS.csv``) before it is taken for a Hub data set
#: id, so that recipes and records name data sets, never a machine's paths.
DATA_ROOT_ENV = "MRI_CYCLEGAN_DATA"


def locate(name: str) -> str:
    """``name`` itself when it is a path from here; else the same name under the data root
    (:data:`DATA_ROOT_ENV`) when it is there; else ``name`` unchanged (a Hub data set id)."""
    name = str(name)
    root = os.environ.get(DATA_ROOT_ENV, "").strip()
    if Path(name).exists() or not root or Path(name).is_absolute():
        return name
    under = Path(root).expanduser() / name
    return str(under) if under.exists() else name


def _open_streaming(source: str):
    import datasets

    given, source = source, locate(source)
    source_path = Path(source)
    if source_path.is_dir():
        builder = "niftifolder" if _has_volumes(source_path) else "imagefolder"
        kwargs = {"path": builder, "data_dir": str(source_path), "drop_labels": True}
    elif source_path.is_file():
        if source_path.suffix.lower() != ".zip" and source_path.suffix.lower() not in _IMAGE_EXTENSIONS:
            raise DataError(f"{source} is a file but not a zip of images")
        kwargs = {"path": "imagefolder", "data_files": {"train": str(source_path)}, "drop_labels": True}
    elif re.match(r"^[\w.-]+/[\w.-]+$", source) and ".." not in source:
        # Folder-of-images repos (like the users' zip) need drop_labels: the label that
        # datasets infers from folder names breaks on zips. Repos with their own columns
        # (parquet, a label column) do not take the option.
        kwargs = {"path": source, "drop_labels": True}
    else:
        root = os.environ.get(DATA_ROOT_ENV, "").strip()
        where = f"not under ${DATA_ROOT_ENV} ({root})" if root else f"${DATA_ROOT_ENV} is not set"
        raise DataError(f"{given!r} is neither a local folder or zip nor a Hub data set id (owner/name); "
                        f"a data set named without a path is looked up under ${DATA_ROOT_ENV}: {where}")
    try:
        try:
            dataset = datasets.load_dataset(**kwargs, split="train", streaming=True)
        except (TypeError, ValueError) as err:
            if "drop_labels" not in str(err) or kwargs.get("path") == "imagefolder":
                raise
            kwargs.pop("drop_labels")
            dataset = datasets.load_dataset(**kwargs, split="train", streaming=True)
    except Exception as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else ""
        raise DataError(f"cannot open the data set {source!r}: {type(err).__name__}: {first}") from None
    root = str(source_path) if source_path.is_dir() else None
    return dataset, root


#: The BIDS suffix of each domain's volumes.
BIDS_SUFFIXES = {"T1w": "t1", "T2w": "t2"}
#: A slice is left out when less of it than this is head (after the volume's scaling).
MIN_HEAD_FRACTION = 0.05
#: Affines of two volumes that differ by less than this (mm) put them on one grid.
GRID_TOLERANCE = 1e-3


def bids_entities(name: str) -> tuple[str | None, str | None, str | None]:
    """(participant label without ``sub-``, session label or None, domain or None) of a NIfTI file name
    such as ``sub-01/ses-2/anat/sub-01_ses-2_T1w.nii.gz``."""
    base = Path(name.replace("\\", "/")).name
    stem = re.sub(r"\.nii(\.gz)?$", "", base, flags=re.IGNORECASE)
    participant = re.search(r"(?:^|_)sub-([A-Za-z0-9]+)", stem)
    session = re.search(r"(?:^|_)ses-([A-Za-z0-9]+)", stem)
    domain = BIDS_SUFFIXES.get(stem.rsplit("_", 1)[-1])
    return (participant.group(1) if participant else None, session.group(1) if session else None, domain)


def subject_key(name: str) -> str:
    """A subject's name as held-out subjects are matched: a BIDS ``sub-`` prefix is optional."""
    return name[4:] if name.startswith("sub-") else name


def volume_scale(data: np.ndarray, name: str) -> float:
    """What a volume's intensities are divided by before its slices are cut: the 99.5th percentile
    of its positive voxels (an :class:`InputImageError` when it has none)."""
    positive = data[data > 0]
    top = float(np.percentile(positive, 99.5)) if positive.size else 0.0
    if top <= 0:
        raise InputImageError(f"the volume {name} has no positive voxels")
    return top


def volume_slices(image, name: str, planes=("axial",)) -> tuple[list, dict]:
    """Training slices of one NIfTI volume (a nibabel image) in ``planes``: by the header's orientation
    (:func:`cyclegan.files.volume_of`), resampled in-plane to 1 mm pixels, scaled by the volume's
    99.5th percentile of its positive voxels, then each slice on its own window like any training
    image ([-1, 1]); slices with less than :data:`MIN_HEAD_FRACTION` head are left out. Returns
    ``([(plane, index, pixels)], {plane: shape of every slice})``."""
    from cyclegan.files import volume_of

    out, shapes = [], {}
    for plane in planes:
        volume = volume_of(image, plane, name)
        top = volume_scale(volume.data, name)
        shapes[plane] = volume.model_shape
        for index, pixels in enumerate(volume.model_slices()):
            scaled = np.clip(pixels / top, 0.0, 1.0)
            if np.mean(scaled > 0.05) < MIN_HEAD_FRACTION or scaled.max() <= scaled.min():
                continue
            out.append((plane, index, scale_intensities(scaled)[0]))
    return out, shapes


def _same_grid(a, b) -> bool:
    return tuple(a.shape[:3]) == tuple(b.shape[:3]) and np.allclose(a.affine, b.affine, atol=GRID_TOLERANCE)


def read_volumes(dataset, root: str | None, planes=("axial",), limit: int | None = None,
                 column: str = "nifti", register: bool = False) -> tuple[list[Slice], int, list]:
    """Slices of every T1w / T2w volume of a streamed NIfTI data set and the aligned pairs of its visits;
    returns (slices, unreadable volumes, [(t1 name, t2 name)]).

    A visit's T1w and T2w on one grid are aligned as given. With ``register``, every visit's T2w is
    also registered rigidly onto its T1w (:func:`cyclegan.registration.register`): where the volumes
    lie on other grids, or on one grid but more than :data:`cyclegan.registration.IDENTITY_MM` apart,
    the T2w's slices are cut from the registered volume instead (names marked :data:`REGISTERED`)
    and pair with the T1w's; a registration that fails its check leaves the visit unpaired, with a
    warning."""
    from datasets import Nifti
    from nibabel.filebasedimages import ImageFileError

    dataset = dataset.cast_column(column, Nifti(decode=False))
    decoder = Nifti()
    slices, skipped, visits = [], 0, {}
    try:
        for index, example in enumerate(dataset):
            value = example.get(column)
            name = _inner_name((value or {}).get("path") or f"{index:06d}.nii.gz", root)
            participant, session, domain = bids_entities(name)
            if domain is None:
                continue
            try:
                image = decoder.decode_example(value)
                cut = volume_slices(image, name, planes)[0]
            except (InputImageError, ImageFileError, OSError, ValueError, EOFError) as err:
                skipped += 1
                log.warning("skipping unreadable volume %s: %s", name, err)
                continue
            names = _add_slices(slices, cut, name, domain, participant)
            visit = visits.setdefault((participant, session), {})
            visit.setdefault(domain, []).append((image, name, names))
            if limit is not None and len(slices) >= limit:
                break
    except Exception as err:  # a broken archive or lost connection mid-stream
        raise DataError(f"reading the volumes failed: {type(err).__name__}: {err}") from None
    pairs = []
    for (participant, session), visit in visits.items():
        if not visit.get("t1"):
            continue
        t1_image, t1_name, t1_names = visit["t1"][0]
        for t2_image, t2_name, t2_names in visit.get("t2", []):
            same = _same_grid(t1_image, t2_image)
            if register:
                registered = _registered(t1_image, t2_image, t2_name, same)
                if registered is not None:
                    slices[:] = [s for s in slices if s.volume != t2_name]
                    cut = volume_slices(registered, t2_name + REGISTERED, planes)[0]
                    t2_names = _add_slices(slices, cut, t2_name + REGISTERED, "t2", participant)
                    same = True
            if same:
                pairs += [(t1_names[key], t2_names[key]) for key in sorted(t1_names) if key in t2_names]
    return slices, skipped, pairs


def _add_slices(slices: list, cut, name: str, domain: str, participant: str | None) -> dict:
    """Add a volume's slices (from :func:`volume_slices`) to ``slices``; returns their names by (plane, index)."""
    names = {}
    for plane, number, pixels in cut:
        names[(plane, number)] = f"{name}#{plane}{number:03d}"
        slices.append(Slice(names[(plane, number)], domain, pixels, subject=participant, volume=name))
    return names


def _registered(t1_image, t2_image, t2_name: str, same_grid: bool):
    """The T2w volume registered onto the T1w's grid (a nibabel image), or None when the volumes are used
    as given (one grid, within the registration's identity) or the registration was refused."""
    import nibabel as nib

    from cyclegan.registration import IDENTITY_MM, register

    t1 = np.asarray(t1_image.dataobj, np.float32).reshape(t1_image.shape[:3])
    t2 = np.asarray(t2_image.dataobj, np.float32).reshape(t2_image.shape[:3])
    try:
        result = register(t1, t1_image.affine, t2, t2_image.affine)
    except ImportError:
        raise DataError("pairing the visits of a NIfTI data set (--holdout-pairs aligned) registers them with "
                        "SimpleITK, which is not installed: pip install SimpleITK (or the package's train "
                        "extra)") from None
    if not result.accepted:
        log.warning("registration of %s onto its visit's T1w refused (%s)%s", t2_name, result.reason,
                    "; its slices pair as given on the shared grid" if same_grid else "; the visit stays unpaired")
        return None
    if same_grid and result.displacement_mm <= IDENTITY_MM:
        log.info("%s lies on its T1w's grid within %.2f mm: paired as given", t2_name, result.displacement_mm)
        return None
    log.info("%s registered onto its visit's T1w (moved up to %.1f mm%s)", t2_name, result.displacement_mm,
             ", from the cache" if result.cached else "")
    return nib.Nifti1Image(result.data, t1_image.affine)


def read_source(source: str, limit: int | None = None, planes=("axial",),
                register: bool = False) -> tuple[list[Slice], int, list | None]:
    """Read every image of ``source`` (or the slices of its volumes); returns (slices, unreadable images or
    volumes, the aligned pairs of a NIfTI data set or None). ``register`` registers the visits of a
    NIfTI data set (:func:`read_volumes`)."""
    from datasets import Nifti

    dataset, root = _open_streaming(str(source))
    features = dataset.features or {}
    column = next((k for k, f in features.items() if isinstance(f, Nifti)), None)
    if column is not None:
        slices, skipped, pairs = read_volumes(dataset, root, planes, limit, column, register)
        if not slices and not skipped:
            raise DataError(f"{source!r} has no T1w or T2w NIfTI volumes (BIDS names such as sub-01_T1w.nii.gz)")
        return slices, skipped, pairs
    slices, skipped = _read_images(dataset, root, source, limit)
    return slices, skipped, None


def read_dataset(source: str, limit: int | None = None) -> tuple[list[Slice], int]:
    """Read every image of ``source``; returns (slices, number of unreadable images)."""
    return read_source(source, limit)[:2]


def _read_images(dataset, root, source, limit) -> tuple[list[Slice], int]:
    from datasets import Image as ImageFeature

    features = dataset.features or {}
    image_column = next(
        (k for k, f in features.items() if isinstance(f, ImageFeature)), "image"
    )
    label_names = None
    label = features.get("label")
    if label is not None and hasattr(label, "names"):
        label_names = list(label.names)
    if image_column in features:
        dataset = dataset.cast_column(image_column, ImageFeature(decode=False))
    decoder = ImageFeature()
    slices, skipped = [], 0
    try:
        for index, example in enumerate(dataset):
            value = example.get(image_column)
            path = (value or {}).get("path") or f"{index:06d}"
            name = _inner_name(path, root)
            domain = None
            if label_names is not None and example.get("label") is not None:
                domain = domain_of(label_names[example["label"]])
            domain = domain or _domain_from_path(name)
            if domain is None:
                continue
            try:
                pil = decoder.decode_example(value)
                pixels, _, _ = scale_intensities(to_grayscale(pil))
            except (InputImageError, OSError, ValueError, SyntaxError) as err:
                skipped += 1
                log.warning("skipping unreadable image %s: %s", name, err)
                continue
            slices.append(Slice(name, domain, pixels))
            if limit is not None and len(slices) >= limit:
                break
    except Exception as err:  # a broken archive or lost connection mid-stream
        raise DataError(f"reading {source!r} failed: {type(err).__name__}: {err}") from None
    if skipped:
        log.warning("%d unreadable image(s) were skipped", skipped)
    return slices, skipped


#: The pair list that stands for a NIfTI data set's aligned volumes.
ALIGNED = "aligned"
#: Marks the names of slices cut from a T2w volume registered onto its visit's T1w.
REGISTERED = "#registered"


def read_pairs(path) -> list[tuple[str, str]]:
    """Read a CSV of aligned (T1 file, T2 file) names with header ``t1,t2`` (a path, or a name under
    the data root: :func:`locate`)."""
    try:
        with open(locate(path), newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
    except OSError as err:
        raise DataError(f"cannot read the pairs file {path}: {err}") from None
    if not rows or not {"t1", "t2"} <= set(rows[0]):
        raise DataError(f"{path} must be a CSV with columns t1,t2 and at least one row")
    return [(row["t1"].strip(), row["t2"].strip()) for row in rows]


def read_datasets(config) -> tuple[list, int]:
    """Read every data set of a :class:`cyclegan.config.DataConfig`.

    Returns ``([(slices, pairs or None), ...], unreadable images)``: each
    slice carries its data set's index and its subject (``subject_pattern``).
    """
    parts, skipped = [], 0
    for index, source in enumerate(config.datasets):
        csv_path = config.pairs_of(index)
        slices, bad, aligned = read_source(source, limit=config.max_images, planes=config.planes,
                                           register=csv_path == ALIGNED)
        if csv_path == ALIGNED:
            if aligned is None:
                raise DataError(f"--holdout-pairs {ALIGNED} is for NIfTI data sets; {source} is a data set of images")
            pairs = aligned
        else:
            pairs = read_pairs(csv_path) if csv_path else None
        for s in slices:
            s.source = index
            if s.volume is None:  # a volume's slices know their participant
                s.subject = subject_of(s.name, config.subject_pattern)
        parts.append((slices, pairs))
        skipped += bad
    return parts, skipped


def _key(name: str) -> str:
    """Last folder and file name: matches names from a folder, a zip or a CSV."""
    parts = name.replace("\\", "/").split("/")
    return "/".join(parts[-2:])


def _natural(name: str):
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name)]


def choose_holdout(pairs: list, fraction: float) -> list:
    """Every k-th pair in slice order, spread over the whole range (deterministic)."""
    if not pairs or fraction <= 0:
        return []
    ordered = sorted(pairs, key=lambda p: _natural(getattr(p[0], "name", p[0])))
    count = max(1, round(len(ordered) * fraction))
    positions = np.linspace(0, len(ordered) - 1, count + 2)[1:-1].round().astype(int)
    return [ordered[i] for i in sorted(set(positions.tolist()))]


def in_validation(name: str, fraction: float) -> bool:
    """Deterministic validation membership from the file name alone."""
    return fraction > 0 and (zlib.crc32(_key(name).encode("utf-8")) % 10_000) < fraction * 10_000


def split_dataset(
    slices: Iterable[Slice],
    val_fraction: float = 0.1,
    pairs: list | None = None,
    holdout_fraction: float = 0.0,
    skipped: int = 0,
) -> DataSplit:
    """Split one data set into train/validation; held-out pairs (both images) leave training."""
    return split_datasets([(list(slices), pairs)], val_fraction, holdout_fraction, skipped=skipped)


def split_datasets(
    parts: list,
    val_fraction: float = 0.1,
    holdout_fraction: float = 0.0,
    holdout_subjects: Iterable[str] = (),
    weights: list | None = None,
    names: list | None = None,
    skipped: int = 0,
    pair_shares: list | None = None,
    registered_pairs: str = "paired",
) -> DataSplit:
    """Split several data sets, each ``(slices, pairs or None)``, for one run.

    Slices of ``holdout_subjects`` (their ``subject``) leave training, both
    contrasts; aligned pairs among them are held-out pairs. Data sets without
    a held-out subject hold out ``holdout_fraction`` of their pairs (spread
    over the slice range); those with nothing held out put ``val_fraction`` of
    their images (by file name) into validation. ``weights`` and ``pair_shares``
    (None entries: the data set's own share) become each :class:`Source`'s. With
    ``registered_pairs`` "unpaired", pairs aligned by registration (:data:`REGISTERED`) leave
    the training pairs; their slices stay training images and held-out ones stay held out.
    """
    holdout_subjects = tuple(subject_key(name) for name in holdout_subjects)
    for slices, _ in parts:
        for s in slices:
            if s.subject:
                s.subject = subject_key(s.subject)
    found_subjects = {s.subject for slices, _ in parts for s in slices if s.subject}
    missing = [name for name in holdout_subjects if name not in found_subjects]
    if missing:
        known = ", ".join(sorted(found_subjects)[:12]) or "none: no file name matches the subject pattern"
        raise DataError(f"held-out subject(s) not found: {', '.join(missing)} (subjects found: {known})")
    counts = {d: sum(s.domain == d for slices, _ in parts for s in slices) for d in DOMAINS}
    for d in DOMAINS:
        if counts[d] == 0:
            raise DataError(
                f"no {d.upper()} images found: images must sit under a folder whose name says "
                f"{d.upper()} (e.g. Tr1/TrainT1/*.png and Tr2/TrainT2/*.png)"
            )
    train_all = {d: [] for d in DOMAINS}
    val = {d: [] for d in DOMAINS}
    sources, all_pairs, holdout_all = [], [], []
    for index, (slices, pairs) in enumerate(parts):
        by_key = {}
        for s in slices:
            by_key[_key(s.name)] = s
        known_pairs = []
        for t1_name, t2_name in pairs or []:
            t1, t2 = by_key.get(_key(t1_name)), by_key.get(_key(t2_name))
            if t1 is None or t2 is None:
                continue
            if t1.domain != "t1" or t2.domain != "t2" or t1.image.shape != t2.image.shape:
                raise DataError(f"pair ({t1_name}, {t2_name}) is not a same-size T1/T2 pair")
            known_pairs.append((t1, t2))
        label = (names[index] if names else None) or f"data set {index + 1}"
        if pairs and not known_pairs:
            raise DataError(f"none of the listed pairs was found in {label}")
        by_subject = any(s.subject in holdout_subjects for s in by_key.values())
        if by_subject:
            holdout = [p for p in known_pairs if p[0].subject in holdout_subjects
                       and p[1].subject in holdout_subjects]
        else:
            holdout = choose_holdout(known_pairs, holdout_fraction)
        held = {id(s) for pair in holdout for s in pair}
        train = {d: [] for d in DOMAINS}
        for s in sorted(by_key.values(), key=lambda s: _natural(s.name)):
            if id(s) in held or s.subject in holdout_subjects:
                val[s.domain].append(s)
            elif not holdout and not by_subject and in_validation(s.name, val_fraction):
                val[s.domain].append(s)
            else:
                train[s.domain].append(s)
        train_ids = {id(s) for d in DOMAINS for s in train[d]}
        train_pairs = [p for p in known_pairs if id(p[0]) in train_ids and id(p[1]) in train_ids]
        if registered_pairs == "unpaired":  # their slices stay training images, without their pairing
            train_pairs = [p for p in train_pairs if REGISTERED not in p[1].name]
        weight = float(weights[index]) if weights else 1.0
        share = pair_shares[index] if pair_shares else None
        if share and not train_pairs:
            raise DataError(f"pair share {share:g} for {label}, which has no aligned pairs in the training split")
        source = Source(train, train_pairs, weight, label, None if share is None else float(share))
        source.participants = tuple(sorted({s.subject for s in by_key.values() if s.volume and s.subject}))
        cut = {re.sub(r"\d+$", "", s.name.rsplit("#", 1)[-1]) for s in by_key.values() if s.volume}
        source.planes = tuple(plane for plane in ("axial", "coronal", "sagittal") if plane in cut)
        source.pairs_registered = sum(REGISTERED in t2.name for _, t2 in known_pairs)
        source.pairs_as_given = len(known_pairs) - source.pairs_registered
        source.registered_unpaired = registered_pairs == "unpaired"
        sources.append(source)
        all_pairs += train_pairs
        holdout_all += holdout
        for d in DOMAINS:
            train_all[d] += train[d]
    for d in DOMAINS:
        if len(train_all[d]) < MIN_TRAIN_IMAGES:
            raise DataError(
                f"too few {d.upper()} images to train on: {len(train_all[d])} after the validation "
                f"split (need at least {MIN_TRAIN_IMAGES}; {counts[d]} found in all)"
            )
    # A data set left with no image of one contrast cannot be drawn from.
    sources = [s for s in sources if s.train["t1"] and s.train["t2"]]
    if not any(s.weight > 0 for s in sources):
        raise DataError("every data set that has training images of both contrasts has weight 0")
    return DataSplit(train_all, val, all_pairs, holdout_all, skipped, sources, holdout_subjects)


class TrainingStream(keras.utils.PyDataset):
    """Batches ``{"t1": ..., "t2": ...}`` of random crops for ``CycleGAN.fit``.

    The images come from one or more data sets (``sources``, a list of
    :class:`Source`; or ``train`` and ``pairs`` for a single one), each batch
    index from a data set drawn by the sources' weights. Unpaired (no
    ``pairs``): a T1 and a T2 image drawn independently, each data set and
    domain its own stream, reshuffled every epoch. Paired (``paired=True``, or
    ``pairs`` given): a data set with aligned pairs gives one pair, same crop
    and flip for both images, for its share of draws (:attr:`Source.pair_share`)
    and two independent images otherwise; the batch then also holds
    ``"paired"`` (1 where the two images at a batch index are aligned), so
    that the paired L1 term counts only true pairs while the CycleGAN terms
    see every image. ``fractions`` are the augmentations' fractions by their
    config field (``skull_strip=0.3``, ``zoom=0.5``, ...; see
    :mod:`cyclegan.augment`), applied as their :class:`cyclegan.augment.Pipeline`
    applies them: pair-level ones on aligned pairs, image-level ones on every
    image, then crop and flip; with input-level ones (``contrast``) the batches
    also hold ``"t1_input"`` and ``"t2_input"`` (the images the generators
    see, crop for crop the same as ``"t1"`` and ``"t2"``, which stay the
    targets). Discriminator-level ones (``diff_augment``) run in the train
    step. Deterministic for a given seed and epoch.
    """

    def __init__(self, train: dict | None, image_size: int, batch_size: int, steps_per_epoch: int,
                 seed: int = 0, pairs: list | None = None, epoch: int = 0, sources: list | None = None,
                 paired: bool | None = None, **fractions: float):
        super().__init__()
        if sources is None:
            if train is None:
                raise ValueError("TrainingStream needs train images or sources")
            sources = [Source(train, list(pairs or []))]
        self.sources = [s for s in sources if s.weight > 0]
        if not self.sources:
            raise ValueError("TrainingStream needs a data set with a positive weight")
        self.paired = bool(pairs) if paired is None else bool(paired)
        if self.paired and not any(s.pairs for s in self.sources):
            raise ValueError("paired training needs aligned pairs in at least one data set")
        self.image_size = image_size
        self.batch_size = batch_size
        self.steps_per_epoch = steps_per_epoch
        self.seed = seed
        self.epoch = epoch
        self.pipeline = Pipeline(fractions, image_size)
        for cls in AUGMENTATIONS:
            setattr(self, cls.field, self.pipeline.fractions[cls.field])
        if self.skull_strip > 0 and not self.paired:
            raise ValueError("skull_strip needs aligned pairs")
        self._plan_cache = (None, None)

    def brain_masks(self) -> tuple[int, int]:
        """(aligned training pairs with a trustworthy brain mask, all of them) when skull
        stripping, else (0, 0)."""
        strips = [a for a in self.pipeline.stages["pair"] if isinstance(a, SkullStrip)]
        if not strips:
            return 0, 0
        pairs = [(a.image, b.image) for s in self.sources for a, b in s.pairs]
        return sum(strips[0].applies(p) for p in pairs), len(pairs)

    def __len__(self):
        return self.steps_per_epoch

    def _plan(self) -> list:
        """This epoch's draws, one per batch slot: ("pair", source, i) or ("free", source, i1, i2).

        Each data set, domain and pair list is its own stream of permutations,
        so every image is seen once before any is seen twice."""
        if self._plan_cache[0] == self.epoch:
            return self._plan_cache[1]
        needed = self.steps_per_epoch * self.batch_size
        rng = np.random.default_rng([self.seed, self.epoch, 11])
        weights = np.array([s.weight for s in self.sources], np.float64)
        chosen = (rng.choice(len(self.sources), needed, p=weights / weights.sum())
                  if len(self.sources) > 1 else np.zeros(needed, int))
        streams = {}

        def take(key, count):
            order, position = streams.get(key, (None, 0))
            if order is None or position >= len(order):
                order, position = rng.permutation(count), 0
            streams[key] = (order, position + 1)
            return int(order[position])

        plan = []
        for k in chosen.tolist():
            source = self.sources[k]
            if self.paired and source.pairs and (source.pair_share >= 1.0 or rng.random() < source.pair_share):
                plan.append(("pair", k, take((k, "pair"), len(source.pairs))))
            else:
                plan.append(("free", k, take((k, "t1"), len(source.train["t1"])),
                             take((k, "t2"), len(source.train["t2"]))))
        self._plan_cache = (self.epoch, plan)
        return plan

    def __getitem__(self, index):
        if index >= self.steps_per_epoch:
            raise IndexError(index)
        rng = np.random.default_rng([self.seed, self.epoch, index, 7])
        span = slice(index * self.batch_size, (index + 1) * self.batch_size)
        out = {key: [] for key in ("t1", "t2", "t1_input", "t2_input")}
        aligned = []

        def add(domain, target, source):
            out[domain].append(target)
            out[f"{domain}_input"].append(source)

        for draw in self._plan()[span]:
            source = self.sources[draw[1]]
            if draw[0] == "pair":
                i = draw[2]
                a, b = source.pairs[i][0].image, source.pairs[i][1].image
                a, b = self.pipeline.apply("image", rng, *self.pipeline.apply("pair", rng, a, b))
                crop, image, flip, offset = self.pipeline.crops(rng, a)
                add("t1", crop, image)
                add("t2", *self.pipeline.crops(rng, b, flip, offset)[:2])
                aligned.append(1.0)
            else:
                for domain, i in (("t1", draw[2]), ("t2", draw[3])):
                    (image,) = self.pipeline.apply("image", rng, source.train[domain][i].image)
                    add(domain, *self.pipeline.crops(rng, image)[:2])
                aligned.append(0.0)
        keys = ("t1", "t2", "t1_input", "t2_input") if self.pipeline.stages["input"] else ("t1", "t2")
        batch = {key: np.stack(out[key])[..., None] for key in keys}
        if self.paired:
            batch["paired"] = np.asarray(aligned, np.float32)
        return batch

    def on_epoch_end(self):
        self.epoch += 1
