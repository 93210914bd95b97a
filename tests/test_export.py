import json

import numpy as np

from cyclegan.hub import load_generators
from train.export import main, quality_metrics

ROWS = [
    {"set": "holdout", "method": "pairs", "pairs": ["a / b"]},
    {"set": "holdout", "direction": "t1_to_t2", "method": "model", "ssim": 0.9, "psnr": 25.0, "mae": 0.03},
    {"set": "holdout", "direction": "t1_to_t2", "method": "identity", "ssim": -0.2, "psnr": 8.0, "mae": 0.3},
    {"set": "holdout", "direction": "t1_to_t2", "method": "inversion", "ssim": 0.6, "psnr": 11.0, "mae": 0.1},
    {"set": "holdout", "direction": "t1_to_t2", "method": "cycle", "cycle_mae": 0.02},
    {"set": "holdout", "direction": "t1_to_t2", "method": "contrast_order", "pass_fraction": 1.0,
     "target_pass_fraction": 0.5},
    {"set": "holdout", "direction": "t1_to_t2", "method": "gamma", "gamma": 0.5, "ssim": 0.8, "psnr": 20.0, "mae": 0.05},
]


def test_quality_rows_become_card_metrics():
    metrics = quality_metrics(["noise"] + [json.dumps(r) for r in ROWS])
    assert metrics == {
        "holdout_t1_to_t2_ssim": 0.9, "holdout_t1_to_t2_psnr": 25.0, "holdout_t1_to_t2_mae": 0.03,
        "holdout_t1_to_t2_best_baseline_ssim": 0.6, "holdout_t1_to_t2_best_baseline_psnr": 11.0,
        "holdout_t1_to_t2_cycle_mae": 0.02, "holdout_t1_to_t2_contrast_order_pass": 1.0,
        "holdout_t1_to_t2_contrast_order_target_pass": 0.5,
        "holdout_t1_to_t2_gamma0.5_ssim": 0.8,
    }


def test_export_adds_quality_to_card(tmp_path, tiny_folder):
    quality = tmp_path / "q.jsonl"
    quality.write_text("\n".join(json.dumps(r) for r in ROWS))
    dest = tmp_path / "dest"
    assert main([str(tiny_folder), str(dest), "--quality", str(quality)]) == 0
    config = json.loads((dest / "config.json").read_text())
    assert config["metrics"]["holdout_t1_to_t2_ssim"] == 0.9
    assert "ssim_t1_to_t2" not in config["metrics"]  # the run's own report, measured again, is replaced
    card = (dest / "README.md").read_text()
    assert "Held-out pairs of the training data" in card
    assert "| T1 → T2 | 0.900 |" in card and "holdout_t1_to_t2_ssim" not in card
    assert "| direction | gamma 0.5 |" in card and "| T1 → T2 | 0.800 |" in card
    exported = load_generators(dest, warmup=False)
    image = np.linspace(0, 1, 48 * 40).reshape(48, 40)
    assert np.array_equal(exported.t1_to_t2(image), load_generators(tiny_folder, warmup=False).t1_to_t2(image))


def test_export_of_missing_run_is_a_clear_error(tmp_path, capsys):
    assert main([str(tmp_path / "nope"), str(tmp_path / "d")]) == 2
    assert "config.json is missing" in capsys.readouterr().err


def test_export_keeps_or_replaces_the_calibration(tmp_path, tiny_folder, tiny_calibration):
    kept = tmp_path / "kept"
    assert main([str(tiny_folder), str(kept)]) == 0
    assert json.loads((kept / "config.json").read_text())["calibration"] == json.loads(json.dumps(tiny_calibration))
    changed = json.loads(json.dumps(tiny_calibration))
    changed["cycle_error"]["t1_to_t2"]["typical"] = 0.123
    quality = tmp_path / "q.jsonl"
    quality.write_text("\n".join(json.dumps(r) for r in ROWS + [
        {"set": "calibration", "method": "calibration", "calibration": changed}]))
    replaced = tmp_path / "replaced"
    assert main([str(tiny_folder), str(replaced), "--quality", str(quality)]) == 0
    config = json.loads((replaced / "config.json").read_text())
    assert config["calibration"]["cycle_error"]["t1_to_t2"]["typical"] == 0.123
    assert "| T1 → T2 | 0.123 |" in (replaced / "README.md").read_text()


