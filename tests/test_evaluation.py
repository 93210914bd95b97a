"""The evaluation module: the metrics every report shares."""

import numpy as np
import pytest
from scipy import ndimage

from cyclegan import evaluation
from conftest import ellipse_pairs, phantom_slice


class Oracle:
    """A 'translator' that knows the answer: it returns the true partner (and the input as its cycle)."""

    def __init__(self, pairs, noise=0.0):
        self.answers = {}
        for _, t1, t2 in pairs:
            self.answers[t1.tobytes()] = t2
            self.answers[t2.tobytes()] = t1
        self.noise = noise

    def translate(self, image, direction):
        out = self.answers[np.asarray(image).tobytes()]
        return np.clip(out + self.noise * np.random.default_rng(0).standard_normal(out.shape), 0, 1)

    def translate_with_cycle(self, image, direction):
        return self.translate(image, direction), image


def pairs(n=3):
    out = []
    for i in range(n):
        t1 = phantom_slice(64, 56, seed=i).astype(np.float64) / 255
        t2 = np.where(t1 > 0.05, 1.0 - t1, 0.0)  # inverted inside the head: the inversion baseline's world
        out.append((f"p{i}", t1, t2 * 0.8 + 0.1 * (t1 > 0.05)))
    return out


def test_perfect_translation_scores_one_and_beats_every_baseline():
    data = pairs()
    refs = {"t1": data[0][1], "t2": data[0][2]}
    rows = evaluation.evaluate_set("toy", data, Oracle(data), refs)
    by = {(r["direction"], r["method"]): r for r in rows}
    for direction in evaluation.DIRECTIONS:
        model = by[(direction, "model")]
        assert model["ssim"] == pytest.approx(1.0) and model["mae"] == 0.0 and model["n"] == 3
        for baseline in evaluation.BASELINES:
            assert by[(direction, baseline)]["ssim"] < model["ssim"]
        assert by[(direction, "cycle")]["cycle_mae"] == 0.0
    metrics = evaluation.rows_to_metrics(rows)
    assert metrics["toy_t1_to_t2_ssim"] == pytest.approx(1.0)
    assert metrics["toy_t2_to_t1_best_baseline_ssim"] == max(by[("t2_to_t1", b)]["ssim"] for b in evaluation.BASELINES)
    noisy = evaluation.rows_to_metrics(evaluation.evaluate_set("toy", data, Oracle(data, noise=0.2), refs))
    assert noisy["toy_t1_to_t2_ssim"] < 0.9 and noisy["toy_t1_to_t2_psnr"] < metrics["toy_t1_to_t2_psnr"]


def test_without_references_the_histogram_baseline_is_left_out():
    rows = evaluation.evaluate_set("toy", pairs(1), Oracle(pairs(1)))
    assert {r["method"] for r in rows} == {"model", "identity", "inversion", "cycle"}


def test_tissue_order_of_each_target_contrast():
    assert evaluation.in_tissue_order("t1_to_t2", (0.9, 0.5, 0.3))  # T2: CSF brightest
    assert not evaluation.in_tissue_order("t1_to_t2", (0.3, 0.5, 0.9))
    assert evaluation.in_tissue_order("t2_to_t1", (0.2, 0.5, 0.8))  # T1: WM brightest
    assert evaluation.source_and_target("t2_to_t1", "a", "b") == ("b", "a")
    with pytest.raises(ValueError, match="direction"):
        evaluation.source_and_target("t1_to_t1", "a", "b")


def test_class_means_per_tissue_class_and_zero_for_an_empty_class():
    image = np.array([[0.1, 0.2], [0.6, 0.9]])
    classes = np.array([[1, 1], [3, 0]])  # no grey matter
    assert evaluation.class_means(image, classes) == pytest.approx([0.15, 0.0, 0.6])


def test_hist_match_takes_the_reference_distribution_and_keeps_the_order():
    rng = np.random.default_rng(1)
    source = rng.uniform(0, 1, (32, 32))
    reference = rng.uniform(0, 1, (32, 32)) ** 3
    mask = np.ones_like(source, bool)
    out = evaluation.hist_match(source, reference, mask, mask)
    assert np.allclose(np.sort(out.ravel()), np.sort(reference.ravel()), atol=1e-9)
    assert (np.argsort(out.ravel()) == np.argsort(source.ravel())).all()


