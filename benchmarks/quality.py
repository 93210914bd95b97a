"""Quality benchmark: paired metrics, tissue-contrast fidelity and cycle consistency.

    python benchmarks/quality.py [--model FOLDER_OR_REPO] [--figures DIR]

Prints one JSON line per result. Sets (each when available):

- ``holdout``: held-out pairs of the users' data set (the "unpaired" slices are pixel-aligned pairs,
  listed in PAIRS.csv); which pairs comes from the model's training record, else 15 % of PAIRS.csv
  chosen as the train command does;
- ``phantom``: the project's spin-echo phantom (cyclegan/phantom.py), needs nilearn;
- ``real``: aligned pairs of real patients (``real-t1t2``) whose subjects the model never saw:
  ``--real-subjects``, else the subjects the model's training record held out (by name, or by the
  BIDS label of the same patient in ``real-t1t2-volumes``), else ``openms-cs-patient07``;
- ``brats``: real co-registered BraTS slices (a different domain: tumour patients, skull-stripped);
- ``clinical_pairs``: whole visits of with-skull participants of ``real-t1t2-volumes`` (those the
  model's record held out, else ``--clinical-subjects``), T2w registered onto T1w, translated in each
  plane and scored against the real volume of the other contrast on its own grid (the prediction is
  brought onto it through the registration; the truth is never resampled). Its ``resampled_truth``
  rows are the ceiling that path leaves: the truth itself carried onto the input's grid, through the
  model's 1 mm grid in that plane and back onto its own grid (what a perfect translation would score);
- ``clinical``: every third slice, in each plane, of the with-skull (clinical 2-D) volumes of
  ``real-t1t2-volumes``, paired or not: the tissue order of each translation inside the brain, the
  round-trip error and the periodic artefacts (no truth needed).

The ``artefacts`` rows (every set) say how much more each translation's spectrum peaks at grid and
stripe frequencies (periods of 2 and 4 pixels) than its input's (``cyclegan.evaluation.periodic_energy``).

Methods: the model, the model on inputs with another contrast (``gamma``: the held-out inputs'
intensities raised to each of GAMMAS, as another scanner or sequence would weight the tissues), and
the baselines ``identity`` (the input itself), ``inversion`` (1 - input
inside the head) and ``histmatch`` (the input's histogram matched to a training image of the target
contrast). Metrics: SSIM, PSNR (dB) and MAE inside the head mask on [0, 1] intensities, and SSIM over
the whole frame (``ssim_frame``, background included, as most publications report it). The
``edge`` rows check the head's (or brain's) edge: the error in a band just inside it against the
rest of the head, its mean signed error (``edge_bias``: a rim drawn too dark or too bright;
``core_bias`` in the rest of the head), and what the model draws just outside it, on inputs as
given, skull-stripped and as 16-bit integers (``cyclegan.evaluation.edge_artefacts``). The ``framing`` rows are the
model's metrics when each pair is padded with 32 or 96 pixels of background on every side (a wider
field of view, the head unchanged: ``cyclegan.evaluation.framing_sweep``), as the translator makes
them: an input framed far wider than the training slices is translated within a closer frame around
the head unless ``--no-reframe`` is given (``cyclegan.preprocessing.head_window``). The ``blurred_truth``
rows score the truth itself blurred by a Gaussian of 0.7 or 1 pixel: not a baseline but a scale for
how much of a set's SSIM rests on detail at the scale of a pixel (``cyclegan.evaluation.detail_reference``).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from cyclegan import evaluation  # noqa: E402
from cyclegan.preprocessing import scale_intensities, to_uint8  # noqa: E402

SHARED = ROOT.parent / "shared" / "data"
def emit(**row):
    print(json.dumps(row, sort_keys=True), flush=True)


def unit(image) -> np.ndarray:
    """Image -> [0, 1] through the same robust window the model's input gets."""
    return (scale_intensities(np.asarray(image, np.float64))[0] + 1.0) / 2.0


