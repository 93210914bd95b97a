import json
import shutil
import zipfile

import keras
import numpy as np
import pytest

from cyclegan import hub
from cyclegan.errors import ModelLoadError, PushError
from cyclegan.hub import load_generators, push_to_hub, save_pretrained
from cyclegan.models import build_generator
from cyclegan.preprocessing import finish, prepare

from conftest import phantom_slice


def test_saved_folder_layout(tiny_folder, tiny_config):
    names = {p.name for p in tiny_folder.iterdir()}
    assert {"config.json", "t1_to_t2.keras", "t2_to_t1.keras", "README.md"} <= names
    assert not any(n.startswith(".saving") for n in names)
    data = json.loads((tiny_folder / "config.json").read_text())
    assert data["format_version"] == 1
    assert data["model_config"] == tiny_config.to_dict()
    assert data["train_config"]["pool_size"] == 4
    card = (tiny_folder / "README.md").read_text()
    assert card.startswith("---\n") and "\nlibrary_name: keras\n" in card.split("---")[1]
    assert "datasets:" not in card  # no training record: no data set is claimed
    assert "from cyclegan import load_generators" in card
    assert "| ssim_t1_to_t2 | 0.5 |" in card


def test_round_trip_gives_identical_outputs(tiny_gan, tiny_translator):
    image = phantom_slice(70, 90)
    prepared = prepare(image)
    batch = prepared.array[None, ..., None]
    for name, model in (("t1_to_t2", tiny_gan.t1_to_t2), ("t2_to_t1", tiny_gan.t2_to_t1)):
        direct = keras.ops.convert_to_numpy(model(batch))
        loaded = keras.ops.convert_to_numpy(tiny_translator.generators[name](batch))
        assert np.array_equal(direct, loaded)  # same weights, same graph: bit for bit
        # The compiled (XLA) path may reorder float sums: equal to float32 rounding.
        compiled = tiny_translator.translate(image, name)
        np.testing.assert_allclose(compiled, finish(direct[0], 70, 90), atol=1e-4)


def test_samples_and_generator_pair(tmp_path, tiny_gan, tiny_config):
    grid = np.linspace(0, 1, 64 * 32, dtype="float32").reshape(64, 32)
    save_pretrained((tiny_gan.t1_to_t2, tiny_gan.t2_to_t1), tmp_path, tiny_config, samples=grid)
    assert (tmp_path / "samples.png").is_file()
    assert "![samples](samples.png)" in (tmp_path / "README.md").read_text()
    # Saving again without samples removes the stale grid.
    save_pretrained({"t1_to_t2": tiny_gan.t1_to_t2, "t2_to_t1": tiny_gan.t2_to_t1}, tmp_path, tiny_config)
    assert not (tmp_path / "samples.png").exists()
    with pytest.raises(ValueError, match="save_pretrained takes"):
        save_pretrained("nope", tmp_path, tiny_config)


def copy_model(src, dst):
    shutil.copytree(src, dst)
    return dst


def edit_config(folder, **changes):
    path = folder / "config.json"
    data = json.loads(path.read_text())
    data.update(changes)
    path.write_text(json.dumps(data))


@pytest.mark.parametrize(
    "change, message",
    [
        ({"format_version": 99}, "format_version 99"),
        ({"surprise": 1}, "unknown field"),
        ({"model_config": {"generator_filters": 4, "what": 1}}, "what"),
    ],
)
def test_bad_config_is_refused(tmp_path, tiny_folder, change, message):
    folder = copy_model(tiny_folder, tmp_path / "m")
    edit_config(folder, **change)
    with pytest.raises(ModelLoadError, match=message):
        load_generators(folder, warmup=False)


@pytest.mark.parametrize("missing", ["config.json", "t1_to_t2.keras", "t2_to_t1.keras"])
def test_missing_file_is_refused(tmp_path, tiny_folder, missing):
    folder = copy_model(tiny_folder, tmp_path / "m")
    (folder / missing).unlink()
    with pytest.raises(ModelLoadError, match=missing.replace(".", r"\.") + " is missing"):
        load_generators(folder, warmup=False)


