"""Saving, loading and publishing generators: a folder or a Hub repository.

A model folder holds::

    config.json      format version, ModelConfig, TrainConfig, metrics, training record
    t1_to_t2.keras   the T1 -> T2 generator (Keras 3 format, loads in safe mode)
    t2_to_t1.keras   the T2 -> T1 generator
    README.md        the model card (Hub metadata, how to load, metrics, sample)
    samples.png      optional sample grid shown in the model card

:func:`save_pretrained` writes it, :func:`load_generators` reads it (from a local
folder, a Hub repo id or the default model shipped in the package) and
:func:`push_to_hub` uploads it in one commit.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from cyclegan.card import LIBRARY, model_card  # noqa: F401  (model_card: re-exported)
from cyclegan.config import FORMAT_VERSION, ModelConfig, TrainConfig
from cyclegan.errors import ConfigError, ModelLoadError, PushError
CONFIG_FILE = "config.json"
CARD_FILE = "README.md"
SAMPLES_FILE = "samples.png"
GENERATOR_FILES = {"t1_to_t2": "t1_to_t2.keras", "t2_to_t1": "t2_to_t1.keras"}
#: Files fetched from a Hub repository.
HUB_PATTERNS = [CONFIG_FILE, CARD_FILE, SAMPLES_FILE, *GENERATOR_FILES.values()]
_REPO_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,95}/[A-Za-z0-9][A-Za-z0-9_.-]{0,95}$")


def default_model_dir() -> Path:
    """Folder of the default model shipped inside the package."""
    return Path(__file__).resolve().parent / "default_model"


# -- config.json ---------------------------------------------------------------
def read_config(folder) -> dict:
    """Read and check ``config.json`` of a model folder.

    Returns the dict with ``model_config`` (a :class:`ModelConfig`) and
    ``train_config`` (a :class:`TrainConfig` or None) parsed.
    """
    path = Path(folder) / CONFIG_FILE
    if not path.is_file():
        raise ModelLoadError(f"{path} is missing: a model folder needs {CONFIG_FILE} beside its weights")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ModelLoadError(f"{path} is not readable JSON: {err}") from None
    if not isinstance(data, dict):
        raise ModelLoadError(f"{path} must hold a JSON object")
    known = {"format_version", "library", "model_config", "train_config", "files",
             "metrics", "training", "preprocessing", "calibration"}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ModelLoadError(f"{path} has unknown field(s): {', '.join(unknown)}")
    version = data.get("format_version")
    if version != FORMAT_VERSION:
        raise ModelLoadError(
            f"{path} has format_version {version!r}; this version of {LIBRARY} reads "
            f"format_version {FORMAT_VERSION} (upgrade the package for newer models)"
        )
    if data.get("files", GENERATOR_FILES) != GENERATOR_FILES:
        raise ModelLoadError(f"{path} lists unexpected weight files: {data.get('files')!r}")
    try:
        data["model_config"] = ModelConfig.from_dict(data.get("model_config") or {})
        train = data.get("train_config")
        data["train_config"] = TrainConfig.from_dict(train) if train is not None else None
    except (ConfigError, TypeError) as err:
        raise ModelLoadError(f"{path}: {err}") from None
    return data


def _config_json(model_config, train_config, metrics, training, calibration=None) -> str:
    from cyclegan import preprocessing as pp

    data = {
        "format_version": FORMAT_VERSION,
        "library": LIBRARY,
        "model_config": model_config.to_dict(),
        "train_config": train_config.to_dict() if train_config is not None else None,
        "files": GENERATOR_FILES,
        "preprocessing": {
            "low_percentile": pp.LOW_PERCENTILE,
            "high_percentile": pp.HIGH_PERCENTILE,
            "pad_multiple": pp.PAD_MULTIPLE,
        },
        "metrics": dict(metrics or {}),
        "training": dict(training or {}),
    }
    if calibration:
        data["calibration"] = dict(calibration)
    return json.dumps(data, indent=2, sort_keys=True, default=_json_default)


def _json_default(value):
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


# -- saving ----------------------------------------------------------------------
def _as_cyclegan(models):
    """``models`` if it is a CycleGAN training model, else None (without importing training)."""
    training = sys.modules.get("cyclegan.training")
    return models if training is not None and isinstance(models, training.CycleGAN) else None


def _generators_of(models) -> tuple:
    if _as_cyclegan(models) is not None:
        return models.t1_to_t2, models.t2_to_t1
    if isinstance(models, Mapping):
        try:
            return models["t1_to_t2"], models["t2_to_t1"]
        except KeyError:
            raise ValueError('the generators mapping needs keys "t1_to_t2" and "t2_to_t1"') from None
    if isinstance(models, (tuple, list)) and len(models) == 2:
        return tuple(models)
    raise ValueError(
        "save_pretrained takes a CycleGAN, a (t1_to_t2, t2_to_t1) pair or a dict of both, "
        f"got {type(models).__name__}"
    )


def float32_copy(model, config: ModelConfig, name: str):
    """The generator rebuilt in float32, as model folders store it (whatever it was trained in)."""
    from cyclegan.models import build_generator

    clean = build_generator(config, name)
    clean.set_weights(model.get_weights())
    return clean


def save_pretrained(
    cyclegan_or_generators,
    folder,
    config: ModelConfig,
    metrics: Mapping[str, Any] | None = None,
    samples=None,
    *,
    train_config: TrainConfig | None = None,
    training: Mapping[str, Any] | None = None,
    repo_id: str | None = None,
    calibration: Mapping[str, Any] | None = None,
) -> Path:
    """Write both generators, ``config.json`` and a model card to ``folder``.

    ``samples`` is an image (uint8 array, float array in [0, 1] or a PNG path)
    shown in the card. ``training`` is a free-form record (command, epochs,
    wall time, machine) kept in config.json and the card; ``calibration`` the
    input checks measured on data (:mod:`cyclegan.calibration`). Files are written to
    a temporary folder first and moved into place, so an interrupted save never
    leaves a half-written model behind.
    """
    if not isinstance(config, ModelConfig):
        raise ConfigError(f"config must be a ModelConfig, got {type(config).__name__}")
    if train_config is None and _as_cyclegan(cyclegan_or_generators) is not None:
        train_config = cyclegan_or_generators.train_config
    t1_to_t2, t2_to_t1 = _generators_of(cyclegan_or_generators)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".saving-", dir=folder))
    try:
        for name, model in (("t1_to_t2", t1_to_t2), ("t2_to_t1", t2_to_t1)):
            float32_copy(model, config, name).save(staging / GENERATOR_FILES[name])
        has_samples = samples is not None
        if has_samples:
            _write_samples(samples, staging / SAMPLES_FILE)
        for name, text in _metadata(config, train_config, metrics, training, has_samples, repo_id,
                                    calibration).items():
            (staging / name).write_text(text, encoding="utf-8")
        for item in staging.iterdir():
            os.replace(item, folder / item.name)
        if not has_samples and (folder / SAMPLES_FILE).exists():
            (folder / SAMPLES_FILE).unlink()
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return folder


def _metadata(config, train_config, metrics, training, has_samples, repo_id, calibration) -> dict:
    """{file name: text} of a saved model's metadata: its config.json and its model card."""
    return {CONFIG_FILE: _config_json(config, train_config, metrics, training, calibration),
            CARD_FILE: model_card(config, train_config, metrics, training, has_samples, repo_id, calibration)}


