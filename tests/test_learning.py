"""The train command's default recipe (no identity term, the MIND structure term) learns the right
contrast without pairs.

A short unpaired fit on the project's ellipse phantom: T1 images of some heads, T2 images of
others (never the same head), and the tissue order reversed between the two contrasts. On
held-out heads the translations must order CSF, grey and white matter as the target contrast
does. The reference CycleGAN's identity term (weight 0.5) fails this: it rewards keeping the
input's contrast (see benchmarks/NOTES.md).
"""

import keras

from cyclegan.config import ModelConfig, TrainConfig
from cyclegan.data import Slice, TrainingStream
from cyclegan.evaluation import in_tissue_order
from cyclegan.phantom import ellipse_image, ellipse_tissues
from cyclegan.training import CycleGAN

SIZE = 32


def test_unpaired_fit_learns_the_tissue_order_of_each_contrast():
    keras.utils.set_random_seed(0)
    config = ModelConfig(image_size=SIZE, generator_filters=8, generator_blocks=2, discriminator_filters=8,
                         discriminator_layers=2)
    defaults = TrainConfig()
    train_config = TrainConfig(epochs=1, decay_epochs=0, steps_per_epoch=400, batch_size=4, learning_rate=5e-4,
                               pool_size=10)
    # the default recipe's losses
    assert (train_config.identity_weight, train_config.structure_weight) == (defaults.identity_weight,
                                                                              defaults.structure_weight)
    heads = {"t1": range(0, 64), "t2": range(100, 164)}  # unpaired: no head is seen in both contrasts
    train = {domain: [Slice(f"{domain}/{s}.png", domain, ellipse_image(ellipse_tissues(SIZE, s), domain, s) * 2 - 1)
                      for s in seeds] for domain, seeds in heads.items()}
    gan = CycleGAN(config, train_config)
    gan.compile()
    gan.fit(TrainingStream(train, SIZE, 4, 400, seed=0), epochs=1, verbose=0)

    right = {"t1_to_t2": 0, "t2_to_t1": 0}
    for seed in range(1000, 1010):  # held-out heads
        labels = ellipse_tissues(SIZE, seed)
        for direction, source, generator in (("t1_to_t2", "t1", gan.t1_to_t2), ("t2_to_t1", "t2", gan.t2_to_t1)):
            image = ellipse_image(labels, source, seed) * 2 - 1
            out = keras.ops.convert_to_numpy(generator(image[None, ..., None]))[0, ..., 0]
            right[direction] += in_tissue_order(direction, [out[labels == k].mean() for k in (1, 2, 3)])
            # Not an inversion of the input: the background stays dark.
            assert out[labels == 0].mean() < out[labels > 0].mean()
    assert right["t1_to_t2"] >= 8 and right["t2_to_t1"] >= 8, right
