import csv
import json
import logging
import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from conftest import ROOT, SHARED_DATA, make_zip, phantom_slice

from train.cli import build_parser, main


def run_train(*args, env=None, timeout=300):
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "train", *args], capture_output=True, text=True,
        env=full_env, timeout=timeout, cwd=ROOT,
    )


@pytest.fixture(scope="module")
def data_zip(tmp_path_factory):
    return make_zip(tmp_path_factory.mktemp("data") / "mri.zip", n_t1=6, n_t2=7, corrupt=1)


def main_in_process(args, capsys):
    """The train command's exit code and stderr, run in this process (no interpreter start)."""
    code = main(list(args))
    return code, capsys.readouterr().err


def tiny_args(data_zip, output, *extra):
    """A tiny run's options. The inversion warm-up (300 steps by default) is off unless a test asks
    for it (``extra`` comes last and wins): the full-run test and the warm-up's own test run it."""
    return ["--dataset", str(data_zip), "--output", str(output), "--preset", "tiny",
            "--steps-per-epoch", "2", "--verbose", "2", "--save-every", "1", "--inversion-warmup", "0", *extra]


def test_help_documents_every_flag_with_default(capsys):
    with pytest.raises(SystemExit) as done:
        build_parser().parse_args(["--help"])
    assert done.value.code == 0
    text = capsys.readouterr().out
    for flag in ("--dataset", "--output", "--epochs", "--batch-size", "--image-size", "--preset",
                 "--push-to-hub", "--push-every", "--holdout-pairs", "--holdout-fraction",
                 "--paired-weight", "--mixed-precision", "--backend"):
        assert flag in text
    assert "nitishpandey04/MRI-Unpaired-T1-and-T2-Images)" in text
    assert text.count("(default:") >= 20


def test_full_run_then_load(tmp_path, data_zip):
    out = tmp_path / "run"
    from cyclegan.config import TrainConfig

    warmup = TrainConfig().inversion_warmup  # the default recipe's warm-up
    proc = run_train(*tiny_args(data_zip, out, "--epochs", "2", "--blur", "0.5", "--contrast", "0.25", "--zoom", "0.5",
                                "--inversion-warmup", str(warmup)))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"inversion warm-up: {warmup} steps" in proc.stderr and "inversion warm-up done" in proc.stderr
    assert "unreadable images skipped: 1" in proc.stderr
    assert "blur: 50% of the training images Gaussian-blurred" in proc.stderr
    assert "zoom: 50% of the training images zoomed 0.6-1.4 times about their centre" in proc.stderr
    assert "contrast: 25% of the generator inputs with a random gamma (0.5-2; their targets stay)" in proc.stderr
    for name in ("config.json", "t1_to_t2.keras", "t2_to_t1.keras", "README.md", "samples.png",
                 "history.csv", "samples/epoch_0002.png"):
        assert (out / name).is_file(), name
    assert list((out / "logs").rglob("events.out.tfevents.*")), "no TensorBoard logs"
    config = json.loads((out / "config.json").read_text())
    assert config["train_config"]["epochs"] == 2 and config["train_config"]["blur"] == 0.5
    assert config["train_config"]["contrast"] == 0.25 and config["train_config"]["zoom"] == 0.5
    card = (out / "README.md").read_text()
    assert "50% of the training images Gaussian-blurred" in card
    assert "50% of the training images zoomed 0.6-1.4 times about their centre" in card
    assert "25% of the generator inputs with a random gamma (0.5-2; their targets stay)" in card
    assert "- `mri`." in card and "nitishpandey04" not in card  # the data set the run read, not the Hub's
    assert config["training"]["epochs_done"] == 2 and config["training"]["backend"] == "tensorflow"
    assert "python -m train" in config["training"]["command"]
    # the most air around the head in a training image, which inference brings a wider input closer past
    most = config["training"]["framing"]["most_air"]
    assert isinstance(most, float) and 0 <= most < 90
    from cyclegan.hub import load_generators

    translator = load_generators(out)
    assert translator.reframe_above == most + 2
    image = phantom_slice(181, 217)
    result = translator.t1_to_t2(image)
    assert result.shape == (181, 217) and np.isfinite(result).all()
    rows = list(csv.DictReader(open(out / "history.csv")))
    assert [r["epoch"] for r in rows] == ["0", "1"]
    assert all(np.isfinite(float(rows[-1][k])) for k in ("gen_loss", "disc_loss", "cycle_t1", "structure_t2"))
    assert float(rows[-1]["structure_t1"]) > 0  # the MIND term is on by default, and logged
    # Every export is checked without pairs; the best-checked one is kept in best/.
    checks = [json.loads(line) for line in (out / "checks.jsonl").read_text().splitlines()]
    assert [c["epoch"] for c in checks] == [1, 2] and checks[0]["best"]
    for check in checks:
        for direction in ("t1_to_t2", "t2_to_t1"):
            assert 0 <= check["metrics"][f"unpaired_{direction}_contrast_order_pass"] <= 1
            assert check["metrics"][f"unpaired_{direction}_cycle_mae"] > 0
    assert proc.stderr.count("checks without pairs: tissue order right on") == 2
    best_epoch = max(c["epoch"] for c in checks if c["best"])
    best = json.loads((out / "best" / "config.json").read_text())
    assert best["training"]["epochs_done"] == best_epoch and "ranked best" in best["training"]["note"]
    assert set(best["metrics"]) >= {"unpaired_t1_to_t2_contrast_order_pass", "unpaired_t2_to_t1_cycle_mae"}
    assert load_generators(out / "best").t2_to_t1(image).shape == (181, 217)