def save_metadata(folder, config: ModelConfig, metrics=None, *, train_config: TrainConfig | None = None,
                  training=None, repo_id: str | None = None, calibration=None) -> Path:
    """Rewrite only ``config.json`` and the model card of the saved model in ``folder`` (new metrics,
    a new record, a new card), its generators untouched; each file is replaced whole, atomically."""
    folder = Path(folder)
    missing = [name for name in GENERATOR_FILES.values() if not (folder / name).is_file()]
    if missing:
        raise ConfigError(f"{folder} is not a saved model: {', '.join(missing)} missing")
    texts = _metadata(config, train_config, metrics, training, (folder / SAMPLES_FILE).is_file(), repo_id,
                      calibration)
    for name, text in texts.items():
        handle, temporary = tempfile.mkstemp(prefix=".saving-", dir=folder)
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
        os.replace(temporary, folder / name)
    return folder


def _write_samples(samples, path: Path) -> None:
    from PIL import Image

    if isinstance(samples, (str, os.PathLike)):
        shutil.copyfile(samples, path)
        return
    array = np.asarray(samples)
    if array.dtype != np.uint8:
        from cyclegan.preprocessing import to_uint8

        array = to_uint8(array)
    Image.fromarray(array.squeeze()).save(path, format="PNG")


