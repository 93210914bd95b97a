"""``python -m train.export RUN_FOLDER DEST [--quality quality.jsonl]``: re-export a trained model.

Copies the generators, config and training record of a run folder into ``DEST`` (for instance
``cyclegan/default_model`` to ship it in the package), with the quality benchmark's results
(the JSON lines of ``benchmarks/quality.py``) added to config.json and the model card.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path


def quality_metrics(lines) -> dict:
    """Flatten quality-benchmark rows into card metrics (model, best baseline, contrast, cycle)."""
    metrics, baselines = {}, {}
    for line in lines:
        line = line.strip()
        if not line.startswith("{"):
            continue
        row = json.loads(line)
        kind, direction, method = row.get("set"), row.get("direction"), row.get("method")
        if not direction:
            continue
        prefix = f"{kind}_{direction}"
        if method == "model":
            for key in ("ssim", "psnr", "mae"):
                metrics[f"{prefix}_{key}"] = row[key]
        elif method in ("identity", "inversion", "histmatch"):
            best = baselines.setdefault(prefix, {})
            best["ssim"] = max(best.get("ssim", -1.0), row["ssim"])
            best["psnr"] = max(best.get("psnr", 0.0), row["psnr"])
        elif method == "cycle":
            metrics[f"{prefix}_cycle_mae"] = row["cycle_mae"]
        elif method == "contrast_order":
            metrics[f"{prefix}_contrast_order_pass"] = row["pass_fraction"]
            if "target_pass_fraction" in row:  # how often the real target itself is in order
                metrics[f"{prefix}_contrast_order_target_pass"] = row["target_pass_fraction"]
        elif method == "gamma":
            metrics[f"{prefix}_gamma{row['gamma']:g}_ssim"] = row["ssim"]
    for prefix, best in baselines.items():
        metrics[f"{prefix}_best_baseline_ssim"] = best["ssim"]
        metrics[f"{prefix}_best_baseline_psnr"] = best["psnr"]
    return metrics


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", help="run folder written by python -m train")
    parser.add_argument("dest", help="destination model folder")
    parser.add_argument("--quality", default=None, help="JSON lines written by benchmarks/quality.py")
    parser.add_argument("--note", default=None, help="a sentence added to the training record")
    parser.add_argument("--command", default=None, help="replace the recorded train command (e.g. local paths)")
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from cyclegan.hub import load_generators, read_config, save_pretrained

    try:
        data = read_config(args.run)
        translator = load_generators(args.run, warmup=False)
        metrics = dict(data.get("metrics") or {})
        if args.quality:
            metrics.update(quality_metrics(Path(args.quality).read_text().splitlines()))
        training = dict(data.get("training") or {})
        if args.command:
            training["command"] = args.command
        if args.note:
            training["note"] = args.note
        holdout = Path(args.run) / "holdout_pairs.json"
        if holdout.is_file():
            training["holdout_pairs"] = json.loads(holdout.read_text())
        samples = Path(args.run) / "samples.png"
        save_pretrained(translator.generators, args.dest, data["model_config"], metrics,
                        samples if samples.is_file() else None,
                        train_config=data["train_config"], training=training)
    except (ValueError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"exported {args.run} to {args.dest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
