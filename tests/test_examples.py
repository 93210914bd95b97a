"""The example script's real slices and volume, and what the app says of the shipped examples."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
nib = pytest.importorskip("nibabel")


def make_examples():
    spec = importlib.util.spec_from_file_location("make_examples", ROOT / "examples" / "make_examples.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def thick_volume(path: Path) -> np.ndarray:
    """A 64 x 80 x 20 head of 0.5 x 0.5 x 3 mm voxels stored LPS (the second axis runs from front
    to back), brighter toward the front so that orientation mistakes show."""
    shape = (64, 80, 20)
    x, y, z = np.meshgrid(*[np.linspace(-1, 1, n) for n in shape], indexing="ij")
    head = (x ** 2 + y ** 2 + (z * 0.8) ** 2) < 0.9
    data = np.where(head, 100 + 400 * (1 - y) / 2, 0).astype(np.uint16)
    affine = np.diag([-0.5, -0.5, 3.0, 1.0])
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(data, affine), path)
    return data


def test_real_examples_are_cut_on_the_models_grid_and_named_after_their_participant(tmp_path, monkeypatch):
    module = make_examples()
    relative = "sub-p01/anat/sub-p01_T1w.nii.gz"
    thick_volume(tmp_path / "volumes" / relative)
    monkeypatch.setattr(module, "REAL_SLICES", ((relative, "t1w", "p01", "axial", 10),
                                                (relative, "t1w", "p01", "coronal", 40)))
    monkeypatch.setattr(module, "REAL_VOLUME", (relative, "t1w", "p01", range(4, 16)))
    out = tmp_path / "out"
    out.mkdir()
    module.write_real(tmp_path / "volumes", out)
    assert sorted(p.name for p in out.iterdir()) == ["t1w_p01.nii.gz", "t1w_p01_y040.png", "t1w_p01_z010.png"]
    axial = np.asarray(Image.open(out / "t1w_p01_z010.png"))
    coronal = np.asarray(Image.open(out / "t1w_p01_y040.png"))
    assert axial.dtype == np.uint8 and axial.shape == (40, 32)  # 80 x 64 voxels of 0.5 mm -> 1 mm pixels
    assert coronal.shape == (60, 32)  # 20 slices of 3 mm tall, 64 x 0.5 mm wide
    # by the header, whatever the voxel order: the front of the head at the top of an axial slice
    column = axial[:, axial.shape[1] // 2]
    inside = column[column > 0]
    assert inside[0] > inside[-1]
    assert axial.max() == 255 and axial.min() == 0
    volume = nib.load(out / "t1w_p01.nii.gz")
    assert volume.shape == (64, 80, 12) and volume.get_data_dtype() == np.uint8
    assert np.allclose(volume.header.get_zooms(), (0.5, 0.5, 3.0))
    # the first slice kept sits where the source's slice 4 did
    assert np.allclose(volume.affine[:3, 3], np.diag([-0.5, -0.5, 3.0]) @ [0, 0, 4])


def test_real_examples_name_the_missing_folder(tmp_path):
    module = make_examples()
    with pytest.raises(SystemExit, match="real-t1t2-volumes"):
        module.write_real(tmp_path / "nowhere", tmp_path)


@pytest.fixture(scope="module")
def default_translator():
    from cyclegan import load_generators

    return load_generators()


@pytest.mark.parametrize("path", sorted((ROOT / "examples").glob("t[12]w_*.png")), ids=lambda p: p.name)
def test_every_example_image_is_typical_in_its_own_tab_and_recognised(default_translator, path):
    """What a visitor sees first: each example, in the tab it is shown in, comes out typical (its
    translation in tissue order, its round trip within the stored levels) and its contrast is
    recognised as the tab's."""
    from cyclegan.translate import translate_image

    direction = "t1_to_t2" if path.name.startswith("t1w") else "t2_to_t1"
    report = translate_image(default_translator, Image.open(path), direction).report
    assert report["tissue_order"]["in_order"], report["tissue_order"]
    assert report["verdict"] == "typical", (report["mean_cycle_error"], report["levels"])
    assert not report["contrast"]["mismatch"], report["contrast"]


@pytest.mark.parametrize("path", sorted((ROOT / "examples").glob("t[12]w_*.nii.gz")), ids=lambda p: p.name)
def test_the_example_volume_is_typical_in_every_plane(default_translator, path):
    """Typical in every plane; its contrast recognised in the axial plane, which a click on the example
    runs (its sagittal cuts, 3 mm slices stretched to 1 mm pixels, read as T2 to the contrast check)."""
    from cyclegan.files import load_volume
    from cyclegan.translate import translate_volume

    direction = "t1_to_t2" if path.name.startswith("t1w") else "t2_to_t1"
    for plane in ("axial", "coronal", "sagittal"):
        report = translate_volume(default_translator, load_volume(path, plane), direction).report
        assert report["verdict"] == "typical", (plane, report["mean_cycle_error"], report["levels"])
        assert report["tissue_order"]["in_order"], (plane, report["tissue_order"])
        if plane == "axial":
            assert not report["contrast"]["mismatch"], report["contrast"]
