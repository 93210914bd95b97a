"""The input checks stored with a model: the contrast check, the cycle-error levels and the verdict."""

import json

import numpy as np
import pytest

from conftest import ellipse_pairs
from cyclegan.calibration import (FEATURES, LEVELS, contrast_accuracy, contrast_features, cycle_levels,
                                  fit_contrast_check, mean_cycle_error, t2_probability, verdict)


def test_contrast_check_names_held_out_heads_rightly():
    train, held = ellipse_pairs(10, first_seed=0), ellipse_pairs(6, first_seed=50)
    check = fit_contrast_check([t1 for _, t1, _ in train], [t2 for _, _, t2 in train])
    assert check["features"] == list(FEATURES) and check["fitted_on"] == {"t1": 10, "t2": 10}
    for _, t1, t2 in held:
        assert t2_probability(check, t2) > 0.9 and t2_probability(check, t1) < 0.1
    assert contrast_accuracy(check, [t1 for _, t1, _ in held], [t2 for _, _, t2 in held]) == 1.0
    # Plain numbers: it survives JSON as it is stored in config.json.
    again = json.loads(json.dumps(check))
    assert t2_probability(again, held[0][2]) == pytest.approx(t2_probability(check, held[0][2]))


def test_contrast_check_refuses_what_it_cannot_read():
    with pytest.raises(ValueError, match="both contrasts"):
        fit_contrast_check([ellipse_pairs(1)[0][1]], [])
    with pytest.raises(ValueError, match="too little tissue"):
        contrast_features(np.zeros((64, 64)))
    check = fit_contrast_check(*zip(*[(t1, t2) for _, t1, t2 in ellipse_pairs(4)]))
    with pytest.raises(ValueError, match="other features"):
        t2_probability({**check, "features": ["q10"]}, ellipse_pairs(1)[0][1])


def test_cycle_levels_and_verdict():
    levels = cycle_levels(right=np.linspace(0.01, 0.03, 21), wrong=[0.2, 0.3, 0.4])
    assert levels["typical"] == pytest.approx(0.029, abs=1e-3)
    assert levels["likely_wrong"] == pytest.approx(0.3)
    assert levels["wrong_above_typical"] == 1.0 and levels["slices"] == 21
    assert [verdict(e, levels) for e in (0.02, 0.1, 0.5)] == list(LEVELS)
    assert verdict(0.02, None) is None
    # Wrong inputs that come back no worse (the cycle hid them): the upper level stays above typical.
    hidden = cycle_levels(right=[0.1, 0.1, 0.1], wrong=[0.05])
    assert hidden["likely_wrong"] == pytest.approx(0.15)
    with pytest.raises(ValueError, match="no right-contrast"):
        cycle_levels([], [0.1])


def test_mean_cycle_error_is_inside_the_head():
    _, t1, _ = ellipse_pairs(1)[0]
    back = t1.copy()
    back[:3, :3] = 1.0  # a corner outside the head: not counted
    assert mean_cycle_error(t1, back) == 0.0
    assert mean_cycle_error(t1, np.clip(t1 + 0.1, 0, 1)) > 0.05


def test_calibration_is_saved_loaded_and_shown(tiny_folder, tiny_calibration):
    from cyclegan.card import calibration_text
    from cyclegan.hub import load_generators

    translator = load_generators(tiny_folder, warmup=False)
    stored = translator.card["calibration"]
    assert stored["cycle_error"].keys() == {"t1_to_t2", "t2_to_t1"}
    for row in stored["cycle_error"].values():
        assert row["likely_wrong"] > row["typical"] > 0 and row["slices"] == 4
    assert stored["contrast_check"]["accuracy"]["held_out"] == 1.0
    card = (tiny_folder / "README.md").read_text()
    assert "## Input checks" in card and "4 held-out ellipse heads" in card
    assert calibration_text(tiny_calibration) in card


def test_a_translation_out_of_tissue_order_is_never_typical():
    from cyclegan.evaluation import order_in_brain, tissue_sums

    levels = cycle_levels(right=np.linspace(0.01, 0.03, 21), wrong=[0.2, 0.3, 0.4])
    assert verdict(0.02, levels, in_order=False) == "unusual" and verdict(0.5, levels, in_order=False) == LEVELS[2]
    for _, t1, t2 in ellipse_pairs(4, size=96):
        right = order_in_brain("t1_to_t2", [tissue_sums("t1_to_t2", t1, t2)])
        kept = order_in_brain("t1_to_t2", [tissue_sums("t1_to_t2", t1, t1)])  # the input's own contrast
        assert right["in_order"] and right["csf"] > right["wm"]
        assert not kept["in_order"] and kept["csf"] < kept["wm"]
        assert order_in_brain("t2_to_t1", [tissue_sums("t2_to_t1", t2, t1)])["in_order"]
        assert not order_in_brain("t2_to_t1", [tissue_sums("t2_to_t1", t2, t2)])["in_order"]
    assert tissue_sums("t1_to_t2", np.zeros((64, 64)), np.zeros((64, 64))) is None
    assert order_in_brain("t1_to_t2", [None]) is None


