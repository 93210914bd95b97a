"""``python -m train.export RUN_FOLDER DEST [--quality quality.jsonl]``: re-export a trained model.

Copies the generators, config and training record of a run folder into ``DEST`` (for instance
``cyclegan/default_model`` to ship it in the package), with the quality benchmark's results
(the JSON lines of ``benchmarks/quality.py``, which replace the run's own held-out report) in
config.json and the model card, and the
input checks it calibrated (``calibration`` in config.json, see :mod:`cyclegan.calibration`).
``--samples T1 T2`` draws the card's sample grid anew from two images of the project's own (for
instance its examples) instead of the run's grid, which shows its training data; ``--samples-credit
TEXT`` says where they come from (the card shows it under the grid: a CC-BY source must be credited).
``--recipe FILE`` records the recipe of the runs that made the model (its last stage is the run): the file
goes into config.json and the card, the recorded command becomes ``python -m train --config FILE``,
and every data set path of the record is written by the data set's name, as the recipe names it.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path


def quality_rows(lines) -> list[dict]:
    return [json.loads(line) for line in map(str.strip, lines) if line.startswith("{")]


def quality_metrics(lines) -> dict:
    """Card metrics of the quality benchmark's JSON lines (see :func:`cyclegan.evaluation.rows_to_metrics`)."""
    from cyclegan.evaluation import rows_to_metrics

    return rows_to_metrics(quality_rows(lines))


def quality_calibration(lines) -> dict | None:
    """The input checks the quality benchmark calibrated (its ``calibration`` row), if any."""
    found = [row["calibration"] for row in quality_rows(lines) if row.get("method") == "calibration"]
    return found[-1] if found else None


def by_name(path: str, names) -> str:
    """``path`` from the last of its folders that is one of the data set ``names`` on
    (``../data/real-t1t2/PAIRS.csv`` is ``real-t1t2/PAIRS.csv``), or as it is when none is."""
    parts = str(path).replace("\\", "/").split("/")
    found = [i for i, part in enumerate(parts) if part in names]
    return "/".join(parts[found[-1]:]) if found else str(path)


def with_recipe(training: dict, file: str) -> dict:
    """The training record ``training`` with the recipe ``file`` (see ``--recipe``)."""
    from cyclegan import recipe

    stages = recipe.stages(recipe.read(file), Path(file).name)  # each stage over the top-level keys
    # every data set of every stage, in the order they joined
    every = list(dict.fromkeys(str(v) for _, keys in stages for v in _as_list(keys.get("dataset"))))
    names = set(every)
    training = dict(training)
    training["recipe"] = Path(file).read_text(encoding="utf-8")
    training["recipe_file"] = str(file)
    training["command"] = f"{recipe.PROG} --config {file}"
    data_config = dict(training.get("data_config") or {})
    for key in ("datasets", "pairs"):
        if data_config.get(key):
            data_config[key] = [by_name(p, names) for p in data_config[key]]
    if data_config:
        training["data_config"] = data_config
    if training.get("holdout_pairs"):
        training["holdout_pairs"] = [[by_name(p, names) for p in pair] for pair in training["holdout_pairs"]]
    last = stages[-1][1]  # the model is the last stage's
    training["init_from"] = last.get("init-from") or last.get("init_from")
    # the card credits them all
    training["recipe_datasets"] = list(dict.fromkeys(every + list(data_config.get("datasets") or [])))
    return training


def _as_list(value) -> list:
    return [] if value is None else list(value) if isinstance(value, (list, tuple)) else [value]


def _grid(translator, t1_path: str, t2_path: str):
    """The sample grid of ``translator``'s generators on two image files."""
    from cyclegan.callbacks import generator_grid
    from cyclegan.files import read_image_file
    from cyclegan.preprocessing import scale_intensities, to_grayscale

    t1, t2 = (scale_intensities(to_grayscale(read_image_file(path)[0]))[0] for path in (t1_path, t2_path))
    return generator_grid(translator.generators["t1_to_t2"], translator.generators["t2_to_t1"], t1, t2)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", help="run folder written by python -m train")
    parser.add_argument("dest", help="destination model folder")
    parser.add_argument("--quality", default=None, help="JSON lines written by benchmarks/quality.py")
    parser.add_argument("--note", default=None, help="a sentence added to the training record")
    parser.add_argument("--command", default=None, help="replace the recorded train command (e.g. local paths)")
    parser.add_argument("--recipe", default=None, metavar="FILE",
                        help="the recipe file of the runs that made the model (recorded with it; data sets by name)")
    parser.add_argument("--samples", nargs=2, default=None, metavar=("T1", "T2"),
                        help="draw the sample grid from this T1 and this T2 image instead of the run's grid")
    parser.add_argument("--samples-credit", default=None, metavar="TEXT",
                        help="where the --samples images come from (their source and licence), shown under the grid")
    parser.add_argument("--metadata-only", action="store_true",
                        help="rewrite only DEST's config.json and model card (RUN and DEST the same model folder: "
                             "new metrics, record or card), its generators untouched")
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from cyclegan.errors import ConfigError
    from cyclegan.hub import load_generators, read_config, save_metadata, save_pretrained

    try:
        data = read_config(args.run)
        if args.metadata_only and Path(args.run).resolve() != Path(args.dest).resolve():
            raise ValueError("--metadata-only rewrites a model folder's own metadata: give the same folder twice")
        if args.metadata_only and args.samples:
            raise ValueError("--metadata-only leaves the sample grid as it is; --samples draws a new one")
        if args.samples_credit is not None and not args.samples:
            raise ValueError("--samples-credit credits the images of --samples: give both")
        translator = None if args.metadata_only else load_generators(args.run, warmup=False)
        metrics = dict(data.get("metrics") or {})
        calibration = data.get("calibration")
        if args.quality:
            # The quality benchmark measures every set again (the run's own held-out report included):
            # its results replace the run's, so that no set is reported twice.
            lines = Path(args.quality).read_text().splitlines()
            metrics = quality_metrics(lines)
            calibration = quality_calibration(lines) or calibration
        training = dict(data.get("training") or {})
        holdout = Path(args.run) / "holdout_pairs.json"
        if not args.metadata_only and holdout.is_file():
            training["holdout_pairs"] = json.loads(holdout.read_text())
        if args.recipe:
            training = with_recipe(training, args.recipe)
        if args.command:
            training["command"] = args.command
        if args.note:
            training["note"] = args.note
        if args.samples:
            training.pop("samples_credit", None)  # a new grid: the old credit no longer applies
            if args.samples_credit:
                training["samples_credit"] = args.samples_credit.strip()
        if args.metadata_only:
            save_metadata(args.dest, data["model_config"], metrics, train_config=data["train_config"],
                          training=training, calibration=calibration)
            print(f"rewrote the config.json and model card of {args.dest}")
            return 0
        samples = Path(args.run) / "samples.png"
        samples = samples if samples.is_file() else None
        if args.samples:
            samples = _grid(translator, *args.samples)
        save_pretrained(translator.generators, args.dest, data["model_config"], metrics, samples,
                        train_config=data["train_config"], training=training, calibration=calibration)
    except (ValueError, OSError, ConfigError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"exported {args.run} to {args.dest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
