"""Configuration dataclasses: one for the networks, one for training.

Both are plain dataclasses that validate themselves and round-trip through
JSON. ``config.json`` beside the weights holds both (see :mod:`cyclegan.hub`),
so weights never travel without the config that built them.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import re
from typing import Any, Mapping

from cyclegan.errors import ConfigError

#: Version of the ``config.json`` layout written by :func:`cyclegan.save_pretrained`.
FORMAT_VERSION = 1


def _check_int(name: str, value: Any, low: int, high: int | None = None) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{name} must be an integer, got {value!r}")
    if value < low or (high is not None and value > high):
        bound = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise ConfigError(f"{name} must be {bound}, got {value}")


def _check_choice(config, name: str) -> None:
    """The field ``name`` of ``config`` holds one of the ``choices`` its declaration names."""
    choices = config.__dataclass_fields__[name].metadata["choices"]
    value = getattr(config, name)
    if value not in choices:
        raise ConfigError(f"{name} must be one of {', '.join(map(repr, choices))}, got {value!r}")


def _check_float(name: str, value: Any, low: float, high: float | None = None) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ConfigError(f"{name} must be a finite number, got {value!r}")
    if value < low or (high is not None and value > high):
        bound = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise ConfigError(f"{name} must be {bound}, got {value}")


def option(default, help: str, **cli):
    """A config field with its command-line help (the train command's flags are built from
    these): ``flag`` (default ``--field-name``), ``cli_default`` (what the flag defaults to
    when it differs from the field's: None means "derived", see the train command),
    ``item`` (element type of a list), ``action`` / ``nargs`` (argparse), ``choices``,
    ``cli=False`` for fields with no flag."""
    return dataclasses.field(default=default, metadata={"help": help, **cli})


def add_arguments(group, cls) -> None:
    """One command-line flag per field of the dataclass ``cls`` that has help (see :func:`option`)."""
    for f in dataclasses.fields(cls):
        meta = dict(f.metadata)
        if "help" not in meta or meta.get("cli") is False:
            continue
        kwargs = {"dest": f.name, "help": meta["help"],
                  "default": meta["cli_default"] if "cli_default" in meta else f.default}
        for key in ("action", "nargs", "choices", "metavar"):
            if key in meta:
                kwargs[key] = meta[key]
        if isinstance(f.default, bool):
            kwargs["action"] = "store_true"
        else:
            kwargs["type"] = meta.get("item") or type(f.default)
        group.add_argument(meta.get("flag", "--" + f.name.replace("_", "-")), **kwargs)


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows each flag's default, unless its help already says what the default is."""

    def _get_help_string(self, action):
        if "(default:" in (action.help or ""):
            return action.help
        return super()._get_help_string(action)


class _JsonConfig:
    """Shared JSON round trip with strict field checking."""

    # What a field absent from a record means, where that is not its default: records written
    # before the field existed ran without it, whatever its default is now.
    ABSENT_MEANS: "dict[str, Any]" = {}

    @classmethod
    def complete(cls, record: Mapping[str, Any]) -> dict:
        """A record's fields with those it predates filled in: their default, or ``ABSENT_MEANS``."""
        defaults = {f.name: f.default for f in dataclasses.fields(cls) if f.default is not dataclasses.MISSING}
        return {**defaults, **cls.ABSENT_MEANS, **record}

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]):
        if not isinstance(data, Mapping):
            raise ConfigError(f"{cls.__name__} must be a JSON object, got {type(data).__name__}")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(
                f"unknown field(s) in {cls.__name__}: {', '.join(unknown)} "
                f"(known fields: {', '.join(sorted(known))})"
            )
        return cls(**{**cls.ABSENT_MEANS, **data})

    @classmethod
    def from_json(cls, text: str):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise ConfigError(f"{cls.__name__} is not valid JSON: {err}") from None
        return cls.from_dict(data)

    def replace(self, **changes):
        """A copy with some fields changed (validated like a new config)."""
        unknown = sorted(set(changes) - {f.name for f in dataclasses.fields(self)})
        if unknown:
            raise ConfigError(f"unknown field(s) in {type(self).__name__}: {', '.join(unknown)}")
        return dataclasses.replace(self, **changes)


#: Generator upsampling layers (:class:`ModelConfig` ``upsampling``).
UPSAMPLING = ("transpose", "resize")


