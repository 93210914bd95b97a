"""``python -m train.export RUN_FOLDER DEST [--quality quality.jsonl]``: re-export a trained model.

Copies the generators, config and training record of a run folder into ``DEST`` (for instance
``cyclegan/default_model`` to ship it in the package), with the quality benchmark's results
(the JSON lines of ``benchmarks/quality.py``, which replace the run's own held-out report) in
config.json and the model card, and the
input checks it calibrated (``calibration`` in config.json, see :mod:`cyclegan.calibration`).
``--samples T1 T2`` draws the card's sample grid anew from two images of the project's own (for
instance its phantom examples) instead of the run's grid, which shows its training data.
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
    parser.add_argument("--samples", nargs=2, default=None, metavar=("T1", "T2"),
                        help="draw the sample grid from this T1 and this T2 image instead of the run's grid")
    parser.add_argument("--metadata-only", action="store_true",
                        help="rewrite only DEST's config.json and model card (RUN and DEST the same model folder: "
                             "new metrics, record or card), its generators untouched")
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from cyclegan.hub import load_generators, read_config, save_metadata, save_pretrained

    try:
        data = read_config(args.run)
        if args.metadata_only and Path(args.run).resolve() != Path(args.dest).resolve():
            raise ValueError("--metadata-only rewrites a model folder's own metadata: give the same folder twice")
        if args.metadata_only and args.samples:
            raise ValueError("--metadata-only leaves the sample grid as it is; --samples draws a new one")
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
        if args.command:
            training["command"] = args.command
        if args.note:
            training["note"] = args.note
        if args.metadata_only:
            save_metadata(args.dest, data["model_config"], metrics, train_config=data["train_config"],
                          training=training, calibration=calibration)
            print(f"rewrote the config.json and model card of {args.dest}")
            return 0
        holdout = Path(args.run) / "holdout_pairs.json"
        if holdout.is_file():
            training["holdout_pairs"] = json.loads(holdout.read_text())
        samples = Path(args.run) / "samples.png"
        samples = samples if samples.is_file() else None
        if args.samples:
            samples = _grid(translator, *args.samples)
        save_pretrained(translator.generators, args.dest, data["model_config"], metrics, samples,
                        train_config=data["train_config"], training=training, calibration=calibration)
    except (ValueError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"exported {args.run} to {args.dest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
