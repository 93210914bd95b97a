import numpy as np
import pytest
from PIL import Image

from cyclegan.augment import (BLUR_SIGMA, CONTRAST_GAMMA, ZOOM_SCALE, blurred, brain_mask, crop_and_flip,
                              gamma_contrast, skull_stripped, zoomed)
from cyclegan.data import (
    TrainingStream,
    choose_holdout,
    domain_of,
    in_validation,
    read_dataset,
    read_pairs,
    split_dataset,
)
from cyclegan.errors import DataError

from conftest import make_folder, make_zip, phantom_slice


def test_domain_names():
    assert domain_of("TrainT1") == "t1" and domain_of("t2_images") == "t2"
    assert domain_of("Tr1") is None and domain_of("T1andT2") is None


def test_read_zip_with_hash_names_and_corrupt_file(tmp_path, caplog):
    slices, skipped = read_dataset(str(make_zip(tmp_path / "data.zip")))
    assert skipped == 1
    names = {s.name for s in slices}
    assert "Tr1/TrainT1/Image #10.png" in names and "Tr2/TrainT2/Image #76.png" in names
    assert sum(s.domain == "t1" for s in slices) == 6 and sum(s.domain == "t2" for s in slices) == 7
    image = slices[0].image
    assert image.dtype == np.float32 and image.shape == (48, 40) and image.min() == -1 and image.max() == 1
    assert "unreadable" in caplog.text


def test_read_folder(tmp_path):
    slices, skipped = read_dataset(str(make_folder(tmp_path / "data")))
    assert skipped == 0 and len(slices) == 10
    assert {s.name for s in slices} >= {"Tr1/TrainT1/Image #0.png", "Tr2/TrainT2/Image #4.png"}


@pytest.mark.parametrize("source, message", [
    ("does/not/exist/at/all", "neither a local folder"),
    ("../escape", "neither a local folder"),
])
def test_bad_sources(source, message):
    with pytest.raises(DataError, match=message):
        read_dataset(source)


def test_unknown_hub_dataset_offline():
    with pytest.raises(DataError, match="cannot open the data set 'nobody/nothing'"):
        read_dataset("nobody/nothing")


def test_missing_domain_and_too_few(tmp_path):
    slices, _ = read_dataset(str(make_zip(tmp_path / "d.zip", n_t2=0, corrupt=0)))
    with pytest.raises(DataError, match="no T2 images found"):
        split_dataset(slices)
    slices, _ = read_dataset(str(make_zip(tmp_path / "e.zip", n_t1=1, corrupt=0)))
    with pytest.raises(DataError, match="too few T1 images"):
        split_dataset(slices, val_fraction=0.0)


def test_validation_split_is_by_name():
    names = [f"Tr1/TrainT1/Image #{i}.png" for i in range(200)]
    chosen = [n for n in names if in_validation(n, 0.1)]
    assert 8 <= len(chosen) <= 35
    assert chosen == [n for n in names if in_validation("other/root/" + n, 0.1)]
    assert not any(in_validation(n, 0.0) for n in names)


def test_holdout_is_spread_and_deterministic():
    pairs = [(f"T1/Image #{i}.png", f"T2/Image #{i + 60}.png") for i in range(10, 53)]
    held = choose_holdout(pairs, 0.15)
    assert len(held) == 6
    numbers = [int(a.split("#")[1].split(".")[0]) for a, _ in held]
    assert numbers == sorted(numbers) and numbers[0] > 10 and numbers[-1] < 52
    assert min(np.diff(numbers)) >= 5  # spread out, not one block
    assert held == choose_holdout(list(reversed(pairs)), 0.15)


def test_split_with_pairs_keeps_holdout_out_of_training(tmp_path):
    slices, _ = read_dataset(str(make_zip(tmp_path / "d.zip", n_t1=8, n_t2=8, corrupt=0)))
    csv = tmp_path / "pairs.csv"
    csv.write_text("t1,t2\n" + "".join(f"Tr1/TrainT1/Image #{10 + i}.png,Tr2/TrainT2/Image #{70 + i}.png\n" for i in range(8)))
    split = split_dataset(slices, pairs=read_pairs(csv), holdout_fraction=0.25)
    assert len(split.holdout_pairs) == 2
    held = {s.name for pair in split.holdout_pairs for s in pair}
    train = {s.name for d in ("t1", "t2") for s in split.train[d]}
    assert not held & train
    assert len(split.train_pairs) == 6
    assert all(a.domain == "t1" and b.domain == "t2" for a, b in split.train_pairs)


