"""The model card (README.md beside the weights) and the quality tables it shows.

A card is filled in from a template with what ``config.json`` holds: the
architecture, the training configuration, the data sets the run actually read
(with their sources, licences and citations where this project knows them),
the training record and the metrics. :func:`quality_tables` renders the
metrics (``<set>_<direction>_<metric>`` keys, written by the train command and
``benchmarks/quality.py``) as Markdown tables; the README and the app's About
tab show the same tables. Imports neither Keras nor the training code.
"""

from __future__ import annotations

import re
import string
from pathlib import Path
from typing import Any, Mapping

from cyclegan.augment import Pipeline
from cyclegan.config import DEFAULT_DATASET, REFINE_CROP, ModelConfig, TrainConfig

LIBRARY = "mri-cyclegan"

#: Data sets this project knows: what they are, their licence and what to cite.
#: Keys are Hub ids or folder names (the last part of a local path).
KNOWN_DATASETS = {
    DEFAULT_DATASET: {
        "hub": DEFAULT_DATASET,
        "what": "43 T1-weighted and 46 T2-weighted axial slices of one simulated head (BrainWeb normal "
                "brain, 1 mm), published as unpaired; 43 of them are pixel-aligned pairs",
        "licence": "MIT (as stated by the repository it was copied from; the images' own origin is not stated)",
        "cite": "Cocosco C.A. et al., \"BrainWeb: Online Interface to a 3D MRI Simulated Brain Database\", "
                "NeuroImage 5(4), 1997",
    },
    "mri-t1t2-unpaired": "alias:" + DEFAULT_DATASET,
    "real-t1t2": {
        "what": "real T1-weighted and T2-weighted slices of 9 patients (2 glioma, 7 multiple sclerosis; "
                "16 axial slices per volume; 4 subjects co-registered, 5 unpaired; some skull-stripped, "
                "some with skull)",
        "licence": "open_ms_data subjects CC-BY; the BraTS case under the BraTS data terms (research use); "
                   "the Glioma_GAN example under its repository's GPL-3.0 (the scan's own terms not stated)",
        "cite": "Lesjak Z. et al., \"A novel public MR image dataset of multiple sclerosis patients with lesion "
                "segmentations based on multi-rater consensus\", Neuroinformatics 2017; Lesjak Z. et al., "
                "\"Validation of white-matter lesion change detection methods on a novel publicly available MRI "
                "image database\", Neuroinformatics 2016 (data: http://lit.fe.uni-lj.si/tools); Menze B.H. et al., "
                "\"The Multimodal Brain Tumor Image Segmentation Benchmark (BRATS)\", IEEE TMI 2015; "
                "CompImg/Glioma_GAN (GitHub)",
    },
    "real-t1t2-volumes": {
        "what": "the whole NIfTI volumes behind real-t1t2 in a BIDS layout: 10 patients (2 glioma, 8 multiple "
                "sclerosis), 24 T1w and T2w volumes as the scanners and pipelines stored them (clinical 2-D with "
                "skull and 3-4 mm slices, 3-D skull-stripped at 1 mm)",
        "licence": "open_ms_data participants CC-BY; the BraTS case under the BraTS data terms (research use, "
                   "cite BraTS); the Glioma_GAN example under its repository's GPL-3.0 (the scan's own terms not "
                   "stated)",
        "cite": "Lesjak Z. et al., \"A novel public MR image dataset of multiple sclerosis patients with lesion "
                "segmentations based on multi-rater consensus\", Neuroinformatics 2017; Lesjak Z. et al., "
                "\"Validation of white-matter lesion change detection methods on a novel publicly available MRI "
                "image database\", Neuroinformatics 2016 (data: http://lit.fe.uni-lj.si/tools); Menze B.H. et al., "
                "\"The Multimodal Brain Tumor Image Segmentation Benchmark (BRATS)\", IEEE TMI 2015; Bakas S. et "
                "al., Scientific Data 2017; Baid U. et al., arXiv:2107.02314 (2021); CompImg/Glioma_GAN (GitHub)",
    },
}