def skull_head(size=96):
    """A round head with skull: brain (white matter inside grey), a CSF rim, dark bone and a scalp."""
    yy, xx = np.mgrid[:size, :size] - (size - 1) / 2
    r = np.hypot(yy / 1.1, xx)
    rings = [r < 12, r < 28, r < 30, r < 34, r < 40]
    t1 = np.select(rings, [0.85, 0.65, 0.12, 0.04, 0.9], 0.0)
    t2 = np.select(rings, [0.3, 0.45, 0.95, 0.04, 0.6], 0.0)
    return t1, t2


class PixelTranslator:
    """The exact pixel-wise map of :func:`pairs`' world; with ``framed`` its output also scales
    with the share of the frame the head fills, as instance normalisation over air would."""

    def __init__(self, framed=False):
        self.framed = framed

    def translate(self, image, direction):
        x = np.asarray(image, np.float64)
        head = x > 0.05
        if direction == "t1_to_t2":
            out = np.where(head, 0.8 * (1.0 - x) + 0.1, 0.0)
        else:
            out = np.where(head, 1.0 - (x - 0.1) / 0.8, 0.0)
        if self.framed:
            out = out * min(1.0, 2.0 * evaluation.head_mask(x).mean())
        return np.clip(out, 0.0, 1.0)


def test_framing_sweep_sees_a_translation_that_moves_with_the_field_of_view():
    data = pairs()
    exact = evaluation.framing_sweep("toy", data, PixelTranslator(), pads=(0, 16, 48))
    wanted = {(d, p) for d in evaluation.DIRECTIONS for p in (0, 16, 48)}
    assert {(r["direction"], r["pad"]) for r in exact} == wanted
    assert all(r["method"] == "framing" and r["n"] == 3 for r in exact)
    assert all(r["ssim"] > 0.999 and r["mae"] < 1e-6 for r in exact)  # the anatomy alone: framing-proof
    framed = {(r["direction"], r["pad"]): r for r in evaluation.framing_sweep("toy", data, PixelTranslator(True),
                                                                             pads=(0, 16, 48))}
    for direction in evaluation.DIRECTIONS:
        assert framed[(direction, 48)]["ssim"] < framed[(direction, 16)]["ssim"] <= framed[(direction, 0)]["ssim"]
        assert framed[(direction, 48)]["mae"] > 0.05
    metrics = evaluation.rows_to_metrics(list(framed.values()))
    assert metrics["toy_t1_to_t2_pad48_ssim"] == framed[("t1_to_t2", 48)]["ssim"]
    with pytest.raises(ValueError, match="whole numbers of pixels"):
        evaluation.framing_sweep("toy", data, PixelTranslator(), pads=(-1,))


def test_frame_ssim_counts_the_background_and_in_head_ssim_does_not():
    t1 = pairs(1)[0][1]
    head = evaluation.head_mask(t1)
    noisy = np.clip(t1 + 0.1 * np.random.default_rng(1).standard_normal(t1.shape) * head, 0, 1)
    small = evaluation.paired_metrics(noisy, t1, head)
    # the same head and error in a frame with 40 px more air on every side
    wide = evaluation.paired_metrics(np.pad(noisy, 40), np.pad(t1, 40), np.pad(head, 40))
    assert wide["ssim"] == pytest.approx(small["ssim"], abs=1e-9) and small["ssim"] < 0.9
    assert small["ssim"] < small["ssim_frame"] < wide["ssim_frame"] <= 1.0
    assert evaluation.paired_metrics(t1, t1, head)["ssim_frame"] == pytest.approx(1.0)
    model = dict(set="toy", direction="t1_to_t2", method="model", **small)
    assert evaluation.rows_to_metrics([model])["toy_t1_to_t2_ssim_frame"] == small["ssim_frame"]


