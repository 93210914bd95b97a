"""The training recipe from Python: cyclegan.pipeline.train with the configuration dataclasses."""

import json

import pytest

from conftest import make_zip

from cyclegan.config import DataConfig, RunOptions, TrainConfig, preset
from cyclegan.errors import ConfigError
from cyclegan.pipeline import train


@pytest.fixture(scope="module")
def data_zip(tmp_path_factory):
    return make_zip(tmp_path_factory.mktemp("data") / "mri.zip", n_t1=6, n_t2=7)


def tiny(**changes):
    return TrainConfig(**{"epochs": 1, "decay_epochs": 0, "steps_per_epoch": 2, "inversion_warmup": 0,
                          **changes})


def test_train_runs_from_python_and_writes_the_same_folder_as_the_command(tmp_path, data_zip):
    from cyclegan.hub import load_generators
    from cyclegan.recipe import read

    out = tmp_path / "run"
    result = train(preset("tiny"), tiny(learning_rate=3e-4), DataConfig(datasets=(str(data_zip),)),
                   RunOptions(output=str(out), save_every=1, check_images=2, verbose=0))
    assert result.output == out and not result.push_failed
    for name in ("config.json", "t1_to_t2.keras", "t2_to_t1.keras", "README.md", "recipe.toml", "run.json"):
        assert (out / name).is_file(), name
    assert read(out / "recipe.toml")["learning-rate"] == 3e-4
    assert json.loads((out / "run.json").read_text())["command"] == "cyclegan.pipeline.train()"
    translator = load_generators(out, warmup=False)
    assert translator.config == preset("tiny")


@pytest.mark.parametrize("model, train_config, data, message", [
    (preset("tiny"), tiny(refine_steps=5, paired_weight=1.0), DataConfig(datasets=("x",), pairs=("p.csv",)),
     "--refine-steps needs generators with a refiner"),
    (preset("tiny"), tiny(paired_weight=1.0), DataConfig(datasets=("x",)), "paired_weight needs a pair list"),
])
def test_bad_combinations_raise_the_commands_errors_before_anything_is_written(tmp_path, model, train_config,
                                                                               data, message):
    out = tmp_path / "never"
    with pytest.raises(ConfigError, match=message):
        train(model, train_config, data, RunOptions(output=str(out)))
    assert not out.exists()


def test_run_options_check_themselves():
    with pytest.raises(ConfigError, match="save-every must be 0 or more"):
        RunOptions(save_every=-1)