#: Titles of the metric sets, in the order the card shows them.
SET_TITLES = {
    "holdout": "Held-out pairs of the training data (both images never seen in training)",
    "real": "Held-out real patients (whole subjects never seen in training)",
    "phantom": "The project's spin-echo phantom (paired, skull-stripped)",
    "brats": "Real co-registered BraTS slices (tumour patients; evaluation only)",
    "unpaired": "Training images, checks that need no pairs (tissue order from the physics of T1 and T2)",
    "clinical_pairs": "Real clinical scans with skull, registered pairs scored on the real volume's own grid",
    "clinical": "Real clinical slices with skull, no truth needed (tissue order, round-trip error, artefacts)",
}
_KEY = re.compile(r"^(?P<set>[a-z0-9_]+?)_(?P<direction>t1_to_t2|t2_to_t1)_(?P<metric>[a-z0-9_.]+)$")
_ARROW = {"t1_to_t2": "T1 → T2", "t2_to_t1": "T2 → T1"}


def dataset_info(source: str) -> dict:
    """What the project knows of a data set (by Hub id or folder name), or ``{}``."""
    last = Path(str(source).rstrip("/\\")).name.removesuffix(".zip")
    info = KNOWN_DATASETS.get(source) or KNOWN_DATASETS.get(last, {})
    if isinstance(info, str):
        info = KNOWN_DATASETS[info.removeprefix("alias:")]
    return info


def short_name(source: str) -> str:
    """A data set's name without the local path: its folder or zip name, or its Hub id."""
    if re.fullmatch(r"[\w.-]+/[\w.-]+", source) and not Path(source).exists():
        return source
    return Path(str(source).rstrip("/\\")).name.removesuffix(".zip")


def datasets_of(training: Mapping[str, Any] | None) -> list[str] | None:
    """The data sets a training record says the run read (with a recorded recipe, every stage's), or None
    when it does not say."""
    training = training or {}
    if training.get("recipe_datasets"):
        return [str(d) for d in training["recipe_datasets"]]
    data = training.get("data_config") or {}
    if data.get("datasets"):
        return [str(d) for d in data["datasets"]]
    found = re.findall(r"--dataset[ =](\S+)", str(training.get("command", "")))
    return found or None


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, Mapping):
        return ", ".join(f"{k}: {_fmt(v)}" for k, v in value.items())
    return str(value)


def parse_metrics(metrics: Mapping[str, Any]) -> tuple[dict, dict]:
    """({set: {direction: {metric: value}}}, {other key: value})."""
    sets, other = {}, {}
    for key, value in metrics.items():
        match = _KEY.match(key)
        if match:
            sets.setdefault(match["set"], {}).setdefault(match["direction"], {})[match["metric"]] = value
        else:
            other[key] = value
    return sets, other


def _base_set(name: str, table: Mapping[str, Any]) -> str | None:
    """The key of ``table`` that ``name`` is, or is one plane or part of (``clinical_pairs_axial``)."""
    return name if name in table else next((s for s in table if name.startswith(s + "_")), None)


def _set_title(name: str) -> str:
    base = _base_set(name, SET_TITLES)
    if base == name:
        return SET_TITLES[name]
    if base:
        return f"{SET_TITLES[base]}: {name[len(base) + 1:].replace('_', '-')}"
    return name.replace("_", " ")


