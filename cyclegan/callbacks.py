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


def optimizer_step(model) -> int:
    """Optimizer steps a training model has taken (restored with its backup on a resume)."""
    return int(keras.ops.convert_to_numpy(model.optimizer.iterations))


def translate_raw(generator, image: np.ndarray) -> np.ndarray:
    """Run a generator on one [-1, 1] image (any size); returns [-1, 1] of the same size."""
    height, width = image.shape
    batch = pad_to_multiple(image)[None, ..., None]
    out = keras.ops.convert_to_numpy(generator(batch, training=False))[0, :height, :width, 0]
    return out.astype(np.float32)


def sample_grid(model, t1_image: np.ndarray, t2_image: np.ndarray) -> np.ndarray:
    """uint8 grid: row 1 T1 -> T2 -> T1, row 2 T2 -> T1 -> T2 (input, translation, reconstruction),
    drawn by the training model's averaged generators when it keeps an average."""
    with model.averaged_generators():
        return generator_grid(model.t1_to_t2, model.t2_to_t1, t1_image, t2_image)


def generator_grid(t1_to_t2, t2_to_t1, t1_image: np.ndarray, t2_image: np.ndarray) -> np.ndarray:
    """:func:`sample_grid` of two generators; the images in [-1, 1]."""
    rows = []
    for image, forward, backward in ((t1_image, t1_to_t2, t2_to_t1), (t2_image, t2_to_t1, t1_to_t2)):
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
        self.draw(self.model, f"epoch_{epoch + 1:04d}.png")

    def draw(self, model, name: str) -> Path:
        """Write the grid of ``model`` as ``name`` in the folder (atomically); it becomes :attr:`latest`."""
        from PIL import Image

        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / name
        tmp = path.with_suffix(".tmp")
        Image.fromarray(sample_grid(model, self.t1_image, self.t2_image)).save(tmp, format="PNG")
        os.replace(tmp, path)
        self.latest = path
        return path


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
        step = optimizer_step(self.model)
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


def translator_of(model):
    """A float32 :class:`cyclegan.inference.Translator` of a training model's current generators
    (their moving average, where the model keeps one)."""
    from cyclegan.hub import float32_copy
    from cyclegan.inference import Translator

    config = model.model_config
    with model.averaged_generators():
        generators = [float32_copy(g, config, g.name) for g in model.generators]
    return Translator(*generators, config=config, warmup=False)


def unpaired_score(metrics: dict, name: str = "unpaired") -> tuple[float, float]:
    """(mean tissue-order pass fraction of both directions, minus the mean cycle error): the larger
    the better; how :class:`UnpairedCheck` ranks exports. A direction whose order could be read on
    no check image (:func:`cyclegan.evaluation.unpaired_checks` leaves its row out) counts 0."""
    order = [metrics.get(f"{name}_{d}_contrast_order_pass", 0.0) for d in ("t1_to_t2", "t2_to_t1")]
    cycle = [metrics.get(f"{name}_{d}_cycle_mae", 1.0) for d in ("t1_to_t2", "t2_to_t1")]
    return float(np.mean(order)), -float(np.mean(cycle))


#: Mean translation in the air around the head (:func:`cyclegan.evaluation.background_level`, [0, 1])
#: above which :class:`UnpairedCheck` judges a start failed: at their first export the starts that
#: learned kept it at 0.01 or less but one, at about 0.2, which learned too; the starts that painted
#: the air grey were at 0.65-0.75 (benchmarks/NOTES.md, "... and starts that paint the air").
BACKGROUND_LIMIT = 0.4
#: What each reason of :func:`start_failure` means, as the log and the model card say it.
FAILURES = {"tissue_order": "keep the input's tissue order", "background": "paint the air around the head grey"}


def start_failure(metrics: dict, name: str = "unpaired") -> str | None:
    """Why a start's check says it failed, or None: its translations keep the input's tissue order
    (right on fewer than half; not judged when the order could be read on no check image), or one
    direction paints the air around the head (its background above :data:`BACKGROUND_LIMIT`)."""
    read = any(f"{name}_{d}_contrast_order_pass" in metrics for d in ("t1_to_t2", "t2_to_t1"))
    if read and unpaired_score(metrics, name)[0] < 0.5:
        return "tissue_order"
    if max(metrics.get(f"{name}_{d}_background", 0.0) for d in ("t1_to_t2", "t2_to_t1")) > BACKGROUND_LIMIT:
        return "background"
    return None


