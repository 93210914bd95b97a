"""Training recipes as TOML files: ``python -m train --config FILE.toml``."""

import json

import pytest

from conftest import make_zip

from cyclegan.errors import ConfigError
from cyclegan import recipe
from train.cli import build_parser, main


@pytest.fixture(scope="module")
def data_zip(tmp_path_factory):
    return make_zip(tmp_path_factory.mktemp("data") / "mri.zip", n_t1=6, n_t2=7)


def write(path, text):
    path.write_text(text, encoding="utf-8")
    return path


def tiny_recipe(data_zip, output, extra=""):
    return (f'dataset = ["{data_zip}"]\noutput = "{output}"\npreset = "tiny"\nsteps-per-epoch = 2\n'
            f'epochs = 1\nverbose = 2\nsave-every = 1\ninversion-warmup = 0\ncheck-images = 2\n{extra}')


def test_keys_become_flags_and_the_command_line_overrides_the_file():
    parser = build_parser()
    values = {"dataset": ["a", "b"], "holdout_pairs": ["none", "p.csv"], "planes": ["axial", "coronal"],
              "paired-weight": 100, "mixed-precision": True, "skips": False, "epochs": 3}
    argv = recipe.merged_argv(values, ["--epochs", "5", "--dataset", "c"], parser, "r.toml")
    args = parser.parse_args(argv)
    assert args.datasets == ["c"]  # the command line's list replaces the file's
    assert args.pairs == ["none", "p.csv"] and args.planes == ["axial", "coronal"]
    assert args.paired_weight == 100.0 and args.mixed_precision is True and not args.skips
    assert args.epochs == 5


@pytest.mark.parametrize("values, message", [
    ({"paired-wieght": 1}, "unknown key 'paired-wieght'"),
    ({"epochs": [1, 2]}, "epochs takes one value, not a list"),
    ({"skips": "yes"}, "skips is a switch"),
    ({"model": {"a": 1}}, "unknown key"),
])
def test_bad_keys_are_refused_with_what_is_wrong(values, message):
    with pytest.raises(ConfigError, match=message):
        recipe.to_argv(values, build_parser())


def test_a_recipe_that_is_not_toml_or_missing_is_a_usage_error(tmp_path, capsys):
    bad = write(tmp_path / "bad.toml", "epochs = = 3\n")
    assert main(["--config", str(bad)]) == 2
    assert "is not a TOML file" in capsys.readouterr().err
    assert main(["--config", str(tmp_path / "missing.toml")]) == 2
    assert "cannot read the recipe" in capsys.readouterr().err
    typo = write(tmp_path / "typo.toml", "epochz = 3\n")
    assert main(["--config", str(typo)]) == 2
    assert "unknown key 'epochz'" in capsys.readouterr().err


def test_a_run_writes_its_resolved_recipe_and_a_replay_trains_the_same_run(tmp_path, data_zip):
    first = tmp_path / "first"
    file = write(tmp_path / "r.toml", tiny_recipe(data_zip, first, "learning-rate = 3e-4\nzoom = 0.5\n"))
    assert main(["--config", str(file), "--seed", "3"]) == 0
    written = recipe.read(first / "recipe.toml")
    assert written["learning-rate"] == 3e-4 and written["zoom"] == 0.5 and written["seed"] == 3
    from cyclegan.config import preset

    assert written["dataset"] == [str(data_zip)]
    assert written["generator-filters"] == preset("tiny").generator_filters
    assert "push-to-hub" not in written
    record = json.loads((first / "run.json").read_text())
    assert "--config" in record["command"]

    again = tmp_path / "again"
    assert main(["--config", str(first / "recipe.toml"), "--output", str(again)]) == 0
    replayed = json.loads((again / "run.json").read_text())
    for key in ("model_config", "train_config", "data_config"):
        assert replayed[key] == record[key], key
    assert recipe.read(again / "recipe.toml") == {**written, "output": str(again)}


def test_stages_start_each_from_the_one_before_and_a_finished_stage_is_skipped(tmp_path, data_zip, caplog):
    out = tmp_path / "staged"
    file = write(tmp_path / "s.toml", tiny_recipe(data_zip, out) +
                 '\n[[stage]]\nname = "first"\n\n[[stage]]\nlearning-rate = 1e-5\n')
    assert main(["--config", str(file)]) == 0
    first, second = out / "first", out / "stage-2"
    assert (first / recipe.STAGE_DONE).is_file() and (second / recipe.STAGE_DONE).is_file()
    second_run = json.loads((second / "run.json").read_text())
    assert second_run["init_from"] == str(first) and second_run["train_config"]["learning_rate"] == 1e-5
    assert json.loads((first / "run.json").read_text())["init_from"] is None
    before = (second / "run.json").stat().st_mtime_ns
    caplog.set_level("INFO")
    assert main(["--config", str(file)]) == 0
    assert "already done" in caplog.text and (second / "run.json").stat().st_mtime_ns == before
    # --output on the command line moves the whole recipe
    elsewhere = tmp_path / "elsewhere"
    assert main(["--config", str(file), "--output", str(elsewhere), "--epochs", "1"]) == 0
    assert (elsewhere / "first" / recipe.STAGE_DONE).is_file() and (elsewhere / "stage-2" / "run.json").is_file()


def test_a_staged_recipe_needs_an_output_and_plain_stage_names(tmp_path):
    with pytest.raises(ConfigError, match="needs an output"):
        recipe.stages({"stage": [{}]}, "r.toml")
    with pytest.raises(ConfigError, match="plain folder name"):
        recipe.stages({"output": "o", "stage": [{"name": "../x"}]}, "r.toml")


