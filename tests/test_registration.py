"""Rigid registration of a visit's T2w onto its T1w (SimpleITK): found, checked, cached, used for pairs."""

import numpy as np
import pytest

pytest.importorskip("SimpleITK")

from cyclegan.registration import register  # noqa: E402


def head(shape=(48, 56, 40), centre=(24.0, 28.0, 20.0), contrast="t1"):
    """A smooth head-like volume: an ellipsoid of 'white matter' with a 'ventricle' and a bright rim, whose
    tissue order depends on the contrast (as T1w and T2w differ), with no symmetry a shift could hide."""
    x, y, z = np.meshgrid(*[np.arange(n, dtype=np.float32) for n in shape], indexing="ij")
    cx, cy, cz = centre
    r = ((x - cx) / 18) ** 2 + ((y - cy) / 22) ** 2 + ((z - cz) / 15) ** 2
    ventricle = ((x - cx - 4) / 4) ** 2 + ((y - cy + 3) / 7) ** 2 + ((z - cz) / 5) ** 2 < 1
    blob = ((x - cx + 8) / 5) ** 2 + ((y - cy - 9) / 4) ** 2 + ((z - cz - 4) / 4) ** 2 < 1
    tissue = {"t1": (0.8, 0.2, 1.0, 0.5), "t2": (0.4, 1.0, 0.3, 0.9)}[contrast]
    volume = np.where(r < 1, tissue[0], 0.0)
    volume = np.where((r >= 0.8) & (r < 1), tissue[2], volume)
    volume = np.where(ventricle, tissue[1], volume)
    volume = np.where(blob, tissue[3], volume)
    return volume.astype(np.float32)


def test_a_shifted_t2w_on_another_grid_is_brought_onto_the_t1w(tmp_path, monkeypatch):
    monkeypatch.setenv("MRI_CYCLEGAN_CACHE", str(tmp_path / "cache"))
    t1, t2 = head(contrast="t1"), head(contrast="t2")
    # The T2w is stored with 2 mm voxels along x and its world position moved by (3, -2, 1.5) mm.
    t2_coarse = t2[::2]
    affine = np.diag([2.0, 1.0, 1.0, 1.0])
    affine[:3, 3] = [3.0, -2.0, 1.5]
    result = register(t1, np.eye(4), t2_coarse, affine)
    assert result.accepted and not result.cached, result.reason
    assert result.data.shape == t1.shape
    inside = t1 > 0
    # On the T1w's grid the T2w's ventricle lies where the T1w's does (T2 bright, T1 dark).
    ventricle = t2 > 0.95
    assert result.data[ventricle].mean() > 0.8 and result.data[inside & ~ventricle].mean() < 0.7
    assert result.displacement_mm > 2.0  # it had to move
    again = register(t1, np.eye(4), t2_coarse, affine)
    assert again.cached and again.accepted and np.array_equal(again.data, result.data)
    assert list((tmp_path / "cache" / "registrations").glob("*.json"))


def test_volumes_already_aligned_stay_put(tmp_path, monkeypatch):
    monkeypatch.setenv("MRI_CYCLEGAN_CACHE", str(tmp_path / "cache"))
    result = register(head(contrast="t1"), np.eye(4), head(contrast="t2"), np.eye(4), use_cache=False)
    assert result.accepted and result.displacement_mm < 1.0


def test_a_registration_that_fails_its_check_is_refused(tmp_path, monkeypatch):
    """Noise has no anatomy to align: the mutual information does not peak at any transform."""
    monkeypatch.setenv("MRI_CYCLEGAN_CACHE", str(tmp_path / "cache"))
    noise = np.random.default_rng(0).uniform(0, 1, (40, 40, 40)).astype(np.float32)
    result = register(head(shape=(40, 40, 40), centre=(20, 20, 20)), np.eye(4), noise, np.eye(4), use_cache=False)
    assert not result.accepted and "mutual information" in result.reason and result.data is None


def test_a_bids_visit_on_two_grids_becomes_aligned_pairs(tmp_path, monkeypatch):
    """The data set's visit whose T2w lies on another grid is registered, and its slices pair."""
    import nibabel as nib

    from cyclegan.config import DataConfig
    from cyclegan.data import REGISTERED, read_datasets, split_datasets

    monkeypatch.setenv("MRI_CYCLEGAN_CACHE", str(tmp_path / "cache"))
    shape = (64, 64, 40)
    t1 = head(shape, (32, 32, 20), "t1") * 900
    t2 = head(shape, (32, 32, 20), "t2") * 1500
    moved = np.eye(4)
    moved[:3, 3] = [2.5, 0.0, -1.0]
    anat = tmp_path / "bids" / "sub-01" / "anat"
    anat.mkdir(parents=True)
    nib.save(nib.Nifti1Image(t1, np.eye(4)), anat / "sub-01_T1w.nii.gz")
    nib.save(nib.Nifti1Image(t2, moved), anat / "sub-01_T2w.nii.gz")
    config = DataConfig(datasets=(str(tmp_path / "bids"),), pairs=("aligned",), val_fraction=0.0)
    parts, _ = read_datasets(config)
    slices, pairs = parts[0]
    assert pairs and all(REGISTERED in b and REGISTERED not in a for a, b in pairs)
    assert not any(s.volume == "sub-01/anat/sub-01_T2w.nii.gz" for s in slices)  # only the registered T2w
    split = split_datasets(parts, 0.0, 0.0, names=["toy"])
    assert f"pairs aligned as given 0, by registration {len(pairs)}" in split.describe()
    # Without a pair list nothing is registered: the visit stays unpaired.
    plain, _ = read_datasets(DataConfig(datasets=(str(tmp_path / "bids"),)))
    assert not any(REGISTERED in s.name for s in plain[0][0])