@dataclasses.dataclass(frozen=True)
class ModelConfig(_JsonConfig):
    """Architecture of both generators and both discriminators.

    The generator is the reference ResNet generator: a 7x7 convolution with
    ``generator_filters`` channels, two stride-2 downsamples, ``generator_blocks``
    residual blocks, two upsamples (``upsampling``) and a 7x7 convolution with tanh; with
    ``skips`` the encoder's features at full and half resolution are added to the decoder's
    through 1x1 convolutions that start at zero (a U-Net's skip connections). With
    ``refiner_width`` > 0 a refiner follows: ``refiner_layers`` 3x3 convolutions of that width at
    full resolution (ReLU) on the input and the output, then a 3x3 convolution, initialised to zero,
    whose output is added to the generator's (:func:`cyclegan.models.build_generator`). The
    discriminator is the PatchGAN with ``discriminator_layers`` stride-2 layers
    (3 gives the 70x70 receptive field of the reference).
    """

    image_size: int = option(256, "training crop size, a multiple of 4 (default: the preset's)", cli_default=None)
    channels: int = option(1, "image channels (grayscale MRI: 1)", cli=False)
    generator_filters: int = option(64, "generator base filters (default: the preset's)", cli_default=None)
    generator_blocks: int = option(9, "generator residual blocks (default: the preset's)", cli_default=None)
    discriminator_filters: int = option(64, "discriminator base filters (default: the preset's)", cli_default=None)
    discriminator_layers: int = option(3, "discriminator stride-2 layers; 3 gives the 70x70 PatchGAN "
                                          "(default: the preset's)", cli_default=None)
    upsampling: str = option("transpose", "generator upsampling: 'transpose' (the reference's stride-2 "
                                          "transposed convolutions) or 'resize' (nearest-neighbour resize, "
                                          "then a 3x3 convolution: no checkerboard artefacts) "
                                          "(default: the preset's for a new run, a resumed run's own, and "
                                          "with --init-from the saved model's)", choices=UPSAMPLING, cli_default=None)
    refiner_width: int = option(0, "width of a refiner at the end of each generator: 3x3 convolutions "
                                   "(--refiner-layers) at full resolution on the input and the generator's "
                                   "output, adding a correction that starts at zero (trained by --refine-steps; 0 = none) "
                                   "(default: none for a new run, a resumed run's own, and with --init-from "
                                   "the saved model's)", cli_default=None, metavar="CHANNELS")
    refiner_layers: int = option(3, "3x3 convolutions of the refiner (--refiner-width) before its output "
                                    "convolution: it sees 2 x (layers + 1) + 1 pixels a side, 9 with 3; "
                                    "--init-from a model whose refiner has another depth or width starts "
                                    "the refiner anew (default: 3 for a new run, a resumed run's own, and "
                                    "with --init-from the saved model's)", cli_default=None, metavar="LAYERS")
    skips: bool = option(False, "full-resolution skip connections in the generators: the encoder's "
                                "features at full and half resolution, through a 1x1 convolution that "
                                "starts at zero, added to the decoder's, so the edges of the input reach "
                                "the output without the 4x downsampling; --init-from a model without them "
                                "starts exactly where it stands (default: off for a new run, a resumed "
                                "run's own, and with --init-from the saved model's)", cli_default=None)

    def __post_init__(self):
        _check_choice(self, "upsampling")  # absent from models saved before it: their default, transpose
        if not isinstance(self.skips, bool):  # absent from models saved before it: off
            raise ConfigError(f"skips must be true or false, got {self.skips!r}")
        _check_int("refiner_width", self.refiner_width, 0, 256)  # absent from models saved before it: 0
        _check_int("refiner_layers", self.refiner_layers, 1, 16)  # absent from models saved before it: 3
        _check_int("image_size", self.image_size, 32, 2048)
        if self.image_size % 4:
            raise ConfigError(f"image_size must be a multiple of 4, got {self.image_size}")
        _check_int("channels", self.channels, 1, 1)
        _check_int("generator_filters", self.generator_filters, 1, 1024)
        _check_int("generator_blocks", self.generator_blocks, 0, 64)
        _check_int("discriminator_filters", self.discriminator_filters, 1, 1024)
        _check_int("discriminator_layers", self.discriminator_layers, 1, 6)