def test_bad_pairs_file(tmp_path):
    bad = tmp_path / "p.csv"
    bad.write_text("a,b\n1,2\n")
    with pytest.raises(DataError, match="columns t1,t2"):
        read_pairs(bad)
    with pytest.raises(DataError, match="cannot read"):
        read_pairs(tmp_path / "absent.csv")


def test_augment_pads_crops_and_flips():
    rng = np.random.default_rng(0)
    image = np.linspace(-1, 1, 40 * 36, dtype=np.float32).reshape(40, 36)
    crop, flip, offset = crop_and_flip(image, 64, rng)
    assert crop.shape == (64, 64) and crop.dtype == np.float32
    again, _, _ = crop_and_flip(image, 64, rng, flip, offset)
    assert np.array_equal(crop, again)
    big = np.zeros((217, 181), np.float32)
    assert crop_and_flip(big, 128, rng)[0].shape == (128, 128)


def test_stream_unpaired_and_paired(tmp_path):
    slices, _ = read_dataset(str(make_zip(tmp_path / "d.zip", n_t1=5, n_t2=5, corrupt=0)))
    split = split_dataset(slices, val_fraction=0.0)
    stream = TrainingStream(split.train, 32, 3, 4, seed=1)
    assert len(stream) == 4
    batch = stream[0]
    assert batch["t1"].shape == (3, 32, 32, 1) and batch["t2"].shape == (3, 32, 32, 1)
    assert np.array_equal(stream[2]["t1"], stream[2]["t1"])  # deterministic
    stream.on_epoch_end()
    assert not np.array_equal(stream[0]["t1"], batch["t1"])  # reshuffled next epoch
    with pytest.raises(IndexError):
        stream[4]
    # Paired: identical images in both domains give identical crops.
    same = [(s, s) for s in split.train["t1"]]
    paired = TrainingStream(split.train, 32, 2, 2, seed=1, pairs=same)
    out = paired[1]
    assert np.array_equal(out["t1"], out["t2"])


@pytest.fixture
def hub_redirect(monkeypatch):
    """Resolve Hub data set ids to local repo folders with the real datasets builders."""
    import datasets

    real = datasets.load_dataset
    repos = {}

    def load_dataset(path, *args, **kwargs):
        return real(repos.get(path, path), *args, **kwargs)

    monkeypatch.setattr(datasets, "load_dataset", load_dataset)
    return repos


def test_hub_repo_holding_one_zip(tmp_path, hub_redirect):
    repo = tmp_path / "repo"
    repo.mkdir()
    make_zip(repo / "dataset.zip", n_t1=4, n_t2=5, corrupt=0)
    hub_redirect["someone/mri"] = str(repo)
    slices, skipped = read_dataset("someone/mri")
    assert skipped == 0
    assert sorted(s.domain for s in slices) == ["t1"] * 4 + ["t2"] * 5
    assert any(s.name == "Tr1/TrainT1/Image #10.png" for s in slices)


def test_hub_repo_with_label_column(tmp_path, hub_redirect):
    import datasets

    images = [Image.fromarray(phantom_slice(40, 40, seed=i)) for i in range(6)]
    features = datasets.Features({"image": datasets.Image(),
                                  "label": datasets.ClassLabel(names=["T1w", "T2w"])})
    table = datasets.Dataset.from_dict({"image": images, "label": [0, 1, 0, 1, 0, 1]}, features=features)
    repo = tmp_path / "parquet-repo"
    (repo / "data").mkdir(parents=True)
    table.to_parquet(str(repo / "data" / "train-00000-of-00001.parquet"))
    hub_redirect["someone/labelled"] = str(repo)
    slices, _ = read_dataset("someone/labelled")
    assert [s.domain for s in slices] == ["t1", "t2"] * 3


def synthetic_head(height=120, width=100, gap=True):
    """T1-like slice in [-1, 1]: bright scalp ring, dark skull (when ``gap``), brain with structure."""
    y, x = np.mgrid[0:height, 0:width]
    r = np.sqrt(((y - height / 2) / (0.45 * height)) ** 2 + ((x - width / 2) / (0.45 * width)) ** 2)
    unit = np.zeros((height, width))
    unit[r < 1.0] = 0.9  # scalp and fat
    unit[r < 0.9] = 0.02 if gap else 0.6  # skull and CSF
    brain = r < 0.8
    unit[brain] = 0.6 + 0.2 * np.cos(12 * r[brain])  # grey and white matter
    return unit * 2.0 - 1.0, brain