class UnpairedCheck(keras.callbacks.Callback):
    """Checks the generators every ``every`` epochs on images of each contrast, with no pairs:
    the tissue order of their translations, the round-trip error and the background
    (:func:`cyclegan.evaluation.unpaired_checks`). Each check is logged and appended to ``path``
    (JSON lines); when one ranks best so far (:func:`unpaired_score`), ``on_best(epoch, metrics)``
    runs (the train command exports that model to ``best/``). The best score survives a resume.

    With ``decide_after`` (a number of optimizer steps) the first check made after that many steps
    judges the start (:func:`start_failure`): if it finds the tissue order right on fewer than half
    of the translations (the start kept the input's contrast) or the air around the head painted
    grey, ``failed_start`` records the check and, with
    ``may_restart``, training stops so that the train command can start again from another seed;
    without it, a warning says so and training goes on. A resumed start that was judged already is
    not judged again.
    """

    def __init__(self, every: int, images: dict, path, on_best=None, name: str = "unpaired",
                 decide_after: int | None = None, may_restart: bool = False):
        super().__init__()
        self.every = every
        self.images = images
        self.path = Path(path)
        self.on_best = on_best
        self.name = name
        self.decide_after = decide_after
        self.may_restart = may_restart
        self.failed_start: dict | None = None
        self.best = None
        self.judged = False
        if self.path.is_file():
            for line in self.path.read_text().splitlines():
                try:
                    record = json.loads(line)
                except ValueError:
                    continue
                if not isinstance(record, dict):
                    continue
                if record.get("best"):
                    self.best = tuple(record["score"])
                if decide_after is not None and record.get("step", 0) >= decide_after:
                    self.judged = True

    @property
    def stopped_start(self) -> bool:
        """Whether training was stopped so that the start can be set aside."""
        return self.failed_start is not None and self.may_restart

    def check(self) -> dict:
        from cyclegan.evaluation import rows_to_metrics, unpaired_checks

        return rows_to_metrics(unpaired_checks(self.name, self.images, translator_of(self.model)))

    def on_epoch_end(self, epoch, logs=None):
        if not self.every or (epoch + 1) % self.every:
            return
        metrics = self.check()
        score = unpaired_score(metrics, self.name)
        best = self.best is None or score > self.best
        log.info("epoch %d, checks without pairs: tissue order right on %.0f%% of T1 -> T2 and %.0f%% of "
                 "T2 -> T1 translations, round-trip error %.3f / %.3f, background %.3f / %.3f%s", epoch + 1,
                 100 * metrics.get(f"{self.name}_t1_to_t2_contrast_order_pass", 0),
                 100 * metrics.get(f"{self.name}_t2_to_t1_contrast_order_pass", 0),
                 metrics.get(f"{self.name}_t1_to_t2_cycle_mae", float("nan")),
                 metrics.get(f"{self.name}_t2_to_t1_cycle_mae", float("nan")),
                 metrics.get(f"{self.name}_t1_to_t2_background", float("nan")),
                 metrics.get(f"{self.name}_t2_to_t1_background", float("nan")),
                 " (best so far)" if best else "")
        step = optimizer_step(self.model)
        with self.path.open("a") as f:
            f.write(json.dumps({"epoch": epoch + 1, "step": step, "metrics": metrics, "score": list(score),
                                "best": best}) + "\n")
        if best:
            self.best = score
            if self.on_best is not None:
                self.on_best(epoch + 1, metrics)
        if self.decide_after is not None and not self.judged and step >= self.decide_after:
            self.judged = True
            reason = start_failure(metrics, self.name)
            if reason:
                self.failed_start = {"epoch": epoch + 1, "step": step, "metrics": metrics, "reason": reason}
                what = FAILURES[reason]
                if self.may_restart:
                    log.warning("epoch %d: the translations %s (benchmarks/NOTES.md, checks without "
                                "pairs); starting again from the next seed", epoch + 1, what)
                    self.model.stop_training = True
                else:
                    log.warning("epoch %d: the translations %s, and no restarts are left (--restarts); training "
                                "goes on.%s", epoch + 1, what,
                                " Starting from a model that knows the contrast (--init-from) learned it in every "
                                "measured run" if reason == "tissue_order" else "")