#: The users' data set on the Hub: the train command's default.
DEFAULT_DATASET = "nitishpandey04/MRI-Unpaired-T1-and-T2-Images"
#: Training steps a start runs before its checks without pairs may set it aside (``TrainConfig.restarts``):
#: at 400-500 steps they agreed with held-out pairs on every run measured (benchmarks/NOTES.md).
RESTART_CHECK_STEPS = 300
#: Crop side and batch size of the refiner stage (``TrainConfig.refine_steps``,
#: :func:`cyclegan.training.fit_refiners`): the refiner sees 9x9 pixels with 3 layers, 17x17 with
#: 7, so crops teach it what whole slices would, at a fraction of the cost.
REFINE_CROP = 96
REFINE_BATCH = 16
#: Default subject pattern: the part of a file name before ``_z<slice number>``.
DEFAULT_SUBJECT_PATTERN = r"^(.+?)_z\d+"


def _as_tuple(name: str, value: Any, kind: type) -> tuple:
    if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)):
        raise ConfigError(f"{name} must be a list, got {value!r}")
    for item in value:
        if kind is float:
            _check_float(f"each of {name}", item, 0.0)
        elif not isinstance(item, kind):
            raise ConfigError(f"each of {name} must be a {kind.__name__}, got {item!r}")
    return tuple(float(v) if kind is float else v for v in value)


@dataclasses.dataclass(frozen=True)
class DataConfig(_JsonConfig):
    """Which images a run trains on and which it holds out.

    ``datasets`` are Hub data set ids, local folders or local zips. ``pairs``
    gives each data set's CSV of aligned T1/T2 file names (columns ``t1,t2``;
    an empty string for a data set without one); with one data set a single
    entry. ``weights`` are the data sets' sampling weights (default: equal,
    so that a small set is not drowned by a large one). ``pair_shares`` are
    the fractions of each data set's draws that are aligned pairs in paired
    training (default: its training pairs over its images of the larger
    contrast), so that a data set's few pairs can be drawn more often than
    its unpaired images. ``holdout_subjects``
    are whole subjects kept out of training (both contrasts, every slice); a
    subject is the first group of ``subject_pattern`` matched in a file name.
    ``holdout_fraction`` of the aligned pairs of every data set without a
    held-out subject stay out of training too, spread over the slice range;
    ``val_fraction`` of the images of a data set with nothing held out form
    its validation split (by file name).
    """

    datasets: tuple = option(
        (DEFAULT_DATASET,), "Hub data set id, local folder or local zip (Tr1/TrainT1/*.png, Tr2/TrainT2/*.png); "
        f"give it several times to mix data sets (default: {DEFAULT_DATASET})",
        flag="--dataset", item=str, action="append", cli_default=None, metavar="SOURCE")
    pairs: tuple = option(
        (), "CSV of aligned T1/T2 file names (columns t1,t2): one per --dataset, in order ('none' for a data "
        "set without pairs, 'aligned' for a NIfTI data set: the slices of a visit's T1w and T2w on one grid); "
        "held-out pairs stay out of training, the others feed --paired-weight",
        flag="--holdout-pairs", item=str, action="append", cli_default=None, metavar="CSV")
    weights: tuple = option(
        (), "sampling weight of each --dataset, in order (default: equal weights, so that a small data set is "
        "not drowned)", flag="--dataset-weight", item=float, action="append", cli_default=None, metavar="W")
    pair_shares: tuple = option(
        (), "fraction of each --dataset's draws that are aligned pairs in paired training, in order, each in [0, 1] "
        "(default: its training pairs over its images of the larger contrast; 0 for a data set without pairs)",
        flag="--pair-share", item=float, action="append", cli_default=None, metavar="F")
    holdout_fraction: float = option(
        0.15, "fraction of the pairs in --holdout-pairs to hold out, spread over the slice range (data sets "
        "with a held-out subject hold out that subject instead)")
    holdout_subjects: tuple = option(
        (), "hold out these whole subjects (every slice, both contrasts); their aligned pairs are the "
        "held-out pairs of their data set", item=str, nargs="+", cli_default=None, metavar="SUBJECT")
    subject_pattern: str = option(DEFAULT_SUBJECT_PATTERN, "regular expression whose first group names a "
                                  "file's subject", metavar="REGEX")
    val_fraction: float = option(0.1, "fraction of images (chosen by file name) kept for validation in data "
                                 "sets with nothing held out")
    max_images: int | None = option(None, "read at most this many images per data set (smoke runs)", item=int)
    planes: tuple = option(
        ("axial",), "planes NIfTI volume data sets are cut in (any of axial, coronal, sagittal, read from each "
        "volume's header; PNG data sets are what they are)", item=str, nargs="+", metavar="PLANE")
    registered_pairs: str = option(
        "paired", "how the training pairs of NIfTI visits aligned by registration (--holdout-pairs aligned) "
        "train: 'paired', through the paired terms like pairs aligned as given, or 'unpaired', through the "
        "cycle and the discriminators only (their held-out pairs are scored all the same)",
        choices=["paired", "unpaired"])

    def __post_init__(self):
        set_ = lambda k, v: object.__setattr__(self, k, v)  # noqa: E731  (frozen)
        set_("planes", _as_tuple("planes", self.planes, str))
        _check_choice(self, "registered_pairs")
        if not self.planes or len(set(self.planes)) != len(self.planes) or not set(self.planes) <= set(PLANES):
            raise ConfigError(f"planes must be one or more of {', '.join(PLANES)}, each once; got "
                              f"{', '.join(self.planes) or 'none'}")
        set_("datasets", _as_tuple("datasets", self.datasets, str))
        set_("pairs", _as_tuple("pairs", self.pairs, str))
        set_("weights", _as_tuple("weights", self.weights, float))
        set_("pair_shares", _as_tuple("pair_shares", self.pair_shares, float))
        set_("holdout_subjects", _as_tuple("holdout_subjects", self.holdout_subjects, str))
        if not self.datasets or any(not d.strip() for d in self.datasets):
            raise ConfigError("datasets must name at least one data set, none of them empty")
        for name, values in (("pairs", self.pairs), ("weights", self.weights), ("pair_shares", self.pair_shares)):
            if len(values) not in (0, len(self.datasets)):
                raise ConfigError(
                    f"give {name} once per data set ({len(self.datasets)}), or not at all; got {len(values)}"
                )
        if self.weights and sum(self.weights) <= 0:
            raise ConfigError("weights must not all be zero")
        for index, share in enumerate(self.pair_shares):
            _check_float("pair_shares", share, 0.0, 1.0)
            if share > 0 and self.pairs_of(index) is None:
                raise ConfigError(f"pair share {share:g} for data set {index + 1} ({self.datasets[index]}), which has "
                                  "no pair list: give it one with --holdout-pairs, or a share of 0")
        _check_float("holdout_fraction", self.holdout_fraction, 0.0, 1.0)
        _check_float("val_fraction", self.val_fraction, 0.0, 1.0)
        for name in ("holdout_fraction", "val_fraction"):
            if getattr(self, name) >= 1.0:
                raise ConfigError(f"{name} must be below 1, got {getattr(self, name)}")
        if not isinstance(self.subject_pattern, str):
            raise ConfigError(f"subject_pattern must be a regular expression, got {self.subject_pattern!r}")
        try:
            compiled = re.compile(self.subject_pattern)
        except re.error as err:
            raise ConfigError(f"subject_pattern {self.subject_pattern!r} is not a regular expression: {err}") from None
        if compiled.groups < 1:
            raise ConfigError(f"subject_pattern {self.subject_pattern!r} needs a group: (...) names the subject")
        if self.max_images is not None:
            _check_int("max_images", self.max_images, 1)

    def pairs_of(self, index: int) -> str | None:
        """The pair-list CSV of data set ``index``, or None."""
        return (self.pairs[index] or None) if self.pairs else None

    def weight_of(self, index: int) -> float:
        return self.weights[index] if self.weights else 1.0

    def pair_share_of(self, index: int) -> float | None:
        """The share of data set ``index``'s draws that are aligned pairs, or None for its own."""
        return self.pair_shares[index] if self.pair_shares else None


