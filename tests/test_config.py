import json

import pytest

from cyclegan.config import PRESETS, ModelConfig, TrainConfig, preset
from cyclegan.errors import ConfigError


@pytest.mark.parametrize("cls", [ModelConfig, TrainConfig])
def test_json_round_trip(cls):
    config = cls()
    text = config.to_json()
    assert cls.from_json(text) == config
    assert json.loads(text) == config.to_dict()


def test_round_trip_keeps_changed_values():
    config = TrainConfig(epochs=7, decay_epochs=3, paired_weight=2.5, mixed_precision=True)
    assert TrainConfig.from_json(config.to_json()) == config
    assert config.constant_epochs == 4


@pytest.mark.parametrize("cls", [ModelConfig, TrainConfig])
def test_unknown_field_is_named(cls):
    with pytest.raises(ValueError, match="bogus_field"):
        cls.from_dict({"bogus_field": 1})


@pytest.mark.parametrize(
    "cls, field, value",
    [
        (ModelConfig, "image_size", 30),
        (ModelConfig, "image_size", 66),
        (ModelConfig, "channels", 3),
        (ModelConfig, "generator_blocks", -1),
        (ModelConfig, "generator_filters", "64"),
        (ModelConfig, "upsampling", "bilinear"),
        (ModelConfig, "skips", "yes"),
        (ModelConfig, "skips", 1),
        (TrainConfig, "epochs", 0),
        (TrainConfig, "decay_epochs", 500),
        (TrainConfig, "learning_rate", float("nan")),
        (TrainConfig, "learning_rate", 0.0),
        (TrainConfig, "gan_loss", "wgan"),
        (TrainConfig, "batch_size", True),
        (TrainConfig, "mixed_precision", "yes"),
        (TrainConfig, "diff_augment", 1.5),
        (TrainConfig, "diff_augment", -0.1),
        (TrainConfig, "generator_ema", 1.0),
        (TrainConfig, "generator_ema", -0.5),
    ],
)
def test_invalid_value_names_field(cls, field, value):
    with pytest.raises(ConfigError, match=field):
        cls.from_dict({field: value})
    assert issubclass(ConfigError, ValueError)


def test_reference_defaults():
    train = TrainConfig()
    # The unpaired recipe differs from the reference: no identity term, a MIND term (see test_learning),
    # the inversion warm-up, and a batch of 4 at twice the learning rate.
    assert (train.cycle_weight, train.identity_weight, train.pool_size) == (10.0, 0.0, 50)
    assert train.structure_weight == 5.0 and train.inversion_warmup == 300
    assert (train.batch_size, train.learning_rate, train.beta_1, train.gan_loss) == (4, 4e-4, 0.5, "lsgan")
    ref = preset("reference")
    assert (ref.generator_filters, ref.generator_blocks, ref.discriminator_layers) == (64, 9, 3)


def test_a_record_written_before_the_structure_term_existed_reads_as_without_it():
    old = TrainConfig().to_dict()
    del old["structure_weight"]
    assert TrainConfig.from_dict(old).structure_weight == 0.0
    assert TrainConfig.from_dict({**old, "structure_weight": 2.0}).structure_weight == 2.0
    assert TrainConfig.from_dict(TrainConfig().to_dict()) == TrainConfig()  # the round trip keeps the default


def test_a_record_written_before_the_inversion_warmup_existed_reads_as_without_it():
    old = TrainConfig().to_dict()
    del old["inversion_warmup"]
    assert TrainConfig.from_dict(old).inversion_warmup == 0
    assert TrainConfig.from_dict(TrainConfig().to_dict()).inversion_warmup == 300


def test_a_model_saved_before_the_upsampling_option_existed_reads_as_transposed():
    old = ModelConfig(upsampling="resize").to_dict()
    del old["upsampling"]
    assert ModelConfig.from_dict(old).upsampling == "transpose"
    assert ModelConfig.from_dict({**old, "upsampling": "resize"}).upsampling == "resize"