def test_kill_9_then_resume(tmp_path, data_zip):
    out = tmp_path / "run"
    args = tiny_args(data_zip, out, "--epochs", "40", "--steps-per-epoch", "3", "--save-every", "100")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "train", *args], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    # progress.json is written after the epoch's backup: wait for it, then kill at once.
    progress_file = out / "progress.json"
    deadline = time.monotonic() + 240
    while not progress_file.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert not (out / "config.json").exists(), "the run finished before it could be killed"
    killed_at = json.loads(progress_file.read_text())["epoch"]
    assert 1 <= killed_at < 40

    done = run_train(*args)
    assert done.returncode == 0, done.stderr[-3000:]
    progress = json.loads((out / "progress.json").read_text())
    # Ends at the requested epoch, with every optimizer step counted once.
    assert progress["epoch"] == 40 and progress["step"] == 40 * 3
    epochs = [int(r["epoch"]) for r in csv.DictReader(open(out / "history.csv"))]
    assert epochs[-1] == 39 and epochs.count(0) == 1
    assert json.loads((out / "config.json").read_text())["training"]["epochs_done"] == 40


def test_other_config_in_same_output_is_refused(tmp_path, data_zip):
    out = tmp_path / "run"
    assert run_train(*tiny_args(data_zip, out, "--epochs", "1")).returncode == 0
    before = (out / "t1_to_t2.keras").read_bytes()
    proc = run_train(*tiny_args(data_zip, out, "--epochs", "3"))
    assert proc.returncode == 2
    assert "another configuration" in proc.stderr and "train_config.epochs: 1 -> 3" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert (out / "t1_to_t2.keras").read_bytes() == before


@pytest.mark.parametrize("extra, message", [
    (["--dataset", "no/such/folder/x"], "neither a local folder"),
    (["--paired-weight", "1"], "--paired-weight needs --holdout-pairs"),
    (["--dataset-weight", "-1"], "each of weights must be at least 0"),
    (["--holdout-subjects", "a", "--subject-pattern", "(x"], "is not a regular expression"),
    (["--skull-strip", "0.5"], "--skull-strip needs --paired-weight"),
    (["--edge-weight", "4"], "--edge-weight weighs the edge band of the paired term: give --paired-weight"),
    (["--edge-weight", "-1", "--paired-weight", "1", "--holdout-pairs", "x.csv"], "edge_weight must be at least 0"),
    (["--skull-strip", "1.5", "--paired-weight", "1", "--holdout-pairs", "x.csv"], "skull_strip must be between"),
    (["--blur", "-0.1"], "blur must be between"),
    (["--zoom", "1.5"], "zoom must be between"),
    (["--contrast", "2"], "contrast must be between"),
    (["--image-size", "30"], "image_size must be"),
    (["--push-to-hub", "../evil"], "owner/name"),
    (["--check-images", "-1"], "check-images must be 0 or more"),
    (["--holdout-pairs", "missing.csv"], "cannot read the pairs file"),
])
def test_bad_options_give_clear_errors(tmp_path, data_zip, extra, message, capsys):
    code, err = main_in_process([*tiny_args(data_zip, tmp_path / "run", "--epochs", "1"), *extra], capsys)
    assert code == 2, err[-2000:]
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "run" / "t1_to_t2.keras").exists()