def quality_tables(metrics: Mapping[str, Any] | None) -> str:
    """The metrics as Markdown tables: one per evaluation set, one of the contrast sweep."""
    sets, other = parse_metrics(metrics or {})
    order = sorted(sets, key=lambda n: (next((i for i, s in enumerate(SET_TITLES) if n == s or
                                              n.startswith(s + "_")), len(SET_TITLES)), n))
    lines = []
    for name in order:
        rows = sets[name]
        artefacts = any("periodic_excess" in m for m in rows.values())
        lines += [f"**{_set_title(name)}**", "",
                  "| direction | SSIM | PSNR | MAE | best baseline SSIM / PSNR | tissue order right | cycle MAE |"
                  + (" grid artefacts |" if artefacts else ""),
                  "| --- | --- | --- | --- | --- | --- | --- |" + (" --- |" if artefacts else "")]
        for direction in ("t1_to_t2", "t2_to_t1"):
            m = rows.get(direction)
            if not m:
                continue
            baseline = ""
            if "best_baseline_ssim" in m:
                baseline = f"{m['best_baseline_ssim']:.3f} / {m.get('best_baseline_psnr', float('nan')):.1f} dB"
            order_text = ""
            if "contrast_order_pass" in m:
                order_text = f"{m['contrast_order_pass']:.0%}"
                if "contrast_order_target_pass" in m and m["contrast_order_target_pass"] < 1:
                    order_text += f" (target itself: {m['contrast_order_target_pass']:.0%})"
            cells = [_ARROW[direction],
                     f"{m['ssim']:.3f}" if "ssim" in m else "",
                     f"{m['psnr']:.1f} dB" if "psnr" in m else "",
                     f"{m['mae']:.3f}" if "mae" in m else "",
                     baseline, order_text,
                     f"{m['cycle_mae']:.3f}" if "cycle_mae" in m else ""]
            if artefacts:
                cells.append(f"{m['periodic_excess']:+.2f}" if "periodic_excess" in m else "")
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
        gammas = sorted({k for m in rows.values() for k in m if re.fullmatch(r"gamma[0-9.]+_ssim", k)},
                        key=lambda k: float(k[5:-5]))
        if gammas:
            lines += ["*The same pairs, each input's [0, 1] intensities first raised to a gamma (another "
                      "scanner's tissue contrast): SSIM*", "",
                      "| direction | " + " | ".join(f"gamma {k[5:-5]}" for k in gammas) + " |",
                      "| --- | " + " | ".join("---" for _ in gammas) + " |"]
            for direction in ("t1_to_t2", "t2_to_t1"):
                if direction in rows:
                    lines.append(f"| {_ARROW[direction]} | " + " | ".join(
                        f"{rows[direction][k]:.3f}" if k in rows[direction] else "" for k in gammas) + " |")
            lines.append("")
    if other:
        lines += ["**Other**", "", "| metric | value |", "| --- | --- |"]
        lines += [f"| {k} | {_fmt(v)} |" for k, v in other.items()]
        lines.append("")
    return "\n".join(lines)


#: What each evaluation set is, for the one-table summary (the README's).
SET_KINDS = {
    "holdout": "simulated head (BrainWeb), with skull",
    "real": "real patients held out whole (MS, glioma), skull-stripped",
    "clinical_pairs": "real clinical 2-D scans with skull",
    "brats": "real glioma patients, other sites, skull-stripped",
    "phantom": "the project's phantom, skull-stripped",
}
_SUMMARY_SETS = {"holdout": "users' held-out pairs", "real": "held-out real subjects",
                 "clinical_pairs_axial": "clinical pairs, axial", "clinical_pairs_coronal": "clinical pairs, coronal",
                 "clinical_pairs_sagittal": "clinical pairs, sagittal", "clinical_pairs": "clinical pairs",
                 "brats": "BraTS", "phantom": "phantom"}


def summary_table(metrics: Mapping[str, Any] | None) -> str:
    """One Markdown table of the paired sets: SSIM / PSNR both ways, and the best baseline's SSIM."""
    sets, _ = parse_metrics(metrics or {})
    lines = ["| set | what it is | T1 → T2 SSIM / PSNR | T2 → T1 SSIM / PSNR | best baseline SSIM |",
             "| --- | --- | --- | --- | --- |"]
    for name, title in _SUMMARY_SETS.items():
        rows = sets.get(name) or {}
        if not any("ssim" in rows.get(d, {}) for d in _ARROW):
            continue
        kind = SET_KINDS.get(_base_set(name, SET_KINDS), "")
        cells = []
        for direction in _ARROW:
            m = rows.get(direction, {})
            cells.append(f"{m['ssim']:.3f} / {m['psnr']:.1f} dB" if "ssim" in m and "psnr" in m else
                         (f"{m['ssim']:.3f}" if "ssim" in m else ""))
        baselines = [f"{rows[d]['best_baseline_ssim']:.3f}" for d in _ARROW if "best_baseline_ssim" in rows.get(d, {})]
        lines.append(f"| {title} | {kind} | {cells[0]} | {cells[1]} | {' / '.join(baselines)} |")
    return "\n".join(lines) + "\n"


