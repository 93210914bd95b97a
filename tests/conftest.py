"""Shared fixtures. Every test runs offline on tiny models."""

import os

# Before anything imports Keras or huggingface_hub: quiet TensorFlow, never touch the network.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

import io  # noqa: E402
import tempfile  # noqa: E402
import zipfile  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

from PIL import Image  # noqa: E402

from cyclegan.phantom import ellipse_slice  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = ROOT.parent / "shared" / "data"


@pytest.fixture(autouse=True)
def _isolated_hub_cache(tmp_path_factory, monkeypatch):
    cache = tmp_path_factory.getbasetemp() / "hf-cache"
    monkeypatch.setenv("HF_HOME", str(cache))
    monkeypatch.setenv("HF_HUB_CACHE", str(cache / "hub"))
    monkeypatch.setenv("MRI_CYCLEGAN_CACHE", str(tmp_path_factory.getbasetemp() / "mri-cyclegan-cache"))


@pytest.fixture(scope="session")
def tiny_config():
    from cyclegan.config import preset

    return preset("tiny")


@pytest.fixture(scope="session")
def tiny_gan(tiny_config):
    from cyclegan.config import TrainConfig
    from cyclegan.training import CycleGAN

    return CycleGAN(tiny_config, TrainConfig(epochs=2, decay_epochs=1, steps_per_epoch=2, pool_size=4))


def ellipse_pairs(n=6, size=64, first_seed=100):
    """[(name, t1, t2)] of the ellipse phantom: the same head in both contrasts, [0, 1]."""
    from cyclegan.phantom import ellipse_image, ellipse_tissues

    out = []
    for seed in range(first_seed, first_seed + n):
        labels = ellipse_tissues(size, seed)
        out.append((f"head{seed}", ellipse_image(labels, "t1", seed), ellipse_image(labels, "t2", seed + 1)))
    return out


@pytest.fixture(scope="session")
def tiny_calibration(tiny_gan, tiny_config):
    """The tiny model's input checks, calibrated on ellipse heads (training and held-out ones apart)."""
    from cyclegan.calibration import calibrate
    from cyclegan.inference import Translator

    translator = Translator(tiny_gan.t1_to_t2, tiny_gan.t2_to_t1, config=tiny_config, warmup=False)
    train = ellipse_pairs(8, first_seed=0)
    return calibrate(translator, ellipse_pairs(4), [t1 for _, t1, _ in train], [t2 for _, _, t2 in train],
                     measured_on="4 held-out ellipse heads")


@pytest.fixture(scope="session")
def tiny_folder(tmp_path_factory, tiny_gan, tiny_config, tiny_calibration):
    from cyclegan.hub import save_pretrained

    folder = tmp_path_factory.mktemp("tiny-model")
    save_pretrained(tiny_gan, folder, tiny_config, metrics={"ssim_t1_to_t2": 0.5}, calibration=tiny_calibration)
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


# -- data sets in the Hub layout ---------------------------------------------------
def png_bytes(array):
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def make_zip(path, n_t1=6, n_t2=7, corrupt=1, size=(48, 40)):
    """A data set zip in the Hub layout, with spaces and '#' in the file names."""
    with zipfile.ZipFile(path, "w") as archive:
        for i in range(n_t1):
            archive.writestr(f"Tr1/TrainT1/Image #{10 + i}.png", png_bytes(phantom_slice(*size, seed=i)))
        for i in range(n_t2):
            image = 255 - phantom_slice(*size, seed=i)
            archive.writestr(f"Tr2/TrainT2/Image #{70 + i}.png", png_bytes(image))
        for i in range(corrupt):
            archive.writestr(f"Tr2/TrainT2/Image #{90 + i}.png", b"\x89PNG\r\n\x1a\n broken")
    return path


def make_folder(root, n=5, size=(40, 36)):
    for domain in ("T1", "T2"):
        folder = root / f"Tr{domain[1]}" / f"Train{domain}"
        folder.mkdir(parents=True)
        for i in range(n):
            Image.fromarray(phantom_slice(*size, seed=i)).save(folder / f"Image #{i}.png")
    return root


# -- a stand-in for the Hub at the HfApi boundary ------------------------------------
class FakeHfApi:
    """Stand-in for huggingface_hub.HfApi that records calls and never touches the network."""

    calls = []
    fail_with = None

    def __init__(self, token=None):
        self.token = token

    def create_repo(self, **kwargs):
        FakeHfApi.calls.append(("create_repo", kwargs, self.token))
        if FakeHfApi.fail_with:
            raise FakeHfApi.fail_with

    def upload_folder(self, **kwargs):
        FakeHfApi.calls.append(("upload_folder", kwargs, self.token))

        class Info:
            commit_url = f"https://huggingface.co/{kwargs['repo_id']}/commit/abc"

        return Info()


@pytest.fixture
def fake_api(monkeypatch):
    import huggingface_hub

    FakeHfApi.calls = []
    FakeHfApi.fail_with = None
    monkeypatch.setattr(huggingface_hub, "HfApi", FakeHfApi)
    return FakeHfApi


# -- the app in a child process on loopback ------------------------------------------
def start_app(*args, timeout=180):
    """The app on a free loopback port, its output in a file (a pipe could fill up and block it).

    Returns (process, url or None); ``output(process)`` reads what it printed.
    """
    log = tempfile.TemporaryFile(mode="w+")
    from benchmarks._harness import spawn

    proc, url = spawn(*args, timeout=timeout, output=log)
    proc.log = log
    return proc, url


def output(proc) -> str:
    proc.log.seek(0)
    return proc.log.read()


@pytest.fixture(scope="session")
def app_process(tiny_folder):
    """(process, url) of the app serving the tiny model, one for the whole run (each start costs
    seconds of TensorFlow import and compilation); ``output(process)`` is its log."""
    proc, url = start_app("--model", str(tiny_folder))
    assert url, output(proc)
    yield proc, url
    proc.terminate()
    proc.wait(timeout=30)


@pytest.fixture(scope="session")
def app_url(app_process):
    return app_process[1]
