import json

import pytest

from cyclegan.config import ModelConfig, TrainConfig, preset
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
        (TrainConfig, "epochs", 0),
        (TrainConfig, "decay_epochs", 500),
        (TrainConfig, "learning_rate", float("nan")),
        (TrainConfig, "learning_rate", 0.0),
        (TrainConfig, "gan_loss", "wgan"),
        (TrainConfig, "batch_size", True),
        (TrainConfig, "mixed_precision", "yes"),
    ],
)
def test_invalid_value_names_field(cls, field, value):
    with pytest.raises(ConfigError, match=field):
        cls.from_dict({field: value})
    assert issubclass(ConfigError, ValueError)


def test_reference_defaults():
    train = TrainConfig()
    assert (train.cycle_weight, train.identity_weight, train.pool_size) == (10.0, 0.5, 50)
    assert (train.learning_rate, train.beta_1, train.gan_loss) == (2e-4, 0.5, "lsgan")
    ref = preset("reference")
    assert (ref.generator_filters, ref.generator_blocks, ref.discriminator_layers) == (64, 9, 3)


def test_unknown_preset():
    with pytest.raises(ConfigError, match="tiny"):
        preset("huge")


def test_invalid_json():
    with pytest.raises(ConfigError, match="not valid JSON"):
        ModelConfig.from_json("{nope")
    with pytest.raises(ConfigError, match="JSON object"):
        ModelConfig.from_dict([1, 2])