def test_a_model_saved_before_the_skips_option_existed_reads_as_without_them():
    old = ModelConfig(skips=True).to_dict()
    del old["skips"]
    assert ModelConfig.from_dict(old).skips is False
    assert ModelConfig.from_dict({**old, "skips": True}).skips is True
    assert all(not p.skips for p in PRESETS.values())


def test_unknown_preset():
    with pytest.raises(ConfigError, match="tiny"):
        preset("huge")


def test_invalid_json():
    with pytest.raises(ConfigError, match="not valid JSON"):
        ModelConfig.from_json("{nope")
    with pytest.raises(ConfigError, match="JSON object"):
        ModelConfig.from_dict([1, 2])


def test_data_config_checks_and_round_trips():
    from cyclegan.config import DataConfig, DEFAULT_DATASET

    assert DataConfig().datasets == (DEFAULT_DATASET,)
    config = DataConfig(datasets=["a", "b"], pairs=["a.csv", ""], weights=[1, 3], holdout_subjects=["s1"])
    assert config.pairs_of(0) == "a.csv" and config.pairs_of(1) is None and config.weight_of(1) == 3.0
    again = DataConfig.from_json(config.to_json())
    assert again == config and isinstance(again.datasets, tuple)
    for bad, message in (
        ({"datasets": []}, "at least one data set"),
        ({"datasets": ["a", "b"], "pairs": ["x.csv"]}, "once per data set"),
        ({"weights": [0.0]}, "must not all be zero"),
        ({"weights": [-1.0]}, "at least 0"),
        ({"subject_pattern": "(unclosed"}, "not a regular expression"),
        ({"subject_pattern": r"_z\d+"}, "needs a group"),
        ({"holdout_fraction": 1.0}, "below 1"),
        ({"datasets": "a"}, "must be a list"),
        ({"datasets": ["a", "b"], "pairs": ["a.csv", "b.csv"], "pair_shares": [0.5]}, "once per data set"),
        ({"pairs": ["a.csv"], "pair_shares": [1.5]}, "between 0.0 and 1.0"),
        ({"datasets": ["a", "b"], "pairs": ["a.csv", ""], "pair_shares": [0.5, 0.5]}, "no pair list"),
    ):
        with pytest.raises(ConfigError, match=message):
            DataConfig(**bad)


def test_pair_shares_are_per_data_set_and_need_the_paired_term():
    from cyclegan.config import DataConfig, TrainConfig, check_run

    config = DataConfig(datasets=["a", "b"], pairs=["a.csv", ""], pair_shares=[0.75, 0.0])
    assert config.pair_share_of(0) == 0.75 and config.pair_share_of(1) == 0.0
    assert DataConfig(datasets=["a"]).pair_share_of(0) is None
    assert DataConfig.from_json(config.to_json()) == config
    # A record written before the option existed reads as the data sets' own shares.
    old = {k: v for k, v in config.to_dict().items() if k != "pair_shares"}
    assert DataConfig.from_dict(old).pair_shares == ()
    check_run(TrainConfig(paired_weight=1.0), config)
    with pytest.raises(ConfigError, match="pair_shares needs paired_weight"):
        check_run(TrainConfig(), config)


@pytest.mark.parametrize("field, value", [("edge_weight", 4.0), ("paired_ssim_weight", 20.0)])
def test_options_that_weigh_the_paired_term_are_checked(field, value):
    with pytest.raises(ConfigError, match=f"{field} needs paired_weight"):
        TrainConfig(**{field: value})
    with pytest.raises(ConfigError, match=f"{field} must be at least 0"):
        TrainConfig(**{field: -1.0, "paired_weight": 1.0})
    assert getattr(TrainConfig(), field) == 0.0
    # Records written before the option existed ran without it.
    old = TrainConfig(paired_weight=1.0).to_dict()
    del old[field]
    assert getattr(TrainConfig.from_dict(old), field) == 0.0
    from train.cli import build_parser

    flag = "--" + field.replace("_", "-")
    assert getattr(build_parser().parse_args([flag, f"{value:g}"]), field) == value
