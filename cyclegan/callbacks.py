"""Keras callbacks used by the train command (sample grids, export, push)."""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path

import keras
import numpy as np

from cyclegan.preprocessing import finish, pad_to_multiple, to_uint8

log = logging.getLogger(__name__)


def translate_raw(generator, image: np.ndarray) -> np.ndarray:
    """Run a generator on one [-1, 1] image (any size); returns [-1, 1] of the same size."""
    height, width = image.shape
    batch = pad_to_multiple(image)[None, ..., None]
    out = keras.ops.convert_to_numpy(generator(batch, training=False))[0, :height, :width, 0]
    return out.astype(np.float32)


def sample_grid(model, t1_image: np.ndarray, t2_image: np.ndarray) -> np.ndarray:
    """uint8 grid: row 1 T1 -> T2 -> T1, row 2 T2 -> T1 -> T2 (input, translation, reconstruction)."""
    rows = []
    for image, forward, backward in (
        (t1_image, model.t1_to_t2, model.t2_to_t1),
        (t2_image, model.t2_to_t1, model.t1_to_t2),
    ):
        fake = translate_raw(forward, image)
        rec = translate_raw(backward, fake)
        rows.append(np.concatenate([finish(x, *image.shape) for x in (image, fake, rec)], axis=1))
    width = max(r.shape[1] for r in rows)
    rows = [np.pad(r, [(0, 0), (0, width - r.shape[1])]) for r in rows]
    grid = np.concatenate(rows, axis=0)
    return to_uint8(grid)


class SampleGrid(keras.callbacks.Callback):
    """Writes ``samples/epoch_NNNN.png`` after every epoch from two validation images."""

    def __init__(self, folder, t1_image: np.ndarray, t2_image: np.ndarray):
        super().__init__()
        self.folder = Path(folder)
        self.t1_image = t1_image
        self.t2_image = t2_image
        self.latest: Path | None = None

    def on_epoch_end(self, epoch, logs=None):
        from PIL import Image

        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / f"epoch_{epoch + 1:04d}.png"
        tmp = path.with_suffix(".tmp")
        Image.fromarray(sample_grid(self.model, self.t1_image, self.t2_image)).save(tmp, format="PNG")
        os.replace(tmp, path)
        self.latest = path


class SetStreamEpoch(keras.callbacks.Callback):
    """Keeps the data stream's shuffling tied to the epoch number (also after a resume)."""

    def __init__(self, stream):
        super().__init__()
        self.stream = stream

    def on_epoch_begin(self, epoch, logs=None):
        self.stream.epoch = epoch


class Progress(keras.callbacks.Callback):
    """Records finished epochs, optimizer steps and total wall time in ``progress.json``.

    Written atomically after every epoch; the wall time adds up across resumed runs.
    """

    def __init__(self, path):
        super().__init__()
        self.path = Path(path)
        self.previous_wall = 0.0
        self.epoch = 0
        if self.path.is_file():
            try:
                data = json.loads(self.path.read_text())
                self.previous_wall = float(data.get("wall_time_s", 0.0))
                self.epoch = int(data.get("epoch", 0))
            except (ValueError, OSError):
                pass
        self.started = time.monotonic()

    @property
    def wall_time_s(self) -> float:
        return self.previous_wall + time.monotonic() - self.started

    def on_epoch_end(self, epoch, logs=None):
        self.epoch = epoch + 1
        tmp = self.path.with_suffix(".tmp")
        step = int(keras.ops.convert_to_numpy(self.model.optimizer.iterations))
        tmp.write_text(json.dumps(
            {"epoch": self.epoch, "step": step, "wall_time_s": round(self.wall_time_s, 1)}
        ))
        os.replace(tmp, self.path)


class EveryNEpochs(keras.callbacks.Callback):
    """Calls ``action(epoch)`` after every ``every``-th epoch (1-based)."""

    def __init__(self, every: int, action):
        super().__init__()
        self.every = every
        self.action = action

    def on_epoch_end(self, epoch, logs=None):
        if self.every and (epoch + 1) % self.every == 0:
            self.action(epoch + 1)