def test_push_every_epoch_and_at_the_end(tmp_path, data_zip, fake_api, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", "hf_tokenvaluefromenv")
    out = tmp_path / "run"
    code = main(tiny_args(data_zip, out, "--epochs", "2", "--push-to-hub", "me/tiny", "--push-every", "1"))
    assert code == 0
    uploads = [c for c in fake_api.calls if c[0] == "upload_folder"]
    assert len(uploads) == 3  # after epochs 1 and 2, and the final push
    assert all(c[1]["repo_id"] == "me/tiny" for c in uploads)
    # The token is used (HfApi reads HF_TOKEN itself) but never written anywhere.
    for path in out.rglob("*"):
        if path.is_file():
            assert b"hf_tokenvaluefromenv" not in path.read_bytes(), path


def test_failed_push_keeps_folder_and_says_how_to_retry(tmp_path, data_zip, fake_api, caplog):
    fake_api.fail_with = ConnectionError("hub unreachable")
    out = tmp_path / "run"
    code = main(tiny_args(data_zip, out, "--epochs", "1", "--push-to-hub", "me/tiny"))
    assert code == 3
    assert "python -m train.push" in caplog.text and "me/tiny" in caplog.text
    assert "hub unreachable" in caplog.text
    assert (out / "t1_to_t2.keras").is_file() and (out / "config.json").is_file()
    fake_api.fail_with = None
    from train.push import main as push_main

    assert push_main([str(out), "me/tiny"]) == 0
    assert fake_api.calls[-1][0] == "upload_folder"


@pytest.mark.skipif(not (SHARED_DATA / "mri-t1t2-unpaired").is_dir(), reason="shared data set absent")
def test_users_dataset_few_steps_with_holdout(tmp_path):
    data = SHARED_DATA / "mri-t1t2-unpaired"
    out = tmp_path / "run"
    proc = run_train("--dataset", str(data), "--output", str(out), "--preset", "tiny", "--epochs", "1",
                     "--steps-per-epoch", "2", "--image-size", "64", "--verbose", "2",
                     "--holdout-pairs", str(data / "PAIRS.csv"), "--paired-weight", "1",
                     "--skull-strip", "0.5")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "train: 37 T1 / 40 T2 (37 aligned pairs)" in proc.stderr
    found = re.search(r"brain masks for (\d+) of 37 training pairs", proc.stderr)
    assert found and 20 <= int(found.group(1)) <= 37, proc.stderr[-2000:]
    config = json.loads((out / "config.json").read_text())
    assert set(config["metrics"]) >= {"holdout_t1_to_t2_ssim", "holdout_t2_to_t1_psnr"}
    assert len(json.loads((out / "holdout_pairs.json").read_text())) == 6


def test_data_parallel_on_two_host_devices_jax_without_tensorflow(tmp_path, data_zip):
    """A JAX-only install (a GPU machine, say) trains too: TensorFlow is made unimportable here."""
    pytest.importorskip("jax")
    out = tmp_path / "run"
    blocker = tmp_path / "no_tensorflow"
    blocker.mkdir()
    (blocker / "sitecustomize.py").write_text("import sys\nsys.modules['tensorflow'] = None\n")
    env = {"KERAS_BACKEND": "jax", "XLA_FLAGS": "--xla_force_host_platform_device_count=2",
           "PYTHONPATH": f"{blocker}{os.pathsep}{ROOT}"}
    # With the inversion warm-up and DiffAugment, which have code of their own for this path.
    proc = run_train(*tiny_args(data_zip, out, "--epochs", "1", "--batch-size", "2", "--inversion-warmup", "4",
                                "--diff-augment", "1"), env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "(jax, 2 device(s))" in proc.stderr and "inversion warm-up done" in proc.stderr
    assert "no TensorBoard logs: they are written through tensorflow, which is not installed" in proc.stderr
    assert not (out / "logs").exists()
    assert json.loads((out / "config.json").read_text())["training"]["devices"] == 2
    assert (out / "history.csv").is_file()


def test_init_from_copies_generators(tiny_folder, tiny_gan, tiny_config):
    from cyclegan.config import TrainConfig
    from cyclegan.errors import ConfigError
    from cyclegan.training import CycleGAN
    from cyclegan.pipeline import init_generators as _init_generators

    fresh = CycleGAN(tiny_config.replace(image_size=48), TrainConfig())
    _init_generators(fresh, str(tiny_folder))
    for name in ("t1_to_t2", "t2_to_t1"):
        for a, b in zip(getattr(fresh, name).get_weights(), getattr(tiny_gan, name).get_weights()):
            np.testing.assert_array_equal(a, b)
    other = CycleGAN(tiny_config.replace(generator_blocks=2), TrainConfig())
    with pytest.raises(ConfigError, match="architecture"):
        _init_generators(other, str(tiny_folder))


def test_init_from_a_transposed_model_starts_a_resize_run_from_its_closest_kernels(tiny_folder, tiny_gan,
                                                                                   tiny_config, caplog):
    from cyclegan.config import TrainConfig
    from cyclegan.models import resize_kernel
    from cyclegan.training import CycleGAN
    from cyclegan.pipeline import init_generators as _init_generators

    assert tiny_config.upsampling == "transpose"
    resized = CycleGAN(tiny_config.replace(upsampling="resize", image_size=48), TrainConfig())
    with caplog.at_level(logging.INFO, logger="cyclegan.pipeline"):
        _init_generators(resized, str(tiny_folder))
    assert "its transposed convolutions became the closest resize convolutions" in caplog.text
    for name in ("t1_to_t2", "t2_to_t1"):
        ours, theirs = getattr(resized, name), getattr(tiny_gan, name)
        for layer in theirs.layers:
            if not layer.weights:
                continue
            copied, saved = ours.get_layer(layer.name).get_weights(), layer.get_weights()
            if "_up" in layer.name and layer.name.endswith("_conv"):
                saved = [resize_kernel(saved[0]), *saved[1:]]
            for a, b in zip(copied, saved):
                np.testing.assert_allclose(a, b, atol=1e-7)


def test_init_from_in_the_command(tmp_path, data_zip, tiny_folder):
    out = tmp_path / "run"
    proc = run_train(*tiny_args(data_zip, out, "--epochs", "1", "--init-from", str(tiny_folder),
                                "--inversion-warmup", "5"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"generators initialised from {tiny_folder}" in proc.stderr
    # The saved generators are the start: the warm-up would overwrite them, so it is skipped.
    assert f"inversion warm-up skipped: the generators start from {tiny_folder}" in proc.stderr
    assert "inversion warm-up done" not in proc.stderr
    assert json.loads((out / "config.json").read_text())["training"]["init_from"] == str(tiny_folder)
    bad = run_train(*tiny_args(data_zip, tmp_path / "bad", "--epochs", "1", "--init-from", str(tmp_path / "none")))
    assert bad.returncode == 2 and "Traceback" not in bad.stderr


def test_upsampling_left_out_follows_the_resumed_run_or_the_init_from_model(tmp_path, data_zip, caplog):
    resized = tmp_path / "resized"
    assert main(tiny_args(data_zip, resized, "--epochs", "1", "--upsampling", "resize")) == 0
    # Resuming without --upsampling keeps the run's own, whatever the preset's is now.
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="cyclegan.pipeline"):
        assert main(tiny_args(data_zip, resized, "--epochs", "1")) == 0
    assert "upsampling: the run's recorded 'resize' (the preset's is 'transpose')" in caplog.text
    assert "another configuration" not in caplog.text
    # A fine-tune without --upsampling takes the saved model's; given, it must match.
    tuned = tmp_path / "tuned"
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="cyclegan.pipeline"):
        assert main(tiny_args(data_zip, tuned, "--epochs", "1", "--init-from", str(resized))) == 0
    assert f"upsampling: {resized}'s 'resize'" in caplog.text
    assert json.loads((tuned / "config.json").read_text())["model_config"]["upsampling"] == "resize"
    clash = run_train(*tiny_args(data_zip, tmp_path / "clash", "--epochs", "1", "--init-from", str(resized),
                                 "--upsampling", "transpose"))
    assert clash.returncode == 2 and "Traceback" not in clash.stderr
    assert "architecture" in clash.stderr and "--upsampling" in clash.stderr


def test_runs_started_before_the_small_preset_took_resize_keep_transposed_convolutions(tmp_path):
    from cyclegan.config import preset
    from cyclegan.pipeline import kept_architecture as _kept_architecture

    small = preset("small")
    assert small.upsampling == "resize"
    # A run recorded with the old preset, or before the option existed, resumes as it started.
    old = small.replace(upsampling="transpose").to_dict()
    assert _kept_architecture({"model_config": old}, small, None, set()).upsampling == "transpose"
    del old["upsampling"]
    assert _kept_architecture({"model_config": old}, small, None, set()).upsampling == "transpose"
    assert _kept_architecture(None, small, None, set()).upsampling == "resize"  # a new run
    assert _kept_architecture({"model_config": old}, small, None, {"upsampling"}).upsampling == "resize"
    # A model is fine-tuned with its own upsampling: the shipped one (resize convolutions since the
    # clinical fine-tune) and one with transposed convolutions (the shipped model's before).
    shipped = ROOT / "cyclegan" / "default_model"
    assert _kept_architecture(None, small, str(shipped), set()).upsampling == "resize"
    config = json.loads((shipped / "config.json").read_text())
    config["model_config"]["upsampling"] = "transpose"
    (tmp_path / "config.json").write_text(json.dumps(config))
    assert _kept_architecture(None, small, str(tmp_path), set()).upsampling == "transpose"


def test_skips_left_out_follow_the_resumed_run_or_the_init_from_model(tmp_path, tiny_config):
    from cyclegan.config import TrainConfig
    from cyclegan.hub import save_pretrained
    from cyclegan.training import CycleGAN
    from cyclegan.pipeline import kept_architecture as _kept_architecture

    with_skips = tiny_config.replace(skips=True)
    assert _kept_architecture({"model_config": with_skips.to_dict()}, tiny_config, None, set()).skips is True
    old = tiny_config.to_dict()
    del old["skips"]  # a run recorded before the option existed resumes without skips
    assert _kept_architecture({"model_config": old}, tiny_config, None, set()).skips is False
    assert _kept_architecture({"model_config": old}, with_skips, None, {"skips"}).skips is True
    folder = tmp_path / "skipped"
    save_pretrained(CycleGAN(with_skips, TrainConfig()), folder, with_skips)
    assert _kept_architecture(None, tiny_config, str(folder), set()).skips is True
    shipped = ROOT / "cyclegan" / "default_model"
    assert _kept_architecture(None, tiny_config, str(shipped), set()).skips is False


def test_init_from_a_model_without_skips_grows_them_from_zero(tiny_folder, tiny_gan, tiny_config):
    from cyclegan.config import TrainConfig
    from cyclegan.errors import ConfigError
    from cyclegan.training import CycleGAN
    from cyclegan.pipeline import init_generators as _init_generators

    grown = CycleGAN(tiny_config.replace(skips=True, image_size=48), TrainConfig())
    for name in ("t1_to_t2", "t2_to_t1"):  # not zero yet: the copy must overwrite them
        conv = getattr(grown, name).get_layer(f"{name}_skip1_conv")
        conv.set_weights([np.ones_like(w) for w in conv.get_weights()])
    _init_generators(grown, str(tiny_folder))
    x = np.random.default_rng(2).uniform(-1, 1, (1, 40, 44, 1)).astype("float32")
    for name in ("t1_to_t2", "t2_to_t1"):
        ours, theirs = getattr(grown, name), getattr(tiny_gan, name)
        for layer in theirs.layers:
            for a, b in zip(ours.get_layer(layer.name).get_weights(), layer.get_weights()):
                np.testing.assert_array_equal(a, b)
        for i in (0, 1):
            assert not any(np.any(w) for w in ours.get_layer(f"{name}_skip{i}_conv").get_weights())
        np.testing.assert_allclose(np.asarray(ours(x)), np.asarray(theirs(x)), atol=1e-6)
    # Only skips can be grown: any other difference is still refused.
    other = CycleGAN(tiny_config.replace(skips=True, generator_blocks=2), TrainConfig())
    with pytest.raises(ConfigError, match="architecture"):
        _init_generators(other, str(tiny_folder))


def test_skips_in_the_command_from_a_model_without_them(tmp_path, data_zip, tiny_folder, caplog):
    out = tmp_path / "run"
    with caplog.at_level(logging.INFO, logger="cyclegan.pipeline"):
        assert main(tiny_args(data_zip, out, "--epochs", "1", "--init-from", str(tiny_folder), "--skips")) == 0
    assert f"generators initialised from {tiny_folder}; the skip connections start at zero" in caplog.text
    saved = json.loads((out / "config.json").read_text())
    assert saved["model_config"]["skips"] is True
    assert "skip connections" in (out / "README.md").read_text()
    # Resumed without the flag, the run keeps its skips instead of refusing another configuration.
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="cyclegan.pipeline"):
        assert main(tiny_args(data_zip, out, "--epochs", "1", "--init-from", str(tiny_folder))) == 0
    assert "skips: the run's recorded True" in caplog.text and "another configuration" not in caplog.text


def test_inversion_warmup_runs_before_a_new_start_only(tmp_path, data_zip, caplog):
    out = tmp_path / "run"
    args = tiny_args(data_zip, out, "--epochs", "2", "--inversion-warmup", "3", "--restarts", "0")
    with caplog.at_level(logging.INFO, logger="cyclegan.pipeline"):
        assert main(args) == 0
    assert "inversion warm-up: 3 steps" in caplog.text and "inversion warm-up done: L1" in caplog.text
    record = json.loads((out / "config.json").read_text())
    assert record["train_config"]["inversion_warmup"] == 3
    assert "generators first fitted for 3 steps to their inputs' inversion" in (out / "README.md").read_text()
    # Run again: it resumes from its backup (its own weights), so it is not warmed up again.
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="cyclegan.pipeline"):
        assert main(args) == 0
    assert "inversion warm-up" not in caplog.text


