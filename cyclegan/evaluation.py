"""Evaluation of a translator on aligned T1/T2 pairs: one module for every report.

The train command (held-out metrics at the end of a run), ``benchmarks/quality.py``
and the model card all use what is here, so a metric is computed one way and
named one way: ``<set>_<direction>_<metric>`` (see :func:`rows_to_metrics`).

- :func:`head_mask`, :func:`paired_metrics`: SSIM, PSNR and MAE inside the head on
  intensities in [0, 1] (and SSIM over the whole frame, as most publications report it);
- :data:`BASELINES`: the input itself, its inversion and its histogram matched to
  an image of the target contrast;
- :func:`segment`, :func:`in_tissue_order`: CSF / grey / white matter classes and
  whether a translation orders them as the target contrast demands; :func:`tissue_sums` and
  :func:`order_in_brain` read that order inside the head's interior, for slices with skull;
- :func:`edge_metrics`: error at the head's edge against its core, and what a
  translation puts just outside the head;
- :func:`evaluate_set`, :func:`tissue_order`, :func:`gamma_sweep`, :func:`framing_sweep`,
  :func:`edge_artefacts`, :func:`detail_reference`: report rows (one dict per result)
  for a set of pairs;
  :func:`unpaired_checks`: rows that need no pairs at all (the train command's
  check of each export on unpaired data).

NumPy, SciPy and scikit-image only; the translator is anything with
``translate(image, direction)`` and ``translate_with_cycle(image, direction)``
(a :class:`cyclegan.inference.Translator`).
"""

from __future__ import annotations

from typing import Callable, Iterable

import numpy as np
from scipy import ndimage
from skimage.metrics import structural_similarity

from cyclegan.masks import brain_mask, edge_bands, head_mask, interior  # noqa: F401  (head_mask, edge_bands: part of this module's API)

DIRECTIONS = ("t1_to_t2", "t2_to_t1")
#: Input gammas of the contrast-robustness rows (1 is the plain model row).
GAMMAS = (0.5, 0.7, 1.4, 2.0)


def source_and_target(direction: str, t1, t2) -> tuple:
    """(input, expected output) of a T1/T2 pair in ``direction``."""
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be one of {', '.join(DIRECTIONS)}, got {direction!r}")
    return (t1, t2) if direction == "t1_to_t2" else (t2, t1)


def paired_metrics(prediction: np.ndarray, truth: np.ndarray, mask: np.ndarray | None = None) -> dict:
    """SSIM, PSNR (dB) and MAE of ``prediction`` against ``truth`` inside ``mask``.

    Both images are float arrays in [0, 1]. SSIM is the mean of the SSIM map
    over the mask; PSNR and MAE use the masked pixels only. ``ssim_frame`` is
    SSIM over the whole frame, background included, as scikit-image returns it
    and most publications report it: higher wherever the frame holds much air
    that the translation keeps black.
    """
    prediction = np.asarray(prediction, np.float64)
    truth = np.asarray(truth, np.float64)
    if prediction.shape != truth.shape:
        raise ValueError(f"shapes differ: {prediction.shape} vs {truth.shape}")
    if mask is None:
        mask = head_mask(truth)
    if not mask.any():
        raise ValueError("the mask is empty")
    frame_ssim, ssim_map = structural_similarity(prediction, truth, data_range=1.0, full=True)
    error = prediction[mask] - truth[mask]
    mse = float(np.mean(error**2))
    return {
        "ssim": float(ssim_map[mask].mean()),
        "ssim_frame": float(frame_ssim),
        "psnr": float(10 * np.log10(1.0 / mse)) if mse > 0 else float("inf"),
        "mae": float(np.mean(np.abs(error))),
    }


def mean_metrics(rows: list[dict]) -> dict:
    """Average each metric over a list of :func:`paired_metrics` results."""
    return {key: float(np.mean([row[key] for row in rows])) for key in rows[0]} if rows else {}


# -- baselines -------------------------------------------------------------------------
def hist_match(source: np.ndarray, reference: np.ndarray, mask: np.ndarray, ref_mask: np.ndarray) -> np.ndarray:
    """``source`` intensities inside ``mask`` mapped onto the distribution of ``reference``."""
    out = np.zeros_like(source, dtype=np.float64)
    values = source[mask]
    ranks = np.argsort(np.argsort(values, kind="stable"), kind="stable") / max(len(values) - 1, 1)
    out[mask] = np.quantile(reference[ref_mask], ranks)
    return out


