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


def test_thick_slices_are_resampled_to_the_model_grid_and_back(tmp_path):
    """A clinical-style volume (0.8 mm pixels, 5 mm slices, 12 slices) cuts in every plane: across its
    slices the pixels are 0.8 x 5 mm, so the model gets them at 1 mm and the result returns to 5 mm."""
    import nibabel as nib

    from cyclegan.files import load_volume

    rng = np.random.default_rng(2)
    data = rng.uniform(0, 1, (80, 90, 12)).astype(np.float32)
    path = save(tmp_path, "thick.nii.gz", data, np.diag([0.8, 0.8, 5.0, 1.0]))
    expected = {"axial": ((72, 64), (90, 80)), "coronal": ((60, 64), (12, 80)), "sagittal": ((60, 72), (12, 90))}
    for plane, (model_shape, native_shape) in expected.items():
        volume = load_volume(path, plane)
        assert volume.resampled and volume.model_shape == model_shape, plane
        assert volume.slices[0].shape == native_shape
        model = volume.model_slices()
        assert all(s.shape == model_shape for s in model)
        back = volume.from_model(model)
        assert all(s.shape == native_shape for s in back)
        written = nib.load(volume.write(back, tmp_path / f"out-{plane}.nii.gz"))
        assert written.shape == data.shape and np.allclose(written.affine, np.diag([0.8, 0.8, 5.0, 1.0]))
        # Resampled there and back, a smooth volume comes back close to itself.
    smooth = np.fromfunction(lambda x, y, z: np.sin(x / 9.0) + np.cos(y / 11.0) + z / 12.0, data.shape)
    path = save(tmp_path, "smooth.nii.gz", smooth.astype(np.float32), np.diag([0.8, 0.8, 5.0, 1.0]))
    volume = load_volume(path, "coronal")
    back = np.stack(volume.from_model(volume.model_slices()))
    assert np.abs(back - np.stack(volume.slices)).mean() < 0.02


def test_square_1mm_slices_are_not_resampled(tmp_path):
    from cyclegan.files import load_volume

    data = np.random.default_rng(3).uniform(0, 1, (40, 44, 36)).astype(np.float32)
    volume = load_volume(save(tmp_path, "iso.nii", data, np.diag([1.02, 0.98, 1.0, 1.0])), "axial")
    assert not volume.resampled and volume.model_slices()[0] is volume.slices[0]


def test_a_header_without_a_voxel_size_is_refused(tmp_path):
    from cyclegan.files import load_volume

    data = np.ones((40, 40, 40), np.float32)
    with pytest.raises(InputImageError, match="flat-affine.nii gives no usable voxel size"):
        load_volume(save(tmp_path, "flat-affine.nii", data, np.diag([1.0, 500.0, 1.0, 1.0])), "axial")


@pytest.mark.parametrize("dtype", ["uint16", "int16", "uint8", "float64"])
def test_written_volumes_can_keep_the_input_data_type(tmp_path, dtype):
    import nibabel as nib

    data = (np.random.default_rng(4).uniform(0, 1, (40, 40, 4)) * 1000).astype(dtype)
    image, _, slices = read_volume(save(tmp_path, f"{dtype}.nii", data, np.eye(4)), "axial")
    translated = [np.clip(s / 1000.0, 0, 1) for s in slices]
    kept = nib.load(write_volume_like(image, translated, "axial", tmp_path / "kept.nii", keep_dtype=True))
    assert kept.get_data_dtype() == np.dtype(dtype)
    assert np.allclose(kept.get_fdata(), np.clip(data / 1000.0, 0, 1), atol=1.0 / 255 if dtype == "uint8" else 1e-4)
    plain = nib.load(write_volume_like(image, translated, "axial", tmp_path / "plain.nii"))
    assert plain.get_data_dtype() == np.float32