def test_a_run_with_a_moving_average_exports_the_average_and_backs_up_its_last_step(tmp_path, data_zip):
    import keras

    from cyclegan.config import ModelConfig, TrainConfig
    from cyclegan.hub import load_generators
    from cyclegan.training import CycleGAN

    out = tmp_path / "run"
    args = tiny_args(data_zip, out, "--epochs", "2", "--generator-ema", "0.5", "--learning-rate", "0.01",
                     "--restarts", "0")
    assert main(args) == 0
    record = json.loads((out / "config.json").read_text())
    assert record["train_config"]["generator_ema"] == 0.5
    assert "moving average of their training steps (momentum 0.5)" in (out / "README.md").read_text()
    # The backup holds what a resume starts from: the last step's weights, and the optimizers'
    # state with the average in it. The exported generators are the average, not the last step.
    gan = CycleGAN(ModelConfig.from_dict(record["model_config"]), TrainConfig.from_dict(record["train_config"]))
    gan.compile()
    gan.load_weights(out / "backup" / "latest.weights.h5")
    exported = load_generators(out, warmup=False).generators["t1_to_t2"].get_weights()
    last_step = gan.t1_to_t2.get_weights()
    with gan.averaged_generators():
        average = gan.t1_to_t2.get_weights()
    assert int(keras.ops.convert_to_numpy(gan.optimizer.iterations)) == 4
    assert max(np.abs(a - b).max() for a, b in zip(exported, average)) < 1e-6
    assert max(np.abs(a - b).max() for a, b in zip(exported, last_step)) > 1e-4


