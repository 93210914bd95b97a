"""The evaluation module: the metrics every report shares."""

import numpy as np
import pytest

from cyclegan import evaluation
from conftest import phantom_slice


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


def test_hist_match_takes_the_reference_distribution_and_keeps_the_order():
    rng = np.random.default_rng(1)
    source = rng.uniform(0, 1, (32, 32))
    reference = rng.uniform(0, 1, (32, 32)) ** 3
    mask = np.ones_like(source, bool)
    out = evaluation.hist_match(source, reference, mask, mask)
    assert np.allclose(np.sort(out.ravel()), np.sort(reference.ravel()), atol=1e-9)
    assert (np.argsort(out.ravel()) == np.argsort(source.ravel())).all()