def test_brain_mask_cuts_the_scalp_off():
    image, brain = synthetic_head()
    mask = brain_mask(image)
    assert mask is not None
    assert mask[brain].mean() > 0.99  # all the brain ...
    head = image > -0.9
    scalp = head & ~brain & (image > 0.0)
    assert not (mask & scalp).any()  # ... and none of the scalp
    stripped = skull_stripped(image, mask)
    assert np.all(stripped[~mask] == -1.0)
    assert stripped[mask].max() > 0.9  # rescaled on the brain's own window
    # No dark skull between scalp and brain: no trustworthy mask.
    assert brain_mask(synthetic_head(gap=False)[0]) is None
    assert brain_mask(np.full((40, 40), -1.0)) is None


def test_stream_shows_skull_stripped_pairs():
    from cyclegan.data import Slice

    image, brain = synthetic_head()
    t1 = Slice("t1.png", "t1", image.astype(np.float32))
    t2 = Slice("t2.png", "t2", (-image).astype(np.float32))
    train = {"t1": [t1], "t2": [t2]}
    stripped = TrainingStream(train, 96, 2, 3, seed=0, pairs=[(t1, t2)], skull_strip=1.0)
    whole = TrainingStream(train, 96, 2, 3, seed=0, pairs=[(t1, t2)])
    mask = brain_mask(t1.image)
    for index in range(3):
        a, b = stripped[index]["t1"][..., 0], stripped[index]["t2"][..., 0]
        # The same brain mask in both images: background outside it in both.
        assert np.array_equal(a == -1.0, b == -1.0)
        full = whole[index]["t1"][..., 0]
        for k in range(2):
            assert (a[k] > -1.0).sum() <= mask.sum() < (full[k] > -1.0).sum()
    with pytest.raises(ValueError, match="needs aligned pairs"):
        TrainingStream(train, 96, 2, 3, skull_strip=0.5)


def roughness(image):
    """RMS difference between horizontal neighbours relative to the contrast (scale-free)."""
    return float(np.sqrt(np.mean(np.diff(image, axis=-1) ** 2)) / np.std(image))


def test_blurred_is_smoother_and_keeps_the_scale():
    image, _ = synthetic_head()
    soft = blurred(image, 1.5)
    assert soft.shape == image.shape and soft.dtype == np.float32
    assert soft.min() == -1.0 and soft.max() == 1.0  # rescaled through its own window
    assert roughness(soft) < 0.8 * roughness(image)
    assert roughness(blurred(image, BLUR_SIGMA[1])) < roughness(blurred(image, BLUR_SIGMA[0]))


def test_stream_blurs_both_images_of_a_pair_alike():
    from cyclegan.data import Slice

    image, _ = synthetic_head()
    t1 = Slice("t1.png", "t1", image.astype(np.float32))
    twin = Slice("t2.png", "t2", image.astype(np.float32))  # the same pixels: any difference is the blur's
    train = {"t1": [t1], "t2": [twin]}
    sharp = TrainingStream(train, 96, 2, 4, seed=0, pairs=[(t1, twin)])
    soft = TrainingStream(train, 96, 2, 4, seed=0, pairs=[(t1, twin)], blur=1.0)
    for index in range(4):
        batch = soft[index]
        assert np.array_equal(batch["t1"], batch["t2"])  # one sigma, one crop for both
        assert roughness(batch["t1"][..., 0]) < roughness(sharp[index]["t1"][..., 0])
    # blur=0 draws no random numbers: the stream is the one it always was.
    none = TrainingStream(train, 96, 2, 4, seed=0, pairs=[(t1, twin)], blur=0.0)
    assert all(np.array_equal(none[i]["t1"], sharp[i]["t1"]) for i in range(4))
    # Unpaired: each image is blurred on its own, about the asked fraction of them.
    many = {"t1": [t1] * 50, "t2": [twin] * 50}
    half = TrainingStream(many, 96, 50, 1, seed=0, blur=0.5)[0]
    rough = np.array([roughness(c) for c in half["t1"][..., 0]])
    smoothest_sharp = min(roughness(c) for c in TrainingStream(many, 96, 50, 1, seed=0)[0]["t1"][..., 0])
    assert 10 <= int((rough < smoothest_sharp).sum()) <= 40
    with pytest.raises(ValueError, match="blur must be a fraction"):
        TrainingStream(train, 96, 2, 3, blur=1.5)