def test_the_shipped_recipes_and_the_documented_one_are_valid(tmp_path):
    import re

    from conftest import ROOT

    files = sorted((ROOT / "recipes").glob("*.toml"))
    documented = re.findall(r"```toml\n(.*?)```", (ROOT / "docs" / "training.md").read_text(), re.S)
    assert files and documented
    files += [write(tmp_path / f"doc{i}.toml", text) for i, text in enumerate(documented)]
    parser = build_parser()
    for file in files:
        found = recipe.stages(recipe.read(file), file.name)
        for name, keys in found:
            parser.parse_args(recipe.to_argv(keys, parser, file.name))
        assert len(found) > 1 or not file.name.startswith("doc")


def test_the_shipped_models_recipe_runs_every_stage_from_the_one_before(tmp_path, monkeypatch):
    """recipes/default-model.toml on stand-ins of its three data sets, every stage shrunk to one step
    of the tiny model: the twenty-one stages chain (each from the one before), the second data set
    and its held-out subject join at mix1, the refiner at mix7-refiner, the volumes (three planes,
    four participants held out) at clin1, resize convolutions from clin3r to the last stage, and the
    record names the data sets, never this machine's paths."""
    from PIL import Image

    from conftest import ROOT, make_folder, phantom_slice
    from cyclegan.data import DATA_ROOT_ENV
    from test_volume_data import head_volumes, save

    root = tmp_path / "data"
    make_folder(root / "mri-t1t2-unpaired", n=6, size=(40, 36))
    (root / "mri-t1t2-unpaired" / "PAIRS.csv").write_text(
        "t1,t2\n" + "".join(f"Tr1/TrainT1/Image #{i}.png,Tr2/TrainT2/Image #{i}.png\n" for i in range(6)))
    real = root / "real-t1t2"
    for domain in ("T1", "T2"):
        (real / f"Tr{domain[1]}" / f"Train{domain}").mkdir(parents=True)
    rows = ["t1,t2"]
    for subject in ("openms-cs-patient07", "openms-cs-patient19", "openms-long-patient01"):
        for z in (10, 12, 14):
            name = f"{subject}_z{z:03d}.png"
            for domain, seed in (("T1", z), ("T2", z + 1)):
                Image.fromarray(phantom_slice(40, 36, seed=seed)).save(real / f"Tr{domain[1]}" / f"Train{domain}" / name)
            if "long" not in subject:
                rows.append(f"Tr1/TrainT1/{name},Tr2/TrainT2/{name}")
    (real / "PAIRS.csv").write_text("\n".join(rows) + "\n")
    t1, t2 = head_volumes(n=10, size=48)
    for participant in ("openmslong01", "openmslong04", "openmscs07", "bratscase", "gliomagan"):
        for suffix, volume in (("T1w", t1), ("T2w", t2)):
            save(root / "real-t1t2-volumes" / f"sub-{participant}" / "anat" / f"sub-{participant}_{suffix}.nii.gz", volume)
    monkeypatch.setenv(DATA_ROOT_ENV, str(root))
    monkeypatch.setenv("MRI_CYCLEGAN_CACHE", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    shipped = (ROOT / "recipes" / "default-model.toml").read_text()
    assert shipped.count("refine-steps = 2000") == 1
    file = write(tmp_path / "default-model.toml", shipped.replace("refine-steps = 2000", "refine-steps = 2"))
    stages = [name for name, _ in recipe.stages(recipe.read(file), file.name)]
    assert len(stages) == 21
    shrink = ["--preset", "tiny", "--image-size", "32", "--epochs", "1", "--decay-epochs", "1",
              "--steps-per-epoch", "1", "--save-every", "1", "--check-images", "0", "--output", "runs/rebuild"]
    assert main(["--config", str(file), *shrink]) == 0
    out = tmp_path / "runs" / "rebuild"
    before = None
    for name in stages:
        run = json.loads((out / name / "run.json").read_text())
        assert (out / name / recipe.STAGE_DONE).is_file()
        assert run["init_from"] == (f"runs/rebuild/{before}" if before else None)
        before = name
    first, refined, volumes, last = (json.loads((out / n / "config.json").read_text())
                                     for n in (stages[0], "mix7-refiner", "clin1", stages[-1]))
    assert first["training"]["data_config"]["datasets"] == ["mri-t1t2-unpaired"]
    assert refined["training"]["data_config"]["datasets"] == ["mri-t1t2-unpaired", "real-t1t2"]
    assert refined["training"]["data_config"]["holdout_subjects"] == ["openms-cs-patient07"]
    assert refined["model_config"]["refiner_width"] == 32 and refined["model_config"]["upsampling"] == "transpose"
    assert volumes["model_config"]["upsampling"] == "transpose"
    assert last["training"]["data_config"]["datasets"] == ["mri-t1t2-unpaired", "real-t1t2-volumes"]
    assert last["training"]["data_config"]["holdout_subjects"] == ["openmslong04", "openmscs07", "bratscase",
                                                                   "gliomagan"]
    assert last["training"]["data_config"]["planes"] == ["axial", "coronal", "sagittal"]
    assert last["model_config"]["refiner_width"] == 32 and last["model_config"]["upsampling"] == "resize"
    assert str(root) not in (out / stages[-1] / "config.json").read_text()