def test_blurred_truth_scores_less_the_finer_the_detail_and_the_wider_the_blur():
    data = pairs()
    fine = [(n, t1, ndimage.zoom(ndimage.zoom(t2, 0.25, order=1), 4, order=1)[:t2.shape[0], :t2.shape[1]])
            for n, t1, t2 in data]  # the same truths with all detail finer than 4 px removed
    rows = {(r["direction"], r["sigma"]): r for r in evaluation.detail_reference("toy", data, sigmas=(0.5, 2))}
    smooth = {(r["direction"], r["sigma"]): r
              for r in evaluation.detail_reference("toy", fine, sigmas=(0.5, 2)) if r["direction"] == "t1_to_t2"}
    assert {r["method"] for r in rows.values()} == {"blurred_truth"} and all(r["n"] == 3 for r in rows.values())
    for direction in evaluation.DIRECTIONS:
        assert rows[(direction, 2.0)]["ssim"] < rows[(direction, 0.5)]["ssim"] < 1.0
    # t1_to_t2's truth is the T2: a smooth T2 loses less to the same blur than the sharp one
    assert smooth[("t1_to_t2", 2.0)]["ssim"] > rows[("t1_to_t2", 2.0)]["ssim"]
    metrics = evaluation.rows_to_metrics(list(rows.values()))
    assert metrics["toy_t1_to_t2_blurred_truth2_ssim"] == rows[("t1_to_t2", 2.0)]["ssim"]
    assert metrics["toy_t2_to_t1_blurred_truth0.5_ssim"] == rows[("t2_to_t1", 0.5)]["ssim"]
    with pytest.raises(ValueError, match="positive numbers of pixels"):
        evaluation.detail_reference("toy", data, sigmas=(0,))


class RingTranslator:
    """Knows the skull head's two contrasts (a lookup by intensity after its own robust window,
    as the real translator windows its input) and can draw a bright rim just inside the head's
    edge, or a halo just outside it."""

    def __init__(self, rim=0.0, halo=0.0, window=True):
        self.rim, self.halo, self.window = rim, halo, window

    def translate(self, image, direction):
        from cyclegan.preprocessing import scale_intensities

        image = np.asarray(image, np.float64)
        x = (scale_intensities(image)[0] + 1.0) / 2.0 if self.window else image
        t1, t2 = skull_head()
        source, target = (t1, t2) if direction == "t1_to_t2" else (t2, t1)
        levels = np.unique(np.round(source / source.max(), 2))
        lookup = {lv: float(target[np.round(source / source.max(), 2) == lv].mean()) for lv in levels}
        nearest = levels[np.abs(x[..., None] - levels).argmin(-1)]
        out = np.vectorize(lookup.get)(nearest).astype(np.float64)
        head = evaluation.head_mask(x)
        inside, outside, _ = evaluation.edge_bands(head)
        return np.clip(out + self.rim * inside + self.halo * outside, 0, 1)


def test_edge_bands_split_the_mask_and_its_surroundings():
    mask = np.zeros((40, 40), bool)
    mask[10:30, 12:28] = True
    inside, outside, core = evaluation.edge_bands(mask, width=3)
    assert not (inside & core).any() and ((inside | core) == mask).all()
    assert not (outside & mask).any() and outside.sum() > 0
    assert core.sum() == (20 - 6) * (16 - 6)  # 3 pixels off every side
    assert outside[7, 20] and not outside[6, 20]


def test_edge_metrics_see_a_rim_and_a_halo():
    t1, t2 = skull_head()
    mask = evaluation.head_mask(t1, t2)
    clean = evaluation.edge_metrics(t2, t2, mask)
    assert clean["edge_mae"] == 0 and clean["core_mae"] == 0 and clean["halo"] == clean["halo_truth"]
    assert clean["edge_bias"] == 0
    inside, outside, _ = evaluation.edge_bands(mask)
    rim = evaluation.edge_metrics(np.clip(t2 + 0.3 * inside, 0, 1), t2, mask)
    assert rim["edge_mae"] > 0.1 and rim["core_mae"] == 0 and rim["halo"] == clean["halo"]
    assert rim["edge_bias"] == pytest.approx(rim["edge_mae"])  # a bright rim: every error the same sign
    dark = evaluation.edge_metrics(t2 - 0.1 * inside, t2, mask)
    assert dark["edge_bias"] == pytest.approx(-0.1) and dark["edge_mae"] == pytest.approx(0.1)
    assert dark["core_bias"] == 0
    brighter = evaluation.edge_metrics(t2 + 0.05 * mask, t2, mask)  # the whole head, not a rim
    assert brighter["edge_bias"] == pytest.approx(0.05) and brighter["core_bias"] == pytest.approx(0.05)
    # Errors that scatter either way raise the band's error and leave its bias near zero.
    checker = np.indices(t2.shape).sum(axis=0) % 2 * 2 - 1
    noisy = evaluation.edge_metrics(t2 + 0.1 * checker * inside, t2, mask)
    assert noisy["edge_mae"] == pytest.approx(0.1) and abs(noisy["edge_bias"]) < 0.01
    halo = evaluation.edge_metrics(t2 + 0.2 * outside, t2, mask)
    assert halo["halo"] == pytest.approx(clean["halo_truth"] + 0.2) and halo["edge_mae"] == 0