def test_export_draws_the_sample_grid_from_given_images(tmp_path, tiny_folder, capsys):
    from PIL import Image

    from conftest import phantom_slice

    t1, t2 = tmp_path / "t1.png", tmp_path / "t2.png"
    for path, seed in ((t1, 0), (t2, 1)):
        Image.fromarray(phantom_slice(48, 40, seed)).save(path)
    dest = tmp_path / "dest"
    assert main([str(tiny_folder), str(dest), "--samples", str(t1), str(t2)]) == 0
    grid = np.asarray(Image.open(dest / "samples.png"))
    assert grid.shape == (2 * 48, 3 * 40)  # two rows (T1, T2) of input, translation, reconstruction
    # The grid's first column is the given images, through the model's intensity window.
    assert np.corrcoef(grid[:48, :40].ravel(), np.asarray(Image.open(t1)).ravel())[0, 1] > 0.99
    assert "![samples](samples.png)" in (dest / "README.md").read_text()
    assert "The inputs:" not in (dest / "README.md").read_text()
    assert main([str(tiny_folder), str(tmp_path / "d2"), "--samples", str(tmp_path / "none.png"), str(t2)]) == 2
    assert "none.png" in capsys.readouterr().err and not (tmp_path / "d2").exists()


def test_the_sample_grids_images_are_credited_in_the_card(tmp_path, tiny_folder, capsys):
    from PIL import Image

    from conftest import phantom_slice

    t1, t2 = tmp_path / "t1.png", tmp_path / "t2.png"
    for path, seed in ((t1, 0), (t2, 1)):
        Image.fromarray(phantom_slice(48, 40, seed)).save(path)
    credit = "slices of the CC-BY open_ms data (Lesjak et al. 2017)."
    dest = tmp_path / "dest"
    assert main([str(tiny_folder), str(dest), "--samples", str(t1), str(t2), "--samples-credit", credit]) == 0
    card = (dest / "README.md").read_text()
    assert f"The inputs: {credit}" in card and card.index("![samples]") < card.index(credit)
    assert json.loads((dest / "config.json").read_text())["training"]["samples_credit"] == credit
    # the credit stays with its grid when only the metadata is rewritten, and goes with a new grid
    assert main([str(dest), str(dest), "--metadata-only", "--note", "again"]) == 0
    assert f"The inputs: {credit}" in (dest / "README.md").read_text()
    assert main([str(dest), str(tmp_path / "d3"), "--samples", str(t1), str(t2)]) == 0
    assert "open_ms" not in (tmp_path / "d3" / "README.md").read_text()
    assert main([str(tiny_folder), str(tmp_path / "d4"), "--samples-credit", credit]) == 2
    assert "give both" in capsys.readouterr().err and not (tmp_path / "d4").exists()


def test_metadata_only_rewrites_config_and_card_and_leaves_the_generators(tmp_path, tiny_folder, capsys):
    import shutil

    folder = tmp_path / "model"
    shutil.copytree(tiny_folder, folder)
    weights = {name: (folder / name).read_bytes() for name in ("t1_to_t2.keras", "t2_to_t1.keras")}
    quality = tmp_path / "q.jsonl"
    quality.write_text("\n".join(json.dumps(r) for r in ROWS))
    assert main([str(folder), str(folder), "--metadata-only", "--quality", str(quality), "--note", "n"]) == 0
    config = json.loads((folder / "config.json").read_text())
    assert config["metrics"]["holdout_t1_to_t2_ssim"] == 0.9 and config["training"]["note"] == "n"
    assert "| T1 → T2 | 0.900 |" in (folder / "README.md").read_text()
    assert {name: (folder / name).read_bytes() for name in weights} == weights
    assert not any(p.name.startswith(".saving") for p in folder.iterdir())
    capsys.readouterr()
    assert main([str(folder), str(tmp_path / "elsewhere"), "--metadata-only"]) == 2
    assert "same folder twice" in capsys.readouterr().err
    assert not (tmp_path / "elsewhere").exists()