@dataclasses.dataclass(frozen=True)
class TrainConfig(_JsonConfig):
    """Training hyper-parameters; the defaults are the reference CycleGAN's but for the
    recipe that learns the right contrast without pairs (benchmarks/NOTES.md,
    tests/test_learning.py): the identity term is off (``identity_weight`` 0), as on
    unpaired T1/T2 data it pulls each generator toward keeping its input's contrast; a
    MIND structure term between each input and its translation is on
    (``structure_weight`` 5), which keeps the anatomy whatever the contrast; the
    generators first fit their inputs' inversion for ``inversion_warmup`` (300) steps, so
    that training starts on the side of the target contrast; and a batch of 4 at twice the
    reference's learning rate (``batch_size`` 4, ``learning_rate`` 4e-4), which learns more
    per step than the reference's batch of 1 at 2e-4.

    The learning rate stays constant for ``epochs - decay_epochs`` epochs, then
    decays linearly to zero over the last ``decay_epochs`` epochs.
    ``identity_weight`` is relative to ``cycle_weight`` (0.5 means an identity
    loss weighted 0.5 x 10 = 5), as in the reference. ``edge_weight`` counts the paired
    term's pixels within 3 px of each target's edge (the head's, or a skull-stripped
    slice's brain) ``1 + edge_weight`` times; ``paired_ssim_weight`` adds 1 - SSIM of each
    translation and its partner to it. ``skull_strip`` is the
    fraction of aligned training pairs shown skull-stripped (paired training
    only; 0 = never). ``zoom`` is the fraction of training images shown magnified or
    shrunk about their centre (both images of a pair alike), so that other fields of
    view and pixel sizes translate too. ``blur`` is the fraction of training images shown
    Gaussian-blurred (both images of a pair alike), so that smooth,
    low-resolution inputs translate too. ``contrast`` is the fraction of
    generator inputs shown with a random gamma (their targets, the
    discriminators' real images and the cycle targets stay as they are), so
    that other scanners' and sequences' tissue contrast translates too.
    ``diff_augment`` is the fraction of discriminator inputs shown through a random
    shift and cutout (DiffAugment): the same random map for real and generated images,
    differentiable, so the generators learn through it. ``inversion_warmup`` steps first
    fit each generator alone to its input's inversion (:func:`cyclegan.training.invert_tissue`).
    ``refine_steps`` steps then fit the generators' refiners (``ModelConfig.refiner_width``)
    alone to the aligned training pairs (:func:`cyclegan.training.fit_refiners`).
    ``generator_ema`` keeps an exponential moving average of the generators' weights with that
    momentum (Keras's optimizer EMA); what a run exports, checks and reports is the average.
    """

    epochs: int = option(200, "total epochs")
    decay_epochs: int = option(100, "last epochs with linearly decaying learning rate (default: half of "
                               "--epochs)", cli_default=None)
    steps_per_epoch: int = option(100, "batches per epoch")
    batch_size: int = option(4, "images per domain per batch")
    learning_rate: float = option(4e-4, "Adam learning rate, both sides")
    beta_1: float = option(0.5, "Adam beta_1")
    beta_2: float = option(0.999, "Adam beta_2")
    gan_loss: str = option("lsgan", "adversarial loss", choices=["lsgan"])
    cycle_weight: float = option(10.0, "weight of the cycle-consistency L1 loss")
    identity_weight: float = option(0.0, "identity loss weight, relative to --cycle-weight (the reference "
                                    "CycleGAN's 0.5 rewards keeping the input's contrast: without pairs it "
                                    "learns the wrong tissue order)")
    paired_weight: float = option(0.0, "weight of a paired L1 term on aligned pairs (needs --holdout-pairs; "
                                  "0 = pure CycleGAN)")
    edge_weight: float = option(0.0, "extra weight of the paired L1 term within 3 px of the edge of each "
                                "target's head, or brain when skull-stripped (where skull-stripped inputs err "
                                "most); 4 counts those pixels 5 times (needs --paired-weight; 0 = off)")
    paired_ssim_weight: float = option(0.0, "weight of an SSIM term beside the paired L1 term: 1 - the mean "
                                       "SSIM of each translation and its aligned partner, in 7x7 windows at the "
                                       "head or brain, as the evaluation measures it (needs --paired-weight; "
                                       "0 = off)")
    structure_weight: float = option(5.0, "weight of a MIND structure term between each generator input and "
                                     "its translation (modality independent: it keeps the anatomy and leaves "
                                     "the contrast to the discriminators; needs no pairs; 0 = off)")
    skull_strip: float = option(0.0, "fraction of aligned pairs shown skull-stripped, so that brain-only "
                                "inputs translate well too (needs --paired-weight)", metavar="FRACTION")
    zoom: float = option(0.0, "fraction of training images shown zoomed 0.6-1.4 times about their centre "
                         "(both images of a pair alike), so that other fields of view and pixel sizes "
                         "translate well too", metavar="FRACTION")
    blur: float = option(0.0, "fraction of training images shown Gaussian-blurred (sigma 0.5-2 px; both "
                         "images of a pair alike), so that smooth, low-resolution inputs translate well too",
                         metavar="FRACTION")
    contrast: float = option(0.0, "fraction of generator inputs shown with a random gamma (0.5-2; their "
                             "targets stay), so that other scanners' tissue contrast translates well too",
                             metavar="FRACTION")
    slice_thickness: float = option(0.0, "fraction of training images shown as cut across thick slices (a box "
                                    "average over 2-5 px along rows or columns; both images of a pair alike), so "
                                    "that coronal and sagittal cuts of clinical 2-D scans translate well too",
                                    metavar="FRACTION")
    bias_field: float = option(0.0, "fraction of generator inputs shown under a smooth random bias field (10-40 per cent "
                               "from flat; their targets stay), so that other coils' uneven sensitivity "
                               "translates well too", metavar="FRACTION")
    noise: float = option(0.0, "fraction of generator inputs shown with Rician noise (sigma 1-5 per cent of the range; "
                          "their targets stay), so that noisier scanners translate well too", metavar="FRACTION")
    diff_augment: float = option(0.0, "fraction of discriminator inputs, real and generated alike, shifted by up "
                                 "to 1/8 of the crop and given a hole of half its size (DiffAugment, Zhao et al. "
                                 "2020), so that the discriminators cannot learn a small data set by heart; 0 = "
                                 "off", metavar="FRACTION")
    inversion_warmup: int = option(300, "steps that first fit each generator, alone, to its input's inversion "
                                   "(tissue mirrored, air and bone kept dark: T1 and T2 order CSF, grey and "
                                   "white matter in reverse), so that the CycleGAN starts on the side of the "
                                   "target contrast; no pairs needed; skipped with --init-from and when a run "
                                   "resumes; 0 = off", metavar="STEPS")
    generator_ema: float = option(0.0, "momentum of an exponential moving average of the generators' weights, "
                                  "updated every step (the optimizer's EMA); exports, checks and the held-out "
                                  "report use the average, training goes on from the last step's weights; "
                                  "0 = off", metavar="MOMENTUM")
    refine_steps: int = option(0, "after the CycleGAN schedule, steps that fit each generator's refiner "
                               "(--refiner-width) alone, the rest of the generator frozen, to the aligned "
                               "training pairs: L1 on 96x96 crops, 16 a batch, the edge band weighted as by "
                               "--edge-weight, every pair as given and, with --skull-strip, skull-stripped too, "
                               "and with --contrast each once more with a random gamma on the input; "
                               "a resumed run that had finished its schedule does this stage again; 0 = off",
                               metavar="STEPS")
    refine_learning_rate: float = option(1e-3, "Adam learning rate of the refiner stage (--refine-steps)")
    pool_size: int = option(50, "image pool size (0 disables the pool)")
    mixed_precision: bool = option(False, "bf16 mixed precision (GPUs, CPUs with bf16 units)")
    seed: int = option(0, "random seed (weight initialisation, data order, image pools)")
    restarts: int = option(2, "start again, from the next seed, when the first check without pairs made "
                           f"after {RESTART_CHECK_STEPS} steps finds the tissue order right on fewer than half "
                           "of the translations (the start kept the input's contrast, which no measured start "
                           "recovered from) or the air around the head painted grey; at most this many times; "
                           "the set-aside starts stay in "
                           "failed_starts/ (needs --check-images and --save-every; 0: never)")

    def __post_init__(self):
        _check_int("epochs", self.epochs, 1)
        _check_int("decay_epochs", self.decay_epochs, 0)
        if self.decay_epochs > self.epochs:
            raise ConfigError(
                f"decay_epochs ({self.decay_epochs}) cannot exceed epochs ({self.epochs})"
            )
        _check_int("steps_per_epoch", self.steps_per_epoch, 1)
        _check_int("batch_size", self.batch_size, 1, 4096)
        _check_float("learning_rate", self.learning_rate, 0.0, 1.0)
        if self.learning_rate <= 0:
            raise ConfigError(f"learning_rate must be positive, got {self.learning_rate}")
        _check_float("beta_1", self.beta_1, 0.0, 1.0)
        _check_float("beta_2", self.beta_2, 0.0, 1.0)
        _check_choice(self, "gan_loss")
        _check_float("cycle_weight", self.cycle_weight, 0.0)
        _check_float("identity_weight", self.identity_weight, 0.0)
        _check_float("structure_weight", self.structure_weight, 0.0)
        _check_float("paired_weight", self.paired_weight, 0.0)
        _check_float("edge_weight", self.edge_weight, 0.0)
        if self.edge_weight > 0 and self.paired_weight <= 0:
            raise ConfigError("edge_weight needs paired_weight > 0 (--edge-weight weighs the edge band of the "
                              "paired term: give --paired-weight too)")
        _check_float("paired_ssim_weight", self.paired_ssim_weight, 0.0)
        if self.paired_ssim_weight > 0 and self.paired_weight <= 0:
            raise ConfigError("paired_ssim_weight needs paired_weight > 0 (--paired-ssim-weight compares each "
                              "translation with its aligned partner: give --paired-weight too)")
        _check_float("skull_strip", self.skull_strip, 0.0, 1.0)
        if self.skull_strip > 0 and self.paired_weight <= 0:
            raise ConfigError("skull_strip needs paired_weight > 0 (--skull-strip needs --paired-weight: both "
                              "images of a pair are stripped with one brain mask)")
        _check_float("zoom", self.zoom, 0.0, 1.0)
        _check_float("blur", self.blur, 0.0, 1.0)
        _check_float("contrast", self.contrast, 0.0, 1.0)
        _check_float("slice_thickness", self.slice_thickness, 0.0, 1.0)
        _check_float("bias_field", self.bias_field, 0.0, 1.0)
        _check_float("noise", self.noise, 0.0, 1.0)
        _check_float("diff_augment", self.diff_augment, 0.0, 1.0)
        _check_int("inversion_warmup", self.inversion_warmup, 0, 1_000_000)
        _check_float("generator_ema", self.generator_ema, 0.0, 1.0)
        if self.generator_ema >= 1.0:
            raise ConfigError("generator_ema must be under 1 (1 would never move the average), "
                              f"got {self.generator_ema}")
        _check_int("refine_steps", self.refine_steps, 0, 1_000_000)
        _check_float("refine_learning_rate", self.refine_learning_rate, 0.0, 1.0)
        if self.refine_learning_rate <= 0:
            raise ConfigError(f"refine_learning_rate must be positive, got {self.refine_learning_rate}")
        if self.refine_steps and self.generator_ema:
            raise ConfigError("refine_steps cannot be combined with generator_ema: the refiner stage trains the "
                              "generators' own weights, and the export would replace them with the average "
                              "(drop --generator-ema or --refine-steps)")
        _check_int("pool_size", self.pool_size, 0, 10000)
        if not isinstance(self.mixed_precision, bool):
            raise ConfigError(f"mixed_precision must be true or false, got {self.mixed_precision!r}")
        _check_int("seed", self.seed, 0)
        _check_int("restarts", self.restarts, 0, 100)

    # The MIND term was off before it existed; runs never started again before restarts existed,
    # nor were warmed up before the inversion warm-up existed.
    ABSENT_MEANS = {"structure_weight": 0.0, "restarts": 0, "inversion_warmup": 0}

    @property
    def constant_epochs(self) -> int:
        return self.epochs - self.decay_epochs