def test_edge_artefacts_rows_flag_a_rim_stripping_and_scale():
    t1, t2 = skull_head()
    data = [("head", t1, t2)]
    good = {(r["direction"], r["input"]): r for r in evaluation.edge_artefacts("toy", data, RingTranslator())}
    assert set(good) == {(d, v) for d in evaluation.DIRECTIONS for v in evaluation.EDGE_INPUTS}
    for direction in evaluation.DIRECTIONS:
        assert good[direction, "16bit"]["scale_max_diff"] < 0.01  # the same image at another scale
        assert good[direction, "as_given"]["edge_mae"] == 0 and good[direction, "as_given"]["edge_ratio"] is None
        stripped = good[direction, "skull_stripped"]
        assert stripped["n"] == 1 and "with_skull_edge_mae" in stripped and "with_skull_edge_bias" in stripped
    rimmed = {(r["direction"], r["input"]): r for r in evaluation.edge_artefacts("toy", data, RingTranslator(rim=0.4))}
    for key, row in rimmed.items():
        assert row["edge_mae"] > good[key]["edge_mae"] + 0.05 and row["core_mae"] == good[key]["core_mae"]
        assert row["edge_bias"] > good[key]["edge_bias"] + 0.05  # the ring is drawn too bright
    raw = evaluation.edge_artefacts("toy", data, RingTranslator(window=False), ("16bit",))
    assert all(r["scale_max_diff"] > 0.5 for r in raw)  # a model that does not window 16-bit input fails
    with pytest.raises(ValueError, match="edge check inputs"):
        evaluation.edge_artefacts("toy", data, RingTranslator(), ("8bit",))


class Rule:
    """A 'translator' by rule: ``invert`` flips intensities inside the head (the tissue order of
    the other contrast), otherwise it returns its input (keeps the input's contrast)."""

    def __init__(self, invert):
        self.invert = invert

    def translate(self, image, direction):
        image = np.asarray(image, np.float64)
        return np.where(evaluation.head_mask(image), 1.0 - image, 0.0) if self.invert else image

    def translate_with_cycle(self, image, direction):
        out = self.translate(image, direction)
        return out, self.translate(out, direction)


def test_unpaired_checks_need_no_pairs_and_see_a_kept_contrast():
    from conftest import ellipse_pairs

    heads = ellipse_pairs(4)
    images = {"t1": [t1 for _, t1, _ in heads], "t2": [t2 for _, _, t2 in heads[:3]]}
    right = {(r["direction"], r["method"]): r for r in evaluation.unpaired_checks("u", images, Rule(True))}
    kept = {(r["direction"], r["method"]): r for r in evaluation.unpaired_checks("u", images, Rule(False))}
    for direction, n in (("t1_to_t2", 4), ("t2_to_t1", 3)):
        assert right[direction, "contrast_order"]["pass_fraction"] == 1.0
        assert right[direction, "contrast_order"]["n"] == n
        assert kept[direction, "contrast_order"]["pass_fraction"] == 0.0  # the unpaired failure
        assert kept[direction, "cycle"]["cycle_mae"] == 0.0  # ... however good its cycle
    metrics = evaluation.rows_to_metrics(evaluation.unpaired_checks("u", {"t1": images["t1"]}, Rule(True)))
    assert metrics == {"u_t1_to_t2_contrast_order_pass": 1.0,
                       "u_t1_to_t2_cycle_mae": right["t1_to_t2", "cycle"]["cycle_mae"],
                       "u_t1_to_t2_background": 0.0}