def head_fraction(image):
    return float((image > -0.9).mean())


def test_zoomed_shrinks_or_fills_the_frame_about_the_centre():
    from cyclegan.preprocessing import scale_intensities

    image, _ = synthetic_head()
    same = zoomed(image, 1.0)
    assert same.shape == image.shape and same.dtype == np.float32
    # Scale 1 is the image itself, through its own window.
    assert np.abs(same - scale_intensities((image + 1.0) / 2.0)[0]).max() < 1e-5
    small, large = zoomed(image, ZOOM_SCALE[0]), zoomed(image, ZOOM_SCALE[1])
    for out in (small, large):
        assert out.shape == image.shape and out.dtype == np.float32
        assert out.min() == -1.0 and out.max() == 1.0  # rescaled through its own window
    # The head's area goes with the square of the scale (the ellipse's, while it fits the frame).
    assert head_fraction(small) == pytest.approx(head_fraction(image) * ZOOM_SCALE[0] ** 2, rel=0.1)
    assert head_fraction(large) > head_fraction(image) + 0.2
    # About the centre: the head's centre of mass stays where it was.
    def centre(im):
        return np.argwhere(im > -0.9).mean(axis=0)

    assert np.abs(centre(small) - centre(image)).max() < 1.0
    assert np.all(small[:10] == -1.0) and np.all(small[:, :8] == -1.0)  # new background at the edges
    with pytest.raises(ValueError, match="scale must be positive"):
        zoomed(image, 0.0)


def test_stream_zooms_both_images_of_a_pair_alike():
    from cyclegan.data import Slice

    image, _ = synthetic_head(160, 160)
    t1 = Slice("t1.png", "t1", image.astype(np.float32))
    twin = Slice("t2.png", "t2", image.astype(np.float32))  # the same pixels: any difference is the zoom's
    train = {"t1": [t1], "t2": [twin]}
    plain = TrainingStream(train, 128, 2, 4, seed=0, pairs=[(t1, twin)])
    zoom = TrainingStream(train, 128, 2, 4, seed=0, pairs=[(t1, twin)], zoom=1.0)
    fractions = []
    for index in range(4):
        batch = zoom[index]
        assert np.array_equal(batch["t1"], batch["t2"])  # one scale, one crop for both
        fractions += [head_fraction(c) for c in batch["t1"][..., 0]]
    plain_fractions = [head_fraction(c) for i in range(4) for c in plain[i]["t1"][..., 0]]
    assert np.std(fractions) > 2 * np.std(plain_fractions)  # fields of view vary
    # zoom=0 draws no random numbers: the stream is the one it always was.
    none = TrainingStream(train, 128, 2, 4, seed=0, pairs=[(t1, twin)], zoom=0.0)
    assert all(np.array_equal(none[i]["t1"], plain[i]["t1"]) for i in range(4))
    with pytest.raises(ValueError, match="zoom must be a fraction"):
        TrainingStream(train, 96, 2, 3, zoom=-0.5)


def test_gamma_contrast_keeps_background_and_order_and_changes_the_tissue_ratios():
    image, _ = synthetic_head()
    unit = (image + 1.0) / 2.0
    inside = unit > 0.05
    for gamma in (CONTRAST_GAMMA[0], 0.8, 1.5, CONTRAST_GAMMA[1]):
        out = gamma_contrast(image, gamma)
        assert out.shape == image.shape and out.dtype == np.float32
        assert np.all(out[image == -1.0] == -1.0)  # background stays black
        # The order of the intensities is kept (a monotone map)...
        order = np.argsort(image[inside], kind="stable")
        assert np.all(np.diff(out[inside][order]) >= -1e-6)
    # ...while the ratio of a mid tone to a bright one moves with gamma.
    def ratio(unit_image):
        mid, bright = np.percentile(unit_image[inside], [30, 95])
        return mid / bright

    def ratio_after(gamma):
        return ratio((gamma_contrast(image, gamma) + 1.0) / 2.0)

    assert ratio_after(2.0) < ratio(unit) < ratio_after(0.5)
    with pytest.raises(ValueError, match="gamma must be positive"):
        gamma_contrast(image, 0.0)