#: Baselines a translation must beat: name -> f(input, head mask, reference image of the
#: target contrast, its head mask) in [0, 1].
BASELINES: dict[str, Callable] = {
    "identity": lambda source, mask, ref, ref_mask: source,
    "inversion": lambda source, mask, ref, ref_mask: np.where(mask, 1.0 - source, 0.0),
    "histmatch": lambda source, mask, ref, ref_mask: hist_match(source, ref, mask, ref_mask),
}


# -- tissue classes ----------------------------------------------------------------------
def segment(image_t1w: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Labels 1 CSF, 2 GM, 3 WM of a T1-weighted slice by 3-class k-means inside ``mask``."""
    values = image_t1w[mask].astype(np.float64)
    centres = np.percentile(values, [10, 50, 90])
    for _ in range(50):
        labels = np.argmin(np.abs(values[:, None] - centres[None, :]), axis=1)
        new = np.array([values[labels == k].mean() if np.any(labels == k) else centres[k] for k in range(3)])
        if np.allclose(new, centres):
            break
        centres = new
    order = np.argsort(centres)  # dark -> bright on T1: CSF, GM, WM
    out = np.zeros(image_t1w.shape, np.uint8)
    ranks = np.empty(3, int)
    ranks[order] = np.arange(3)
    out[mask] = ranks[labels] + 1
    return out


def in_tissue_order(direction: str, csf_gm_wm) -> bool:
    """Do the class means follow the target contrast: CSF > GM > WM on T2, WM > GM > CSF on T1?"""
    csf, gm, wm = csf_gm_wm
    return csf > gm > wm if direction == "t1_to_t2" else wm > gm > csf


def tissue_classes(direction: str, source: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """CSF / GM / WM labels of the input: segmented on the T1 image, or on the inverted T2 image
    (which orders the classes the same way)."""
    brain = mask & (source > 0.02)
    return segment(source if direction == "t1_to_t2" else 1.0 - source, brain)


def class_means(image: np.ndarray, classes: np.ndarray) -> list[float]:
    """Mean of ``image`` in each of the CSF / GM / WM classes (1, 2, 3) of :func:`tissue_classes`;
    0 for a class that is empty."""
    return [float(image[classes == k].mean()) if (classes == k).any() else 0.0 for k in (1, 2, 3)]


#: Fewest pixels of each tissue class for :func:`tissue_sums` to read the order.
ORDER_MIN_PIXELS = 16


def tissue_sums(direction: str, source01: np.ndarray, translation01: np.ndarray) -> np.ndarray | None:
    """(sum, count) of the translation in the CSF, GM and WM classes (:func:`tissue_classes`) of
    the input's interior (:func:`cyclegan.masks.interior`: the scalp, skull and skull base of a
    clinical slice are not taken for CSF or white matter), a (3, 2) array, or None when some class
    has too few pixels."""
    source = np.asarray(source01, np.float64)
    inner = interior(head_mask(source))
    if np.count_nonzero(inner & (source > 0.02)) < 3 * ORDER_MIN_PIXELS:
        return None
    classes = tissue_classes(direction, source, inner)
    translation = np.asarray(translation01, np.float64)
    sums = np.array([[translation[classes == k].sum(), np.count_nonzero(classes == k)] for k in (1, 2, 3)])
    return None if sums[:, 1].min() < ORDER_MIN_PIXELS else sums


def order_in_brain(direction: str, sums: Iterable | None) -> dict | None:
    """The translation's mean CSF, GM and WM from :func:`tissue_sums` (of one slice, or added up over
    a volume's slices) and whether CSF and white matter are ordered as the target contrast demands
    (``in_order``: CSF brighter than white matter on T2, darker on T1); None when there were no
    sums. What the app's verdict and the checks without pairs read."""
    sums = [s for s in (sums or []) if s is not None]
    if not sums:
        return None
    total = np.sum(sums, axis=0)
    csf, gm, wm = (total[:, 0] / total[:, 1]).tolist()
    in_order = csf > wm if direction == "t1_to_t2" else wm > csf
    return {"csf": round(csf, 4), "gm": round(gm, 4), "wm": round(wm, 4), "in_order": bool(in_order)}


