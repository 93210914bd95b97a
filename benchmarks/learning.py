"""Does an unpaired fit learn the right contrast? The ellipse phantom, with and without the identity
and MIND structure terms.

    python benchmarks/learning.py [--identity-weights 0,0.5] [--structure-weights 5] [--seeds 0,1,2]
                                  [--steps 400] [--quick]

T1 images of 64 heads and T2 images of 64 other heads of the project's ellipse phantom
(``cyclegan.phantom.ellipse_tissues``: CSF, grey and white matter, their order reversed between the
contrasts), a tiny CycleGAN (32 px, 8 filters) fitted unpaired with the train command's losses, then
10 held-out heads translated both ways. Prints one JSON line per run: how many held-out translations
order CSF / GM / WM as the target contrast does, and the mean class intensities. ``--quick`` (CI):
one run of 50 steps.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

SIZE, HELD_OUT = 32, range(1000, 1010)


def fit_and_check(identity_weight: float, seed: int, steps: int, learning_rate: float,
                  structure_weight: float) -> dict:
    import keras
    import numpy as np

    from cyclegan.config import ModelConfig, TrainConfig
    from cyclegan.data import Slice, TrainingStream
    from cyclegan.evaluation import class_means, in_tissue_order
    from cyclegan.phantom import ellipse_image, ellipse_tissues
    from cyclegan.training import CycleGAN

    keras.utils.set_random_seed(seed)
    config = ModelConfig(image_size=SIZE, generator_filters=8, generator_blocks=2, discriminator_filters=8,
                         discriminator_layers=2)
    train_config = TrainConfig(epochs=1, decay_epochs=0, steps_per_epoch=steps, batch_size=4,
                               learning_rate=learning_rate, pool_size=10, identity_weight=identity_weight,
                               structure_weight=structure_weight, seed=seed)
    heads = {"t1": range(0, 64), "t2": range(100, 164)}
    train = {d: [Slice(f"{d}/{s}.png", d, ellipse_image(ellipse_tissues(SIZE, s), d, s) * 2 - 1) for s in seeds]
             for d, seeds in heads.items()}
    gan = CycleGAN(config, train_config)
    gan.compile()
    start = time.perf_counter()
    gan.fit(TrainingStream(train, SIZE, 4, steps, seed=seed), epochs=1, verbose=0)
    seconds = time.perf_counter() - start
    result = {"identity_weight": identity_weight, "structure_weight": structure_weight, "seed": seed,
              "steps": steps, "learning_rate": learning_rate, "fit_s": round(seconds, 1)}
    for direction, source, generator in (("t1_to_t2", "t1", gan.t1_to_t2), ("t2_to_t1", "t2", gan.t2_to_t1)):
        right, means = 0, []
        for head in HELD_OUT:
            labels = ellipse_tissues(SIZE, head)
            image = ellipse_image(labels, source, head) * 2 - 1
            out = (keras.ops.convert_to_numpy(generator(image[None, ..., None]))[0, ..., 0] + 1) / 2
            m = class_means(out, labels)
            right += in_tissue_order(direction, m)
            means.append(m)
        result[f"{direction}_order_right"] = f"{right}/{len(HELD_OUT)}"
        result[f"{direction}_csf_gm_wm"] = [round(float(v), 3) for v in np.mean(means, axis=0)]
    return result


def main(argv=None) -> int:
    from cyclegan.config import TrainConfig

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--identity-weights", default="0,0.5")
    parser.add_argument("--structure-weights", default=str(TrainConfig().structure_weight),
                        help="MIND structure term weights (default: the train command's)")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--learning-rate", type=float, default=5e-4)
    parser.add_argument("--quick", action="store_true", help="one run of 50 steps (CI)")
    args = parser.parse_args(argv)
    weights = [float(w) for w in args.identity_weights.split(",")]
    structures = [float(w) for w in args.structure_weights.split(",")]
    seeds = [int(s) for s in args.seeds.split(",")]
    if args.quick:
        weights, structures, seeds, args.steps = weights[:1], structures[:1], seeds[:1], 50
    for structure in structures:
        for weight in weights:
            for seed in seeds:
                row = fit_and_check(weight, seed, args.steps, args.learning_rate, structure)
                print(json.dumps({"bench": "learning", **row}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