def test_stream_changes_the_contrast_of_the_inputs_only():
    from cyclegan.data import Slice

    image, _ = synthetic_head()
    t1 = Slice("t1.png", "t1", image.astype(np.float32))
    other = synthetic_head(gap=False)[0]
    t2 = Slice("t2.png", "t2", other.astype(np.float32))
    train = {"t1": [t1], "t2": [t2]}
    plain = TrainingStream(train, 96, 2, 4, seed=0, pairs=[(t1, t2)])
    changed = TrainingStream(train, 96, 2, 4, seed=0, pairs=[(t1, t2)], contrast=1.0)
    assert set(plain[0]) == {"t1", "t2", "paired"}  # contrast=0: no separate inputs
    for index in range(4):
        batch = changed[index]
        assert set(batch) == {"t1", "t2", "t1_input", "t2_input", "paired"}
        for key in ("t1", "t2"):
            target, source = batch[key][..., 0], batch[f"{key}_input"][..., 0]
            assert target.shape == source.shape
            assert not np.allclose(target, source)  # every input got a gamma (fraction 1)
            # Same crop and flip: the background is where the target's is, and the
            # input's intensities rank as the target's do.
            assert np.all(source[target == -1.0] == -1.0)
            for t, s in zip(target, source):
                order = np.argsort(t.ravel(), kind="stable")
                assert np.all(np.diff(s.ravel()[order]) >= -1e-5)
        # The targets are crops of the unchanged images, the inputs are not.
        assert np.isin(batch["t1"], np.append(t1.image, -1.0)).all()
        assert np.isin(batch["t2"], np.append(t2.image, -1.0)).all()
        assert not np.isin(batch["t1_input"], np.append(t1.image, -1.0)).all()
    # Unpaired: about the asked fraction of the inputs is changed, each on its own.
    many = {"t1": [t1] * 50, "t2": [t2] * 50}
    half = TrainingStream(many, 96, 50, 1, seed=0, contrast=0.5)[0]
    moved = [not np.array_equal(a, b) for a, b in zip(half["t1"], half["t1_input"])]
    assert 10 <= sum(moved) <= 40
    with pytest.raises(ValueError, match="contrast must be a fraction"):
        TrainingStream(train, 96, 2, 3, contrast=-0.5)


def subject_slices(subjects, zs=(10, 20, 30), source=0, size=(48, 40)):
    """Slices named <subject>_z<NNN>.png in both contrasts, with their aligned pairs."""
    from cyclegan.config import DEFAULT_SUBJECT_PATTERN
    from cyclegan.data import Slice, subject_of

    slices, pairs = [], []
    for k, subject in enumerate(subjects):
        for z in zs:
            image = phantom_slice(*size, seed=k * 100 + z).astype(np.float32) / 127.5 - 1
            names = (f"Tr1/TrainT1/{subject}_z{z:03d}.png", f"Tr2/TrainT2/{subject}_z{z:03d}.png")
            for name, domain, pixels in zip(names, ("t1", "t2"), (image, -image)):
                slices.append(Slice(name, domain, pixels, source, subject_of(name, DEFAULT_SUBJECT_PATTERN)))
            pairs.append(names)
    return slices, pairs


def test_subject_of_takes_the_part_before_the_slice_number():
    from cyclegan.config import DEFAULT_SUBJECT_PATTERN
    from cyclegan.data import subject_of

    assert subject_of("Tr1/TrainT1/openms-cs-patient07_z052.png", DEFAULT_SUBJECT_PATTERN) == "openms-cs-patient07"
    assert subject_of("Tr1/TrainT1/Image #10.png", DEFAULT_SUBJECT_PATTERN) is None
    assert subject_of("a/sub-3_slice9.png", r"^(sub-\d+)_") == "sub-3"