# -- report rows ------------------------------------------------------------------------------
def evaluate_set(name: str, pairs: Iterable, translator, references: dict | None = None,
                 on_pair: Callable | None = None) -> list[dict]:
    """Rows for the model, each baseline and the cycle error, both directions.

    ``pairs`` are ``(name, t1, t2)`` with images in [0, 1]; ``references`` an
    image of each contrast (``{"t1": ..., "t2": ...}``) for the histogram
    baseline (left out without them). ``on_pair(direction, pair name,
    [input, translation, truth])`` sees every translation (figures).
    """
    pairs = list(pairs)
    rows = []
    for direction in DIRECTIONS:
        methods = {"model": []}
        methods.update({b: [] for b in BASELINES if b != "histmatch" or references})
        cycle = []
        target_key = "t2" if direction == "t1_to_t2" else "t1"
        ref = references[target_key] if references else None
        ref_mask = head_mask(ref) if references else None
        for pair_name, t1, t2 in pairs:
            source, truth = source_and_target(direction, t1, t2)
            mask = head_mask(truth, source)
            prediction, back = translator.translate_with_cycle(source, direction)
            methods["model"].append(paired_metrics(prediction, truth, mask))
            for baseline in methods:
                if baseline != "model":
                    guess = BASELINES[baseline](source, mask, ref, ref_mask)
                    methods[baseline].append(paired_metrics(guess, truth, mask))
            cycle.append(float(np.mean(np.abs(back - source)[mask])))
            if on_pair is not None:
                on_pair(direction, pair_name, [source, prediction, truth])
        for method, values in methods.items():
            rows.append(dict(set=name, direction=direction, method=method, n=len(values),
                             **{k: round(v, 4) for k, v in mean_metrics(values).items()}))
        rows.append(dict(set=name, direction=direction, method="cycle", n=len(cycle),
                         cycle_mae=round(float(np.mean(cycle)), 4) if cycle else None))
    return rows


def tissue_order(name: str, pairs: Iterable, translator) -> list[dict]:
    """How often a translation orders CSF / GM / WM as the target contrast demands, and how often
    the real target itself does on the same segmentation (where it does not, the check is moot)."""
    pairs = list(pairs)
    rows = []
    for direction in DIRECTIONS:
        passed, truth_passed, all_means, truth_means = 0, 0, [], []
        for _, t1, t2 in pairs:
            source, truth = source_and_target(direction, t1, t2)
            seg = tissue_classes(direction, source, head_mask(truth, source))
            prediction = translator.translate(source, direction)
            means, real = class_means(prediction, seg), class_means(truth, seg)
            passed += in_tissue_order(direction, means)
            truth_passed += in_tissue_order(direction, real)
            all_means.append(means)
            truth_means.append(real)
        rows.append(dict(set=name, direction=direction, method="contrast_order", n=len(pairs),
                         pass_fraction=round(passed / max(len(pairs), 1), 4),
                         target_pass_fraction=round(truth_passed / max(len(pairs), 1), 4),
                         translated_csf_gm_wm=[round(float(x), 4) for x in np.mean(all_means, axis=0)],
                         real_target_csf_gm_wm=[round(float(x), 4) for x in np.mean(truth_means, axis=0)]))
    return rows


#: Pixels between the head and the air that :func:`background_level` reads: farther than this
#: from the input's head mask, so that the edge of the head is not counted.
BACKGROUND_MARGIN = 6


def background_level(prediction: np.ndarray, mask: np.ndarray) -> float | None:
    """Mean of ``prediction`` ([0, 1]) in the air around the head: more than
    :data:`BACKGROUND_MARGIN` pixels outside ``mask``, the input's head mask (:func:`head_mask`).
    Air is dark in both contrasts, so a translation should keep it near 0. None when the head
    leaves no such air."""
    near = ndimage.binary_dilation(mask, iterations=BACKGROUND_MARGIN)
    if near.all():
        return None
    return float(np.mean(np.asarray(prediction, np.float64)[~near]))