def test_corrupt_weights_are_refused(tmp_path, tiny_folder):
    folder = copy_model(tiny_folder, tmp_path / "m")
    (folder / "t2_to_t1.keras").write_bytes(b"not a zip")
    with pytest.raises(ModelLoadError, match="cannot load t2_to_t1.keras"):
        load_generators(folder, warmup=False)


def test_lambda_layer_is_refused(tmp_path, tiny_folder, tiny_config):
    folder = copy_model(tiny_folder, tmp_path / "m")
    inputs = keras.Input((None, None, 1))
    outputs = keras.layers.Lambda(lambda x: x * 2.0)(inputs)
    keras.Model(inputs, outputs).save(folder / "t1_to_t2.keras")
    with pytest.raises(ModelLoadError, match="safe mode"):
        load_generators(folder, warmup=False)


def test_channel_mismatch_is_refused(tmp_path, tiny_folder, tiny_config):
    folder = copy_model(tiny_folder, tmp_path / "m")
    inputs = keras.Input((None, None, 3))
    keras.Model(inputs, keras.layers.Conv2D(3, 1)(inputs)).save(folder / "t1_to_t2.keras")
    with pytest.raises(ModelLoadError, match="channel"):
        load_generators(folder, warmup=False)


@pytest.mark.parametrize(
    "source", ["../etc", "owner/../../etc", "/abs/path/model", "hf://../x", "a/b/c", "hf:///etc", "~x/y"]
)
def test_path_tricks_are_refused(source):
    with pytest.raises(ModelLoadError, match="owner/name|folder"):
        load_generators(source, warmup=False)


def test_unknown_repo_offline_gives_clear_error():
    with pytest.raises(ModelLoadError, match="cannot load 'nobody/no-such-model' from the Hub"):
        load_generators("nobody/no-such-model", warmup=False)


def test_file_instead_of_folder(tiny_folder):
    with pytest.raises(ModelLoadError, match="is a file"):
        load_generators(str(tiny_folder / "config.json"), warmup=False)


def test_hub_id_is_read_from_the_cache_offline(tmp_path, tiny_folder, monkeypatch):
    """A repo id resolves through huggingface_hub's cache with HF_HUB_OFFLINE=1."""
    from huggingface_hub import constants

    cache = tmp_path / "hub"
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo_dir = cache / "models--someone--tiny-cyclegan"
    snapshot = repo_dir / "snapshots" / commit
    shutil.copytree(tiny_folder, snapshot)
    (repo_dir / "refs").mkdir()
    (repo_dir / "refs" / "main").write_text(commit)
    translator = load_generators("someone/tiny-cyclegan", warmup=False)
    assert translator.t1_to_t2(phantom_slice()).shape == (96, 80)
    assert translator.source == "someone/tiny-cyclegan"


def test_default_model(monkeypatch, tmp_path):
    monkeypatch.setattr(hub, "default_model_dir", lambda: tmp_path / "absent")
    with pytest.raises(ModelLoadError, match="no default model is shipped"):
        load_generators()


def test_push_to_hub_creates_repo_and_uploads_once(fake_api, tiny_folder):
    url = push_to_hub(tiny_folder, "me/my-model", token="hf_secretsecret123", private=True)
    assert url.endswith("/me/my-model/commit/abc")
    (name1, create, tok), (name2, upload, _) = fake_api.calls
    assert (name1, name2) == ("create_repo", "upload_folder")
    assert create == {"repo_id": "me/my-model", "repo_type": "model", "private": True, "exist_ok": True}
    assert tok == "hf_secretsecret123"
    assert upload["folder_path"] == str(tiny_folder)
    assert "config.json" in upload["allow_patterns"] and "t1_to_t2.keras" in upload["allow_patterns"]


def test_push_failure_hides_token(fake_api, tiny_folder, capsys):
    token = "hf_abcdefghijklmnop"
    fake_api.fail_with = RuntimeError(f"401 Unauthorized for token {token}")
    with pytest.raises(PushError) as err:
        push_to_hub(tiny_folder, "me/my-model", token=token)
    assert token not in str(err.value) and "folder is intact" in str(err.value)
    out = capsys.readouterr()
    assert token not in out.out + out.err
    assert (tiny_folder / "t1_to_t2.keras").is_file()