def test_split_holds_out_whole_subjects_of_one_data_set():
    from cyclegan.data import split_datasets

    real, real_pairs = subject_slices(["alpha", "beta", "gamma"], source=1)
    users = [s for s in make_slices(8)]
    split = split_datasets([(users, None), (real, real_pairs)], val_fraction=0.25, holdout_fraction=0.5,
                           holdout_subjects=["beta"], names=["users", "real"])
    train_subjects = {s.subject for d in ("t1", "t2") for s in split.train[d]}
    assert "beta" not in train_subjects and {"alpha", "gamma"} <= train_subjects
    # Every slice of the held-out subject, both contrasts, and its pairs are held out.
    assert sorted(s.name for d in ("t1", "t2") for s in split.val[d] if s.subject == "beta") == sorted(
        n for p in real_pairs if "beta" in p[0] for n in p)
    assert {(a.subject, b.subject) for a, b in split.holdout_pairs} == {("beta", "beta")}
    assert len(split.holdout_pairs) == 3
    # The data set with a held-out subject keeps its other pairs for training and no random validation.
    assert len(split.sources[1].pairs) == 6 and not any(s.source == 1 and s.subject != "beta"
                                                        for d in ("t1", "t2") for s in split.val[d])
    # The other data set still has its own validation split by file name.
    assert split.sources[0].name == "users" and split.val["t1"]
    assert "held-out subjects: beta" in split.describe() and "real (6 T1 / 6 T2, 6 pairs" in split.describe()
    assert split.sources[1].share is None and "pair share" not in split.describe()


def test_split_gives_each_data_set_its_pair_share():
    from cyclegan.data import split_datasets

    real, real_pairs = subject_slices(["alpha", "beta", "gamma"], source=1)
    users = [s for s in make_slices(8)]
    split = split_datasets([(users, None), (real, real_pairs)], holdout_subjects=["beta"], names=["users", "real"],
                           pair_shares=[None, 0.8])
    assert split.sources[0].share is None and split.sources[1].pair_share == 0.8
    assert "real (6 T1 / 6 T2, 6 pairs, weight 0.50, pair share 0.80)" in split.describe()
    with pytest.raises(DataError, match="pair share 0.5 for users, which has no aligned pairs"):
        split_datasets([(users, None), (real, real_pairs)], holdout_subjects=["beta"], names=["users", "real"],
                       pair_shares=[0.5, 0.8])


def test_split_refuses_unknown_subjects_and_names_the_known_ones():
    from cyclegan.data import split_datasets

    real, pairs = subject_slices(["alpha", "beta"])
    with pytest.raises(DataError, match=r"not found: delta \(subjects found: alpha, beta\)"):
        split_datasets([(real, pairs)], holdout_subjects=["delta"])


def test_split_keeps_same_file_names_of_two_data_sets_apart():
    from cyclegan.data import split_datasets

    a, pairs_a = subject_slices(["s1", "s2"], source=0)
    b, pairs_b = subject_slices(["s1", "s2"], source=1)
    split = split_datasets([(a, pairs_a), (b, pairs_b)], val_fraction=0.0)
    assert len(split.train["t1"]) == 12 and len(split.train_pairs) == 12
    assert {s.source for s in split.train["t1"]} == {0, 1}


def make_slices(n):
    from cyclegan.data import Slice

    out = []
    for i in range(n):
        image = phantom_slice(48, 40, seed=i).astype(np.float32) / 127.5 - 1
        out += [Slice(f"Tr1/TrainT1/Image #{i}.png", "t1", image), Slice(f"Tr2/TrainT2/Image #{i + 50}.png", "t2", -image)]
    return out