def unpaired_checks(name: str, images: dict, translator) -> list[dict]:
    """Rows that need no pairs, so that a run on unpaired data can be checked as it trains.

    ``images`` holds images of each contrast (``{"t1": [...], "t2": [...]}``, [0, 1]). For each
    direction: how often a translation orders CSF and white matter as the physics of the target
    contrast demands, read inside the head's interior as the app's verdict reads it
    (:func:`tissue_sums`, :func:`order_in_brain`; ``n`` counts the images where it could be read,
    and the row is left out when none could), the mean round-trip error inside the head, and the
    mean translation in the air around the head (:func:`background_level`). A CycleGAN that keeps
    the input's contrast (the unpaired failure) scores 0 on the first, however low its cycle error;
    one that paints the air grey has a high background.
    """
    rows = []
    for direction in DIRECTIONS:
        sources = list(images.get(direction[:2]) or [])
        if not sources:
            continue
        orders, cycle, background = [], [], []
        for source in sources:
            source = np.asarray(source, np.float64)
            mask = head_mask(source)
            prediction, back = translator.translate_with_cycle(source, direction)
            order = order_in_brain(direction, [tissue_sums(direction, source, prediction)])
            if order is not None:
                orders.append(order)
            cycle.append(float(np.mean(np.abs(back - source)[mask])))
            level = background_level(prediction, mask)
            if level is not None:
                background.append(level)
        if orders:
            means = np.mean([[o["csf"], o["gm"], o["wm"]] for o in orders], axis=0)
            rows.append(dict(set=name, direction=direction, method="contrast_order", n=len(orders),
                             pass_fraction=round(sum(o["in_order"] for o in orders) / len(orders), 4),
                             translated_csf_gm_wm=[round(float(x), 4) for x in means]))
        rows.append(dict(set=name, direction=direction, method="cycle", n=len(sources),
                         cycle_mae=round(float(np.mean(cycle)), 4)))
        if background:
            rows.append(dict(set=name, direction=direction, method="background", n=len(background),
                             background_mean=round(float(np.mean(background)), 4)))
    return rows


def _sweep_rows(name: str, pairs: Iterable, method: str, key: str, settings, score: Callable) -> list[dict]:
    """One row per direction and setting: the :func:`paired_metrics` that
    ``score(setting, direction, source, truth)`` gives each of ``pairs``, averaged."""
    pairs = list(pairs)
    rows = []
    for direction in DIRECTIONS:
        for setting in settings:
            values = [score(setting, direction, *source_and_target(direction, t1, t2)) for _, t1, t2 in pairs]
            rows.append(dict(set=name, direction=direction, method=method, **{key: setting}, n=len(values),
                             **{k: round(v, 4) for k, v in mean_metrics(values).items()}))
    return rows


def gamma_sweep(name: str, pairs: Iterable, translator, gammas=GAMMAS) -> list[dict]:
    """The model's paired metrics when each input's [0, 1] intensities are raised to a gamma."""
    from cyclegan.augment import gamma_contrast

    def score(gamma, direction, source, truth):
        changed = (gamma_contrast(source * 2.0 - 1.0, gamma) + 1.0) / 2.0
        return paired_metrics(translator.translate(changed, direction), truth, head_mask(truth, source))

    return _sweep_rows(name, pairs, "gamma", "gamma", gammas, score)


#: Background in pixels added on every side of the framing rows' inputs: :func:`framing_sweep`.
FRAMING_PADS = (32, 96)


def framing_sweep(name: str, pairs: Iterable, translator, pads=FRAMING_PADS) -> list[dict]:
    """The model's paired metrics when each pair is framed in a wider field of view: both
    images padded with ``pad`` pixels of background on every side, the head where it was.

    The head and its pixels are the same, so a translator that looks only at the anatomy
    scores what it scores on the pair as given (the ``model`` row); one whose output moves
    with the share of the frame the head fills (instance normalisation over a frame that is
    mostly air) scores less.
    """
    pads = list(pads)
    for pad in pads:
        if int(pad) != pad or pad < 0:
            raise ValueError(f"framing pads are whole numbers of pixels, 0 or more, not {pad!r}")

    def score(pad, direction, source, truth):
        wide_source, wide_truth = (np.pad(np.asarray(image, np.float64), pad) for image in (source, truth))
        return paired_metrics(translator.translate(wide_source, direction), wide_truth,
                              head_mask(wide_truth, wide_source))

    return _sweep_rows(name, pairs, "framing", "pad", [int(pad) for pad in pads], score)


