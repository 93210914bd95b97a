"""The training recipe as a library: ``cyclegan.pipeline.train(model_config, train_config,
data_config, run)`` streams the data sets, trains a CycleGAN (the inversion warm-up, the schedule
with its checks, exports and restarts, the refiner stage), reports the held-out pairs and exports
the model folder, and pushes it; ``python -m train`` turns its flags into these configs and calls it.

Run it again with the same configs after an interruption (even ``kill -9``) and it continues from
the last epoch's backup with the same optimizer state, learning-rate schedule and image pools.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import logging
import os
import platform
import re
import shlex
import time
from pathlib import Path

import numpy as np

from cyclegan.config import DataConfig, ModelConfig, RunOptions, TrainConfig, check_run
from cyclegan.errors import ConfigError

log = logging.getLogger("cyclegan.pipeline")


@dataclasses.dataclass
class TrainResult:
    """What :func:`train` did: the model folder, its held-out metrics, and whether the push that
    ``RunOptions.push_to_hub`` asked for failed (the folder is intact; retry with
    ``python -m train.push``)."""

    output: Path
    metrics: dict | None = None
    push_failed: bool = False


def given_fields(model_config: ModelConfig, train_config: TrainConfig) -> set:
    """The fields a caller set to something else than their default: what a run that resumes or
    starts from another model keeps as given (the command line says what it gives instead)."""
    return {f.name for config in (model_config, train_config) for f in dataclasses.fields(config)
            if f.default is not dataclasses.MISSING and getattr(config, f.name) != f.default}


def train(model_config: ModelConfig, train_config: TrainConfig, data_config: DataConfig,
          run: RunOptions | None = None, *, given: set | None = None, command: str | None = None) -> TrainResult:
    """Train, export and (with ``run.push_to_hub``) push one model, resuming the run in
    ``run.output`` when there is one. ``given`` names the options the caller set itself (default:
    those not at their default); the others take a resumed run's recorded values, and the
    generators' architecture the ``run.init_from`` model's. Bad options raise ``ConfigError``
    before anything is written."""
    from cyclegan.card import short_name
    from cyclegan.data import read_datasets, split_datasets
    from cyclegan.hub import check_repo_id
    from cyclegan.recipe import RECIPE_FILE, resolved, train_parser

    run = run or RunOptions()
    if run.push_to_hub:
        check_repo_id(run.push_to_hub)
    output = Path(run.output)
    given = given_fields(model_config, train_config) if given is None else set(given)
    command = command or "cyclegan.pipeline.train()"
    previous = run_record(output)
    train_config = recorded_defaults(previous, train_config, given)
    model_config = kept_architecture(previous, model_config, run.init_from, given)
    check_run(train_config, data_config, model_config)
    if "refiner_layers" in given and not model_config.refiner_width:
        raise ConfigError("--refiner-layers sets the depth of a refiner, and these generators have none: give "
                          "--refiner-width too")
    datasets = list(data_config.datasets)
    record = {
        "model_config": model_config.to_dict(),
        "train_config": train_config.to_dict(),
        "data_config": data_config.to_dict(),
        "dataset": datasets[0] if len(datasets) == 1 else datasets,
        "init_from": run.init_from,
    }
    check_same_run(output, record, previous)

    parts, skipped = read_datasets(data_config)
    split = split_datasets(
        parts, data_config.val_fraction, data_config.holdout_fraction, data_config.holdout_subjects,
        weights=[data_config.weight_of(i) for i in range(len(datasets))],
        names=[short_name(d) for d in datasets], skipped=skipped,
        pair_shares=[data_config.pair_share_of(i) for i in range(len(datasets))],
        registered_pairs=data_config.registered_pairs,
    )
    log.info("data: %s", split.describe())
    if train_config.paired_weight > 0 and not split.train_pairs:
        raise ConfigError("--paired-weight needs aligned pairs in the training split; none were found")
    if train_config.refine_steps and not split.train_pairs:
        raise ConfigError("--refine-steps needs aligned pairs in the training split; none were found")

    output.mkdir(parents=True, exist_ok=True)
    (output / "run.json").write_text(json.dumps({**record, "command": command}, indent=2))
    options = resolved_options(model_config, train_config, data_config, run)
    (output / RECIPE_FILE).write_text(resolved(options, train_parser()), encoding="utf-8")
    if split.holdout_pairs:
        (output / "holdout_pairs.json").write_text(
            json.dumps([[a.name, b.name] for a, b in split.holdout_pairs], indent=2)
        )

    devices = setup_distribution(run.multi_host)
    starts = FailedStarts(output)
    checked = bool(run.check_images and run.save_every)  # the checks judge each start
    while True:
        start_config = train_config.replace(seed=train_config.seed + len(starts.records))
        result, failed_start = _one_start(
            run=run, output=output, command=command, model_config=model_config,
            train_config=start_config, data_config=data_config, datasets=datasets, split=split,
            devices=devices, starts=starts,
            may_restart=checked and len(starts.records) < train_config.restarts,
        )
        if failed_start is None:
            return result
        folder = starts.set_aside({"seed": start_config.seed, **failed_start})
        log.info("start with seed %d set aside in %s; starting again with seed %d (restart %d of at most %d)",
                 start_config.seed, folder, start_config.seed + 1, len(starts.records), train_config.restarts)


def run_record(output: Path) -> dict | None:
    """The record (``run.json``) of the run in ``output``, read once for everything that resumes
    it: None for a new run. A record that cannot be read refuses the run, so that nothing in the
    folder is overwritten."""
    path = output / "run.json"
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        record = err
    if not isinstance(record, dict):
        raise ConfigError(f"{path} cannot be read as the record of a run ({record!r:.80}); use another --output, "
                          "or remove the folder to start the run again")
    return record


#: Architecture fields a run keeps from the run it resumes or the model it starts from, where
#: the command leaves them out.
KEPT_ARCHITECTURE = ("upsampling", "skips", "refiner_width", "refiner_layers")


def kept_architecture(record: dict | None, model_config, init_from, given: set) -> "ModelConfig":
    """``model_config`` with the generators' upsampling, skips and refiner, where the command leaves
    them out, taken from the run it resumes (its ``record``), else from the ``--init-from`` model: a
    preset's upsampling that changed since a run started does not make it another run, and a
    fine-tune keeps the architecture of the model it starts from."""
    kept, source = {}, None
    if record is not None:
        recorded = record.get("model_config")
        if isinstance(recorded, dict) and recorded:
            kept, source = ModelConfig.complete(recorded), "the run's recorded"
    elif init_from:
        from cyclegan.hub import read_config, resolve_source

        kept, source = read_config(resolve_source(init_from))["model_config"].to_dict(), f"{init_from}'s"
    changes = {k: kept[k] for k in KEPT_ARCHITECTURE
               if k not in given and k in kept and kept[k] != getattr(model_config, k)}
    for k, v in changes.items():
        log.info("%s: %s %r (the preset's is %r)", k, source, v, getattr(model_config, k))
    return model_config.replace(**changes) if changes else model_config


def recorded_defaults(record: dict | None, train_config, given: set) -> "TrainConfig":
    """``train_config`` with the fields this command leaves at their defaults (not in ``given``)
    taken from the run it resumes (its ``record``): a default that changed since the run started
    does not make it another run."""
    recorded = (record or {}).get("train_config") or {}
    if isinstance(recorded, dict) and recorded:
        recorded = TrainConfig.complete(recorded)  # fields the run's record predates
    changes = {k: v for k, v in recorded.items()
               if k not in given and k in TrainConfig.__dataclass_fields__ and getattr(train_config, k) != v}
    if changes:
        log.info("resuming with the run's recorded %s", ", ".join(f"{k}={v!r}" for k, v in sorted(changes.items())))
    return train_config.replace(**changes) if changes else train_config


def check_same_run(output: Path, record: dict, previous: dict | None) -> None:
    """Refuse to resume a run (its record ``previous``, :func:`run_record`) made with another
    configuration than ``record``."""
    from cyclegan.config import DataConfig, ModelConfig, TrainConfig
    if previous is None:
        return
    previous = dict(previous)
    # Fields added to a config after a run started take their defaults, or what their absence
    # means where the default has changed since (``ABSENT_MEANS``).
    for section, cls in (("model_config", ModelConfig), ("train_config", TrainConfig),
                         ("data_config", DataConfig)):
        if isinstance(previous.get(section), dict):
            previous[section] = cls.complete(previous[section])
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


class FailedStarts:
    """The starts of a run that failed their first check (kept the input's contrast or painted the air
    around the head) and were set aside (``TrainConfig.restarts``).

    ``failed_starts.json`` in the output folder lists them; each start's files (exports, checks,
    backup, samples, logs) move to ``failed_starts/seed_<n>/``. The record is written before the
    files move, so an interruption during the move is finished by the next run of the command.
    """

    FILE, FOLDER = "failed_starts.json", "failed_starts"
    #: What stays in the output folder across starts: the run's own record.
    KEEP = {"run.json", "holdout_pairs.json", FILE, FOLDER}

    def __init__(self, output: Path):
        self.output = Path(output)
        self.path = self.output / self.FILE
        self.records: list[dict] = []
        if self.path.is_file():
            try:
                records = json.loads(self.path.read_text())
            except (OSError, ValueError) as err:
                        raise ConfigError(f"{self.path} is not readable ({err}); restore it, or use another "
                                  "--output") from None
            if not isinstance(records, list):
                records = []
            self.records = [r for r in records if isinstance(r, dict) and isinstance(r.get("seed"), int)]
        for record in self.records:
            if not record.get("set_aside"):
                self._move(record)

    def folder(self, record: dict) -> Path:
        return self.output / self._relative(record)

    def _relative(self, record: dict) -> str:
        return f"{self.FOLDER}/seed_{record['seed']}"

    def _write(self) -> None:
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.records, indent=2))
        os.replace(tmp, self.path)

    def _move(self, record: dict) -> None:
        dest = self.folder(record)
        dest.mkdir(parents=True, exist_ok=True)
        for item in sorted(self.output.iterdir()):
            if item.name not in self.KEEP:
                os.replace(item, dest / item.name)
        record["set_aside"] = True
        self._write()

    def set_aside(self, record: dict) -> Path:
        """Record a failed start, then move its files aside; returns where they went."""
        record = {**record, "folder": self._relative(record), "set_aside": False}
        self.records.append(record)
        self._write()
        self._move(record)
        return self.folder(record)

    def summary(self) -> list[dict]:
        """What the model card and config say of the set-aside starts."""
        metric = lambda r, d, k: (r.get("metrics") or {}).get(f"unpaired_{d}_{k}")  # noqa: E731
        # Starts set aside before the background was checked were set aside for their tissue order.
        return [{"seed": r["seed"], "epoch": r.get("epoch"), "step": r.get("step"),
                 "reason": r.get("reason", "tissue_order"),
                 **{f"{name}_{d}": metric(r, d, key) for d in ("t1_to_t2", "t2_to_t1")
                    for name, key in (("tissue_order", "contrast_order_pass"), ("background", "background"))},
                 "folder": r.get("folder")} for r in self.records]


def setup_distribution(multi_host: bool = False):
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


def init_generators(model, source) -> None:
    """Copy both generators' weights from a saved model (a resumed run restores its own). A saved
    model without skips or a refiner may start a run with them (``--skips``, ``--refiner-width``):
    every layer it has is copied by name, the skip convolutions are set to zero and the refiner
    keeps its new weights (its output convolution starts at zero), so the run starts from what the
    saved model translated. A saved refiner of another width or depth (``--refiner-layers``) is
    not copied: the run's refiner starts anew, at zero, on the saved generator. A saved model with
    transposed convolutions may start a run with resize ones (``--upsampling resize``): each
    upsampling kernel becomes the resize convolution closest to it (:func:`cyclegan.models.resize_kernel`),
    which keeps what the model translated less its checkerboard; never the other way."""
    from cyclegan.hub import load_generators
    from cyclegan.models import resize_kernel

    saved = load_generators(source, warmup=False)
    ours, theirs_config = model.model_config, saved.config
    # skips and a refiner may be added to a saved model, never taken away; a refiner may be replaced
    refiner = ("refiner_width", "refiner_layers")
    replaced = bool(ours.refiner_width and theirs_config.refiner_width
                    and any(getattr(ours, k) != getattr(theirs_config, k) for k in refiner))
    added = {k: getattr(ours, k) for k in ("skips", "refiner_width")
             if getattr(ours, k) and not getattr(theirs_config, k)}
    if ours.upsampling == "resize" and theirs_config.upsampling == "transpose":
        added["upsampling"] = "resize"
    if added.get("refiner_width") or replaced:
        added.update({k: getattr(ours, k) for k in refiner})
    if theirs_config.replace(image_size=ours.image_size, **added) != ours:
        raise ConfigError(
            f"--init-from {source}: its architecture {theirs_config} differs from this run's "
            f"{ours} (choose the matching --preset, --upsampling, --skips and --refiner-width)"
        )
    for name in ("t1_to_t2", "t2_to_t1"):
        target, weights = getattr(model, name), saved.generators[name]
        if not added:
            target.set_weights(weights.get_weights())
            continue
        theirs = {layer.name.removeprefix(weights.name): layer for layer in weights.layers if layer.weights}
        if replaced:
            theirs = {tag: layer for tag, layer in theirs.items() if not tag.startswith("_refine")}
        for layer in target.layers:
            tag = layer.name.removeprefix(target.name)
            if tag in theirs:
                weights = theirs.pop(tag).get_weights()
                if "upsampling" in added and tag.startswith("_up") and tag.endswith("_conv"):
                    weights = [resize_kernel(weights[0]), *weights[1:]]
                layer.set_weights(weights)
            elif layer.weights and tag.startswith("_skip"):
                layer.set_weights([np.zeros_like(w) for w in layer.get_weights()])
            elif layer.weights and not tag.startswith("_refine"):
                raise ConfigError(f"--init-from {source}: its {name} has no layer {tag.strip('_')!r}")
        if theirs:
            raise ConfigError(f"--init-from {source}: its {name} has layers this run's lacks: "
                              f"{', '.join(sorted(t.strip('_') for t in theirs))}")
    notes = []
    if "skips" in added:
        notes.append("the skip connections start at zero")
    if replaced:
        notes.append(f"its refiner ({theirs_config.refiner_layers} layers of {theirs_config.refiner_width} "
                     f"channels) is not copied: this run's ({ours.refiner_layers} of {ours.refiner_width}) "
                     "starts at zero")
    elif "refiner_width" in added:
        notes.append("the refiner starts at zero")
    if "upsampling" in added:
        notes.append("its transposed convolutions became the closest resize convolutions")
    log.info("generators initialised from %s%s", source, "".join(f"; {n}" for n in notes))


#: A slice cut from a NIfTI volume is named ``<volume>#<plane><index>`` (:mod:`cyclegan.data`).
_VOLUME_CUT = re.compile(r"#(axial|coronal|sagittal)(\d+)$")


def _central(slices: list) -> list:
    """``slices`` without the cuts of a volume outside the middle third of that volume's cuts in their
    plane (by index; near-empty slices are not cut at all), so that a checked slice cuts through the
    brain and its ventricles rather than past them; images that are no volume's cut all stay."""
    def cut(s):
        found = _VOLUME_CUT.search(s.name) if s.volume else None
        return (s.volume, found[1], int(found[2])) if found else None

    spans = {}
    for s in slices:
        where = cut(s)
        if where:
            spans.setdefault(where[:2], []).append(where[2])
    middle = {}
    for key, indices in spans.items():
        indices.sort()
        middle[key] = (indices[len(indices) // 3], indices[(2 * len(indices)) // 3])
    return [s for s in slices if (where := cut(s)) is None
            or middle[where[:2]][0] <= where[2] <= middle[where[:2]][1]]


def check_images(train: dict, count: int) -> dict:
    """``count`` training images of each contrast, spread evenly over the file order, in [0, 1]:
    what :class:`cyclegan.callbacks.UnpairedCheck` translates at every export. Of a volume's cuts
    only the middle third in each plane is taken (:func:`_central`): the tissue order the checks
    read needs the brain's middle, not its edge."""
    out = {}
    for domain, slices in train.items():
        slices = _central(slices)
        step = max(len(slices) / max(count, 1), 1.0)
        picked = [slices[int(i * step)] for i in range(min(count, len(slices)))]
        out[domain] = [(np.asarray(s.image, np.float64) + 1.0) / 2.0 for s in picked]
    return out


def history_logger(path: Path):
    """Keras's CSVLogger, appending to ``path`` across resumes. Its columns are the losses of
    :data:`cyclegan.training.LOSS_NAMES` and their ``val_`` twins; a file with other columns (written
    by a version that logged other losses) is kept aside as ``history-<n>.csv`` rather than appended
    to under a header that no longer fits its rows."""
    import keras

    from cyclegan.training import LOSS_NAMES

    columns = {"epoch", *LOSS_NAMES, *(f"val_{name}" for name in LOSS_NAMES)}
    if path.is_file():
        with path.open(newline="") as f:
            header = next(csv.reader(f), [])
        if header and set(header) != columns:
            n = 1
            while (kept := path.with_name(f"{path.stem}-{n}{path.suffix}")).exists():
                n += 1
            path.rename(kept)
            log.info("%s: the logged losses changed (%s); the earlier epochs are kept in %s", path.name,
                     ", ".join(f"{'+' if c in columns else '-'}{c}" for c in sorted(columns ^ set(header))),
                     kept.name)
    return keras.callbacks.CSVLogger(str(path), append=True)


def tensorboard_callbacks(logs: Path) -> list:
    """Keras's TensorBoard callback, where it can run: it writes through TensorFlow, which a JAX-only
    install (a GPU machine, say) may lack. Without it the curves stay in history.csv and progress.json."""
    import importlib.util

    import keras

    if importlib.util.find_spec("tensorflow") is None:
        log.info("no TensorBoard logs: they are written through tensorflow, which is not installed "
                 "(history.csv and progress.json keep the curves)")
        return []
    return [keras.callbacks.TensorBoard(str(logs), write_graph=False)]


def _process_index() -> int:
    """This host's index in a multi-host run (0 otherwise): each host draws its own batches."""
    import keras

    if keras.backend.backend() != "jax":
        return 0
    import jax

    return jax.process_index()


def evaluate_holdout(model, pairs, sources=()) -> dict:
    """Metrics of both directions on held-out pairs, as ``benchmarks/quality.py`` computes
    and names them: ``holdout_<direction>_<metric>`` over every held-out pair and, when
    they come from several data sets, ``holdout_<data set>_<direction>_<metric>`` each."""
    from cyclegan.callbacks import translator_of
    from cyclegan.evaluation import evaluate_set, rows_to_metrics

    unit = lambda image: (np.asarray(image, np.float64) + 1.0) / 2.0  # noqa: E731
    # One set of [0, 1] images for every group, so that a pair in two groups is translated once.
    scaled = [(a.name, unit(a.image), unit(b.image)) for a, b in pairs]
    groups = {"holdout": scaled}
    by_source = {}
    for pair, images in zip(pairs, scaled):
        by_source.setdefault(pair[0].source, []).append(images)
    if len(by_source) > 1:
        names = {i: s.name for i, s in enumerate(sources)}
        for index, group in sorted(by_source.items()):
            label = re.sub(r"[^A-Za-z0-9]+", "_", names.get(index, f"set{index + 1}")).strip("_").lower()
            groups[f"holdout_{label}"] = group
    # Every pair is in the pooled group and, with several data sets, in its own: two uses then.
    translator = _Remembered(translator_of(model), uses=min(len(groups), 2))
    rows = []
    for name, group in groups.items():
        rows += evaluate_set(name, group, translator)
    return rows_to_metrics(rows)


class _Remembered:
    """A translator that translates each image (the same array) once per direction and hands the
    result out ``uses`` times, keeping it only until then."""

    def __init__(self, translator, uses: int):
        self.translator = translator
        self.uses = uses
        self.seen = {}

    def translate_with_cycle(self, image, direction):
        if self.uses <= 1:
            return self.translator.translate_with_cycle(image, direction)
        key = (id(image), direction)
        kept, result, count = self.seen.get(key) or (image, self.translator.translate_with_cycle(image, direction), 0)
        if count + 1 >= self.uses:
            self.seen.pop(key, None)
        else:
            self.seen[key] = (kept, result, count + 1)
        return result


def resolved_options(model_config, train_config, data_config, run) -> dict:
    """{flag destination: value} of a run's resolved configs, for its ``recipe.toml``."""
    data = data_config.to_dict()
    data["pairs"] = ["none" if not p else p for p in data.get("pairs") or ()]
    model = model_config.to_dict()
    if not model.get("refiner_width"):
        model.pop("refiner_layers", None)  # the depth of no refiner
    # A replay never pushes where this run pushed: it would replace that model.
    run_options = {k: v for k, v in dataclasses.asdict(run).items() if k not in ("push_to_hub", "push_every", "private")}
    return {**model, **train_config.to_dict(), **data, **run_options}


def _one_start(*, run, output, command, model_config, train_config, data_config, datasets, split,
               devices, starts, may_restart):
    """Train one start (resuming it from its backup when there is one). Returns (TrainResult, None),
    or (None, the check that judged the start as keeping the input's contrast) when it stopped early
    to be set aside (only with ``may_restart``)."""
    import keras

    from cyclegan import callbacks as cb
    from cyclegan.augment import AUGMENTATIONS, Pipeline
    from cyclegan.config import RESTART_CHECK_STEPS
    from cyclegan.data import TrainingStream
    from cyclegan.hub import push_to_hub, save_pretrained
    from cyclegan.preprocessing import most_air
    from cyclegan.training import CycleGAN, fit_refiners, warm_up_on_inversion
    from cyclegan.recipe import RECIPE_FILE

    keras.utils.set_random_seed(train_config.seed)  # weights, pools and data order follow --seed
    model = CycleGAN(model_config, train_config)
    model.compile()
    if run.init_from:
        init_generators(model, run.init_from)
    stream = TrainingStream(
        None, model_config.image_size, train_config.batch_size, train_config.steps_per_epoch,
        seed=train_config.seed + _process_index(), sources=split.sources, paired=train_config.paired_weight > 0,
        **{cls.field: getattr(train_config, cls.field) for cls in AUGMENTATIONS},
    )
    for augmentation in Pipeline.of(train_config):
        log.info("%s: %s", augmentation.field.replace("_", " "), augmentation.describe())
    with_mask, pairs_total = stream.brain_masks()
    if pairs_total:
        log.info("skull stripping: brain masks for %d of %d training pairs", with_mask, pairs_total)
    # The most air around the head in any training image as read (--zoom shows some with more),
    # recorded so that inference brings an input framed far wider than that closer
    # (cyclegan.preprocessing.reframe_above).
    air = most_air(s.image for d in ("t1", "t2") for s in split.train[d])
    pick = lambda d: (split.val[d] or split.train[d])[0].image  # noqa: E731
    samples = cb.SampleGrid(output / "samples", pick("t1"), pick("t2"))
    progress = cb.Progress(output / "progress.json")

    def export(epoch: int, metrics=None, dest: Path = output, note: str | None = None) -> Path:
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
        recipe_file = output / RECIPE_FILE
        if recipe_file.is_file():
            training["recipe"] = recipe_file.read_text(encoding="utf-8")
        if air is not None:
            training["framing"] = {"most_air": round(air, 2)}
        if run.init_from:
            training["init_from"] = run.init_from
        if starts.records:
            training["failed_starts"] = starts.summary()
        if note:
            training["note"] = note
        held_out = output / "holdout_pairs.json"
        if dest != output and held_out.is_file():  # beside the model, as in the run folder
            dest.mkdir(parents=True, exist_ok=True)
            (dest / held_out.name).write_text(held_out.read_text())
        with model.averaged_generators():  # the moving average, where the run keeps one
            return save_pretrained(model, dest, model_config, metrics, samples.latest,
                                   train_config=train_config, training=training)

    def push(epoch: int) -> bool:
        try:
            url = push_to_hub(output, run.push_to_hub, private=run.private)
        except ValueError as err:
            log.warning("%s\nretry with: python -m train.push %s %s", err, shlex.quote(str(output)),
                        run.push_to_hub)
            return False
        log.info("pushed epoch %d to %s", epoch, url)
        return True

    if train_config.inversion_warmup and run.init_from:
        log.info("inversion warm-up skipped: the generators start from %s", run.init_from)
    elif train_config.inversion_warmup and not any((output / "backup").glob("training_metadata.json*")):
        # A resumed run restores its own weights from the backup; a new start is warmed up first.
        log.info("inversion warm-up: %d steps fitting both generators to their inputs' inversion",
                 train_config.inversion_warmup)
        warmup = warm_up_on_inversion(model, stream, train_config.inversion_warmup, verbose=run.verbose)
        log.info("inversion warm-up done: L1 %.3f (T1 -> T2), %.3f (T2 -> T1)",
                 warmup.history["t1_to_t2_loss"][-1], warmup.history["t2_to_t1_loss"][-1])
    callbacks = [
        keras.callbacks.BackupAndRestore(str(output / "backup"), save_freq="epoch",
                                         delete_checkpoint=False, double_checkpoint=True),
        cb.SetStreamEpoch(stream),
        samples,
        history_logger(output / "history.csv"),
        progress,  # after the history row: progress.json says an epoch is done only once it is logged
        *tensorboard_callbacks(output / "logs"),
        cb.EveryNEpochs(run.save_every, export),
    ]
    checker = None
    if run.check_images and run.save_every:
        checker = cb.UnpairedCheck(
            run.save_every, check_images(split.train, run.check_images), output / "checks.jsonl",
            on_best=lambda epoch, metrics: export(epoch, metrics, output / "best", note=(
                f"the export of epoch {epoch}, kept because its checks without pairs ranked best so far "
                "(tissue order of the translations, then round-trip error; see checks.jsonl)")),
            decide_after=RESTART_CHECK_STEPS, may_restart=may_restart)
        callbacks.insert(-1, checker)
    if run.push_to_hub and run.push_every:
        callbacks.append(cb.EveryNEpochs(run.push_every, lambda e: (export(e), push(e))))
    log.info("training %s on %s (%s, %d device(s)) into %s", run.preset, " + ".join(datasets),
             keras.backend.backend(), devices, output)
    started = time.monotonic()
    model.fit(stream, epochs=train_config.epochs, callbacks=callbacks, verbose=run.verbose)
    if checker is not None and checker.stopped_start:
        return None, checker.failed_start
    log.info("training done in %.0f s (this run)", time.monotonic() - started)
    if train_config.refine_steps:
        refine_started = time.monotonic()
        examples = Pipeline.of(train_config).refiner_examples([(a.image, b.image) for a, b in split.train_pairs],
                                                              seed=train_config.seed)
        log.info("refiner stage: %d steps fitting each generator's refiner to %d examples of %d aligned training "
                 "pairs", train_config.refine_steps, len(examples), len(split.train_pairs))
        refined = fit_refiners(model, examples, train_config.refine_steps, verbose=run.verbose,
                               seed=train_config.seed)
        log.info("refiner stage done in %.0f s: weighted L1 on those examples %s",
                 time.monotonic() - refine_started,
                 ", ".join(f"{before:.4f} -> {after:.4f} ({d.replace('_to_', ' -> ').upper()})"
                           for d, (before, after) in refined.items()))
        samples.draw(model, "refined.png")  # the model's card shows the refined translations

    metrics = evaluate_holdout(model, split.holdout_pairs, split.sources) if split.holdout_pairs else None
    if samples.latest is None:  # resumed after the last epoch: keep the newest grid
        grids = sorted((output / "samples").glob("epoch_*.png"))
        samples.latest = grids[-1] if grids else None
    export(progress.epoch or train_config.epochs, metrics)
    log.info("model saved to %s%s", output, f" (held-out metrics: {metrics})" if metrics else "")
    push_failed = bool(run.push_to_hub) and not push(train_config.epochs)
    return TrainResult(output, metrics, push_failed), None