def test_push_refuses_incomplete_folder_or_bad_id(fake_api, tmp_path, tiny_folder):
    folder = copy_model(tiny_folder, tmp_path / "m")
    with pytest.raises(PushError, match="owner/name"):
        push_to_hub(folder, "../evil")
    (folder / "t2_to_t1.keras").unlink()
    with pytest.raises(PushError, match="missing"):
        push_to_hub(folder, "me/model")
    assert fake_api.calls == []


def test_keras_files_are_plain_keras_archives(tiny_folder):
    with zipfile.ZipFile(tiny_folder / "t1_to_t2.keras") as archive:
        config = json.loads(archive.read("config.json"))
    assert config["class_name"] == "Functional"
    layer_classes = {layer["class_name"] for layer in config["config"]["layers"]}
    assert {"ReflectionPadding2D", "InstanceNormalization", "Conv2D"} <= layer_classes
    assert "Lambda" not in layer_classes


def test_float32_export_of_mixed_precision_model(tmp_path, tiny_config):
    from cyclegan.config import TrainConfig
    from cyclegan.training import CycleGAN

    gan = CycleGAN(tiny_config, TrainConfig(mixed_precision=True))
    save_pretrained(gan, tmp_path, tiny_config)
    loaded = keras.saving.load_model(tmp_path / "t1_to_t2.keras", compile=False)
    assert loaded.get_layer("t1_to_t2_stem_conv").compute_dtype == "float32"
    reference = build_generator(tiny_config, "t1_to_t2")
    assert [w.shape for w in loaded.get_weights()] == [w.shape for w in reference.get_weights()]