def recipe(train_config: TrainConfig, init_from: str | None = None) -> str:
    """One sentence of the training recipe, augmentations included. A run that started from the
    generators of ``init_from`` had no inversion warm-up (the train command skips it then)."""
    tc = train_config
    from cyclegan.losses import objective_phrase

    parts = [objective_phrase(tc)]
    augmentation = Pipeline.of(tc)
    parts += [a.describe() for a in augmentation if a.level != "discriminator"]
    if init_from:
        parts.append(f"generators started from {init_from}")
    elif tc.inversion_warmup:
        parts.append(f"generators first fitted for {tc.inversion_warmup} steps to their inputs' inversion "
                     "(air and bone kept dark)")
    parts += [a.describe() for a in augmentation.stages["discriminator"]]
    epochs = f"{tc.epochs} epoch{'s' if tc.epochs != 1 else ''}"
    parts.append(f"Adam {tc.learning_rate:g} (beta1 {tc.beta_1:g}), {epochs} of {tc.steps_per_epoch} steps (linear "
                 f"decay over the last {tc.decay_epochs}), batch {tc.batch_size}, image pool {tc.pool_size}, seed {tc.seed}"
                 + (f", up to {tc.restarts} restart{'s' if tc.restarts != 1 else ''} from the next seed when a "
                    "start keeps the input's contrast or paints the air grey" if tc.restarts else ""))
    if tc.refine_steps:
        parts.append(f"then {tc.refine_steps} steps fitting each generator's refiner alone to the aligned training "
                     f"pairs (L1 on {REFINE_CROP}x{REFINE_CROP} crops, Adam {tc.refine_learning_rate:g})")
    if tc.generator_ema:
        parts.append(f"the generators' weights are the moving average of their training steps (momentum "
                     f"{tc.generator_ema:g})")
    return ", ".join(parts) + "."


def failed_starts_text(starts) -> str:
    """What the card says of the starts a run set aside (``TrainConfig.restarts``)."""
    if not starts:
        return ""
    pct = lambda v: "?" if v is None else f"{100 * v:.0f} %"  # noqa: E731
    level = lambda v: "?" if v is None else f"{v:.2f}"  # noqa: E731

    def item(s):
        checked = f"seed {s.get('seed')} (checked after {s.get('step')} steps: "
        if s.get("reason") == "background":
            return (checked + f"the translations painted the air around the head grey, mean "
                    f"{level(s.get('background_t1_to_t2'))} (T1 -> T2) and {level(s.get('background_t2_to_t1'))} "
                    f"(T2 -> T1) on the [0, 1] scale)")
        return (checked + f"the translations kept the input's tissue order, right on "
                f"{pct(s.get('tissue_order_t1_to_t2'))} of T1 -> T2 and {pct(s.get('tissue_order_t2_to_t1'))} of "
                f"T2 -> T1 translations)")

    return ("Starts set aside at their first check without pairs: " + "; ".join(item(s) for s in starts)
            + ". Their files are in the run folder's `failed_starts/`; this model is the next start.")


def _data_section(datasets: list[str] | None) -> str:
    if datasets is None:
        return "Data: not recorded with this model.\n"
    lines = ["Data:", ""]
    for source in datasets:
        info = dataset_info(source)
        name = f"`{info.get('hub') or short_name(source)}`"
        text = f"- {name}" + (f": {info['what']}" if info.get("what") else "")
        if info.get("licence"):
            text += f". Licence: {info['licence']}"
        if info.get("cite"):
            text += f". Cite: {info['cite']}"
        lines.append(text + ("" if text.endswith(".") else "."))
    return "\n".join(lines) + "\n"


