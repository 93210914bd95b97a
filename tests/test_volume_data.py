"""NIfTI volume data sets for training: a BIDS folder read with `datasets`, cut in the planes asked."""

import json

import numpy as np
import pytest

from conftest import ellipse_pairs, make_folder
from cyclegan.config import DataConfig
from cyclegan.data import (DataError, bids_entities, read_datasets, read_source, split_datasets, subject_key,
                           volume_slices)

#: 1 mm pixels in-plane, 4 mm between axial slices (a clinical 2-D acquisition).
THICK = np.diag([1.0, 1.0, 4.0, 1.0])


def head_volumes(n=10, size=64, empty_ends=1):
    """(t1, t2) float32 volumes (R, A, S) of ellipse heads, the first and last ``empty_ends`` slices blank."""
    pairs = ellipse_pairs(n, size=size)
    t1 = np.stack([p[1].T for p in pairs], axis=-1).astype(np.float32) * 800
    t2 = np.stack([p[2].T for p in pairs], axis=-1).astype(np.float32) * 1200
    for volume in (t1, t2):
        volume[..., :empty_ends] = 0
        volume[..., n - empty_ends:] = 0
    return t1, t2


def save(path, data, affine=THICK, dtype=np.float32):
    import nibabel as nib

    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(data.astype(dtype), affine), path)


def make_bids(root):
    """sub-01: T1w and T2w on one grid. sub-02: a visit whose T2w lies on another grid, and a visit with a
    T1w only. A FLAIR and a participants table that are not training volumes."""
    t1, t2 = head_volumes()
    save(root / "sub-01/anat/sub-01_T1w.nii.gz", t1, dtype=np.uint16)
    save(root / "sub-01/anat/sub-01_T2w.nii.gz", t2)
    moved = THICK.copy()
    moved[:3, 3] = [2.0, -1.0, 0.0]
    save(root / "sub-02/ses-a/anat/sub-02_ses-a_T1w.nii.gz", t1)
    save(root / "sub-02/ses-a/anat/sub-02_ses-a_T2w.nii.gz", t2, moved)
    save(root / "sub-02/ses-b/anat/sub-02_ses-b_T1w.nii", t1)
    save(root / "sub-02/ses-b/anat/sub-02_ses-b_FLAIR.nii.gz", t2)
    (root / "dataset_description.json").write_text(json.dumps({"Name": "toy", "BIDSVersion": "1.9.0"}))
    (root / "participants.tsv").write_text("participant_id\nsub-01\nsub-02\n")
    return root


@pytest.fixture(scope="module")
def bids(tmp_path_factory):
    return make_bids(tmp_path_factory.mktemp("bids"))


def test_bids_names():
    assert bids_entities("sub-01/ses-a/anat/sub-01_ses-a_acq-x_T2w.nii.gz") == ("01", "a", "t2")
    assert bids_entities("sub-p7/anat/sub-p7_T1w.nii") == ("p7", None, "t1")
    assert bids_entities("sub-p7/anat/sub-p7_FLAIR.nii.gz")[2] is None
    assert subject_key("sub-p7") == subject_key("p7") == "p7"


def test_a_bids_folder_gives_slices_in_each_plane_and_the_pairs_of_aligned_visits(bids):
    slices, skipped, pairs = read_source(str(bids), planes=("axial", "coronal"))
    assert skipped == 0
    volumes = sorted({s.volume for s in slices})
    assert volumes == ["sub-01/anat/sub-01_T1w.nii.gz", "sub-01/anat/sub-01_T2w.nii.gz",
                       "sub-02/ses-a/anat/sub-02_ses-a_T1w.nii.gz", "sub-02/ses-a/anat/sub-02_ses-a_T2w.nii.gz",
                       "sub-02/ses-b/anat/sub-02_ses-b_T1w.nii"]  # no FLAIR
    one = [s for s in slices if s.volume == "sub-01/anat/sub-01_T1w.nii.gz"]
    axial = [s for s in one if "#axial" in s.name]
    coronal = [s for s in one if "#coronal" in s.name]
    assert len(axial) == 8  # the two blank ends left out
    assert {s.image.shape for s in axial} == {(64, 64)}
    assert {s.image.shape for s in coronal} == {(40, 64)}  # 10 slices 4 mm apart, resampled to 1 mm
    assert all(s.domain == "t1" and s.subject == "01" for s in one)
    assert all(-1.0 <= s.image.min() < s.image.max() <= 1.0 for s in one)
    # Pairs: only the visit whose T1w and T2w share one grid, slice by slice in each plane.
    assert pairs and all(a.startswith("sub-01/anat/sub-01_T1w") and b.startswith("sub-01/anat/sub-01_T2w")
                         for a, b in pairs)
    assert {a.split("#")[1] for a, _ in pairs} == {s.name.split("#")[1] for s in one}
    assert all(a.split("#")[1] == b.split("#")[1] for a, b in pairs)


