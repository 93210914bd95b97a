"""Volumes cut in the plane their header names, written back with the input's shape, affine and header."""

import numpy as np
import pytest

from cyclegan.errors import InputImageError
from cyclegan.files import input_stem, plane_axis, read_volume, safe_stem, write_volume_like

#: Voxel axes stored as (S, R, A): axis 0 runs inferior -> superior.
SRA = np.array([[0, 1, 0, 0], [0, 0, 1, 0], [1, 0, 0, 0], [0, 0, 0, 1]], float)
#: Voxel axes stored as (L, P, S), as DICOM-derived volumes often are.
LPS = np.diag([-1.0, -1.0, 1.0, 1.0])


@pytest.mark.parametrize("affine, axial, coronal, sagittal", [
    (np.eye(4), 2, 1, 0), (SRA, 0, 2, 1), (LPS, 2, 1, 0),
])
def test_plane_axis_reads_the_affine(affine, axial, coronal, sagittal):
    assert [plane_axis(affine, p) for p in ("axial", "coronal", "sagittal")] == [axial, coronal, sagittal]
    with pytest.raises(InputImageError, match="plane must be one of"):
        plane_axis(affine, "oblique")


def save(tmp_path, name, data, affine):
    import nibabel as nib

    path = tmp_path / name
    nib.save(nib.Nifti1Image(data, affine), path)
    return str(path)


@pytest.mark.parametrize("plane", ["axial", "coronal", "sagittal"])
def test_slices_do_not_depend_on_the_storage_order(tmp_path, plane):
    ras = np.random.default_rng(0).uniform(0, 1, (40, 44, 36)).astype(np.float32)
    lps = ras[::-1, ::-1, :].copy()
    sra = np.transpose(ras, (2, 0, 1)).copy()
    reference = read_volume(save(tmp_path, "ras.nii", ras, np.eye(4)), plane)[2]
    for name, data, affine in (("lps.nii", lps, LPS), ("sra.nii.gz", sra, SRA)):
        image, _, slices = read_volume(save(tmp_path, name, data, affine), plane)
        assert np.array_equal(np.stack(slices), np.stack(reference)), name
        # Written back: the input's own shape, affine and voxel order.
        out = write_volume_like(image, [s * 0.5 for s in slices], plane, tmp_path / f"out-{name}")
        import nibabel as nib

        back = nib.load(out)
        assert back.shape == data.shape and np.allclose(back.affine, affine)
        assert np.allclose(back.get_fdata(), data * 0.5, atol=1e-6)


def test_axial_slices_show_anterior_at_the_top(tmp_path):
    ras = np.zeros((40, 48, 36), np.float32)
    ras[:, -5:, :] = 1.0  # the anterior end of the A axis
    slices = read_volume(save(tmp_path, "a.nii", ras, np.eye(4)), "axial")[2]
    assert slices[0].shape == (48, 40) and slices[0][:5].all() and not slices[0][5:].any()


def test_a_singleton_fourth_axis_is_kept(tmp_path):
    import nibabel as nib

    data = np.random.default_rng(1).uniform(0, 1, (40, 40, 6, 1)).astype(np.float32)
    image, _, slices = read_volume(save(tmp_path, "four.nii", data, np.eye(4)), "axial")
    back = nib.load(write_volume_like(image, slices, "axial", tmp_path / "o.nii"))
    assert back.shape == data.shape and np.allclose(back.get_fdata(), data, atol=1e-6)


def test_volume_errors_name_the_volume(tmp_path):
    flat = save(tmp_path, "flat.nii", np.ones((40, 40, 3), np.float32), np.eye(4))
    with pytest.raises(InputImageError, match="sagittal slices of the volume flat.nii are 3x40"):
        read_volume(flat, "sagittal")
    with pytest.raises(InputImageError, match="volume flat.nii has 40 coronal slices; at most 8"):
        read_volume(flat, "coronal", max_slices=8)


def test_output_names_come_from_the_input():
    assert input_stem("uploads/My Scan (2).nii.gz") == "My_Scan_2"
    assert input_stem("slice.PNG") == "slice" and input_stem(None) == "image"
    assert safe_stem("../../etc/passwd") == "etc_passwd" and safe_stem("") == "image"