CARD = string.Template("""---
$front_matter---

# $library: T1-weighted <-> T2-weighted brain MRI

Two CycleGAN generators that translate brain-MRI slices between T1-weighted and T2-weighted
contrast: `t1_to_t2` and `t2_to_t1`. Research demo, not for diagnosis.

## Intended uses

- Research and teaching on MRI contrast translation: what a slice would probably look like in the
  other contrast, and how a CycleGAN learns it.
- A starting point for fine-tuning on other data (`python -m train --init-from ...`).

## Out-of-scope uses

- Diagnosis, treatment or any clinical decision, and any report about a patient. A translated
  scan is a plausible picture, not a measurement: it can hide a lesion or invent one.
- Other sequences (FLAIR, diffusion, contrast-enhanced T1), other body parts, CT, and children's
  brains, none of which the training data show.
- Quantitative work: intensities are scaled per slice (0.5-99.5 percentile window), not calibrated.

## Limitations and biases

$limitations
## How to install and load

$install

```python
from cyclegan import load_generators
$load_line
t2 = translator.t1_to_t2(t1_slice)  # float32 in [0, 1], same height and width
```

Input: one grayscale slice (any dtype, 32 to 2048 pixels a side), intensities scaled
to the 0.5-99.5 percentile window.$framing `mri-cyclegan translate` translates files, folders and
BIDS data sets from the shell.

## Architecture

ResNet generator, $generator_filters base filters, $generator_blocks residual blocks, $upsampling; PatchGAN
discriminator, $discriminator_filters filters, $discriminator_layers layers; trained on $size x $size crops.

$training$metrics$checks$samples""")


#: The card's words on what a model's training data leave out, whatever they are.
LIMITATIONS = ("The model knows what its training data show and nothing else. Anatomy, pathology, "
               "scanners and sequences unlike them are translated into what it learnt (a lesion "
               "it never saw may come out as normal tissue). Check each translation's round-trip error and "
               "tissue order (the app and `mri-cyclegan translate` report both) before trusting it.")


def limitations_text(datasets: list[str] | None) -> str:
    """The card's limitations: what the training data are (by the data sets the run read)."""
    lines = [LIMITATIONS, ""]
    if datasets:
        known = [dataset_info(d) for d in datasets]
        lines.append("Its training data: " + "; ".join(
            f"`{info.get('hub') or short_name(d)}`" + (f" ({info['what']})" if info.get("what") else "")
            for d, info in zip(datasets, known)) + ".")
        if any(short_name(d) in ("mri-t1t2-unpaired", DEFAULT_DATASET) or info.get("hub") == DEFAULT_DATASET
               for d, info in zip(datasets, known)):
            lines.append("")
            lines.append("One simulated head is all of the users' data set: scores on its held-out pairs say "
                         "the model learnt that head, not that it works on yours. Real patients in the "
                         "project's data sets are adults with multiple sclerosis or glioma from a few sites.")
    else:
        lines.append("Its training data are not recorded with this model.")
    return "\n".join(lines) + "\n"


#: The card's words on installing the library that loads the model.
INSTALL = ("The generators are plain Keras 3 files (they load with `safe_mode=True`), loaded with the "
           "`mri-cyclegan` library: `pip install .` in a clone of its repository (the Hugging Face Space of "
           "the project is that repository) installs it with what loading and translating need.")

#: Sets whose SSIM and PSNR the card's model-index metadata lists: (set, name, data set id).
INDEXED_SETS = (("holdout", "users' held-out pairs", DEFAULT_DATASET),
                ("real", "held-out real subjects", "real-t1t2"),
                ("clinical_pairs_axial", "clinical pairs with skull, axial", "real-t1t2-volumes"),
                ("brats", "BraTS co-registered slices", "brats-paired-slices"))