#: Gaussian widths (sigma, pixels) of the blurred truths of :func:`detail_reference`.
DETAIL_SIGMAS = (0.7, 1.0)


def detail_reference(name: str, pairs: Iterable, sigmas=DETAIL_SIGMAS) -> list[dict]:
    """Rows of what the truth itself scores, Gaussian-blurred by each of ``sigmas`` pixels.

    Not a baseline (it needs the answer) but a scale for the model's metrics: a translation
    right in everything but detail finer than ``sigma`` pixels scores about this. On scans with
    fine texture (real patients) it is far below 1, so an SSIM goal above it asks for detail at
    the scale of one pixel.
    """
    sigmas = list(sigmas)
    for sigma in sigmas:
        if not sigma > 0:
            raise ValueError(f"blur widths are positive numbers of pixels, not {sigma!r}")

    def score(sigma, direction, source, truth):
        blurred = ndimage.gaussian_filter(np.asarray(truth, np.float64), sigma)
        return paired_metrics(blurred, truth, head_mask(truth, source))

    return _sweep_rows(name, pairs, "blurred_truth", "sigma", [float(sigma) for sigma in sigmas], score)


#: Inputs of the edge check: the images as given, skull-stripped (both images of a pair cut to
#: the brain mask of its T1, :func:`cyclegan.masks.brain_mask`) and as 16-bit integers.
EDGE_INPUTS = ("as_given", "skull_stripped", "16bit")


def edge_metrics(prediction: np.ndarray, truth: np.ndarray, mask: np.ndarray) -> dict:
    """How a translation behaves at the edge of the head (or brain) ``mask``.

    ``edge_mae`` is the error in the band just inside the edge, ``core_mae`` the error in the rest
    of the head; ``edge_bias`` is the mean signed error in that band (translation minus truth): a
    rim drawn too dark or too bright all round shows there, where errors that only scatter cancel,
    against ``core_bias``, the same in the rest of the head (a whole translation too dark or bright);
    ``halo`` is the mean translation in the band just outside (background, where the truth is about
    0: ``halo_truth``). A rim or halo artefact raises ``edge_mae`` and ``halo``.
    """
    inside, outside, core = edge_bands(mask)
    if not inside.any() or not core.any() or not outside.any():
        raise ValueError("the mask is too small or touches the image border")
    signed = np.asarray(prediction, np.float64) - truth
    error = np.abs(signed)
    return {"edge_mae": float(error[inside].mean()), "edge_bias": float(signed[inside].mean()),
            "core_mae": float(error[core].mean()), "core_bias": float(signed[core].mean()),
            "halo": float(np.asarray(prediction)[outside].mean()), "halo_truth": float(truth[outside].mean())}