class Lookup:
    """A 'translator' that returns the real image of the other contrast of each pair it was given
    (``kept=True``: the input itself)."""

    def __init__(self, pairs, kept=False):
        key = self.key
        self.other = {key(t1): t2 for t1, t2 in pairs} | {key(t2): t1 for t1, t2 in pairs}
        self.kept = kept

    @staticmethod
    def key(image):
        return np.asarray(image, np.float64).tobytes()

    def translate_with_cycle(self, image, direction):
        out = image if self.kept else self.other[self.key(image)]
        return out, image


REAL_SLICES = __import__("conftest").SHARED_DATA / "real-t1t2"


@pytest.mark.skipif(not (REAL_SLICES / "PAIRS.csv").is_file(), reason="real-t1t2 is absent")
def test_unpaired_checks_read_the_order_inside_the_head_not_on_its_rim():
    """On the glioma case's 16 real registered pairs (skull-stripped), the real image of the other
    contrast is in order and the input's own contrast is not: the checks read the order where the
    verdict does, inside the head's interior. Read over the whole head, the real T2 was out of order
    on 12 of the 16: the darkest T1 class, taken for CSF, was mostly the stripped brain's rim."""
    import csv

    from PIL import Image

    from cyclegan.preprocessing import scale_intensities

    def load(path):
        return (scale_intensities(np.asarray(Image.open(REAL_SLICES / path), np.float64))[0] + 1) / 2

    rows = [r for r in csv.DictReader(open(REAL_SLICES / "PAIRS.csv")) if "gliomagan" in r["t1"]]
    assert len(rows) == 16
    pairs = [(load(r["t1"]), load(r["t2"])) for r in rows]
    images = {"t1": [t1 for t1, _ in pairs], "t2": [t2 for _, t2 in pairs]}
    right = evaluation.rows_to_metrics(evaluation.unpaired_checks("u", images, Lookup(pairs)))
    kept = evaluation.rows_to_metrics(evaluation.unpaired_checks("u", images, Lookup(pairs, kept=True)))
    for direction in evaluation.DIRECTIONS:
        assert right[f"u_{direction}_contrast_order_pass"] == 1.0, right
        assert kept[f"u_{direction}_contrast_order_pass"] == 0.0, kept


class GreyAir(Rule):
    """The right tissue order inside the head, and the air around it painted grey."""

    def translate(self, image, direction):
        out = super().translate(image, direction)
        return np.where(evaluation.head_mask(np.asarray(image, np.float64)), out, 0.6)


def test_unpaired_checks_see_a_translation_that_paints_the_air():
    from conftest import ellipse_pairs

    heads = ellipse_pairs(3)
    images = {"t1": [t1 for _, t1, _ in heads], "t2": [t2 for _, _, t2 in heads]}
    right = {(r["direction"], r["method"]): r for r in evaluation.unpaired_checks("u", images, Rule(True))}
    grey = {(r["direction"], r["method"]): r for r in evaluation.unpaired_checks("u", images, GreyAir(True))}
    for direction in ("t1_to_t2", "t2_to_t1"):
        assert grey[direction, "contrast_order"]["pass_fraction"] == 1.0  # the tissue order alone passes it
        assert right[direction, "background"]["background_mean"] == 0.0
        assert grey[direction, "background"] == {"set": "u", "direction": direction, "method": "background",
                                                 "n": 3, "background_mean": 0.6}
    # The band at the head's edge is not read: a halo there is the edge check's business.
    mask = evaluation.head_mask(heads[0][1])
    halo = np.where(ndimage.binary_dilation(mask, iterations=3), 0.5, 0.0)
    assert evaluation.background_level(halo, mask) == 0.0
    assert evaluation.background_level(np.ones((16, 16)), np.ones((16, 16), bool)) is None  # no air to read


