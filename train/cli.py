"""``python -m train``: stream a data set, train a CycleGAN, save and push it.

Run the same command again after an interruption (even ``kill -9``) and it
continues from the last epoch's backup with the same optimizer state,
learning-rate schedule and image pools.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import re
import shlex
import sys
import time
from pathlib import Path

import numpy as np

from cyclegan.config import DEFAULT_DATASET, DEFAULT_SUBJECT_PATTERN

EXIT_USAGE, EXIT_PUSH_FAILED, EXIT_INTERRUPTED = 2, 3, 130

log = logging.getLogger("train")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m train",
        description="Train a T1 <-> T2 CycleGAN and (optionally) push it to the Hugging Face Hub.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    data = p.add_argument_group("data")
    data.add_argument("--dataset", action="append", default=None, metavar="SOURCE",
                      help="Hub data set id, local folder or local zip (Tr1/TrainT1/*.png, Tr2/TrainT2/*.png); "
                           f"give it several times to mix data sets (default: {DEFAULT_DATASET})")
    data.add_argument("--val-fraction", type=float, default=0.1,
                      help="fraction of images (chosen by file name) kept for validation when no pairs are held out")
    data.add_argument("--holdout-pairs", action="append", default=None, metavar="CSV",
                      help="CSV of aligned T1/T2 file names (columns t1,t2): one per --dataset, in order "
                           "('none' for a data set without pairs); held-out pairs stay out of training")
    data.add_argument("--holdout-fraction", type=float, default=0.15,
                      help="fraction of the pairs in --holdout-pairs to hold out, spread over the slice range "
                           "(data sets with a held-out subject hold out that subject instead)")
    data.add_argument("--holdout-subjects", nargs="+", default=None, metavar="SUBJECT",
                      help="hold out these whole subjects (every slice, both contrasts); their aligned pairs "
                           "are the held-out pairs of their data set")
    data.add_argument("--subject-pattern", default=DEFAULT_SUBJECT_PATTERN, metavar="REGEX",
                      help="regular expression whose first group names a file's subject")
    data.add_argument("--dataset-weight", action="append", type=float, default=None, metavar="W",
                      help="sampling weight of each --dataset, in order (default: equal weights)")
    data.add_argument("--max-images", type=int, default=None, help="read at most this many images (smoke runs)")

    model = p.add_argument_group("model")
    model.add_argument("--preset", default="small", choices=["tiny", "small", "reference"],
                       help="architecture: tiny (tests), small (the CPU default model), reference (ResNet-9)")
    model.add_argument("--init-from", default=None, metavar="FOLDER_OR_REPO",
                       help="start both generators from a saved model of the same architecture (fine-tuning)")
    model.add_argument("--image-size", type=int, default=None,
                       help="training crop size, a multiple of 4 (default: the preset's)")

    train = p.add_argument_group("training")
    train.add_argument("--output", default="runs/cyclegan", help="output folder (model, backups, logs, samples)")
    train.add_argument("--epochs", type=int, default=200, help="total epochs")
    train.add_argument("--decay-epochs", type=int, default=None,
                       help="last epochs with linearly decaying learning rate (default: half of --epochs)")
    train.add_argument("--steps-per-epoch", type=int, default=100, help="batches per epoch")
    train.add_argument("--batch-size", type=int, default=1, help="images per domain per batch")
    train.add_argument("--learning-rate", type=float, default=2e-4, help="Adam learning rate, both sides")
    train.add_argument("--cycle-weight", type=float, default=10.0, help="weight of the cycle-consistency L1 loss")
    train.add_argument("--identity-weight", type=float, default=0.5, help="identity loss weight, relative to --cycle-weight")
    train.add_argument("--paired-weight", type=float, default=0.0,
                       help="weight of a paired L1 term on aligned pairs (needs --holdout-pairs; 0 = pure CycleGAN)")
    train.add_argument("--skull-strip", type=float, default=0.0, metavar="FRACTION",
                       help="fraction of aligned pairs shown skull-stripped, so that brain-only inputs "
                            "translate well too (needs --paired-weight)")
    train.add_argument("--blur", type=float, default=0.0, metavar="FRACTION",
                       help="fraction of training images shown Gaussian-blurred (sigma 0.5-2 px; both images "
                            "of a pair alike), so that smooth, low-resolution inputs translate well too")
    train.add_argument("--contrast", type=float, default=0.0, metavar="FRACTION",
                       help="fraction of generator inputs shown with a random gamma (0.5-2; their targets stay), "
                            "so that other scanners' tissue contrast translates well too")
    train.add_argument("--pool-size", type=int, default=50, help="image pool size (0 disables the pool)")
    train.add_argument("--mixed-precision", action="store_true", help="bf16 mixed precision (GPUs, recent CPUs)")
    train.add_argument("--seed", type=int, default=0, help="random seed")
    train.add_argument("--backend", choices=["tensorflow", "jax"], default=None,
                       help="Keras backend (default: KERAS_BACKEND, else tensorflow)")
    train.add_argument("--multi-host", action="store_true",
                       help="join a multi-host JAX run (keras.distribution.initialize; reads "
                            "KERAS_DISTRIBUTION_JOB_ADDRESSES, _NUM_PROCESSES, _PROCESS_ID)")
    train.add_argument("--save-every", type=int, default=5, help="export the model folder every N epochs")
    train.add_argument("--verbose", type=int, default=1, choices=[0, 1, 2],
                       help="0 silent, 1 progress bar, 2 one line per epoch")

    hub = p.add_argument_group("hub")
    hub.add_argument("--push-to-hub", default=None, metavar="USER/REPO",
                     help="push the model to this Hub repo at the end (token: HF_TOKEN or the saved login)")
    hub.add_argument("--push-every", type=int, default=0, help="also push every N epochs (0: only at the end)")
    hub.add_argument("--private", action="store_true", help="create the Hub repo as private")
    return p


def fail(message: str, code: int = EXIT_USAGE) -> int:
    print(f"error: {message}", file=sys.stderr)
    return code


def _data_config(args):
    from cyclegan.config import DataConfig

    datasets = tuple(args.dataset or (DEFAULT_DATASET,))
    pairs = tuple("" if p.lower() == "none" else p for p in (args.holdout_pairs or ()))
    if len(pairs) == 1 and len(datasets) > 1:
        raise ValueError(f"--holdout-pairs: give one per --dataset ({len(datasets)}), 'none' where a data "
                         "set has no pair list")
    return DataConfig(
        datasets=datasets, pairs=pairs, weights=tuple(args.dataset_weight or ()),
        holdout_fraction=args.holdout_fraction, holdout_subjects=tuple(args.holdout_subjects or ()),
        subject_pattern=args.subject_pattern, val_fraction=args.val_fraction, max_images=args.max_images,
    )


def _configs(args):
    from cyclegan.config import TrainConfig, preset

    model_config = preset(args.preset)
    if args.image_size is not None:
        model_config = model_config.replace(image_size=args.image_size)
    decay = args.decay_epochs if args.decay_epochs is not None else args.epochs // 2
    train_config = TrainConfig(
        epochs=args.epochs,
        decay_epochs=decay,
        steps_per_epoch=args.steps_per_epoch,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        cycle_weight=args.cycle_weight,
        identity_weight=args.identity_weight,
        paired_weight=args.paired_weight,
        skull_strip=args.skull_strip,
        blur=args.blur,
        contrast=args.contrast,
        pool_size=args.pool_size,
        mixed_precision=args.mixed_precision,
        seed=args.seed,
    )
    return model_config, train_config


def _check_same_run(output: Path, record: dict) -> None:
    """Refuse to resume a run made with another configuration."""
    import dataclasses

    from cyclegan.config import DataConfig, ModelConfig, TrainConfig
    from cyclegan.errors import ConfigError

    path = output / "run.json"
    if not path.is_file():
        return
    previous = json.loads(path.read_text())
    # Fields added to a config after a run started take their defaults.
    for section, cls in (("model_config", ModelConfig), ("train_config", TrainConfig),
                         ("data_config", DataConfig)):
        if isinstance(previous.get(section), dict):
            defaults = {f.name: f.default for f in dataclasses.fields(cls)
                        if f.default is not dataclasses.MISSING}
            previous[section] = {**defaults, **previous[section]}
    diffs = []
    # Records written before the data options were recorded compare by data set only.
    sections = ["model_config", "train_config", "dataset", "init_from"]
    if "data_config" in previous:
        previous["data_config"] = DataConfig.from_dict(previous["data_config"]).to_dict()
        sections.append("data_config")
    for section in sections:
        old, new = previous.get(section), record[section]
        if isinstance(new, dict):
            diffs += [f"{section}.{k}: {old.get(k)!r} -> {v!r}" for k, v in new.items()
                      if (old or {}).get(k) != v]
        elif old != new:
            diffs.append(f"{section}: {old!r} -> {new!r}")
    if diffs:
        raise ConfigError(
            f"{output} holds a run with another configuration ({'; '.join(diffs)}); "
            "use the same options to resume it, or another --output"
        )


def _setup_distribution(multi_host: bool = False):
    """Data parallel over all accelerators (JAX), when there are several."""
    import keras

    if keras.backend.backend() != "jax":
        if multi_host:
            raise ValueError("--multi-host needs the JAX backend (--backend jax)")
        return 1
    if multi_host:
        keras.distribution.initialize()
    devices = keras.distribution.list_devices()
    if len(devices) > 1:
        keras.distribution.set_distribution(keras.distribution.DataParallel(devices=devices))
    return len(devices)


def _init_generators(model, source) -> None:
    """Copy both generators' weights from a saved model (a resumed run restores its own)."""
    from cyclegan.errors import ConfigError
    from cyclegan.hub import load_generators

    saved = load_generators(source, warmup=False)
    if saved.config.replace(image_size=model.model_config.image_size) != model.model_config:
        raise ConfigError(
            f"--init-from {source}: its architecture {saved.config} differs from this run's "
            f"{model.model_config} (choose the matching --preset)"
        )
    for name in ("t1_to_t2", "t2_to_t1"):
        getattr(model, name).set_weights(saved.generators[name].get_weights())
    log.info("generators initialised from %s", source)


