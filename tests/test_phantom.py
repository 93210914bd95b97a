import numpy as np
import pytest

pytest.importorskip("nilearn")

from cyclegan.evaluation import segment  # noqa: E402
from cyclegan.phantom import phantom_pairs, tissue_maps  # noqa: E402


@pytest.fixture(scope="module")
def pair():
    return phantom_pairs([90])[0]


def test_same_anatomy_both_contrasts(pair):
    z, t1w, t2w = pair
    assert z == 90 and t1w.shape == t2w.shape == (217, 181)
    assert np.array_equal(t1w > 0, t2w > 0)


def test_tissue_contrast_follows_physics(pair):
    maps = tissue_maps()
    _, t1w, t2w = pair
    from cyclegan.phantom import _axial

    means = {}
    for tissue in ("csf", "gm", "wm"):
        pure = _axial(maps[tissue], 90) > 0.9
        means[tissue] = (t1w[pure].mean(), t2w[pure].mean())
    (csf1, csf2), (gm1, gm2), (wm1, wm2) = means["csf"], means["gm"], means["wm"]
    assert wm1 > gm1 > csf1  # T1-weighted: WM > GM > CSF
    assert csf2 > gm2 > wm2  # T2-weighted: CSF > GM > WM


def test_segment_orders_classes_by_t1_brightness(pair):
    _, t1w, _ = pair
    mask = t1w > 0.02
    labels = segment(t1w, mask)
    assert set(np.unique(labels[mask])) == {1, 2, 3}
    means = [t1w[labels == k].mean() for k in (1, 2, 3)]
    assert means[0] < means[1] < means[2]