class LookupTranslator:
    """A perfect translator of the ``head`` phantom: each tissue's T1w value to its T2w value and back."""

    card = {}
    T1 = np.array([0.0, 0.2, 0.5, 0.8, 1.0])
    T2 = np.array([0.0, 1.0, 0.9, 0.4, 0.3])

    def _map(self, image, direction):
        image = np.asarray(image, np.float64)
        image = image / image.max() if image.max() > 0 else image
        source, target = (self.T1, self.T2) if direction == "t1_to_t2" else (self.T2 / self.T2.max(), self.T1)
        nearest = np.abs(image[..., None] - source).argmin(-1)
        return target[nearest].astype(np.float32)

    def translate_slices(self, slices, direction, batch_size=8, progress=None):
        return np.stack([self._map(s, direction) for s in slices])

    def closer_frame_of_slices(self, slices):
        return None


def test_clinical_pairs_score_the_prediction_on_the_truths_own_grid(tmp_path, monkeypatch):
    """A perfect translation scores near 1 once registration and resampling bring it onto the real volume
    of the other contrast, stored on another grid; the input itself scores far lower."""
    import nibabel as nib

    from benchmarks.quality import clinical_pairs

    monkeypatch.setenv("MRI_CYCLEGAN_CACHE", str(tmp_path / "cache"))
    shape = (64, 72, 48)
    t1 = head(shape, (32, 36, 24), "t1")
    t2 = head(shape, (32, 36, 24), "t2")
    moved = np.eye(4)
    moved[:3, 3] = [1.0, 0.0, 0.0]
    anat = tmp_path / "bids" / "sub-07" / "anat"
    anat.mkdir(parents=True)
    nib.save(nib.Nifti1Image(t1 * 1000, np.eye(4)), anat / "sub-07_T1w.nii.gz")
    # The T2w lies on another grid and, in the world, 2-3 mm off the T1w's head (the patient moved):
    # only a registration brought the right way onto the truth's grid can score well.
    shifted = np.roll(t2, (-3, 2, -1), axis=(0, 1, 2))
    nib.save(nib.Nifti1Image(shifted * 1000, moved), anat / "sub-07_T2w.nii.gz")
    rows = clinical_pairs(tmp_path / "bids", ["07"], LookupTranslator(), ("axial",), emit_rows=False)
    scores = {(r["direction"], r["method"]): r for r in rows}
    for direction in ("t1_to_t2", "t2_to_t1"):
        model, identity = scores[direction, "model"], scores[direction, "identity"]
        assert model["n"] > 10 and model["ssim"] > 0.6, model
        assert model["ssim"] > identity["ssim"] + 0.3, (model, identity)
        # The truth carried through the input's grid and back is the ceiling the resampling leaves: on
        # these 1 mm grids it loses almost nothing, above the lookup translation and far above the input.
        ceiling = scores[direction, "resampled_truth"]
        assert ceiling["n"] == model["n"] and ceiling["ssim"] > 0.95 and ceiling["ssim"] > model["ssim"], (ceiling, model)


def test_the_contrast_check_learns_from_the_volumes_a_model_trained_on(tmp_path):
    """quality.py fits a volume-trained model's contrast check on those volumes' training slices too:
    every participant but the held-out ones, in the planes the model trained on."""
    import nibabel as nib

    from benchmarks.quality import training_volume_images

    bids = tmp_path / "vols"
    for who in ("01", "02", "03"):
        anat = bids / f"sub-{who}" / ("ses-a" if who == "02" else "") / "anat"
        anat.mkdir(parents=True)
        for contrast, suffix in (("t1", "T1w"), ("t2", "T2w")):
            nib.save(nib.Nifti1Image(head(contrast=contrast) * 1000, np.eye(4)), anat / f"sub-{who}_{suffix}.nii.gz")
    record = {"datasets": ["mri-t1t2-unpaired", "vols"], "holdout_subjects": ["sub-03"], "planes": ["axial"]}
    images = training_volume_images(bids, record, every=5)
    one = training_volume_images(bids, {**record, "holdout_subjects": ["01", "03"]}, every=5)
    assert len(images["t1"]) == len(images["t2"]) == 2 * len(one["t1"]) > 0  # sub-03 left out, sub-02's visit in
    assert all(0.0 <= im.min() and im.max() <= 1.0 for im in images["t1"])
    both = training_volume_images(bids, {**record, "planes": ["axial", "coronal"]}, every=5)
    assert len(both["t1"]) > len(images["t1"])
    assert training_volume_images(bids, {"datasets": ["real-t1t2"]}) == {"t1": [], "t2": []}