def _process_index() -> int:
    """This host's index in a multi-host run (0 otherwise): each host draws its own batches."""
    import keras

    if keras.backend.backend() != "jax":
        return 0
    import jax

    return jax.process_index()


def _dataset_label(source: str) -> str:
    """A short name of a data set for logs and metric keys (its last path part)."""
    return Path(source.rstrip("/\\")).name.removesuffix(".zip") or source


def _evaluate_holdout(model, pairs, sources=()) -> dict:
    """Paired metrics of both directions on held-out pairs (intensities in [0, 1]).

    Keys ``holdout_<direction>_<metric>`` average over every held-out pair; when
    the pairs come from several data sets, ``holdout_<data set>_<direction>_<metric>``
    give each one's own."""
    from cyclegan.callbacks import translate_raw
    from cyclegan.metrics import head_mask, mean_metrics, paired_metrics

    groups = {"": pairs}
    by_source = {}
    for pair in pairs:
        by_source.setdefault(pair[0].source, []).append(pair)
    if len(by_source) > 1:
        names = {i: s.name for i, s in enumerate(sources)}
        for index, group in sorted(by_source.items()):
            label = re.sub(r"[^A-Za-z0-9]+", "_", names.get(index, f"set{index + 1}")).strip("_").lower()
            groups[f"{label}_"] = group
    results = {}
    for prefix, group in groups.items():
        for direction, generator in (("t1_to_t2", model.t1_to_t2), ("t2_to_t1", model.t2_to_t1)):
            rows = []
            for t1, t2 in group:
                source, target = (t1, t2) if direction == "t1_to_t2" else (t2, t1)
                prediction = (translate_raw(generator, source.image) + 1) / 2
                truth = (target.image + 1) / 2
                rows.append(paired_metrics(np.clip(prediction, 0, 1), truth,
                                           head_mask(truth, (source.image + 1) / 2)))
            for key, value in mean_metrics(rows).items():
                results[f"holdout_{prefix}{direction}_{key}"] = round(value, 4)
    return results


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    if args.backend:
        os.environ["KERAS_BACKEND"] = args.backend
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        return _run(args, argv)
    except KeyboardInterrupt:
        print("\ninterrupted; run the same command again to resume from the last epoch", file=sys.stderr)
        return EXIT_INTERRUPTED
    except ValueError as err:  # the library's own errors are ValueErrors with clear messages
        return fail(str(err))