def test_load_in_a_fresh_process(tiny_folder):
    """Loading needs nothing imported beforehand (custom layers register themselves)."""
    import subprocess
    import sys

    from conftest import ROOT

    code = (
        "import sys, numpy as np; from cyclegan import load_generators; "
        "t = load_generators(sys.argv[1]); print(t.t2_to_t1(np.eye(40) * 9).shape)"
    )
    proc = subprocess.run([sys.executable, "-c", code, str(tiny_folder)], capture_output=True,
                          text=True, cwd=ROOT, timeout=120, env={**__import__("os").environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip().endswith("(40, 40)")


def test_card_states_when_an_input_is_brought_closer(tiny_config):
    card = hub.model_card(tiny_config, training={"framing": {"most_air": 20.5}, "epochs_done": 2})
    assert "more than 22.5 px on average a side) is translated within a frame 16 px around the head" in card
    assert "reframe=False" in card
    for training in (None, {"epochs_done": 2}, {"framing": {"most_air": "wide"}}):
        assert "around the head, the rest left black" not in hub.model_card(tiny_config, training=training)


def test_card_states_the_training_recipe(tiny_config):
    from cyclegan.config import TrainConfig

    def short(**fields):  # a short run; the warm-up off unless asked for
        return TrainConfig(**{"epochs": 4, "decay_epochs": 2, "inversion_warmup": 0, **fields})

    card = hub.model_card(tiny_config, short(paired_weight=100.0, skull_strip=0.3))
    assert ("paired L1 weight 100, MIND structure weight 5, 30% of the aligned pairs with a brain mask shown "
            "skull-stripped, Adam 0.0004") in card
    plain = hub.model_card(tiny_config, short())
    assert "paired L1 weight 0, MIND structure weight 5, Adam 0.0004" in plain and "skull-stripped" not in plain
    edged = hub.model_card(tiny_config, short(paired_weight=100.0, edge_weight=4.0))
    assert "paired L1 weight 100 (5 times within 3 px of the head's or brain's edge), MIND" in edged
    assert "times within 3 px" not in plain
    ssim = hub.model_card(tiny_config, short(paired_weight=100.0, paired_ssim_weight=20.0))
    assert "paired L1 weight 100, paired SSIM weight 20 (1 - SSIM of each translation and its pair), MIND" in ssim
    assert "paired SSIM" not in plain and "paired SSIM" not in edged
    default = hub.model_card(tiny_config, TrainConfig(epochs=4, decay_epochs=2))
    assert ("MIND structure weight 5, generators first fitted for 300 steps to their inputs' inversion (air and "
            "bone kept dark), Adam 0.0004") in default
    # A run that started from another model's generators skipped the warm-up, as the train command does.
    started = hub.model_card(tiny_config, TrainConfig(epochs=4, decay_epochs=2),
                             training={"init_from": "runs/a", "framing": {"most_air": 53.25}})
    assert "MIND structure weight 5, generators started from runs/a, Adam 0.0004" in started
    assert "| framing | most_air: 53.25 |" in started  # a record's mapping as plain text
    assert "inversion" not in started.split("| record |")[0]
    without = hub.model_card(tiny_config, short(structure_weight=0.0))
    assert "paired L1 weight 0, Adam 0.0004" in without and "MIND" not in without
    assert "blurred" not in plain and "gamma" not in plain
    soft = hub.model_card(tiny_config, short(blur=0.25))
    assert "MIND structure weight 5, 25% of the training images Gaussian-blurred (sigma 0.5-2 px; both" in soft
    varied = hub.model_card(tiny_config, short(blur=0.25, contrast=0.5))
    assert "alike), 50% of the generator inputs with a random gamma (0.5-2; their targets stay), Adam" in varied
    assert "DiffAugment" not in varied and "zoomed" not in varied
    zoomed = hub.model_card(tiny_config, short(zoom=0.5, blur=0.25))
    assert ("MIND structure weight 5, 50% of the training images zoomed 0.6-1.4 times about their centre (both "
            "images of a pair alike), 25% of the training images Gaussian-blurred") in zoomed
    augmented = hub.model_card(tiny_config, short(diff_augment=1.0))
    assert "MIND structure weight 5, DiffAugment (shift and cutout) on 100% of the discriminators' inputs, Adam" \
        in augmented


def test_card_states_the_generator_upsampling_and_skips(tiny_config):
    assert "1 residual blocks, transposed-convolution upsampling; PatchGAN" in hub.model_card(tiny_config)
    card = hub.model_card(tiny_config.replace(upsampling="resize"))
    assert "1 residual blocks, resize-convolution upsampling (nearest neighbour, then a 3x3 convolution)" in card
    assert "skip connections" not in card
    card = hub.model_card(tiny_config.replace(skips=True))
    assert ("transposed-convolution upsampling, skip connections that add the encoder's features at full and "
            "half resolution to the decoder's (1x1 convolutions); PatchGAN") in card


def test_card_names_and_cites_the_data_sets_the_run_read(tiny_config):
    from cyclegan.config import DEFAULT_DATASET, TrainConfig

    training = {"data_config": {"datasets": ["/somewhere/mri-t1t2-unpaired", "../data/real-t1t2", "/x/own-scans"]}}
    card = hub.model_card(tiny_config, TrainConfig(), training=training)
    front = card.split("---")[1]
    assert f"datasets:\n- {DEFAULT_DATASET}\n" in front  # the Hub id of the local copy, once
    assert "Lesjak" in card and "CC-BY" in card and "`own-scans`." in card and "BrainWeb" in card
    assert "/somewhere" not in card and "data_config" not in card
    only_own = hub.model_card(tiny_config, TrainConfig(), training={"command": "python -m train --dataset me/mine"})
    assert "datasets:" not in only_own.split("---")[1] and "- `me/mine`." in only_own
    assert "Lesjak" not in only_own and DEFAULT_DATASET not in only_own
    unrecorded = hub.model_card(tiny_config, TrainConfig(), training={"epochs_done": 3})
    assert "Data: not recorded" in unrecorded


def test_card_renders_metrics_as_tables_not_raw_keys(tiny_config):
    metrics = {"holdout_t1_to_t2_ssim": 0.9812, "holdout_t1_to_t2_psnr": 29.21, "holdout_t1_to_t2_mae": 0.019,
               "holdout_t1_to_t2_best_baseline_ssim": 0.636, "holdout_t1_to_t2_best_baseline_psnr": 11.8,
               "holdout_t1_to_t2_contrast_order_pass": 1.0, "holdout_t1_to_t2_cycle_mae": 0.018,
               "real_t2_to_t1_ssim": 0.8, "brats_t1_to_t2_ssim": 0.7, "note": "x"}
    card = hub.model_card(tiny_config, metrics=metrics)
    plain = card.split("---\n", 2)[2]  # the body, after the Hub metadata
    assert "| T1 → T2 | 0.981 | 29.2 dB | 0.019 | 0.636 / 11.8 dB | 100% | 0.018 |" in plain
    assert plain.index("Held-out pairs") < plain.index("Held-out real patients") < plain.index("BraTS")
    assert "holdout_t1_to_t2_ssim" not in plain and "| note | x |" in plain and "gamma" not in plain
    varied = hub.model_card(tiny_config, metrics={**metrics, "holdout_t1_to_t2_gamma2_ssim": 0.7,
                                                  "holdout_t1_to_t2_gamma0.5_ssim": 0.6})
    assert "| direction | gamma 0.5 | gamma 2 |" in varied and "| T1 → T2 | 0.600 | 0.700 |" in varied


def test_card_follows_the_hubs_conventions_with_model_index_metadata(tiny_config):
    from huggingface_hub import ModelCard

    from cyclegan.config import DEFAULT_DATASET, TrainConfig

    metrics = {"holdout_t1_to_t2_ssim": 0.9812, "holdout_t1_to_t2_psnr": 29.21, "holdout_t2_to_t1_ssim": 0.97,
               "real_t1_to_t2_ssim": 0.75, "brats_t2_to_t1_psnr": 17.06, "phantom_t1_to_t2_ssim": 0.9}
    training = {"data_config": {"datasets": ["/x/mri-t1t2-unpaired"]}, "recipe": 'epochs = 3\nzoom = 0.5\n'}
    text = hub.model_card(tiny_config, TrainConfig(), metrics=metrics, training=training)
    card = ModelCard(text)  # the Hub's own parser reads the metadata back
    assert card.data.library_name == "keras" and card.data.datasets == [DEFAULT_DATASET]
    results = {(r.dataset_name, r.metric_type, r.metric_name): r.metric_value for r in card.data.eval_results}
    assert results[("users' held-out pairs", "ssim", "SSIM T1 -> T2, inside the head")] == 0.981
    assert results[("users' held-out pairs", "psnr", "PSNR (dB) T1 -> T2, inside the head")] == 29.2
    assert results[("held-out real subjects", "ssim", "SSIM T1 -> T2, inside the head")] == 0.75
    assert results[("BraTS co-registered slices", "psnr", "PSNR (dB) T2 -> T1, inside the head")] == 17.1
    assert not any("phantom" in key[0] for key in results)
    for section in ("## Intended uses", "## Out-of-scope uses", "## Limitations and biases",
                    "## How to install and load", "## Training", "## Evaluation"):
        assert section in text, section
    assert "one simulated head" in text.lower()
    assert "```toml\nepochs = 3\nzoom = 0.5\n```" in text and "| recipe |" not in text
    bare = ModelCard(hub.model_card(tiny_config))
    assert bare.data.eval_results is None and "not recorded" in bare.text


def test_loading_for_inference_imports_nothing_of_training_and_is_quiet(tiny_folder):
    import subprocess
    import sys

    from conftest import ROOT

    code = ("import sys, numpy as np; from cyclegan import load_generators; t = load_generators(sys.argv[1]); "
            "t.t1_to_t2(np.eye(40)); heavy = [m for m in ('cyclegan.training', 'cyclegan.data', 'cyclegan.losses', "
            "'datasets', 'cyclegan.callbacks') if m in sys.modules]; print('heavy:', heavy)")
    env = {k: v for k, v in __import__("os").environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    proc = subprocess.run([sys.executable, "-c", code, str(tiny_folder)], capture_output=True, text=True,
                          cwd=ROOT, timeout=120, env={**env, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "heavy: []" in proc.stdout
    # Not one line of TensorFlow's start-up logging (CUDA probing, CPU features, XLA).
    assert proc.stderr.strip() == ""
