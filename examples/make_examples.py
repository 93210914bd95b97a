"""Make the app's example images: real slices and a volume cut from CC-BY scans.

    python examples/make_examples.py --volumes FOLDER
    MRI_CYCLEGAN_DATA=DATA python examples/make_examples.py      # DATA/real-t1t2-volumes

FOLDER is the BIDS data set ``real-t1t2-volumes``. The script cuts real slices from two
participants of the CC-BY open_ms data (Lesjak et al., Neuroinformatics 2016 and 2017)
that the default model's training held out: ``openmscs07`` (3-D, skull-stripped), held
out by every run, and ``openmslong04`` (a clinical 2-D scan with skull, 3-3.3 mm slices),
held out by its last five runs (the earlier ones trained on 16 other axial slices of it:
the example slices are none of those). Each slice is cut
by the header's orientation and resampled to 1 mm pixels as the app and the training
data do (:func:`cyclegan.files.volume_of`), scaled by its volume's 99.5th percentile and
named after its participant and plane: ``t1w_openmslong04_z028.png`` (axial index 28),
``..._y120`` (coronal), ``..._x090`` (sagittal). It also writes
``t1w_openmslong04.nii.gz``, a thick-slice example volume: the participant's T1w, its
middle axial slices, as 8-bit with the source's affine and voxel size. Only open_ms
volumes are used (CC-BY): never the users' data set, never the glioma cases. The slices
were chosen through the ventricles, among those the default model calls typical.
The project's spin-echo phantom (cyclegan/phantom.py) is no longer an example: its
textbook contrast is unlike any scan's.
"""

import argparse
from pathlib import Path

import numpy as np
from PIL import Image


#: Real example slices: (BIDS file under the volumes folder, contrast, participant, plane, index).
REAL_SLICES = (
    ("sub-openmslong04/ses-study1/anat/sub-openmslong04_ses-study1_T1w.nii.gz", "t1w", "openmslong04", "axial", 28),
    ("sub-openmslong04/ses-study1/anat/sub-openmslong04_ses-study1_T1w.nii.gz", "t1w", "openmslong04", "coronal", 120),
    ("sub-openmslong04/ses-study1/anat/sub-openmslong04_ses-study1_T2w.nii.gz", "t2w", "openmslong04", "axial", 23),
    ("sub-openmslong04/ses-study1/anat/sub-openmslong04_ses-study1_T2w.nii.gz", "t2w", "openmslong04", "coronal", 180),
    ("sub-openmscs07/anat/sub-openmscs07_T1w.nii.gz", "t1w", "openmscs07", "axial", 88),
    ("sub-openmscs07/anat/sub-openmscs07_T2w.nii.gz", "t2w", "openmscs07", "axial", 88),
)
#: The thick-slice example volume: its source, contrast, participant and the axial index range kept.
REAL_VOLUME = ("sub-openmslong04/ses-study1/anat/sub-openmslong04_ses-study1_T1w.nii.gz", "t1w", "openmslong04",
               range(14, 42))
#: The letter of each plane's index in a file name (the RAS axis it runs along).
PLANE_LETTER = {"axial": "z", "coronal": "y", "sagittal": "x"}


def real_slice(path: Path, plane: str, index: int) -> np.ndarray:
    """One slice of a NIfTI volume as the app sees it: 1 mm pixels, 8-bit, scaled as the training
    data scale a volume (:func:`cyclegan.data.volume_scale`)."""
    import nibabel as nib

    from cyclegan.data import volume_scale
    from cyclegan.files import volume_of
    from cyclegan.preprocessing import to_uint8

    volume = volume_of(nib.load(path), plane, path.name)
    return to_uint8(volume.model_slices()[index] / volume_scale(volume.data, path.name))


def write_real_volume(source: Path, keep: range, path: Path) -> None:
    """The axial slices ``keep`` of ``source`` (a volume whose third voxel axis is axial), 8-bit,
    with the affine moved to the first slice kept and the source's voxel size."""
    import nibabel as nib

    from cyclegan.data import volume_scale
    from cyclegan.preprocessing import to_uint8

    image = nib.load(source)
    if nib.aff2axcodes(image.affine)[2] not in ("S", "I"):
        raise SystemExit(f"{source.name}: its third voxel axis is not axial")
    data = np.asarray(image.dataobj, np.float32)
    kept = data[:, :, keep.start:keep.stop]
    affine = image.affine.copy()
    affine[:3, 3] = affine[:3, :3] @ np.array([0, 0, keep.start]) + affine[:3, 3]
    out = nib.Nifti1Image(to_uint8(kept / volume_scale(data, source.name)), affine)
    out.header.set_zooms(image.header.get_zooms()[:3])
    out.header.set_xyzt_units("mm")
    nib.save(out, path)


def write_real(volumes: Path, folder: Path) -> None:
    """The real example slices and the thick-slice example volume (see the module's docstring)."""
    for relative, contrast, participant, plane, index in REAL_SLICES:
        source = volumes / relative
        if not source.is_file():
            raise SystemExit(f"{source} is missing: --volumes must name the real-t1t2-volumes folder")
        name = f"{contrast}_{participant}_{PLANE_LETTER[plane]}{index:03d}.png"
        Image.fromarray(real_slice(source, plane, index)).save(folder / name, optimize=True)
        print(f"wrote {name}")
    relative, contrast, participant, keep = REAL_VOLUME
    name = f"{contrast}_{participant}.nii.gz"
    write_real_volume(volumes / relative, keep, folder / name)
    print(f"wrote {name}")


def main() -> None:
    from cyclegan.data import locate

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--volumes", type=Path, default=Path(locate("real-t1t2-volumes")),
                        help="the BIDS data set real-t1t2-volumes (default: under MRI_CYCLEGAN_DATA)")
    args = parser.parse_args()
    write_real(args.volumes, Path(__file__).resolve().parent)


if __name__ == "__main__":
    main()