SHARED = __import__("conftest").SHARED_DATA


def _load01(path):
    from PIL import Image

    from cyclegan.preprocessing import scale_intensities

    return (scale_intensities(np.asarray(Image.open(path), np.float64))[0] + 1) / 2


@pytest.mark.skipif(not (SHARED / "mri-t1t2-unpaired" / "PAIRS.csv").is_file(), reason="the users' data set is absent")
def test_tissue_order_of_real_targets_with_skull_is_right():
    """On the users' slices (skull and scalp included) the real target of every pair is in order, and the
    input's own contrast is not: the ring of scalp and skull is not taken for CSF or white matter."""
    import csv

    from cyclegan.evaluation import order_in_brain, tissue_sums

    folder = SHARED / "mri-t1t2-unpaired"
    rows = list(csv.DictReader(open(folder / "PAIRS.csv")))
    for row in rows[::4]:
        t1, t2 = _load01(folder / row["t1"]), _load01(folder / row["t2"])
        assert order_in_brain("t1_to_t2", [tissue_sums("t1_to_t2", t1, t2)])["in_order"], row
        assert order_in_brain("t2_to_t1", [tissue_sums("t2_to_t1", t2, t1)])["in_order"], row
        assert not order_in_brain("t1_to_t2", [tissue_sums("t1_to_t2", t1, t1)])["in_order"], row


REAL = SHARED / "real-t1t2" / "Tr1" / "TrainT1"


@pytest.mark.skipif(not (REAL / "openms-long-patient01_z018.png").is_file(), reason="real-t1t2 is absent")
def test_real_clinical_slices_with_skull():
    """Real clinical T1 slices with skull: a translation that keeps the T1 contrast (the input itself) is
    out of order on every one, and the verdict follows the order whatever the round-trip error says."""
    from cyclegan.evaluation import order_in_brain, tissue_sums
    from cyclegan.translate import translate_image

    slices = sorted(REAL.glob("openms-long-*.png"))
    assert len(slices) >= 16
    for path in slices[::4]:
        t1 = _load01(path)
        order = order_in_brain("t1_to_t2", [tissue_sums("t1_to_t2", t1, t1)])
        assert order is not None and not order["in_order"], path.name
    # The shipped model, which drew the ventricles of this slice dark in T2 and called it typical.
    from cyclegan.hub import load_generators

    shipped = load_generators(warmup=False)
    result = translate_image(shipped, _load01(REAL / "openms-long-patient01_z018.png"), "t1_to_t2")
    order = result.report["tissue_order"]
    assert order is not None and order["in_order"] == (order["csf"] > order["wm"])
    if not order["in_order"]:
        assert result.report["verdict"] != "typical"


def test_levels_of_each_kind_of_input_beside_the_pooled_ones(tiny_gan, tiny_config):
    """With kinds, each direction's levels also say what each kind alone would give: the pooled levels
    are the same as without kinds, and each kind's are those of its own slices."""
    from cyclegan.calibration import calibrate
    from cyclegan.inference import Translator
    from conftest import ellipse_pairs

    translator = Translator(tiny_gan.t1_to_t2, tiny_gan.t2_to_t1, config=tiny_config, warmup=False)
    train = ellipse_pairs(6, first_seed=0)
    held = ellipse_pairs(4)
    kinds = {held[0][0]: "a", held[1][0]: "a", held[2][0]: "b", held[3][0]: "b"}
    args = (translator, held, [t1 for _, t1, _ in train], [t2 for _, _, t2 in train])
    pooled = calibrate(*args)["cycle_error"]
    split = calibrate(*args, kinds=kinds)["cycle_error"]
    alone = calibrate(translator, held[:2], *args[2:])["cycle_error"]
    for direction in ("t1_to_t2", "t2_to_t1"):
        by_kind = split[direction].pop("by_kind")
        assert split[direction] == pooled[direction]
        assert set(by_kind) == {"a", "b"} and by_kind["a"]["slices"] == 2
        assert by_kind["a"] == alone[direction]
        assert "by_kind" not in pooled[direction]