def check_run(train_config: TrainConfig, data_config: DataConfig, model_config: "ModelConfig | None" = None) -> None:
    """Checks across configs: what one run's options must agree on."""
    if model_config is not None and train_config.refine_steps and not model_config.refiner_width:
        raise ConfigError("--refine-steps needs generators with a refiner: give --refiner-width (refine_steps "
                          "needs refiner_width; the default model's is 32)")
    if train_config.paired_weight > 0 and not any(data_config.pairs):
        raise ConfigError("paired_weight needs a pair list (--paired-weight needs --holdout-pairs: the file "
                          "that says which slices are aligned)")
    if train_config.refine_steps and not any(data_config.pairs):
        raise ConfigError("refine_steps needs a pair list (--refine-steps fits the refiners to aligned pairs: "
                          "give --holdout-pairs, the file that says which slices are aligned)")
    if data_config.pair_shares and train_config.paired_weight <= 0:
        raise ConfigError("pair_shares needs paired_weight > 0 (--pair-share says how often pairs are drawn for "
                          "the paired term of --paired-weight)")


@dataclasses.dataclass(frozen=True)
class RunOptions:
    """Options of one train command run that are not part of the model, data or training
    configuration (where it writes, how it runs, where it pushes)."""

    output: str = option("runs/cyclegan", "output folder (model, backups, logs, samples)")
    preset: str = option("small", "architecture: tiny (tests), small (the CPU default model), reference "
                         "(ResNet-9)", choices=["tiny", "small", "reference"])
    init_from: str | None = option(None, "start both generators from a saved model of the same architecture "
                                   "(fine-tuning); one without skips may start a run with --skips",
                                   item=str, metavar="FOLDER_OR_REPO")
    backend: str | None = option(None, "Keras backend (default: KERAS_BACKEND, else tensorflow)", item=str,
                                 choices=["tensorflow", "jax"])
    multi_host: bool = option(False, "join a multi-host JAX run (keras.distribution.initialize; reads "
                              "KERAS_DISTRIBUTION_JOB_ADDRESSES, _NUM_PROCESSES, _PROCESS_ID)")
    save_every: int = option(5, "export the model folder every N epochs")
    check_images: int = option(8, "images of each contrast (spread over the training images) checked at every "
                               "export without pairs: the tissue order of their translations and the round-trip "
                               "error; the best-checked export is kept in best/ (0: no checks)")
    verbose: int = option(1, "0 silent, 1 progress bar, 2 one line per epoch", choices=[0, 1, 2])
    push_to_hub: str | None = option(None, "push the model to this Hub repo at the end (token: HF_TOKEN or the "
                                     "saved login)", item=str, metavar="USER/REPO")
    push_every: int = option(0, "also push every N epochs (0: only at the end)")
    private: bool = option(False, "create the Hub repo as private")

    def __post_init__(self):
        for name in ("save_every", "push_every", "check_images"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name.replace('_', '-')} must be 0 or more, got {getattr(self, name)}")


