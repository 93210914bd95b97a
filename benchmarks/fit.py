"""Can a model's generators fit real patients, and does what they learn carry to a new one?

    python benchmarks/fit.py [--model FOLDER_OR_REPO] [--data REAL_T1T2] [--held-out SUBJECT]
                             [--directions t1_to_t2,t2_to_t1] [--steps 1500] [--every 100]
                             [--learning-rate 2e-4] [--batch-size 4] [--quick]

Fine-tunes each generator of a model alone, supervised (the L1 distance to the aligned partner, no
adversarial or cycle term), on the aligned pairs of the paired subjects of a ``real-t1t2`` style
folder other than the held-out one, whole slices, random left-right flips, Adam (beta_1 0.5). Every
``--every`` steps it prints one JSON line: the mean SSIM inside the head (as
``cyclegan.evaluation.paired_metrics``) on the held-out subject and on the training subjects' pairs.
If the training subject climbs and the held-out one stays, the generator has the capacity and the
data is what limits it; if neither climbs, the generator is. Nothing is saved: the model folder is
read only. ``--quick`` (CI): 4 steps, scored after 2 and 4, on at most 4 slices per subject.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

from benchmarks.quality import SHARED, emit, load_real_subjects  # noqa: E402  (the same loaders and rows)
from cyclegan.evaluation import DIRECTIONS, paired_metrics, source_and_target  # noqa: E402
from cyclegan.masks import head_mask  # noqa: E402


def paired_subjects(data: Path) -> dict:
    """{subject: [(name, t1, t2)]} of every subject with aligned pairs in PAIRS.csv."""
    from cyclegan.config import DEFAULT_SUBJECT_PATTERN
    from cyclegan.data import read_pairs, subject_of

    names = sorted({subject_of(t1, DEFAULT_SUBJECT_PATTERN) for t1, _ in read_pairs(data / "PAIRS.csv")})
    return {name: load_real_subjects(data, [name])[0] for name in names}


def batches_of(pairs: list, direction: str):
    """(inputs, targets): every pair as the generator sees it, padded to one shape."""
    from cyclegan.preprocessing import prepare

    inputs, targets = [], []
    for _, t1, t2 in pairs:
        source, truth = source_and_target(direction, t1, t2)
        inputs.append(prepare(source).array)  # padded to the network's multiple already
        targets.append(np.asarray(truth, np.float32) * 2.0 - 1.0)
    height = max(a.shape[0] for a in inputs)
    width = max(a.shape[1] for a in inputs)

    def padded(images):
        return np.stack([np.pad(a, ((0, height - a.shape[0]), (0, width - a.shape[1])), constant_values=-1.0)
                         for a in images])[..., None]

    return padded(inputs), padded(targets)


def score(model, pairs: list, direction: str) -> float:
    """Mean in-head SSIM of ``model``'s translations of ``pairs`` in ``direction``."""
    from keras import ops

    from cyclegan.preprocessing import finish, prepare

    values = []
    for _, t1, t2 in pairs:
        source, truth = source_and_target(direction, t1, t2)
        prepared = prepare(source)
        output = ops.convert_to_numpy(model(prepared.array[None, ..., None], training=False))[0]
        values.append(paired_metrics(finish(output, prepared.height, prepared.width), truth,
                                     head_mask(truth, source))["ssim"])
    return round(float(np.mean(values)), 4)


def fit(model, train: list, scored: dict, direction: str, steps: int, every: int, learning_rate: float,
        batch_size: int, seed: int = 0):
    import keras

    inputs, targets = batches_of(train, direction)
    model.compile(optimizer=keras.optimizers.Adam(learning_rate, beta_1=0.5), loss="mae")
    rng = np.random.default_rng(seed)
    start = time.perf_counter()
    emit(direction=direction, step=0, **{f"ssim_{k}": score(model, v, direction) for k, v in scored.items()})
    for step in range(1, steps + 1):
        chosen = rng.choice(len(inputs), min(batch_size, len(inputs)), replace=False)
        x, y = inputs[chosen], targets[chosen]
        if rng.random() < 0.5:
            x, y = x[:, :, ::-1], y[:, :, ::-1]
        loss = model.train_on_batch(np.ascontiguousarray(x), np.ascontiguousarray(y))
        if step % every == 0 or step == steps:
            emit(direction=direction, step=step, loss=round(float(np.ravel(loss)[0]), 4),
                 seconds=round(time.perf_counter() - start, 1),
                 **{f"ssim_{k}": score(model, v, direction) for k, v in scored.items()})


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=None, help="model folder or Hub repo (default: the shipped model)")
    parser.add_argument("--data", default=str(SHARED / "real-t1t2"), help="real patients' folder with PAIRS.csv")
    parser.add_argument("--held-out", default="openms-cs-patient07", help="the paired subject left out of the fit")
    parser.add_argument("--directions", default=",".join(DIRECTIONS))
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--every", type=int, default=100, help="score every this many steps")
    parser.add_argument("--learning-rate", type=float, default=2e-4)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--quick", action="store_true", help="4 steps on at most 4 slices a subject (CI)")
    args = parser.parse_args(argv)
    directions = [d for d in args.directions.split(",") if d]
    if not directions or any(d not in DIRECTIONS for d in directions):
        parser.error(f"--directions takes a comma-separated list of {', '.join(DIRECTIONS)}")
    if args.steps < 1 or args.every < 1 or args.batch_size < 1 or not args.learning_rate > 0:
        parser.error("--steps, --every and --batch-size are at least 1 and --learning-rate is positive")
    if args.quick:
        args.steps, args.every = 4, 2
    data = Path(args.data)
    if not (data / "PAIRS.csv").is_file():
        emit(skipped=f"no PAIRS.csv in {data.name}")
        return 0
    subjects = paired_subjects(data)
    if args.quick:
        subjects = {name: pairs[:4] for name, pairs in subjects.items()}
    if args.held_out not in subjects:
        parser.error(f"--held-out {args.held_out!r} has no aligned pairs; paired subjects: {', '.join(subjects)}")
    training = [name for name in subjects if name != args.held_out]
    if not training:
        parser.error("no paired subject is left to fit on besides the held-out one")
    from cyclegan.hub import load_generators

    emit(held_out=args.held_out, training_subjects=training,
         pairs=sum(len(subjects[name]) for name in training), steps=args.steps,
         learning_rate=args.learning_rate, batch_size=args.batch_size)
    translator = load_generators(args.model, warmup=False)  # each fit changes its own generator only
    train = [pair for name in training for pair in subjects[name]]
    scored = {"held_out": subjects[args.held_out], "training": train}
    for direction in directions:
        fit(translator.generators[direction], train, scored, direction, args.steps, args.every,
            args.learning_rate, args.batch_size)
    return 0


if __name__ == "__main__":
    sys.exit(main())