def test_runs_recorded_before_a_config_field_existed_still_resume(tmp_path):
    from cyclegan.config import TrainConfig, preset
    from cyclegan.errors import ConfigError
    from cyclegan.pipeline import check_same_run as _check_same_run, run_record as _run_record

    record = {"model_config": preset("tiny").to_dict(), "train_config": TrainConfig(epochs=2, decay_epochs=1).to_dict(),
              "dataset": "d", "init_from": None}
    old = json.loads(json.dumps(record))
    del old["train_config"]["skull_strip"]  # a run.json written before these fields were added
    del old["train_config"]["blur"]
    del old["train_config"]["contrast"]
    del old["train_config"]["zoom"]
    (tmp_path / "run.json").write_text(json.dumps(old))
    _check_same_run(tmp_path, record, _run_record(tmp_path))  # same run: no error
    changed = {**record, "train_config": {**record["train_config"], "skull_strip": 0.5}}
    with pytest.raises(ConfigError, match="skull_strip: 0.0 -> 0.5"):
        _check_same_run(tmp_path, changed, _run_record(tmp_path))


def test_a_run_record_that_cannot_be_read_refuses_the_run(tmp_path, data_zip):
    out = tmp_path / "run"
    out.mkdir()
    for text in ("not json", "[1, 2]"):
        (out / "run.json").write_text(text)
        proc = run_train(*tiny_args(data_zip, out, "--epochs", "1"))
        assert proc.returncode == 2 and "Traceback" not in proc.stderr
        assert "cannot be read as the record of a run" in proc.stderr and "another --output" in proc.stderr
        assert (out / "run.json").read_text() == text and sorted(p.name for p in out.iterdir()) == ["run.json"]


def make_subject_folder(root, subjects=("alpha", "beta", "gamma"), zs=(10, 20)):
    """A data set folder of <subject>_z<NNN>.png slices, aligned T1/T2, with its PAIRS.csv."""
    from PIL import Image

    rows = []
    for k, subject in enumerate(subjects):
        for z in zs:
            image = phantom_slice(48, 40, seed=k * 10 + z)
            names = (f"Tr1/TrainT1/{subject}_z{z:03d}.png", f"Tr2/TrainT2/{subject}_z{z:03d}.png")
            for name, pixels in zip(names, (image, 255 - image)):
                (root / name).parent.mkdir(parents=True, exist_ok=True)
                Image.fromarray(pixels).save(root / name)
            rows.append(",".join(names))
    (root / "PAIRS.csv").write_text("t1,t2\n" + "\n".join(rows) + "\n")
    return root