#: Argument groups of the command line, each built from one dataclass's fields.
TRAIN_GROUPS = (("data", DataConfig), ("model", ModelConfig), ("training", TrainConfig), ("run", RunOptions))
#: Fields whose flag defaults to None: the value then comes from elsewhere (a preset, --epochs, the config).
DERIVED = {cls: {f.name for f in dataclasses.fields(cls) if "cli_default" in f.metadata
                  and f.metadata["cli_default"] is None} for _, cls in TRAIN_GROUPS}


#: Directions ``mri-cyclegan translate`` takes: "auto" lets the model's contrast check choose per input.
TRANSLATE_DIRECTIONS = ("auto", "t1_to_t2", "t2_to_t1")
#: Planes a volume is cut in (read from the NIfTI header).
PLANES = ("axial", "coronal", "sagittal")
#: Inference precisions (:func:`cyclegan.inference.resolve_precision`).
PRECISIONS = ("auto", "float32", "bfloat16")


@dataclasses.dataclass(frozen=True)
class TranslateConfig(_JsonConfig):
    """Options of ``mri-cyclegan translate`` (translating files, folders and BIDS data sets)."""

    direction: str = option("auto", "t1_to_t2, t2_to_t1, or auto: the model's contrast check chooses for each "
                            "input and the log says what it chose", choices=TRANSLATE_DIRECTIONS)
    plane: str = option("axial", "plane NIfTI volumes are translated in, read from the header", choices=PLANES)
    model: str | None = option(None, "Hub repo id (USER/REPO) or local model folder (default: the model "
                               "shipped with the package)", item=str, metavar="USER/REPO|FOLDER")
    batch_size: int = option(8, "slices of a volume translated at once")
    precision: str = option("auto", "inference precision; auto = bfloat16 on CPUs with bf16 units under "
                            "TensorFlow, else float32", choices=PRECISIONS)
    overwrite: bool = option(False, "translate again inputs whose output exists (by default they are skipped, "
                             "so an interrupted run continues where it stopped)")

    def __post_init__(self):
        for name in ("direction", "plane", "precision"):
            _check_choice(self, name)
        _check_int("batch_size", self.batch_size, 1, 512)
        if self.model is not None and (not isinstance(self.model, str) or not self.model.strip()):
            raise ConfigError(f"model must be a Hub repo id or a folder, got {self.model!r}")
        if not isinstance(self.overwrite, bool):
            raise ConfigError(f"overwrite must be true or false, got {self.overwrite!r}")


#: Named architectures. ``reference`` is the original CycleGAN (ResNet-9, 70x70
#: PatchGAN); ``small`` is the CPU-friendly size of the default model, with resize-convolution
#: upsampling (ahead of transposed convolutions in every unpaired comparison measured,
#: benchmarks/NOTES.md; the shipped model and runs started before keep their own); ``tiny``
#: exists for tests and smoke runs.
PRESETS: dict[str, ModelConfig] = {
    "reference": ModelConfig(),
    "small": ModelConfig(generator_filters=32, generator_blocks=6, discriminator_filters=32, upsampling="resize"),
    "tiny": ModelConfig(
        image_size=32,
        generator_filters=4,
        generator_blocks=1,
        discriminator_filters=4,
        discriminator_layers=2,
    ),
}


def preset(name: str) -> ModelConfig:
    """The :class:`ModelConfig` of a named preset."""
    try:
        return PRESETS[name]
    except KeyError:
        raise ConfigError(
            f"unknown preset {name!r}; choose one of: {', '.join(sorted(PRESETS))}"
        ) from None