# -- loading ---------------------------------------------------------------------
def check_repo_id(repo_id: str) -> str:
    """Return ``repo_id`` if it is a plain ``owner/name`` Hub id, else raise."""
    if (
        not isinstance(repo_id, str)
        or ".." in repo_id
        or repo_id.startswith(("/", "\\", "~"))
        or not _REPO_ID.match(repo_id)
    ):
        raise ModelLoadError(
            f"{repo_id!r} is neither an existing local folder nor a Hub repo id of the form "
            "'owner/name' (letters, digits, '-', '_', '.'; no '..' or absolute paths)"
        )
    return repo_id


def _download(repo_id: str, revision: str | None) -> Path:
    from huggingface_hub import snapshot_download

    try:
        path = snapshot_download(
            repo_id=repo_id, revision=revision, repo_type="model", allow_patterns=HUB_PATTERNS
        )
    except Exception as err:  # every Hub/network failure becomes one clear message
        kind = type(err).__name__
        hint = {
            "RepositoryNotFoundError": "the repository does not exist or is private (log in with `hf auth login`)",
            "RevisionNotFoundError": f"the revision {revision!r} does not exist",
            "GatedRepoError": "the repository is gated: accept its terms on the Hub first",
            "LocalEntryNotFoundError": "the Hub is unreachable (or HF_HUB_OFFLINE is set) and the model is not in the local cache",
        }.get(kind, "the download failed")
        raise ModelLoadError(f"cannot load {repo_id!r} from the Hub: {hint} ({kind})") from None
    return Path(path)


def resolve_source(source=None, revision: str | None = None) -> Path:
    """The local folder for ``source``: None (default model), a folder, or a Hub id."""
    if source is None:
        folder = default_model_dir()
        if not (folder / CONFIG_FILE).is_file():
            raise ModelLoadError(
                f"no default model is shipped in this installation of {LIBRARY} "
                "(pass a local folder or a Hub repo id to load_generators)"
            )
        return folder
    if isinstance(source, os.PathLike):
        source = os.fspath(source)
    if not isinstance(source, str) or not source.strip():
        raise ModelLoadError(f"source must be a folder path or a Hub repo id, got {source!r}")
    if source.startswith("hf://"):
        return _download(check_repo_id(source[len("hf://"):]), revision)
    if os.path.isdir(source):
        return Path(source)
    if os.path.exists(source):
        raise ModelLoadError(f"{source!r} is a file; pass the model folder that holds {CONFIG_FILE}")
    return _download(check_repo_id(source), revision)