def test_slices_are_scaled_per_volume_and_blank_ones_dropped():
    import nibabel as nib

    t1, _ = head_volumes(empty_ends=2)
    dim = t1.copy()
    dim[..., 5] *= 0.1  # one slice far darker than the rest of its volume
    cut, shapes = volume_slices(nib.Nifti1Image(dim, THICK), "dim.nii.gz", ("axial",))
    assert [index for _, index, _ in cut] == list(range(2, 8)) and shapes == {"axial": (64, 64)}
    # Every slice is on its own window in the end, as training images of a PNG data set are.
    assert all(pixels.max() > 0.9 for _, _, pixels in cut)


def test_held_out_participants_take_every_visit_with_or_without_sub(bids):
    for name in ("sub-02", "02"):
        config = DataConfig(datasets=(str(bids),), pairs=("aligned",), holdout_subjects=(name,))
        parts, skipped = read_datasets(config)
        split = split_datasets(parts, config.val_fraction, config.holdout_fraction, config.holdout_subjects,
                               names=["toy"])
        held_volumes = {s.volume for d in ("t1", "t2") for s in split.val[d]}
        # sub-02's first visit lies on two grids: its T2w is registered onto its T1w, and they pair.
        assert held_volumes == {"sub-02/ses-a/anat/sub-02_ses-a_T1w.nii.gz",
                                "sub-02/ses-a/anat/sub-02_ses-a_T2w.nii.gz#registered",
                                "sub-02/ses-b/anat/sub-02_ses-b_T1w.nii"}
        assert all(s.subject == "01" for d in ("t1", "t2") for s in split.train[d])
        assert split.train_pairs and split.holdout_pairs
        assert all(a.volume.startswith("sub-02/ses-a/") for a, _ in split.holdout_pairs)
        text = split.describe()
        assert "volumes of toy: 2 participants (01, 02), axial slices, pairs aligned as given 8, by registration 8" in text
    with pytest.raises(DataError, match="held-out subject.*nobody"):
        config = DataConfig(datasets=(str(bids),), holdout_subjects=("nobody",))
        split_datasets(read_datasets(config)[0], holdout_subjects=config.holdout_subjects)


def test_registered_pairs_can_train_unpaired_and_are_still_held_out(bids):
    from cyclegan.config import ConfigError
    from cyclegan.data import REGISTERED

    def split_with(registered_pairs, holdout):
        config = DataConfig(datasets=(str(bids),), pairs=("aligned",), holdout_subjects=holdout,
                            registered_pairs=registered_pairs)
        return split_datasets(read_datasets(config)[0], config.val_fraction, config.holdout_fraction,
                              config.holdout_subjects, names=["toy"], registered_pairs=config.registered_pairs)

    # Nobody held out: sub-01 pairs as given, sub-02's first visit by registration.
    paired, unpaired = split_with("paired", ()), split_with("unpaired", ())
    registered = lambda pairs: [p for p in pairs if REGISTERED in p[1].name]  # noqa: E731
    assert registered(paired.train_pairs) and not registered(unpaired.train_pairs)
    assert len(unpaired.train_pairs) == len(paired.train_pairs) - len(registered(paired.train_pairs)) > 0
    # Their slices still train, as unpaired images of each contrast.
    assert [s.name for s in unpaired.train["t2"]] == [s.name for s in paired.train["t2"]]
    assert any(REGISTERED in s.name for s in unpaired.train["t2"])
    assert "by registration 8 (trained unpaired)" in unpaired.describe()
    assert "(trained unpaired)" not in paired.describe()
    # A held-out participant's registered pairs are scored all the same.
    held = split_with("unpaired", ("02",))
    assert held.holdout_pairs and all(REGISTERED in b.name for _, b in held.holdout_pairs)
    with pytest.raises(ConfigError, match="registered_pairs must be one of 'paired', 'unpaired'"):
        DataConfig(datasets=(str(bids),), registered_pairs="sometimes")