def test_periodic_energy_sees_grids_and_stripes_not_anatomy():
    from cyclegan.evaluation import artefact_rows, head_mask, periodic_energy

    _, t1, _ = ellipse_pairs(1, size=128)[0]
    mask = head_mask(t1)
    clean = periodic_energy(t1, mask)
    rows, cols = np.indices(t1.shape)
    checker = t1 + 0.03 * ((rows + cols) % 2) * mask
    stripes = t1 + 0.03 * (cols % 4 < 2) * mask
    assert periodic_energy(checker, mask) > clean + 0.05 and periodic_energy(stripes, mask) > clean + 0.05
    assert periodic_energy(t1 * 0.5 + 0.1, mask) == pytest.approx(clean, abs=0.02)  # contrast alone does not count
    assert periodic_energy(np.zeros((64, 64))) == 0.0

    class Gridded:
        def translate(self, image, direction):
            return np.clip(image + 0.05 * ((np.indices(image.shape).sum(0)) % 2) * (image > 0.05), 0, 1)

    class Plain:
        def translate(self, image, direction):
            return 1.0 - image if direction == "t1_to_t2" else image

    heads = {"t1": [t1 for _, t1, _ in ellipse_pairs(3, size=96)]}
    gridded = artefact_rows("toy", heads, Gridded())[0]
    plain = artefact_rows("toy", heads, Plain())[0]
    assert gridded["method"] == "artefacts" and gridded["direction"] == "t1_to_t2" and gridded["n"] == 3
    assert gridded["periodic_excess"] > plain["periodic_excess"] + 0.05 and abs(plain["periodic_excess"]) < 0.1


def test_rows_of_one_plane_and_artefacts_become_metrics_and_card_tables():
    from cyclegan.card import quality_tables
    from cyclegan.evaluation import rows_to_metrics

    rows = [
        {"set": "clinical_pairs", "plane": "axial", "direction": "t1_to_t2", "method": "model", "ssim": 0.23,
         "psnr": 12.2, "mae": 0.19},
        {"set": "clinical_pairs", "plane": "coronal", "direction": "t1_to_t2", "method": "model", "ssim": 0.26,
         "psnr": 12.1, "mae": 0.2},
        {"set": "clinical_pairs", "plane": "axial", "direction": "t1_to_t2", "method": "identity", "ssim": 0.33,
         "psnr": 13.6, "mae": 0.15},
        {"set": "clinical_pairs", "plane": "axial", "direction": "t1_to_t2", "method": "resampled_truth",
         "ssim": 0.81, "psnr": 22.5, "mae": 0.05},
        {"set": "clinical", "plane": "sagittal", "direction": "t2_to_t1", "method": "contrast_order",
         "pass_fraction": 0.64, "cycle_mae": 0.113},
        {"set": "clinical", "plane": "sagittal", "direction": "t2_to_t1", "method": "artefacts",
         "periodic_excess": 0.46},
        {"set": "brats", "direction": "t1_to_t2", "method": "artefacts", "periodic_excess": 0.32},
    ]
    metrics = rows_to_metrics(rows)
    assert metrics["clinical_pairs_axial_t1_to_t2_ssim"] == 0.23 and metrics["clinical_pairs_coronal_t1_to_t2_ssim"] == 0.26
    # The resampled truth is a ceiling, not a baseline a model must beat.
    assert metrics["clinical_pairs_axial_t1_to_t2_best_baseline_ssim"] == 0.33
    assert metrics["clinical_pairs_axial_t1_to_t2_resampled_truth_ssim"] == 0.81
    assert metrics["clinical_pairs_axial_t1_to_t2_resampled_truth_psnr"] == 22.5
    assert metrics["clinical_sagittal_t2_to_t1_contrast_order_pass"] == 0.64
    assert metrics["clinical_sagittal_t2_to_t1_cycle_mae"] == 0.113
    assert metrics["clinical_sagittal_t2_to_t1_periodic_excess"] == 0.46 and metrics["brats_t1_to_t2_periodic_excess"] == 0.32
    text = quality_tables(metrics)
    assert "registered pairs scored on the real volume's own grid: axial" in text
    assert "no truth needed (tissue order, round-trip error, artefacts): sagittal" in text
    assert "grid artefacts" in text and "+0.46" in text and "| T1 → T2 | 0.230 | 12.2 dB |" in text