def _load_generator(folder: Path, name: str, config: ModelConfig):
    import keras

    import cyclegan.layers  # noqa: F401  (registers the custom layers for deserialization)

    path = folder / GENERATOR_FILES[name]
    if not path.is_file():
        raise ModelLoadError(f"{path} is missing: a model folder needs both generators")
    try:
        model = keras.saving.load_model(path, compile=False, safe_mode=True)
    except Exception as err:
        text = str(err).strip().splitlines()
        reason = text[0] if text else type(err).__name__
        if "safe_mode" in str(err) or "Lambda" in str(err):
            reason = ("it contains a Lambda layer or other arbitrary code, which is refused "
                      "(safe mode)")
        raise ModelLoadError(f"cannot load {path.name}: {reason}") from None
    if not isinstance(model, keras.Model) or len(model.inputs) != 1:
        raise ModelLoadError(f"{path.name} is not a single-input generator")
    if model.input_shape[-1] != config.channels or model.output_shape[-1] != config.channels:
        raise ModelLoadError(
            f"{path.name} takes {model.input_shape[-1]} channel(s) but config.json says "
            f"{config.channels}"
        )
    return model


def load_generators(source=None, revision: str | None = None, warmup: bool = True,
                    precision: str = "float32", reframe: bool = True):
    """Load both generators and return a :class:`cyclegan.inference.Translator`.

    ``source`` is a local model folder, a Hub repo id (``"owner/name"`` or
    ``"hf://owner/name"``, downloaded with huggingface_hub into its cache;
    ``HF_HUB_OFFLINE=1`` is honoured) or None for the default model shipped
    with the package. ``revision`` picks a Hub branch, tag or commit.
    ``precision`` is "float32" (XLA), "bfloat16" or "auto" (bfloat16 on CPUs
    with native bf16 units under TensorFlow, else float32). ``reframe`` (on by
    default) translates an input with far more air around the head than the
    training slices had within a closer frame around the head
    (:attr:`cyclegan.inference.Translator.reframe`).

    TensorFlow's start-up log lines (CUDA probing, CPU features, XLA) are off
    unless ``TF_CPP_MIN_LOG_LEVEL`` is set: loading a model for inference is quiet.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    from cyclegan.inference import Translator

    folder = resolve_source(source, revision)
    data = read_config(folder)
    config = data["model_config"]
    t1_to_t2 = _load_generator(folder, "t1_to_t2", config)
    t2_to_t1 = _load_generator(folder, "t2_to_t1", config)
    label = "default" if source is None else os.fspath(source)
    return Translator(t1_to_t2, t2_to_t1, config=config, source=label, card=data, warmup=warmup,
                      precision=precision, reframe=reframe)


# -- publishing ------------------------------------------------------------------
def _redact(text: str, token: str | None) -> str:
    if token:
        text = text.replace(token, "***")
    return re.sub(r"hf_[A-Za-z0-9]{8,}", "hf_***", text)


def push_to_hub(folder, repo_id: str, token: str | None = None, private: bool = False) -> str:
    """Upload a saved model folder to ``repo_id`` in one commit; returns the commit URL.

    The repository is created when missing. ``token`` defaults to ``HF_TOKEN``
    or the saved login. The token is never printed, logged or put in errors.
    """
    from huggingface_hub import HfApi

    folder = Path(folder)
    read_config(folder)  # refuse to publish anything that would not load
    for name in GENERATOR_FILES.values():
        if not (folder / name).is_file():
            raise PushError(f"{folder / name} is missing; nothing was uploaded")
    try:
        check_repo_id(repo_id)
    except ModelLoadError:
        raise PushError(f"{repo_id!r} is not a Hub repo id of the form 'owner/name'") from None
    try:
        api = HfApi(token=token)
        api.create_repo(repo_id=repo_id, repo_type="model", private=private, exist_ok=True)
        info = api.upload_folder(
            repo_id=repo_id,
            repo_type="model",
            folder_path=str(folder),
            allow_patterns=HUB_PATTERNS,
            commit_message=f"Upload {LIBRARY} model",
        )
    except Exception as err:
        message = _redact(f"{type(err).__name__}: {err}".splitlines()[0], token)
        raise PushError(
            f"pushing {folder} to {repo_id} failed ({message}); the folder is intact"
        ) from None
    return str(getattr(info, "commit_url", info))