def load_pairs_dataset(data: Path, holdout_names: list | None):
    """[(name, t1 [0,1], t2 [0,1])] held-out pairs, one training image per contrast and the
    held-out files' names."""
    from PIL import Image

    from cyclegan.data import choose_holdout, read_pairs

    pairs = read_pairs(data / "PAIRS.csv")
    if holdout_names is None:
        holdout = choose_holdout(pairs, 0.15)
    else:
        keys = {tuple(p) for p in holdout_names}
        holdout = [p for p in pairs if any(p[0].endswith(k[0].split("/")[-1]) and p[1].endswith(k[1].split("/")[-1]) for k in keys)]
    load = lambda rel: unit(np.asarray(Image.open(data / rel)))  # noqa: E731
    held = [(f"{Path(a).name} / {Path(b).name}", load(a), load(b)) for a, b in holdout]
    held_names = {n for p in holdout for n in p}
    train_pairs = [p for p in pairs if p[0] not in held_names]
    middle = train_pairs[len(train_pairs) // 2]
    references = {"t1": load(middle[0]), "t2": load(middle[1])}
    return held, references, {Path(n).name for n in held_names}


def real_names(folder: Path, subjects: list) -> list:
    """The subjects of a real-t1t2 folder that ``subjects`` name: as given, or by a BIDS participant label
    of the same patient in real-t1t2-volumes (``openmscs07`` is ``openms-cs-patient07``)."""
    key = lambda name: re.sub(r"[^a-z0-9]", "", name.lower().removeprefix("sub-")).replace("patient", "")  # noqa: E731
    found = sorted({p.name.split("_z")[0] for p in (folder / "Tr1" / "TrainT1").glob("*.png")})
    out = []
    for subject in subjects:
        out += [name for name in found if name == subject or key(subject) in key(name)]
    return list(dict.fromkeys(out))


def load_real_subjects(data: Path, subjects: list):
    """[(name, t1, t2)] aligned pairs of ``subjects`` in a real-t1t2 style folder, and one
    training pair's images (a paired subject not held out) as histogram references."""
    from PIL import Image

    from cyclegan.config import DEFAULT_SUBJECT_PATTERN
    from cyclegan.data import read_pairs, subject_of

    pairs = read_pairs(data / "PAIRS.csv")
    load = lambda rel: unit(np.asarray(Image.open(data / rel)))  # noqa: E731
    held = [(f"{Path(a).stem}", load(a), load(b)) for a, b in pairs
            if subject_of(a, DEFAULT_SUBJECT_PATTERN) in subjects]
    others = [p for p in pairs if subject_of(p[0], DEFAULT_SUBJECT_PATTERN) not in subjects]
    references = None
    if others:
        middle = others[len(others) // 2]
        references = {"t1": load(middle[0]), "t2": load(middle[1])}
    return held, references


def load_brats(folder: Path):
    out = []
    for t1_path in sorted(folder.glob("*_t1.npy")):
        t2_path = t1_path.with_name(t1_path.name.replace("_t1.npy", "_t2.npy"))
        if t2_path.exists():
            t1, t2 = np.load(t1_path).astype(np.float64), np.load(t2_path).astype(np.float64)
            if t1.shape == t2.shape and min(t1.shape) >= 32 and t1.max() > t1.min():
                out.append((t1_path.name[: -len("_t1.npy")], unit(t1), unit(t2)))
    return out


def training_images(folder: Path, held_out: set, subjects=(), limit=None) -> dict:
    """{"t1": [...], "t2": [...]} images of a data set folder in [0, 1], leaving out the held-out
    files (by name) and subjects: what the contrast check is fitted on."""
    from PIL import Image

    from cyclegan.config import DEFAULT_SUBJECT_PATTERN
    from cyclegan.data import subject_of

    out = {}
    for key, sub in (("t1", "Tr1/TrainT1"), ("t2", "Tr2/TrainT2")):
        paths = [p for p in sorted((folder / sub).glob("*.png")) if p.name not in held_out
                 and (not subjects or subject_of(p.name, DEFAULT_SUBJECT_PATTERN) not in subjects)]
        out[key] = [unit(np.asarray(Image.open(p))) for p in paths[:limit]]
    return out


def calibrate(translator, held: list, images: dict, brats: list, measured_on: str, kinds=None):
    """Emit the ``calibration`` row: the contrast check and the cycle-error levels (cyclegan.calibration),
    pooled over ``held`` and, with ``kinds`` (a pair's name to its kind), for each kind alone."""
    from cyclegan.calibration import calibrate as fit, contrast_accuracy

    result = fit(translator, held, images["t1"], images["t2"], measured_on=measured_on, kinds=kinds)
    if brats:
        result["contrast_check"]["accuracy"]["brats"] = contrast_accuracy(
            result["contrast_check"], [t1 for _, t1, _ in brats], [t2 for _, _, t2 in brats])
    emit(set="calibration", method="calibration", calibration=result)


def evaluate_set(name, pairs, translator, references, figures=None):
    """Emit the model's, the baselines' and the cycle rows of both directions."""
    def figure(direction, pair_name, images):
        source, prediction, truth = images
        save_figure(figures / f"{name}_{direction}_{safe(pair_name)}.png",
                    [source, prediction, truth, np.clip(np.abs(prediction - truth) * 4, 0, 1)])

    for row in evaluation.evaluate_set(name, pairs, translator, references,
                                       on_pair=figure if figures is not None else None):
        emit(**row)


def safe(text: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in text)[:60]


def save_figure(path: Path, images):
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(to_uint8(np.concatenate(images, axis=1))).save(path)


def contrast_fidelity(name, pairs, translator):
    for row in evaluation.tissue_order(name, pairs, translator):
        emit(**row)


def gamma_sweep(name, pairs, translator, gammas=evaluation.GAMMAS):
    for row in evaluation.gamma_sweep(name, pairs, translator, gammas):
        emit(**row)


def framing(name, pairs, translator, pads=evaluation.FRAMING_PADS):
    for row in evaluation.framing_sweep(name, pairs, translator, pads):
        emit(**row)


def detail(name, pairs, sigmas=evaluation.DETAIL_SIGMAS):
    for row in evaluation.detail_reference(name, pairs, sigmas):
        emit(**row)


def artefacts(name, pairs, translator):
    """Emit how much more the translations' spectra peak at grid and stripe frequencies than their inputs'."""
    for row in evaluation.artefact_rows(name, {"t1": [t1 for _, t1, _ in pairs], "t2": [t2 for _, _, t2 in pairs]},
                                        translator):
        emit(**row)


def with_skull(folder: Path, subjects) -> list:
    """Those of ``subjects`` (with or without ``sub-``) that ``folder``'s participants.tsv marks as not
    skull-stripped and that have a visit with a T1w and a T2w."""
    marked = {who.removeprefix("sub-") for who, _ in with_skull_volumes(folder)}
    return [s for s in subjects if s.removeprefix("sub-") in marked and visits_of(folder, s)]


def with_skull_volumes(folder: Path) -> list:
    """[(participant, path)] of the T1w and T2w volumes of participants the data set's participants.tsv
    marks as not skull-stripped (clinical scans with skull)."""
    import csv

    table = folder / "participants.tsv"
    if not table.is_file():
        return []
    with open(table, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    out = []
    for row in rows:
        if row.get("skull_stripped", "").strip().lower() != "no":
            continue
        participant = row["participant_id"]
        out += [(participant, p) for p in sorted((folder / participant).rglob("*_T[12]w.nii*"))]
    return out


def clinical(volumes: Path, translator, planes=("axial", "coronal", "sagittal"), every: int = 3,
             quick: bool = False):
    """Rows for real clinical slices with skull, paired or not: per plane and direction, how often the
    translation orders CSF and white matter as its target contrast demands (inside the brain), its
    mean round-trip error, and its periodic artefacts beyond its input's. Slices are cut as the train
    command cuts volumes (1 mm pixels, scaled per volume, near-empty ones left out), every
    ``every``-th of them."""
    from cyclegan.calibration import mean_cycle_error
    from cyclegan.evaluation import order_in_brain, tissue_sums

    found = with_skull_volumes(volumes)
    if not found:
        emit(set="clinical", skipped="no with-skull volumes (participants.tsv, skull_stripped = no)")
        return
    if quick:  # one volume of each contrast
        found = [next(f for f in found if "_T1w" in f[1].name), next(f for f in found if "_T2w" in f[1].name)]
    emit(set="clinical", method="volumes", volumes=[p.name for _, p in found],
         participants=sorted({who for who, _ in found}))
    by_plane = slices_by_plane(found, planes, every, 2 if quick else None)
    for plane in planes:
        images = by_plane[plane]
        for direction in evaluation.DIRECTIONS:
            sources = images[direction[:2]]
            if not sources:
                continue
            in_order, cycle, means = 0, [], []
            for source in sources:
                translation, back = translator.translate_with_cycle(source, direction)
                order = order_in_brain(direction, [tissue_sums(direction, source, translation)])
                if order is not None:
                    in_order += order["in_order"]
                    means.append([order["csf"], order["gm"], order["wm"]])
                cycle.append(mean_cycle_error(source, back))
            emit(set="clinical", plane=plane, direction=direction, method="contrast_order", n=len(sources),
                 read=len(means), pass_fraction=round(in_order / max(len(means), 1), 4),
                 translated_csf_gm_wm=[round(float(x), 4) for x in np.mean(means, axis=0)] if means else None,
                 cycle_mae=round(float(np.mean(cycle)), 4))
        for row in evaluation.artefact_rows("clinical", images, translator):
            emit(**row, plane=plane)


def training_volume_images(volumes: Path, data_config: dict, every: int = 9, quick: bool = False) -> dict:
    """{"t1": [...], "t2": [...]} slices in [0, 1] of the participants of the BIDS folder ``volumes``
    that a model trained on (its record names the folder among its data sets; those it held out are
    left out), cut in the planes it trained on, one slice in ``every``: what the contrast check is
    fitted on beside the PNG sets' training images. Empty for a model that did not train on them."""
    if volumes.name not in {Path(str(d)).name for d in data_config.get("datasets") or []}:
        return {"t1": [], "t2": []}
    held = {s.removeprefix("sub-") for s in data_config.get("holdout_subjects") or []}
    found = [(p.parts[len(volumes.parts)].removeprefix("sub-"), p)
             for p in sorted(volumes.glob("sub-*/**/anat/*_T[12]w.nii*"))]
    found = [(who, path) for who, path in found if who not in held]
    planes = tuple(data_config.get("planes") or ("axial",))
    out = {"t1": [], "t2": []}
    for images in slices_by_plane(found, planes, every, 2 if quick else None).values():
        for key in out:
            out[key] += images[key]
    return out


def slices_by_plane(found: list, planes, every: int = 3, per_volume: int | None = None) -> dict:
    """{plane: {"t1": [...], "t2": [...]}} of the volumes ``found`` ([(participant, path)]), each read
    once and cut as the train command cuts volumes (1 mm pixels, scaled per volume, near-empty slices
    left out), one slice in ``every`` of each volume (at most ``per_volume``), in [0, 1]."""
    import nibabel as nib

    from cyclegan.data import volume_slices

    by_plane = {plane: {"t1": [], "t2": []} for plane in planes}
    for _, path in found:
        cut = volume_slices(nib.load(path), path.name, planes)[0]
        for plane in planes:
            chosen = [pixels for p, _, pixels in cut if p == plane][::every][:per_volume]
            by_plane[plane]["t1" if "_T1w" in path.name else "t2"] += [(pixels + 1.0) / 2.0 for pixels in chosen]
    return by_plane


def clinical_calibration_slices(volumes: Path, data_config: dict, fallback: list, every: int = 3,
                                quick: bool = False) -> tuple[list, str | None]:
    """Slices with skull for the input checks' levels: ([(name, T1w slice, T2w slice)] in [0, 1],
    what they are), cut as the train command cuts volumes, every ``every``-th, from the with-skull
    participants of ``volumes`` that the model never trained on: those its record held out, all
    planes; else the ``fallback`` participants, in the planes a model trained on ``real-t1t2`` (16
    axial slices of each volume) never saw; none when the model trained on these volumes. A slice's
    T1w and T2w need not be aligned: the levels read each image on its own."""
    strip = lambda s: s.removeprefix("sub-")  # noqa: E731
    held = with_skull(volumes, data_config.get("holdout_subjects") or [])
    trained_on = {Path(str(d)).name for d in data_config.get("datasets") or []}
    if held:
        subjects, planes = held, ("axial", "coronal", "sagittal")
    elif volumes.name in trained_on:
        return [], None
    elif "real-t1t2" in trained_on:
        subjects, planes = fallback, ("coronal", "sagittal")
    else:
        subjects, planes = fallback, ("axial", "coronal", "sagittal")
    wanted = {strip(s) for s in subjects}
    found = [(who, path) for who, path in with_skull_volumes(volumes) if strip(who) in wanted]
    out = []
    for plane, images in slices_by_plane(found, planes, every, 2 if quick else None).items():
        out += [(f"{plane}_{i}", t1, t2) for i, (t1, t2) in enumerate(zip(images["t1"], images["t2"]))]
    if not out:
        return [], None
    return out, (f"{len(out)} slices with skull of each contrast of {', '.join(sorted(wanted))} of {volumes.name} "
                 f"({', '.join(planes)}, one slice in {every})")


def visits_of(folder: Path, participant: str) -> list:
    """[(visit label, T1w path, T2w path)] of a BIDS participant's visits that have both."""
    base = folder / (participant if participant.startswith("sub-") else f"sub-{participant}")
    out = []
    for anat in sorted(base.glob("anat")) + sorted(base.glob("ses-*/anat")):
        t1 = sorted(anat.glob("*_T1w.nii*"))
        t2 = sorted(anat.glob("*_T2w.nii*"))
        if t1 and t2:
            out.append((anat.parent.name if anat.parent.name.startswith("ses-") else "-", t1[0], t2[0]))
    return out


def clinical_pairs(folder: Path, participants, translator, planes=("axial", "coronal", "sagittal"),
                   batch_size: int = 8, emit_rows=True) -> list:
    """Paired rows for whole participants' visits of a BIDS folder (clinical scans, T1w and T2w on other
    grids): the T2w is registered rigidly onto the T1w (cyclegan.registration), each volume is translated
    in each plane as the app translates it, and the translation is brought onto the grid of the real
    volume of the other contrast through the registration and scored there, against that volume as
    stored: the truth is never resampled, only the prediction (and the input, for the identity
    baseline). Slices with less than 5 % head are left out."""
    import nibabel as nib

    from cyclegan.files import assemble, volume_of
    from cyclegan.registration import register, resample_volume
    from cyclegan.translate import translate_volume

    rows = []
    for participant in participants:
        for visit, t1_path, t2_path in visits_of(folder, participant):
            images = {"t1": nib.load(t1_path), "t2": nib.load(t2_path)}
            data = {k: np.asarray(v.dataobj, np.float32).reshape(v.shape[:3]) for k, v in images.items()}
            result = register(data["t1"], images["t1"].affine, data["t2"], images["t2"].affine)
            if not result.accepted:
                row = dict(set="clinical_pairs", subject=participant, visit=visit, skipped=result.reason)
                rows.append(row)
                continue
            t1_to_t2 = result.transform()  # a point of the T1w's space to the T2w's
            for direction in evaluation.DIRECTIONS:
                source_key, truth_key = ("t1", "t2") if direction == "t1_to_t2" else ("t2", "t1")
                source, truth = images[source_key], images[truth_key]
                # Resampling onto the truth's grid: each of its points mapped into the source's space.
                onto_truth = t1_to_t2.GetInverse() if direction == "t1_to_t2" else t1_to_t2
                # The truth as a perfect translation made on the input's grid would carry it: brought onto
                # that grid (through the registration), cut in each plane below onto the model's 1 mm grid and
                # back. Its score is the ceiling the resampling leaves, not a baseline.
                truth_on_source = resample_volume(data[truth_key], truth.affine, source.affine, source.shape,
                                                  onto_truth.GetInverse())
                # The input itself and where its field of view covers the truth's grid: the same in every plane.
                on_truth = {
                    "identity": resample_volume(data[source_key], source.affine, truth.affine, truth.shape,
                                                onto_truth),
                    "cover": resample_volume(np.ones_like(data[source_key]), source.affine, truth.affine,
                                             truth.shape, onto_truth, order=0),
                }
                for plane in planes:
                    volume = volume_of(source, plane, source_key)
                    translated = translate_volume(translator, volume, direction, batch_size)
                    predicted = assemble(source, translated.translation, plane)
                    on_truth["model"] = resample_volume(predicted, source.affine, truth.affine, truth.shape,
                                                        onto_truth)
                    carried = volume_of(nib.Nifti1Image(truth_on_source, source.affine), plane, truth_key)
                    rows.append(pair_order(participant, visit, plane, direction, translated, carried.model_slices()))
                    carried = assemble(source, carried.from_model(carried.model_slices()), plane)
                    on_truth["resampled_truth"] = resample_volume(carried, source.affine, truth.affine, truth.shape,
                                                                  onto_truth)
                    cut = {k: volume_of(nib.Nifti1Image(v, truth.affine), plane, k).slices for k, v in on_truth.items()}
                    truth_slices = volume_of(truth, plane, truth_key).slices
                    scores = {"model": [], "identity": [], "resampled_truth": []}
                    for i, real in enumerate(truth_slices):
                        if np.ptp(real) <= 0:
                            continue
                        real01 = unit(real)
                        mask = evaluation.head_mask(real01) & (cut["cover"][i] > 0.5)
                        if mask.mean() < 0.05:
                            continue
                        scores["model"].append(evaluation.paired_metrics(np.clip(cut["model"][i], 0, 1), real01, mask))
                        for method in ("identity", "resampled_truth"):
                            image = cut[method][i]
                            scores[method].append(evaluation.paired_metrics(unit(image) if np.ptp(image) > 0 else image,
                                                                            real01, mask))
                    for method, values in scores.items():
                        row = dict(set="clinical_pairs", subject=participant, visit=visit, plane=plane,
                                   direction=direction, method=method, n=len(values),
                                   **{k: round(v, 4) for k, v in evaluation.mean_metrics(values).items()})
                        rows.append(row)
    if emit_rows:
        for row in rows:
            emit(**row)
    return rows


def pair_order(participant, visit, plane, direction, translated, truth_slices) -> dict:
    """A clinical pair's ``contrast_order`` row in one plane: how often the translation reads in tissue
    order (CSF against white matter inside the head's interior, as the verdict reads it), and how often
    the real image of the other contrast does on the same slices of the input (carried onto its grid
    through the registration): where the truth itself reads out of order, the reading is moot."""
    from cyclegan.evaluation import order_in_brain, tissue_sums

    read, model, truth = 0, 0, 0
    for shown, out, real in zip(translated.shown, translated.model_translation, truth_slices):
        if not shown.any() or np.ptp(real) <= 0:
            continue
        ours = order_in_brain(direction, [tissue_sums(direction, shown, out)])
        theirs = order_in_brain(direction, [tissue_sums(direction, shown, unit(real))])
        if ours is None or theirs is None:
            continue
        read, model, truth = read + 1, model + ours["in_order"], truth + theirs["in_order"]
    return dict(set="clinical_pairs", subject=participant, visit=visit, plane=plane, direction=direction,
                method="contrast_order", n=read, pass_fraction=round(model / max(read, 1), 4),
                target_pass_fraction=round(truth / max(read, 1), 4))


def edge_check(name, pairs, translator, inputs=evaluation.EDGE_INPUTS):
    for row in evaluation.edge_artefacts(name, pairs, translator, inputs):
        emit(**row)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None, help="model folder or Hub repo (default: the shipped model)")
    parser.add_argument("--data", default=str(SHARED / "mri-t1t2-unpaired"), help="the users' data set folder")
    parser.add_argument("--brats", default=str(SHARED / "brats-paired-slices" / "pairs"), help="BraTS pairs folder")
    parser.add_argument("--real", default=str(SHARED / "real-t1t2"), help="real patients' folder (real-t1t2 layout)")
    parser.add_argument("--real-subjects", default=None,
                        help="comma-separated real subjects to evaluate (default: those the model's record "
                             "held out, by name or BIDS label, else openms-cs-patient07)")
    parser.add_argument("--figures", default=None, help="write input/translation/truth/|error| figures here")
    parser.add_argument("--volumes", default=str(SHARED / "real-t1t2-volumes"),
                        help="BIDS folder whose with-skull participants (participants.tsv) make the clinical set")
    parser.add_argument("--clinical-subjects", default="openmslong04",
                        help="comma-separated participants of --volumes scored on registered pairs when the "
                             "model's record holds none of them out")
    parser.add_argument("--clinical-every", type=int, default=3, metavar="N",
                        help="the clinical set takes every N-th slice of each volume in each plane (default 3)")
    parser.add_argument("--sets", default="holdout,real,phantom,brats,clinical,clinical_pairs,calibration",
                        help="comma-separated sets to run (calibration: the input checks stored with a model)")
    parser.add_argument("--no-reframe", action="store_true",
                        help="keep every input's own frame, however much air surrounds the head (the "
                             "translator brings a frame far wider than the training slices closer by default)")
    parser.add_argument("--quick", action="store_true",
                        help="two pairs of each set, two gammas (CI); the phantom's own slices serve as "
                             "histogram references when the users' data set is absent")
    args = parser.parse_args(argv)
    if args.clinical_every < 1:
        parser.error("--clinical-every must be 1 or more")
    gammas = (0.5, 2.0) if args.quick else evaluation.GAMMAS
    first = (lambda items: items[:2]) if args.quick else (lambda items: items)  # noqa: E731

    from cyclegan.hub import load_generators, resolve_source

    translator = load_generators(args.model, reframe=not args.no_reframe)
    emit(method="translator", reframe=translator.reframe)
    folder = resolve_source(args.model)
    holdout_names = None
    record = translator.card.get("training", {}) if translator.card else {}
    if (folder / "holdout_pairs.json").is_file():
        holdout_names = json.loads((folder / "holdout_pairs.json").read_text())
    elif record.get("holdout_pairs"):
        holdout_names = record["holdout_pairs"]
    data_config = record.get("data_config") or {}
    figures = Path(args.figures) if args.figures else None
    sets = args.sets.split(",")
    data = Path(args.data)
    references = None
    limit = 6 if args.quick else None
    calibrating = "calibration" in sets
    #: Held-out pairs of the right contrast and training images of both, for the input checks.
    calib_pairs, calib_images, calib_names = [], {"t1": [], "t2": []}, []
    calib_kinds = {}  # a pair's name to its kind of input, for the levels of each kind alone
    if (data / "PAIRS.csv").is_file():
        held, references, held_files = load_pairs_dataset(data, holdout_names)
        held = first(held)
        calib_pairs += held
        calib_kinds.update({name: "simulated, with skull" for name, _, _ in held})
        if calibrating:
            for key, images in training_images(data, held_files, limit=limit).items():
                calib_images[key] += images
        calib_names.append(f"{len(held)} held-out pairs of {data.name}")
        if "holdout" in sets:
            emit(set="holdout", method="pairs", pairs=[n for n, _, _ in held])
            evaluate_set("holdout", held, translator, references, figures)
            contrast_fidelity("holdout", held, translator)
            gamma_sweep("holdout", held, translator, gammas)
            framing("holdout", held, translator)
            detail("holdout", held)
            edge_check("holdout", held, translator)
            artefacts("holdout", held, translator)
    else:
        emit(set="holdout", skipped="users' data set not found")
    if "phantom" in sets:
        try:
            from cyclegan.phantom import phantom_pairs

            phantom = [(f"z{z}", t1, t2) for z, t1, t2 in phantom_pairs([80, 110] if args.quick else None)]
        except ImportError:
            emit(set="phantom", skipped="nilearn not installed")
        else:
            if references is None:  # no training image at hand: another phantom slice
                _, t1, t2 = phantom_pairs([95])[0]
                references = {"t1": t1, "t2": t2}
            evaluate_set("phantom", phantom, translator, references, figures)
            contrast_fidelity("phantom", phantom, translator)
            edge_check("phantom", phantom, translator, ("as_given", "16bit"))  # brain only already
            artefacts("phantom", phantom, translator)
    real_refs = None
    if "real" in sets:
        real_subjects = (args.real_subjects.split(",") if args.real_subjects else
                         real_names(Path(args.real), data_config.get("holdout_subjects") or [])
                         or ["openms-cs-patient07"])
        real_dir = Path(args.real)
        trained_on_real = any(Path(str(d)).name == real_dir.name for d in data_config.get("datasets", []))
        if (real_dir / "PAIRS.csv").is_file():
            held_real, real_refs = load_real_subjects(real_dir, real_subjects)
            held_real = first(held_real)
            emit(set="real", method="subjects", subjects=real_subjects, pairs=len(held_real),
                 model_trained_on_other_subjects_of_this_set=trained_on_real)
            if held_real:
                calib_pairs += held_real
                calib_kinds.update({name: "real, skull-stripped" for name, _, _ in held_real})
                from cyclegan.config import DEFAULT_SUBJECT_PATTERN
                from cyclegan.data import subject_of

                paired = sorted({subject_of(name, DEFAULT_SUBJECT_PATTERN) for name, _, _ in held_real})
                calib_names.append(f"{len(held_real)} slices of held-out subject(s) {', '.join(paired)} "
                                   f"of {real_dir.name}")
                if trained_on_real and calibrating:
                    for key, images in training_images(real_dir, set(), real_subjects, limit).items():
                        calib_images[key] += images
                evaluate_set("real", held_real, translator, real_refs or references, figures)
                contrast_fidelity("real", held_real, translator)
                framing("real", held_real, translator)
                detail("real", held_real)
                edge_check("real", held_real, translator, ("as_given", "16bit"))  # skull-stripped already
                artefacts("real", held_real, translator)
        else:
            emit(set="real", skipped="real-t1t2 not found")
    if calibrating and Path(args.volumes).is_dir():
        # a model trained on the volumes: its contrast check also learns from their training slices
        for key, images in training_volume_images(Path(args.volumes), data_config, quick=args.quick).items():
            calib_images[key] += images
    brats = first(load_brats(Path(args.brats))) if {"brats", "calibration"} & set(sets) else []
    if "brats" in sets:
        if brats:
            evaluate_set("brats", brats, translator, references or real_refs, figures)
            framing("brats", brats, translator)
            detail("brats", brats)
            edge_check("brats", brats, translator, ("as_given", "16bit"))  # skull-stripped already
            artefacts("brats", brats, translator)
        else:
            emit(set="brats", skipped="BraTS pairs not found")
    if "clinical_pairs" in sets:
        volumes = Path(args.volumes)
        held = with_skull(volumes, data_config.get("holdout_subjects") or [])
        subjects = held or args.clinical_subjects.split(",")
        emit(set="clinical_pairs", method="subjects", subjects=subjects, held_out_in_training=bool(held))
        clinical_pairs(volumes, subjects, translator, ("axial",) if args.quick else ("axial", "coronal", "sagittal"))
    if "clinical" in sets:
        volumes = Path(args.volumes)
        trained_on = any(Path(str(d)).name in ("real-t1t2", volumes.name) for d in data_config.get("datasets", []))
        emit(set="clinical", method="note", model_trained_on_slices_of_these_volumes=trained_on)
        clinical(volumes, translator, every=args.clinical_every, quick=args.quick)
    if calibrating and Path(args.volumes).is_dir():
        # clinical 2-D slices with skull, beside the simulated and the skull-stripped real ones
        found, what = clinical_calibration_slices(Path(args.volumes), data_config,
                                                  args.clinical_subjects.split(","), quick=args.quick)
        calib_pairs += found
        calib_kinds.update({name: "real clinical 2-D, with skull" for name, _, _ in found})
        calib_names += [what] if what else []
    if calibrating and calib_pairs and calib_images["t1"] and calib_images["t2"]:
        calibrate(translator, calib_pairs, calib_images, brats, "; ".join(calib_names), calib_kinds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