def edge_artefacts(name: str, pairs: Iterable, translator, inputs=EDGE_INPUTS) -> list[dict]:
    """:func:`edge_metrics` of the model on each input variant of :data:`EDGE_INPUTS`.

    ``edge_ratio`` is the mean ``edge_mae`` over the mean ``core_mae`` (None where the core is
    exact). ``skull_stripped`` cuts both images of a pair to the brain mask of its T1 and sets
    each image's intensity window anew (as a skull-stripped scan would have it); its
    ``with_skull_edge_mae`` (and ``with_skull_edge_bias``) is the error in the same band when the
    model sees the whole head (its translation then cut to the brain the same way), so that an edge
    artefact caused by the missing skull shows as ``edge_mae`` (``edge_bias``) beyond it. Pairs
    whose T1 gives no trustworthy brain mask are left out. For ``16bit`` inputs (the [0, 1] image
    as 0-65535 integers) ``scale_max_diff`` is the largest difference inside the head from the
    translation of the same image as floats: the model sees both through the same robust window.
    """
    from cyclegan.preprocessing import scale_intensities

    def window(image):
        return (scale_intensities(image)[0].astype(np.float64) + 1.0) / 2.0

    pairs = list(pairs)
    rows = []
    for variant in inputs:
        if variant not in EDGE_INPUTS:
            raise ValueError(f"edge check inputs are {', '.join(EDGE_INPUTS)}, not {variant!r}")
    for direction in DIRECTIONS:
        values = {variant: [] for variant in inputs}
        extra = {variant: [] for variant in inputs}
        for _, t1, t2 in pairs:
            source, truth = source_and_target(direction, t1, t2)
            mask = head_mask(truth, source)
            plain = translator.translate(source, direction)  # the input as given, translated once
            if "as_given" in inputs:
                values["as_given"].append(edge_metrics(plain, truth, mask))
            if "16bit" in inputs:
                raw = translator.translate(np.round(source * 65535).astype(np.uint16), direction)
                extra["16bit"].append(float(np.abs(raw - plain)[mask].max()))
                values["16bit"].append(edge_metrics(raw, truth, mask))
            if "skull_stripped" in inputs:
                brain = brain_mask(np.asarray(t1) * 2.0 - 1.0)
                if brain is None:
                    continue
                stripped, stripped_truth = window(source * brain), window(truth * brain)
                brain_edge = head_mask(stripped_truth, stripped)
                signed = (window(plain * brain) - stripped_truth)[edge_bands(brain_edge)[0]]
                extra["skull_stripped"].append((float(np.abs(signed).mean()), float(signed.mean())))
                values["skull_stripped"].append(edge_metrics(
                    translator.translate(stripped, direction), stripped_truth, brain_edge))
        for variant in inputs:
            if not values[variant]:
                continue
            means = {k: float(np.mean([v[k] for v in values[variant]])) for k in values[variant][0]}
            ratio = means["edge_mae"] / means["core_mae"] if means["core_mae"] > 1e-6 else None
            row = dict(set=name, direction=direction, method="edge", input=variant, n=len(values[variant]),
                       **{k: round(v, 4) for k, v in means.items()},
                       edge_ratio=round(ratio, 3) if ratio is not None else None)
            if variant == "skull_stripped":
                row["with_skull_edge_mae"], row["with_skull_edge_bias"] = (
                    round(float(v), 4) for v in np.mean(extra[variant], axis=0))
            elif variant == "16bit":
                row["scale_max_diff"] = round(max(extra[variant]), 4)
            rows.append(row)
    return rows


def rows_to_metrics(rows: Iterable[dict]) -> dict:
    """Report rows as flat metrics ``<set>_<direction>_<metric>``: the model's SSIM / PSNR / MAE,
    the best baseline's SSIM and PSNR, the cycle error, the tissue order, the gamma sweep, the
    framing sweep, the blurred truth, the resampled truth (the clinical pairs' ceiling) and the periodic
    artefacts. A row of one plane (the clinical
    sets) names its set ``<set>_<plane>``."""
    metrics, baselines = {}, {}
    for row in rows:
        kind, direction, method = row.get("set"), row.get("direction"), row.get("method")
        if not direction:
            continue
        if row.get("plane"):
            kind = f"{kind}_{row['plane']}"
        prefix = f"{kind}_{direction}"
        if method == "model":
            for key in ("ssim", "ssim_frame", "psnr", "mae"):
                if key in row:
                    metrics[f"{prefix}_{key}"] = row[key]
        elif method in BASELINES:
            best = baselines.setdefault(prefix, {})
            best["ssim"] = max(best.get("ssim", -1.0), row["ssim"])
            best["psnr"] = max(best.get("psnr", 0.0), row["psnr"])
        elif method == "cycle" and row.get("cycle_mae") is not None:
            metrics[f"{prefix}_cycle_mae"] = row["cycle_mae"]
        elif method == "background":
            metrics[f"{prefix}_background"] = row["background_mean"]
        elif method == "contrast_order":
            metrics[f"{prefix}_contrast_order_pass"] = row["pass_fraction"]
            if row.get("cycle_mae") is not None:
                metrics[f"{prefix}_cycle_mae"] = row["cycle_mae"]
            if "target_pass_fraction" in row:
                metrics[f"{prefix}_contrast_order_target_pass"] = row["target_pass_fraction"]
        elif method == "gamma":
            metrics[f"{prefix}_gamma{row['gamma']:g}_ssim"] = row["ssim"]
        elif method == "framing":
            metrics[f"{prefix}_pad{row['pad']}_ssim"] = row["ssim"]
        elif method == "blurred_truth":
            metrics[f"{prefix}_blurred_truth{row['sigma']:g}_ssim"] = row["ssim"]
        elif method == "resampled_truth":
            metrics[f"{prefix}_resampled_truth_ssim"] = row["ssim"]
            metrics[f"{prefix}_resampled_truth_psnr"] = row["psnr"]
        elif method == "artefacts":
            metrics[f"{prefix}_periodic_excess"] = row["periodic_excess"]
    for prefix, best in baselines.items():
        metrics[f"{prefix}_best_baseline_ssim"] = best["ssim"]
        metrics[f"{prefix}_best_baseline_psnr"] = best["psnr"]
    return metrics