def test_volume_and_image_data_sets_mix(bids, tmp_path):
    images = make_folder(tmp_path / "images", n=4, size=(48, 40))
    config = DataConfig(datasets=(str(images), str(bids)), pairs=("", "aligned"), weights=(1.0, 3.0))
    parts, _ = read_datasets(config)
    split = split_datasets(parts, config.val_fraction, config.holdout_fraction, weights=list(config.weights),
                           names=["images", "toy"])
    assert [s.name for s in split.sources] == ["images", "toy"] and split.sources[1].weight == 3.0
    assert not split.sources[0].participants and split.sources[1].participants == ("01", "02")
    with pytest.raises(DataError, match="aligned is for NIfTI data sets"):
        read_datasets(DataConfig(datasets=(str(images),), pairs=("aligned",)))


def test_a_folder_of_other_volumes_is_refused(tmp_path):
    save(tmp_path / "sub-01/anat/sub-01_FLAIR.nii.gz", head_volumes()[0])
    with pytest.raises(DataError, match="no T1w or T2w NIfTI volumes"):
        read_source(str(tmp_path))


def test_a_broken_volume_is_skipped_and_counted(bids, tmp_path, caplog):
    import shutil

    copy = shutil.copytree(bids, tmp_path / "copy")
    (copy / "sub-01/anat/sub-01_T2w.nii.gz").write_bytes(b"\x1f\x8b not a volume")
    slices, skipped, pairs = read_source(str(copy))
    assert skipped == 1 and not pairs
    assert "skipping unreadable volume sub-01/anat/sub-01_T2w.nii.gz" in caplog.text


def test_planes_are_a_checked_option():
    from cyclegan.errors import ConfigError

    assert DataConfig().planes == ("axial",)
    assert DataConfig(planes=["sagittal", "axial"]).planes == ("sagittal", "axial")
    for bad in ([], ["oblique"], ["axial", "axial"]):
        with pytest.raises(ConfigError, match="planes must be one or more of axial, coronal, sagittal"):
            DataConfig(planes=bad)
    from train.cli import build_parser

    assert build_parser().parse_args(["--planes", "axial", "coronal"]).planes == ["axial", "coronal"]


def test_the_train_command_on_a_bids_folder(bids, tmp_path):
    from test_train_command import run_train

    out = tmp_path / "run"
    proc = run_train("--dataset", str(bids), "--holdout-pairs", "aligned", "--holdout-subjects", "01",
                     "--planes", "axial", "coronal", "--output", str(out), "--preset", "tiny", "--epochs", "1",
                     "--steps-per-epoch", "2", "--inversion-warmup", "0", "--verbose", "2")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "held-out subjects: 01" in proc.stderr
    assert "pairs aligned as given" in proc.stderr and "Traceback" not in proc.stderr
    run = json.loads((out / "run.json").read_text())
    assert run["data_config"]["planes"] == ["axial", "coronal"] and run["data_config"]["pairs"] == ["aligned"]
    held = json.loads((out / "holdout_pairs.json").read_text())
    assert held and all(a.startswith("sub-01/anat/sub-01_T1w.nii.gz#") for a, _ in held)
    assert "holdout_t1_to_t2_ssim" in json.loads((out / "config.json").read_text())["metrics"]


def test_a_hub_data_set_of_nifti_files(bids, monkeypatch):
    """A Hub repo in the BIDS layout goes through the same builder (the Hub stood in for by a local
    folder at the datasets boundary, as the other Hub tests do)."""
    import datasets

    real = datasets.load_dataset
    monkeypatch.setattr(datasets, "load_dataset",
                        lambda path, *a, **k: real(str(bids) if path == "someone/heads" else path, *a, **k))
    slices, skipped, pairs = read_source("someone/heads")
    assert skipped == 0 and len(pairs) == 8
    assert {s.subject for s in slices} == {"01", "02"} and {s.domain for s in slices} == {"t1", "t2"}