def test_export_records_the_recipe_that_rebuilds_the_model_and_its_data_sets_by_name(tmp_path, tiny_folder, capsys):
    import shutil

    folder = tmp_path / "model"
    shutil.copytree(tiny_folder, folder)
    config = json.loads((folder / "config.json").read_text())
    config["training"] = {
        "command": "python -m train --dataset ../data/users --init-from model", "init_from": "model",
        "data_config": {"datasets": ["../data/users", "/somewhere/real"], "pairs": ["../data/users/PAIRS.csv", ""]},
        "holdout_pairs": [["../data/users/Tr1/TrainT1/Image #16.png", "../data/users/Tr2/TrainT2/Image #76.png"]],
    }
    (folder / "config.json").write_text(json.dumps(config))
    file = tmp_path / "rebuild.toml"
    file.write_text('output = "runs/rebuild"\nholdout-pairs = ["users/PAIRS.csv"]\n\n[[stage]]\nname = "first"\n'
                    'dataset = ["users", "older"]\n\n[[stage]]\nname = "second"\ndataset = ["users", "real"]\n')
    weights = (folder / "t1_to_t2.keras").read_bytes()
    assert main([str(folder), str(folder), "--metadata-only", "--recipe", str(file)]) == 0
    training = json.loads((folder / "config.json").read_text())["training"]
    assert training["command"] == f"python -m train --config {file}" and training["recipe_file"] == str(file)
    assert training["recipe"] == file.read_text()
    assert training["init_from"] == "runs/rebuild/first"  # the stage before the last, never the model itself
    assert training["data_config"]["datasets"] == ["users", "real"]
    assert training["data_config"]["pairs"] == ["users/PAIRS.csv", ""]
    assert training["holdout_pairs"] == [["users/Tr1/TrainT1/Image #16.png", "users/Tr2/TrainT2/Image #76.png"]]
    card = (folder / "README.md").read_text()
    assert f"the recipe below, `{file}` in the project's repository, is the runs that made the model" in card
    assert 'name = "second"' in card and "../data" not in card
    # the data of every stage is credited, not only the last stage's
    assert training["recipe_datasets"] == ["users", "older", "real"]
    data = card[card.index("Data:"):card.index("Data:") + 400]
    assert "`older`" in data and "`real`" in data and "`users`" in data
    assert (folder / "t1_to_t2.keras").read_bytes() == weights
    # Exporting a run folder: its own held-out pairs are written by name too; --command still wins.
    (folder / "holdout_pairs.json").write_text(json.dumps([["/data/users/Tr1/TrainT1/a.png", "/data/users/Tr2/TrainT2/b.png"]]))
    assert main([str(folder), str(tmp_path / "out"), "--recipe", str(file), "--command", "python -m train --config x"]) == 0
    exported = json.loads((tmp_path / "out" / "config.json").read_text())["training"]
    assert exported["holdout_pairs"] == [["users/Tr1/TrainT1/a.png", "users/Tr2/TrainT2/b.png"]]
    assert exported["command"] == "python -m train --config x" and exported["recipe_file"] == str(file)
    # A recipe that is not one is refused, and the model folder is left as it was.
    before = (folder / "config.json").read_text()
    (tmp_path / "bad.toml").write_text("stage = 3\n")
    assert main([str(folder), str(folder), "--metadata-only", "--recipe", str(tmp_path / "bad.toml")]) == 2
    assert "[[stage]]" in capsys.readouterr().err and (folder / "config.json").read_text() == before