def test_two_data_sets_with_a_held_out_subject(tmp_path, data_zip):
    real = make_subject_folder(tmp_path / "real")
    out = tmp_path / "run"
    args = tiny_args(data_zip, out, "--epochs", "1", "--dataset", str(real), "--holdout-pairs", "none",
                     "--holdout-pairs", str(real / "PAIRS.csv"), "--holdout-subjects", "beta",
                     "--paired-weight", "1", "--dataset-weight", "1", "--dataset-weight", "2",
                     "--pair-share", "0", "--pair-share", "0.75")
    proc = run_train(*args)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "held-out subjects: beta" in proc.stderr
    assert ("mri (6 T1 / 7 T2, 0 pairs, weight 0.33, pair share 0.00), real (4 T1 / 4 T2, 4 pairs, weight 0.67, "
            "pair share 0.75)") in proc.stderr
    held = json.loads((out / "holdout_pairs.json").read_text())
    assert sorted(held) == [[f"Tr1/TrainT1/beta_z{z:03d}.png", f"Tr2/TrainT2/beta_z{z:03d}.png"] for z in (10, 20)]
    run = json.loads((out / "run.json").read_text())
    assert run["dataset"] == [str(data_zip), str(real)]
    assert run["data_config"]["holdout_subjects"] == ["beta"] and run["data_config"]["weights"] == [1.0, 2.0]
    assert run["data_config"]["pair_shares"] == [0.0, 0.75]
    assert "holdout_t1_to_t2_ssim" in json.loads((out / "config.json").read_text())["metrics"]
    # Another held-out subject in the same output folder is another run.
    other = run_train(*[a if a != "beta" else "gamma" for a in args])
    assert other.returncode == 2 and "data_config.holdout_subjects" in other.stderr
    assert "Traceback" not in other.stderr


@pytest.mark.parametrize("extra, message", [
    (["--holdout-subjects", "nobody"], "held-out subject(s) not found: nobody"),
    (["--holdout-pairs", "x.csv"], "give pairs once per data set (2)"),
    (["--dataset-weight", "1"], "give weights once per data set"),
    (["--pair-share", "0", "--pair-share", "0"], "pair_shares needs paired_weight"),
    (["--holdout-pairs", "none", "--holdout-pairs", "none", "--paired-weight", "1", "--pair-share", "0.5",
      "--pair-share", "0.5"], "no pair list"),
])
def test_bad_mixing_options_give_clear_errors(tmp_path, data_zip, extra, message, capsys):
    real = make_subject_folder(tmp_path / "real")
    code, err = main_in_process([*tiny_args(data_zip, tmp_path / "run", "--epochs", "1", "--dataset", str(real)),
                                 *extra], capsys)
    assert code == 2, err[-2000:]
    assert message in err and "Traceback" not in err


def test_every_config_field_is_a_flag_and_the_defaults_are_the_configs():
    import dataclasses

    from cyclegan.config import DataConfig, TrainConfig, preset
    from cyclegan.config import TRAIN_GROUPS as GROUPS
    from train.cli import _configs

    parser = build_parser()
    flags = {a.dest: a for a in parser._actions}
    for _, cls in GROUPS:
        for f in dataclasses.fields(cls):
            if f.metadata.get("cli") is not False:
                assert f.name in flags and flags[f.name].help == f.metadata["help"], f.name
    model, train, data, run = _configs(parser.parse_args([]))
    assert model == preset("small") and train == TrainConfig() and data == DataConfig()
    assert run.output == "runs/cyclegan" and run.push_to_hub is None
    model, train, data, run = _configs(parser.parse_args([
        "--preset", "tiny", "--generator-blocks", "3", "--epochs", "8", "--beta-1", "0.4",
        "--dataset", "a", "--dataset", "b", "--holdout-pairs", "none", "--holdout-pairs", "b.csv",
        "--holdout-subjects", "s1", "s2", "--mixed-precision", "--private", "--upsampling", "resize"]))
    assert model == preset("tiny").replace(generator_blocks=3, upsampling="resize")
    assert (train.epochs, train.decay_epochs, train.beta_1, train.mixed_precision) == (8, 4, 0.4, True)
    assert data.datasets == ("a", "b") and data.pairs == ("", "b.csv") and data.holdout_subjects == ("s1", "s2")
    assert run.private is True


def test_history_written_with_other_losses_is_kept_aside_not_appended_to(tmp_path):
    from cyclegan.training import LOSS_NAMES
    from cyclegan.pipeline import history_logger

    path = tmp_path / "history.csv"
    old = "epoch,adv_t1,gen_loss,val_adv_t1,val_gen_loss\n0,0.5,8.0,NA,NA\n"  # before other losses were logged
    path.write_text(old)
    logger = history_logger(path)
    assert not path.exists() and (tmp_path / "history-1.csv").read_text() == old
    assert logger.filename == str(path) and logger.append
    # A file with this version's columns is appended to, and a second old file does not overwrite the first.
    header = ["epoch", *LOSS_NAMES, *(f"val_{n}" for n in LOSS_NAMES)]
    path.write_text(",".join(header) + "\n")
    history_logger(path)
    assert path.read_text() == ",".join(header) + "\n"
    path.write_text(old)
    history_logger(path)
    assert (tmp_path / "history-2.csv").read_text() == old and (tmp_path / "history-1.csv").read_text() == old