# -- periodic artefacts -----------------------------------------------------------------------------------
#: Spatial frequencies (cycles per pixel) of the grid and stripe patterns that stride-2 upsampling can draw:
#: every combination of 0, 1/4 and 1/2 along rows and columns but the mean.
ARTEFACT_FREQUENCIES = tuple((fy, fx) for fy in (0.0, 0.25, 0.5) for fx in (0.0, 0.25, 0.5) if fy or fx)


def periodic_energy(image01: np.ndarray, mask: np.ndarray | None = None) -> float:
    """How far the spectrum of an image peaks at :data:`ARTEFACT_FREQUENCIES` (a checkerboard, a grid,
    stripes two or four pixels apart) above the spectrum around them: the mean over those frequencies
    of log10(power at the frequency / median power of the bins 2 to 4 away). Low for anatomy, whose
    spectrum is smooth there (0.1-0.3: the strongest of nine bins against a median); a pattern with ten
    times the power around it adds 1 at its frequency. Compare a translation with its input.

    Read on the image inside its head's bounding box (``mask``, default :func:`head_mask`), its mean
    removed, under a Hann window."""
    image = np.asarray(image01, np.float64)
    mask = head_mask(image) if mask is None else mask
    if not mask.any():
        return 0.0
    rows, cols = np.nonzero(mask)
    box = image[rows.min():rows.max() + 1, cols.min():cols.max() + 1]
    if min(box.shape) < 16:
        return 0.0
    box = (box - box.mean()) * np.outer(np.hanning(box.shape[0]), np.hanning(box.shape[1]))
    power = np.abs(np.fft.fft2(box)) ** 2
    h, w = power.shape
    floor = 1e-12 * max(float(power.sum()), 1e-12)
    logs, seen = [], set()
    for fy, fx in ARTEFACT_FREQUENCIES:
        for sy, sx in ((1, 1), (1, -1)):  # the other two are their mirrors (a real image)
            ky, kx = int(round(sy * fy * h)) % h, int(round(sx * fx * w)) % w
            if (ky, kx) in seen:
                continue
            seen.add((ky, kx))
            ring = [power[(ky + dy) % h, (kx + dx) % w] for dy in range(-4, 5) for dx in range(-4, 5)
                    if max(abs(dy), abs(dx)) >= 2]
            peak = max(power[(ky + dy) % h, (kx + dx) % w] for dy in (-1, 0, 1) for dx in (-1, 0, 1))
            logs.append(np.log10((peak + floor) / (float(np.median(ring)) + floor)))
    return float(np.mean(logs))


def artefact_rows(name: str, sources: dict, translator) -> list[dict]:
    """Per direction: how much more the translations' spectra peak at grid and stripe frequencies
    (:func:`periodic_energy`) than their inputs', ``sources`` holding inputs of each contrast
    (``{"t1": [...], "t2": [...]}``, [0, 1]). A model that draws a grid or stripes has a
    ``periodic_excess`` above 0 (0.3: twice the power of its input's spectrum there);
    ``above_0_3`` is the fraction of translations past that."""
    rows = []
    for direction in DIRECTIONS:
        inputs = list(sources.get(direction[:2]) or [])
        if not inputs:
            continue
        excess = []
        for source in inputs:
            source = np.asarray(source, np.float64)
            mask = head_mask(source)
            excess.append(periodic_energy(translator.translate(source, direction), mask)
                          - periodic_energy(source, mask))
        rows.append(dict(set=name, direction=direction, method="artefacts", n=len(excess),
                         periodic_excess=round(float(np.mean(excess)), 4),
                         periodic_excess_max=round(float(np.max(excess)), 4),
                         above_0_3=round(float(np.mean(np.asarray(excess) > 0.3)), 4)))
    return rows
