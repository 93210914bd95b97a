"""Shared fixtures. Every test runs offline on tiny models."""

import os

# Before anything imports Keras or huggingface_hub: quiet TensorFlow, never touch the network.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

from cyclegan.phantom import ellipse_slice  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = ROOT.parent / "shared" / "data"


@pytest.fixture(autouse=True)
def _isolated_hub_cache(tmp_path_factory, monkeypatch):
    cache = tmp_path_factory.getbasetemp() / "hf-cache"
    monkeypatch.setenv("HF_HOME", str(cache))
    monkeypatch.setenv("HF_HUB_CACHE", str(cache / "hub"))


@pytest.fixture(scope="session")
def tiny_config():
    from cyclegan.config import preset

    return preset("tiny")


@pytest.fixture(scope="session")
def tiny_gan(tiny_config):
    from cyclegan.config import TrainConfig
    from cyclegan.training import CycleGAN

    return CycleGAN(tiny_config, TrainConfig(epochs=2, decay_epochs=1, steps_per_epoch=2, pool_size=4))


@pytest.fixture(scope="session")
def tiny_folder(tmp_path_factory, tiny_gan, tiny_config):
    from cyclegan.hub import save_pretrained

    folder = tmp_path_factory.mktemp("tiny-model")
    save_pretrained(tiny_gan, folder, tiny_config, metrics={"ssim_t1_to_t2": 0.5})
    return folder


@pytest.fixture(scope="session")
def tiny_translator(tiny_folder):
    from cyclegan.hub import load_generators

    return load_generators(tiny_folder)


def phantom_slice(height=96, width=80, seed=0):
    """A smooth head-like test image (uint8): an ellipse with structure inside."""
    return ellipse_slice(height, width, seed)


@pytest.fixture
def slice_u8():
    return phantom_slice()