def test_stream_mixes_data_sets_by_weight_and_flags_true_pairs():
    from cyclegan.data import Source

    def source(value, n_pairs, n_free, weight):
        from cyclegan.data import Slice

        def img(v):
            return np.full((40, 40), v, np.float32)

        pairs = [(Slice(f"p{i}a", "t1", img(value)), Slice(f"p{i}b", "t2", img(value))) for i in range(n_pairs)]
        free = {"t1": [Slice(f"f{i}", "t1", img(value - 0.1)) for i in range(n_free)],
                "t2": [Slice(f"g{i}", "t2", img(value + 0.1)) for i in range(n_free)]}
        train = {d: [p[k] for p in pairs] + free[d] for k, d in enumerate(("t1", "t2"))}
        return Source(train, pairs, weight)

    # Data set A: only pairs (intensity 0.5); data set B: a quarter pairs (intensity -0.5).
    sources = [source(0.5, 4, 0, 1.0), source(-0.5, 2, 6, 3.0)]
    stream = TrainingStream(None, 32, 50, 8, seed=0, sources=sources, paired=True)
    seen = {"a": 0, "b": 0, "b_paired": 0}
    for index in range(len(stream)):
        batch = stream[index]
        assert batch["paired"].shape == (50,)
        for t1, t2, flag in zip(batch["t1"], batch["t2"], batch["paired"]):
            centre1, centre2 = t1[16, 16, 0], t2[16, 16, 0]
            if centre1 > 0:  # from A: always a true pair, both crops alike
                seen["a"] += 1
                assert flag == 1.0 and np.array_equal(t1, t2)
            else:
                seen["b"] += 1
                seen["b_paired"] += flag
                # B's pairs are identical images; a free draw takes any T1 and any T2 of B.
                if flag == 1.0:
                    assert np.array_equal(t1, t2)
                else:
                    seen["b_mixed"] = seen.get("b_mixed", 0) + (not np.isclose(centre1, centre2))
    total = seen["a"] + seen["b"]
    assert 0.18 < seen["a"] / total < 0.32  # weight 1 of 4
    assert 0.15 < seen["b_paired"] / seen["b"] < 0.35  # pair share 2 of 8
    assert seen["b_mixed"] > 0.5 * (seen["b"] - seen["b_paired"])
    # Unpaired training over the same sources draws no pairs and sends no flags.
    unpaired = TrainingStream(None, 32, 10, 2, seed=0, sources=sources)
    assert "paired" not in unpaired[0]
    with pytest.raises(ValueError, match="needs a data set with a positive weight"):
        TrainingStream(None, 32, 2, 2, sources=[Source(sources[0].train, [], 0.0)])
    # A pair share given to a data set replaces its own (2 of 8): B's pairs drawn 3 times in 4, or never.
    for share, low, high in ((0.75, 0.65, 0.85), (0.0, 0.0, 0.0)):
        b = sources[1]
        shared = Source(b.train, b.pairs, b.weight, share=share)
        assert shared.pair_share == share
        flags = np.concatenate([TrainingStream(None, 32, 50, 8, seed=0, sources=[shared], paired=True)[i]["paired"]
                                for i in range(8)])
        assert low <= flags.mean() <= high
    assert Source(b.train, [], share=0.5).pair_share == 0.0  # nothing to draw


def test_data_sets_and_pair_lists_named_under_the_data_root(tmp_path, monkeypatch):
    """A recipe names its data sets; the data root ($MRI_CYCLEGAN_DATA) says where this machine keeps
    them, so that the run reads the same images as from their paths and records only the names."""
    from conftest import make_folder
    from cyclegan.config import DataConfig
    from cyclegan.data import DATA_ROOT_ENV, locate, read_datasets

    root = tmp_path / "data"
    make_folder(root / "phantoms")
    (root / "phantoms" / "PAIRS.csv").write_text("t1,t2\nImage #0.png,Image #0.png\nImage #1.png,Image #1.png\n")
    by_path = DataConfig(datasets=(str(root / "phantoms"),), pairs=(str(root / "phantoms" / "PAIRS.csv"),))
    by_name = DataConfig(datasets=("phantoms",), pairs=("phantoms/PAIRS.csv",))
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(DATA_ROOT_ENV, raising=False)
    with pytest.raises(DataError, match=r"'phantoms' is neither .*\$MRI_CYCLEGAN_DATA is not set"):
        read_datasets(by_name)
    monkeypatch.setenv(DATA_ROOT_ENV, str(root))
    assert locate("phantoms") == str(root / "phantoms")
    assert locate("owner/not-here") == "owner/not-here"  # a Hub id stays one
    (tmp_path / "phantoms").mkdir()
    assert locate("phantoms") == "phantoms"  # a path from here comes first
    (tmp_path / "phantoms").rmdir()
    named, _ = read_datasets(by_name)
    given, _ = read_datasets(by_path)
    assert [(s.name, s.domain) for s in named[0][0]] == [(s.name, s.domain) for s in given[0][0]]
    assert named[0][1] == given[0][1] and len(named[0][1]) == 2
    assert list(by_name.to_dict()["datasets"]) == ["phantoms"]  # the record names the data set, not this machine's path
    with pytest.raises(DataError, match=r"not under \$MRI_CYCLEGAN_DATA"):
        read_datasets(DataConfig(datasets=("missing",)))