def _run(args, argv) -> int:
    from cyclegan.augment import augmentations
    from cyclegan.data import TrainingStream, read_datasets, split_datasets
    from cyclegan.hub import check_repo_id

    if args.push_to_hub:
        check_repo_id(args.push_to_hub)
    data_config = _data_config(args)
    if args.paired_weight > 0 and not any(data_config.pairs):
        return fail("--paired-weight needs --holdout-pairs (the file that says which slices are aligned)")
    if args.skull_strip and args.paired_weight <= 0:
        return fail("--skull-strip needs --paired-weight (both images of a pair are stripped with one brain mask)")
    model_config, train_config = _configs(args)
    output = Path(args.output)
    command = "python -m train " + " ".join(shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:]))
    datasets = list(data_config.datasets)
    record = {
        "model_config": model_config.to_dict(),
        "train_config": train_config.to_dict(),
        "data_config": data_config.to_dict(),
        "dataset": datasets[0] if len(datasets) == 1 else datasets,
        "init_from": args.init_from,
    }
    _check_same_run(output, record)

    parts, skipped = read_datasets(data_config)
    split = split_datasets(
        parts, data_config.val_fraction, data_config.holdout_fraction, data_config.holdout_subjects,
        weights=[data_config.weight_of(i) for i in range(len(datasets))],
        names=[_dataset_label(d) for d in datasets], skipped=skipped,
    )
    log.info("data: %s", split.describe())
    if args.paired_weight > 0 and not split.train_pairs:
        return fail("--paired-weight needs aligned pairs in the training split; none were found")

    output.mkdir(parents=True, exist_ok=True)
    (output / "run.json").write_text(json.dumps({**record, "command": command}, indent=2))
    if split.holdout_pairs:
        (output / "holdout_pairs.json").write_text(
            json.dumps([[a.name, b.name] for a, b in split.holdout_pairs], indent=2)
        )

    import keras

    from cyclegan import callbacks as cb
    from cyclegan.hub import push_to_hub, save_pretrained
    from cyclegan.training import CycleGAN

    devices = _setup_distribution(args.multi_host)
    model = CycleGAN(model_config, train_config)
    model.compile()
    if args.init_from:
        _init_generators(model, args.init_from)
    stream = TrainingStream(
        None, model_config.image_size, train_config.batch_size, train_config.steps_per_epoch,
        seed=train_config.seed + _process_index(), sources=split.sources, paired=args.paired_weight > 0,
        skull_strip=train_config.skull_strip, blur=train_config.blur, contrast=train_config.contrast,
    )
    for augmentation in augmentations(train_config):
        log.info("%s: %s", augmentation.field.replace("_", " "), augmentation.describe())
    with_mask, pairs_total = stream.brain_masks()
    if pairs_total:
        log.info("skull stripping: brain masks for %d of %d training pairs", with_mask, pairs_total)
    pick = lambda d: (split.val[d] or split.train[d])[0].image  # noqa: E731
    samples = cb.SampleGrid(output / "samples", pick("t1"), pick("t2"))
    progress = cb.Progress(output / "progress.json")

    def export(epoch: int, metrics=None) -> Path:
        training = {
            "command": command,
            "epochs_done": epoch,
            "wall_time_s": round(progress.wall_time_s, 1),
            "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores, {platform.system()}",
            "backend": keras.backend.backend(),
            "devices": devices,
            "data": split.describe(),
            "data_config": data_config.to_dict(),
        }
        if args.init_from:
            training["init_from"] = args.init_from
        return save_pretrained(model, output, model_config, metrics, samples.latest,
                               train_config=train_config, training=training)

    def push(epoch: int) -> bool:
        try:
            url = push_to_hub(output, args.push_to_hub, private=args.private)
        except ValueError as err:
            log.warning("%s\nretry with: python -m train.push %s %s", err, shlex.quote(str(output)),
                        args.push_to_hub)
            return False
        log.info("pushed epoch %d to %s", epoch, url)
        return True

    callbacks = [
        keras.callbacks.BackupAndRestore(str(output / "backup"), save_freq="epoch",
                                         delete_checkpoint=False, double_checkpoint=True),
        cb.SetStreamEpoch(stream),
        samples,
        progress,
        keras.callbacks.CSVLogger(str(output / "history.csv"), append=True),
        keras.callbacks.TensorBoard(str(output / "logs"), write_graph=False),
        cb.EveryNEpochs(args.save_every, export),
    ]
    if args.push_to_hub and args.push_every:
        callbacks.append(cb.EveryNEpochs(args.push_every, lambda e: (export(e), push(e))))
    log.info("training %s on %s (%s, %d device(s)) into %s", args.preset, " + ".join(datasets),
             keras.backend.backend(), devices, output)
    started = time.monotonic()
    model.fit(stream, epochs=train_config.epochs, callbacks=callbacks, verbose=args.verbose)
    log.info("training done in %.0f s (this run)", time.monotonic() - started)

    metrics = _evaluate_holdout(model, split.holdout_pairs, split.sources) if split.holdout_pairs else None
    if samples.latest is None:  # resumed after the last epoch: keep the newest grid
        grids = sorted((output / "samples").glob("epoch_*.png"))
        samples.latest = grids[-1] if grids else None
    export(progress.epoch or train_config.epochs, metrics)
    log.info("model saved to %s%s", output, f" (held-out metrics: {metrics})" if metrics else "")
    if args.push_to_hub and not push(train_config.epochs):
        return EXIT_PUSH_FAILED
    return 0