def test_a_run_started_before_a_default_changed_resumes_with_its_recorded_value(tmp_path, data_zip):
    out = tmp_path / "run"
    args = tiny_args(data_zip, out, "--epochs", "2")
    assert run_train(*args, "--epochs", "1").returncode == 0  # a 1-epoch run ...
    record = json.loads((out / "run.json").read_text())
    # ... recorded as if it had started when the identity weight's default was 0.5, the batch 1 and
    # the learning rate 2e-4, and before the structure term existed (on by default since: a record
    # without it ran without it)
    record["train_config"].update(identity_weight=0.5, batch_size=1, learning_rate=2e-4)
    del record["train_config"]["structure_weight"]
    (out / "run.json").write_text(json.dumps(record))
    again = run_train(*args[:-2], "--epochs", "1")
    assert again.returncode == 0, again.stderr[-2000:]
    assert ("resuming with the run's recorded batch_size=1, identity_weight=0.5, learning_rate=0.0002, "
            "structure_weight=0.0") in again.stderr
    resumed = json.loads((out / "run.json").read_text())["train_config"]
    assert (resumed["structure_weight"], resumed["batch_size"], resumed["learning_rate"]) == (0.0, 1, 2e-4)
    # An option given on the command line is never overridden: a different value is another run.
    other = run_train(*args[:-2], "--epochs", "1", "--identity-weight", "0")
    assert other.returncode == 2 and "train_config.identity_weight: 0.5 -> 0.0" in other.stderr


def test_unpaired_check_ranks_by_tissue_order_then_cycle_and_survives_a_resume(tmp_path):
    from cyclegan.callbacks import UnpairedCheck, unpaired_score

    def metrics(order, cycle):
        return {f"unpaired_{d}_{k}": v for d in ("t1_to_t2", "t2_to_t1")
                for k, v in (("contrast_order_pass", order), ("cycle_mae", cycle))}

    assert unpaired_score(metrics(1.0, 0.2)) > unpaired_score(metrics(0.5, 0.01))  # order first
    assert unpaired_score(metrics(1.0, 0.05)) > unpaired_score(metrics(1.0, 0.2))  # then the cycle
    path = tmp_path / "checks.jsonl"
    path.write_text(json.dumps({"epoch": 5, "score": [1.0, -0.05], "best": True}) + "\n"
                    + json.dumps({"epoch": 10, "score": [0.5, -0.01], "best": False}) + "\nnot json\n")
    assert UnpairedCheck(5, {}, path).best == (1.0, -0.05)
    assert UnpairedCheck(5, {}, tmp_path / "none.jsonl").best is None


def _order_metrics(order, cycle=0.05, background=(0.01, 0.01)):
    return {f"unpaired_{d}_{k}": v for d, air in zip(("t1_to_t2", "t2_to_t1"), background)
            for k, v in (("contrast_order_pass", order), ("cycle_mae", cycle), ("background", air))}


def test_the_first_check_after_enough_steps_judges_the_start(tmp_path, tiny_config, monkeypatch):
    from cyclegan.callbacks import UnpairedCheck
    from cyclegan.training import CycleGAN

    tiny_gan = CycleGAN(tiny_config)
    tiny_gan.compile()

    def judged(order, may_restart, path, background=(0.01, 0.01)):
        check = UnpairedCheck(1, {}, path, decide_after=10, may_restart=may_restart)
        monkeypatch.setattr(check, "check", lambda: _order_metrics(order, background=background))
        check.set_model(tiny_gan)
        tiny_gan.stop_training = False
        tiny_gan.optimizer.iterations.assign(4)
        check.on_epoch_end(0)  # too early to judge: a start is not judged on its first few steps
        assert check.failed_start is None and not tiny_gan.stop_training and not check.judged
        tiny_gan.optimizer.iterations.assign(12)
        check.on_epoch_end(1)
        return check

    kept = judged(0.25, True, tmp_path / "a.jsonl")  # the input's tissue order on most translations
    assert tiny_gan.stop_training and kept.failed_start["epoch"] == 2 and kept.failed_start["step"] == 12
    assert kept.failed_start["reason"] == "tissue_order"
    assert [json.loads(l)["step"] for l in (tmp_path / "a.jsonl").read_text().splitlines()] == [4, 12]
    learned = judged(0.75, True, tmp_path / "b.jsonl")
    assert learned.failed_start is None and not tiny_gan.stop_training and learned.judged
    # The right tissue order with the air around the head painted grey in one direction fails too.
    grey = judged(1.0, True, tmp_path / "grey.jsonl", background=(0.05, 0.66))
    assert tiny_gan.stop_training and grey.failed_start["reason"] == "background"
    dim = judged(1.0, True, tmp_path / "dim.jsonl", background=(0.23, 0.01))  # a start that went on to learn
    assert dim.failed_start is None and not tiny_gan.stop_training
    last = judged(0.0, False, tmp_path / "c.jsonl")  # no restarts left: say so, train on
    assert last.failed_start is not None and not tiny_gan.stop_training
    last_grey = judged(1.0, False, tmp_path / "d.jsonl", background=(0.5, 0.5))
    assert last_grey.failed_start["reason"] == "background" and not tiny_gan.stop_training
    # Check images on which no tissue order could be read do not make a start a failed one.
    from cyclegan.callbacks import start_failure
    unread = {k: v for k, v in _order_metrics(0.0).items() if "contrast_order" not in k}
    assert start_failure(unread) is None and start_failure(_order_metrics(0.0)) == "tissue_order"
    # A resumed start that was judged already is not judged again; one that was not, is.
    assert UnpairedCheck(1, {}, tmp_path / "a.jsonl", decide_after=10).judged
    assert not UnpairedCheck(1, {}, tmp_path / "a.jsonl", decide_after=20).judged


