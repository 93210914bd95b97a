"""Rigid registration of a visit's T2-weighted volume onto its T1-weighted one (SimpleITK), checked and cached.

Clinical scans of one visit are separate acquisitions: the T1w and the T2w lie on different grids, and
even volumes on one grid can be a voxel apart. :func:`register` finds the rigid transform (rotation and
translation) that maximises the Mattes mutual information between the two, resamples the T2w onto the
T1w's grid and checks the result: the mutual information must be highest at the transform found, not
at any shift of :data:`CHECK_SHIFT_MM` along an axis. A registration that fails the check is refused
(the visit stays unpaired). Results are cached by the content of both volumes, so a run that starts
again, or another run on the same data, does not register again.

SimpleITK is imported only here, when a data set asks for its visits to be paired.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import tempfile
from pathlib import Path

import numpy as np

#: Bumped when the method changes, so that cached results of another method are not reused.
METHOD = "rigid-mattes-mi-v3"
#: The check's shifts (mm) along each axis of the T1w grid.
CHECK_SHIFT_MM = 2.0
#: A transform closer to the identity than this (mm of displacement anywhere in the head) leaves
#: volumes on one grid as they were given: co-registered volumes register to within about 0.5 mm.
IDENTITY_MM = 1.0


@dataclasses.dataclass
class Registration:
    """One registration's outcome: ``accepted`` with the T2w resampled onto the T1w's grid (``data``,
    float32 in the T1w's voxel order), or refused with the ``reason``."""

    accepted: bool
    parameters: list  # Euler angles (rad) and translation (mm) of the T1w -> T2w transform (ITK, LPS)
    metric: float  # Mattes mutual information at the transform (lower is better)
    displacement_mm: float  # largest displacement of a point of the head by the transform
    reason: str = ""
    data: np.ndarray | None = None
    cached: bool = False
    centre: list = dataclasses.field(default_factory=list)  # the rotation's centre (mm, ITK's LPS)

    def record(self) -> dict:
        return {"method": METHOD, "accepted": self.accepted, "parameters": self.parameters,
                "centre": self.centre, "metric": self.metric, "displacement_mm": self.displacement_mm,
                "reason": self.reason}

    def transform(self):
        """The T1w -> T2w transform (a SimpleITK Euler3DTransform: a point of the T1w's space to the
        T2w's)."""
        import SimpleITK as sitk

        transform = sitk.Euler3DTransform()
        transform.SetFixedParameters(list(self.centre) + ([0.0] if len(self.centre) == 3 else []))
        transform.SetParameters(self.parameters)
        return transform


def cache_dir() -> Path:
    """Where registrations are cached: ``MRI_CYCLEGAN_CACHE`` or the user's cache folder."""
    root = os.environ.get("MRI_CYCLEGAN_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "mri-cyclegan")
    return Path(root) / "registrations"


def _digest(*arrays_and_affines) -> str:
    h = hashlib.sha256(METHOD.encode())
    for item in arrays_and_affines:
        array = np.ascontiguousarray(item)
        h.update(str(array.shape).encode() + str(array.dtype).encode())
        h.update(array.tobytes())
    return h.hexdigest()[:32]


def _to_sitk(data: np.ndarray, affine: np.ndarray):
    """A SimpleITK image of a volume in NIfTI voxel order with its affine (RAS), through a NIfTI file so
    that SimpleITK reads the orientation as it reads any NIfTI."""
    import nibabel as nib
    import SimpleITK as sitk

    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "volume.nii.gz")
        image = nib.Nifti1Image(np.asarray(data, np.float32), affine)
        image.set_qform(affine, code=1)
        image.set_sform(affine, code=1)
        nib.save(image, path)
        return sitk.ReadImage(path, sitk.sitkFloat32)


def _metric(fixed, moving, transform, seed: int = 1) -> float:
    import SimpleITK as sitk

    method = sitk.ImageRegistrationMethod()
    method.SetMetricAsMattesMutualInformation(numberOfHistogramBins=32)
    method.SetMetricSamplingStrategy(method.REGULAR)
    method.SetMetricSamplingPercentage(0.25, seed)
    method.SetInterpolator(sitk.sitkLinear)
    method.SetInitialTransform(transform, inPlace=False)
    return float(method.MetricEvaluate(fixed, moving))


def _displacement(transform, fixed, t1_data: np.ndarray, points: int = 2000) -> float:
    """Largest distance (mm) the transform moves a point of the head (voxels of the T1w above a tenth of
    its 99.5th percentile, up to ``points`` of them)."""
    positive = t1_data[t1_data > 0]
    if not positive.size:
        return 0.0
    inside = np.argwhere(t1_data > 0.1 * np.percentile(positive, 99.5))
    if len(inside) > points:
        inside = inside[np.random.default_rng(0).choice(len(inside), points, replace=False)]
    moved = [np.linalg.norm(np.subtract(transform.TransformPoint(p), p)) for p in
             (fixed.TransformIndexToPhysicalPoint(tuple(int(v) for v in index)) for index in inside)]
    return float(max(moved, default=0.0))


def register(t1_data: np.ndarray, t1_affine: np.ndarray, t2_data: np.ndarray, t2_affine: np.ndarray,
             use_cache: bool = True, seed: int = 1) -> Registration:
    """Register a T2w volume rigidly onto a T1w volume (NIfTI voxel order and affines) and check it."""
    import SimpleITK as sitk

    key = _digest(t1_data, t1_affine, t2_data, t2_affine)
    folder = cache_dir()
    record_path, data_path = folder / f"{key}.json", folder / f"{key}.npy"
    if use_cache and record_path.is_file():
        try:
            record = json.loads(record_path.read_text())
            data = np.load(data_path) if record["accepted"] else None
            return Registration(record["accepted"], record["parameters"], record["metric"],
                                record["displacement_mm"], record.get("reason", ""), data, cached=True,
                                centre=record.get("centre", []))
        except (OSError, ValueError, KeyError):
            pass  # a damaged cache entry: register again
    fixed, moving = _to_sitk(t1_data, t1_affine), _to_sitk(t2_data, t2_affine)
    initial = sitk.CenteredTransformInitializer(fixed, moving, sitk.Euler3DTransform(),
                                                sitk.CenteredTransformInitializerFilter.GEOMETRY)
    method = sitk.ImageRegistrationMethod()
    method.SetMetricAsMattesMutualInformation(numberOfHistogramBins=32)
    method.SetMetricSamplingStrategy(method.RANDOM)
    method.SetMetricSamplingPercentage(0.05, seed)
    method.SetInterpolator(sitk.sitkLinear)
    method.SetOptimizerAsRegularStepGradientDescent(learningRate=1.0, minStep=1e-4, numberOfIterations=300,
                                                    relaxationFactor=0.5)
    method.SetOptimizerScalesFromPhysicalShift()
    method.SetShrinkFactorsPerLevel([4, 2, 1])
    method.SetSmoothingSigmasPerLevel([2.0, 1.0, 0.0])
    method.SmoothingSigmasAreSpecifiedInPhysicalUnitsOn()
    method.SetInitialTransform(initial, inPlace=False)
    try:
        transform = method.Execute(fixed, moving)
    except RuntimeError as err:
        result = Registration(False, [], float("nan"), float("nan"), f"the registration did not run ({err})")
        return _cached(result, record_path, data_path, use_cache)
    rigid = sitk.Euler3DTransform(sitk.CompositeTransform(transform).GetNthTransform(0))
    found = _metric(fixed, moving, rigid, seed)
    worse = []
    for axis in range(3):
        for sign in (-1, 1):
            shifted = sitk.Euler3DTransform(rigid)
            offset = list(shifted.GetTranslation())
            offset[axis] += sign * CHECK_SHIFT_MM
            shifted.SetTranslation(offset)
            worse.append(_metric(fixed, moving, shifted, seed))
    displacement = _displacement(rigid, fixed, np.asarray(t1_data))
    parameters = [float(p) for p in rigid.GetParameters()]
    centre = [float(c) for c in rigid.GetFixedParameters()[:3]]
    if not np.isfinite(found) or found > min(worse):
        result = Registration(False, parameters, found, displacement,
                              f"mutual information is higher {CHECK_SHIFT_MM:g} mm away from the transform found",
                              centre=centre)
    else:
        resampled = sitk.Resample(moving, fixed, rigid, sitk.sitkLinear, 0.0, sitk.sitkFloat32)
        data = np.transpose(sitk.GetArrayFromImage(resampled), (2, 1, 0)).astype(np.float32)
        result = Registration(True, parameters, found, displacement, data=data, centre=centre)
    return _cached(result, record_path, data_path, use_cache)


def _cached(result: Registration, record_path: Path, data_path: Path, use_cache: bool) -> Registration:
    if not use_cache:
        return result
    try:
        record_path.parent.mkdir(parents=True, exist_ok=True)
        if result.data is not None:
            partial = data_path.with_suffix(f".partial-{os.getpid()}.npy")
            np.save(partial, result.data)
            os.replace(partial, data_path)
        partial = record_path.with_suffix(f".partial-{os.getpid()}")
        partial.write_text(json.dumps(result.record()))
        os.replace(partial, record_path)
    except OSError:
        pass  # a cache that cannot be written costs time, not results
    return result


def resample_volume(data: np.ndarray, affine: np.ndarray, onto_affine: np.ndarray, onto_shape, transform=None,
                    order: int = 1) -> np.ndarray:
    """``data`` (NIfTI voxel order, with ``affine``) on another grid (``onto_affine``, ``onto_shape``),
    through ``transform``, which maps a point of the new grid's space to the data's (None: the same
    space); linear, or nearest with ``order`` 0; 0 outside the data."""
    import SimpleITK as sitk

    source = _to_sitk(data, affine)
    reference = _to_sitk(np.zeros(tuple(int(n) for n in onto_shape[:3]), np.float32), onto_affine)
    interpolator = sitk.sitkLinear if order else sitk.sitkNearestNeighbor
    moved = sitk.Resample(source, reference, transform or sitk.Transform(), interpolator, 0.0, sitk.sitkFloat32)
    return np.transpose(sitk.GetArrayFromImage(moved), (2, 1, 0)).astype(np.float32)