def front_matter(datasets: list[str] | None, metrics: Mapping[str, Any] | None) -> str:
    """The card's Hub metadata (YAML, with ``model-index`` of the paired metrics), written by
    ``huggingface_hub.ModelCardData``."""
    from huggingface_hub import EvalResult, ModelCardData

    hub_ids = list(dict.fromkeys(h for h in (dataset_info(d).get("hub") for d in datasets or []) if h))
    sets, _ = parse_metrics(metrics or {})
    results = []
    for name, title, dataset in INDEXED_SETS:
        for direction, arrow in _ARROW.items():
            row = (sets.get(name) or {}).get(direction) or {}
            for metric, label, digits in (("ssim", "SSIM", 3), ("psnr", "PSNR (dB)", 1)):
                if isinstance(row.get(metric), (int, float)):
                    results.append(EvalResult(
                        task_type="image-to-image", task_name="T1-weighted <-> T2-weighted translation",
                        dataset_type=dataset, dataset_name=title, metric_type=metric,
                        metric_value=round(float(row[metric]), digits),
                        metric_name=f"{label} {arrow.replace('→', '->')}, inside the head"))
    data = ModelCardData(library_name="keras", license="mit", pipeline_tag="image-to-image",
                         tags=["cyclegan", "mri", "medical-imaging", "image-to-image", LIBRARY],
                         datasets=hub_ids or None, model_name=LIBRARY if results else None,
                         eval_results=results or None)
    return data.to_yaml() + "\n"


#: The card's words for each ``ModelConfig.upsampling``.
UPSAMPLING_TEXT = {"transpose": "transposed-convolution upsampling",
                   "resize": "resize-convolution upsampling (nearest neighbour, then a 3x3 convolution)"}


#: The card's words for ``ModelConfig.skips``.
SKIPS_TEXT = (", skip connections that add the encoder's features at full and half resolution to the "
              "decoder's (1x1 convolutions)")


def refiner_text(config) -> str:
    """The card's words for ``ModelConfig.refiner_width`` (empty without a refiner)."""
    if not config.refiner_width:
        return ""
    return (f", and a refiner at full resolution ({config.refiner_layers} layers of "
            f"{config.refiner_width}-channel 3x3 convolutions on the input and the output, adding a correction)")


def calibration_text(calibration: Mapping[str, Any] | None) -> str:
    """The input checks a model was calibrated with (``calibration`` in config.json), as Markdown."""
    if not calibration:
        return ""
    lines = []
    levels = calibration.get("cycle_error") or {}
    if levels:
        lines += ["Mean round-trip error |input - reconstruction| inside the head: up to *typical* it is "
                  "as low as on 95 % of held-out slices of the right contrast; above *likely wrong input* "
                  "it is as high as on slices of the other contrast fed in by mistake (their median). A "
                  "translation whose CSF and white matter are not in the order of its target contrast (CSF "
                  "brighter on T2, darker on T1; read inside the brain, scalp and skull left out) is never "
                  "*typical*, however low its round-trip error.", "",
                  "| direction | typical up to | likely wrong input above | right inputs (median) "
                  "| wrong inputs (median) | wrong inputs above typical |",
                  "| --- | --- | --- | --- | --- | --- |"]
        for direction, row in levels.items():
            wrong = row.get("wrong_above_typical")
            lines.append(f"| {_ARROW.get(direction, direction)} | {row['typical']:.3f} | {row['likely_wrong']:.3f} "
                         f"| {row.get('right_median', float('nan')):.3f} | {_fmt(row.get('wrong_median'))} "
                         f"| {'' if wrong is None else f'{wrong:.0%}'} |")
    check = calibration.get("contrast_check") or {}
    if check:
        accuracy = check.get("accuracy") or {}
        parts = [f"{name.replace('_', ' ')} {value:.0%}" for name, value in accuracy.items()
                 if isinstance(value, (int, float))]
        lines += ["", "Contrast check (does an input look T1- or T2-weighted?): a logistic regression on "
                  "intensity features inside the head, fitted on "
                  f"{check.get('fitted_on', {}).get('t1', '?')} T1 and {check.get('fitted_on', {}).get('t2', '?')} "
                  "T2 training images; right on " + (", ".join(parts) or "?") + "."]
    if calibration.get("measured_on"):
        lines += ["", f"Measured on: {calibration['measured_on']}."]
    return "\n".join(lines).strip() + "\n"