def test_a_start_that_keeps_the_input_contrast_is_set_aside_and_the_next_seed_trains(
        tmp_path, data_zip, monkeypatch, caplog):
    import cyclegan.config
    from cyclegan.callbacks import UnpairedCheck

    # Seeds 0 and 1 keep the input's tissue order, seed 2 would learn it; --restarts 1 allows one new start.
    monkeypatch.setattr(UnpairedCheck, "check", lambda self: _order_metrics(float(self.model.train_config.seed >= 2)))
    monkeypatch.setattr(cyclegan.config, "RESTART_CHECK_STEPS", 3)
    out = tmp_path / "run"
    args = tiny_args(data_zip, out, "--epochs", "3", "--check-images", "2", "--restarts", "1")
    with caplog.at_level("INFO"):
        assert main(args) == 0
    records = json.loads((out / "failed_starts.json").read_text())
    assert [(r["seed"], r["epoch"], r["step"], r["set_aside"]) for r in records] == [(0, 2, 4, True)]
    aside = out / "failed_starts" / "seed_0"
    for name in ("checks.jsonl", "config.json", "t1_to_t2.keras", "history.csv", "progress.json", "backup"):
        assert (aside / name).exists(), name
    assert json.loads((aside / "config.json").read_text())["train_config"]["seed"] == 0
    # The next start began afresh (epoch 1, its own checks) and, with no restarts left, trained to the end.
    config = json.loads((out / "config.json").read_text())
    assert config["train_config"]["seed"] == 1 and config["training"]["epochs_done"] == 3
    assert config["training"]["failed_starts"][0]["seed"] == 0
    assert [json.loads(l)["epoch"] for l in (out / "checks.jsonl").read_text().splitlines()] == [1, 2, 3]
    assert json.loads((out / "progress.json").read_text())["epoch"] == 3
    assert "starting again from the next seed" in caplog.text and "no restarts are left" in caplog.text
    card = (out / "README.md").read_text()
    assert ("Starts set aside at their first check without pairs: seed 0 (checked after 4 steps: the translations "
            "kept the input's tissue order, right on 0 % of T1 -> T2") in card
    assert "seed 1, up to 1 restart from the next seed" in card
    # The same command again resumes the finished run: nothing is set aside or trained again.
    before = (out / "t1_to_t2.keras").stat().st_mtime_ns
    assert main(args) == 0
    assert len(json.loads((out / "failed_starts.json").read_text())) == 1
    assert json.loads((out / "config.json").read_text())["train_config"]["seed"] == 1
    assert (out / "t1_to_t2.keras").stat().st_mtime_ns >= before


def test_an_interrupted_set_aside_is_finished_by_the_next_run(tmp_path):
    from cyclegan.pipeline import FailedStarts

    (tmp_path / "run.json").write_text("{}")
    (tmp_path / "backup").mkdir()
    (tmp_path / "checks.jsonl").write_text("")
    (tmp_path / "failed_starts.json").write_text(json.dumps([{"seed": 0, "epoch": 5, "set_aside": False}]))
    starts = FailedStarts(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["failed_starts", "failed_starts.json", "run.json"]
    assert (tmp_path / "failed_starts" / "seed_0" / "backup").is_dir()
    assert starts.records[0]["set_aside"] and json.loads((tmp_path / "failed_starts.json").read_text())[0]["set_aside"]
    (tmp_path / "failed_starts.json").write_text("not json")
    with pytest.raises(ValueError, match="failed_starts.json is not readable"):
        FailedStarts(tmp_path)


def test_the_seed_sets_the_initial_weights(tiny_config):
    import keras

    from cyclegan.training import CycleGAN

    def weights(seed):
        keras.utils.set_random_seed(seed)
        return np.concatenate([w.ravel() for w in CycleGAN(tiny_config).t1_to_t2.get_weights()])

    assert np.array_equal(weights(3), weights(3)) and not np.array_equal(weights(3), weights(4))


def test_the_card_says_why_each_start_was_set_aside(tmp_path):
    from cyclegan.card import failed_starts_text
    from cyclegan.pipeline import FailedStarts

    starts = FailedStarts(tmp_path)
    starts.records = [
        {"seed": 0, "epoch": 5, "step": 500, "metrics": _order_metrics(0.0)},  # recorded before reasons were
        {"seed": 1, "epoch": 5, "step": 500, "reason": "background",
         "metrics": _order_metrics(1.0, background=(0.31, 0.66))},
    ]
    summary = starts.summary()
    assert [s["reason"] for s in summary] == ["tissue_order", "background"]
    assert summary[1]["background_t2_to_t1"] == 0.66 and summary[1]["tissue_order_t1_to_t2"] == 1.0
    text = failed_starts_text(summary)
    assert ("seed 0 (checked after 500 steps: the translations kept the input's tissue order, right on 0 % of "
            "T1 -> T2 and 0 % of T2 -> T1 translations)") in text
    assert ("seed 1 (checked after 500 steps: the translations painted the air around the head grey, mean 0.31 "
            "(T1 -> T2) and 0.66 (T2 -> T1) on the [0, 1] scale)") in text
