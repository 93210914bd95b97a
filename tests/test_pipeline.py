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


def test_the_held_out_report_translates_each_pair_once_per_direction(monkeypatch):
    """With several data sets a held-out pair counts in the pooled rows and in its own data set's:
    it is translated once per direction all the same, and the rows are those of a plain evaluation."""
    import numpy as np

    from conftest import ellipse_pairs
    from cyclegan import callbacks
    from cyclegan.data import Slice, Source
    from cyclegan.evaluation import evaluate_set, rows_to_metrics
    from cyclegan.pipeline import evaluate_holdout

    class Inverting:
        calls = 0

        def translate_with_cycle(self, image, direction):
            Inverting.calls += 1
            return 1.0 - image, image

    monkeypatch.setattr(callbacks, "translator_of", lambda model: Inverting())
    pairs = [(Slice(f"{name}_t1", "t1", (t1 * 2 - 1).astype(np.float32), source=k % 2),
              Slice(f"{name}_t2", "t2", (t2 * 2 - 1).astype(np.float32), source=k % 2))
             for k, (name, t1, t2) in enumerate(ellipse_pairs(4, size=48))]
    sources = [Source({"t1": [], "t2": []}, [], name="users"), Source({"t1": [], "t2": []}, [], name="real one")]
    metrics = evaluate_holdout(None, pairs, sources)
    assert Inverting.calls == 2 * len(pairs)
    unit = [(a.name, (a.image + 1.0) / 2.0, (b.image + 1.0) / 2.0) for a, b in pairs]
    plain = rows_to_metrics(evaluate_set("holdout", unit, Inverting()) +
                            evaluate_set("holdout_real_one", unit[1::2], Inverting()))
    for key, value in plain.items():
        assert metrics[key] == pytest.approx(value), key
    assert "holdout_users_t1_to_t2_ssim" in metrics
    Inverting.calls = 0
    evaluate_holdout(None, pairs[::2], sources)  # one data set: one group, nothing kept
    assert Inverting.calls == 2 * len(pairs[::2])


def test_check_images_of_a_volume_set_are_central_cuts():
    """The checks without pairs read the tissue order, which needs the brain's middle: of a volume's
    cuts only the middle third in each plane is checked; images that are no volume's cut are taken
    as before, evenly over the file order."""
    import numpy as np

    from cyclegan.data import Slice
    from cyclegan.pipeline import check_images

    def image(value):
        return np.full((8, 8), value, np.float32)

    pngs = [Slice(f"Tr1/TrainT1/Image #{i}.png", "t1", image(i / 100)) for i in range(10)]
    cuts = [Slice(f"sub-01_T1w.nii.gz#{plane}{i:03d}", "t1", image(0.5 + i / 1000), volume="sub-01_T1w.nii.gz")
            for plane in ("coronal", "sagittal") for i in range(30)]
    plain = check_images({"t1": pngs}, 5)["t1"]
    assert [round(float(x[0, 0]) * 2 - 1, 2) for x in plain] == [0.0, 0.02, 0.04, 0.06, 0.08]  # as before
    picked = check_images({"t1": pngs + cuts}, 8)["t1"]
    cut_indices = sorted(round((float(x[0, 0]) * 2 - 1 - 0.5) * 1000) for x in picked if x[0, 0] * 2 - 1 >= 0.5)
    assert cut_indices and all(10 <= i <= 20 for i in cut_indices), cut_indices