def model_card(
    config: ModelConfig,
    train_config: TrainConfig | None = None,
    metrics: Mapping[str, Any] | None = None,
    training: Mapping[str, Any] | None = None,
    has_samples: bool = False,
    repo_id: str | None = None,
    calibration: Mapping[str, Any] | None = None,
) -> str:
    """The model card (README.md with Hub metadata) of a saved model."""
    datasets = datasets_of(training) if training else None
    training_text = ""
    if train_config is not None:
        training_text = ("## Training\n\n" + _data_section(datasets) + "\n"
                         + recipe(train_config, (training or {}).get("init_from")) + "\n\n")
    if training and training.get("recipe"):
        file = training.get("recipe_file")
        what = (f"the recipe below, `{file}` in the project's repository, is the runs that made the model, one "
                f"stage each, the model being the last; `MRI_CYCLEGAN_DATA=DATA python -m train --config {file}` "
                "runs them again, DATA holding its data sets by name" if file else
                "the recipe below replays the run (`python -m train --config recipe.toml --output FOLDER`, "
                "with its data sets at hand)")
        training_text += f"Training procedure: {what}.\n\n```toml\n" + str(training["recipe"]).strip() + "\n```\n\n"
    if training and training.get("failed_starts"):
        training_text += failed_starts_text(training["failed_starts"]) + "\n\n"
    if training:
        rows = [f"| {k} | {_fmt(v)} |" for k, v in training.items()
                if k not in ("data_config", "holdout_pairs", "failed_starts", "recipe", "recipe_file",
                             "samples_credit", "recipe_datasets")]
        training_text += "| record | value |\n| --- | --- |\n" + "\n".join(rows) + "\n\n"
    metrics_text = ""
    if metrics:
        metrics_text = ("## Evaluation\n\nSSIM, PSNR and MAE inside the head on intensities in [0, 1], against the "
                        "real image of the other contrast; baselines: the input itself, its inversion and its "
                        "histogram matched to a training image of the target contrast. Which pairs and "
                        "participants the run held out is in its training record below; a set of data it "
                        "partly trained on (the clinical sets of a model trained on their volumes) says less "
                        "than a held-out one. What each set is: " + "; ".join(f"{k}: {v}" for k, v in SET_KINDS.items()) + ".\n\n"
                        + quality_tables(metrics) + "\n")
    samples_text = ""
    if has_samples:
        credit = str((training or {}).get("samples_credit") or "").strip()
        samples_text = ("## Samples\n\nRows: input, translation, reconstruction (T1 -> T2 -> T1, then "
                        "T2 -> T1 -> T2).\n\n![samples](samples.png)\n"
                        + (f"\nThe inputs: {credit}\n" if credit else ""))
    from cyclegan.preprocessing import REFRAME_MARGIN, recorded_air, reframe_above

    framing_text = ""
    record = {"training": training}  # the shape of config.json, which the translator reads too
    if recorded_air(record) is not None:
        framing_text = (f" A slice whose head leaves more air around it than any training image did (more "
                        f"than {reframe_above(record):g} px on average a side) is translated "
                        f"within a frame {REFRAME_MARGIN} px around the head, the rest left black; "
                        "`load_generators(..., reframe=False)` keeps every input's own frame.")
    load_line = (f'translator = load_generators("{repo_id}")' if repo_id
                 else 'translator = load_generators("USER/REPO")  # a Hub repo id or a local folder')
    return CARD.substitute(
        library=LIBRARY, front_matter=front_matter(datasets, metrics),
        limitations=limitations_text(datasets), install=INSTALL,
        load_line=load_line, framing=framing_text,
        generator_filters=config.generator_filters, generator_blocks=config.generator_blocks,
        upsampling=(UPSAMPLING_TEXT[config.upsampling] + (SKIPS_TEXT if config.skips else "")
                    + refiner_text(config)),
        discriminator_filters=config.discriminator_filters, discriminator_layers=config.discriminator_layers,
        size=config.image_size, training=training_text, metrics=metrics_text, samples=samples_text,
        checks=("## Input checks\n\n" + calibration_text(calibration) + "\n") if calibration else "",
    ).rstrip() + "\n"
