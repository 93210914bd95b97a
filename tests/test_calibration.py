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
