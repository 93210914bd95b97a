"""The CycleGAN training model, trained with ``compile()`` and ``fit()``.

:class:`CycleGAN` holds the two generators (``t1_to_t2``, ``t2_to_t1``), the
two discriminators (``disc_t1`` judges T1 images, ``disc_t2`` T2 images) and
one image pool per domain. The losses are written once in ``keras.ops``; only
the gradient step differs between TensorFlow (``GradientTape``) and JAX
(``jax.value_and_grad`` over stateless values).

One training step follows the reference implementation: the generators are
updated with the discriminators frozen, and the discriminators are updated on
real images and on pooled fakes made by the generators before their update.
Both updates are computed from the same weights and applied together by a
``keras.optimizers.MultiOptimizer`` that routes the generator variables to the
generator optimizer and the discriminator variables to the discriminator
optimizer.
"""

from __future__ import annotations

import contextlib

import keras
import numpy as np
from keras import ops

from cyclegan.config import REFINE_BATCH, REFINE_CROP, ModelConfig, TrainConfig
from cyclegan.errors import ConfigError
from cyclegan.augment import AUGMENT_DRAWS, AUGMENT_VIEWS, Pipeline
from cyclegan.losses import LOSS_TERMS, Views, edge_weights, generator_terms, lsgan_loss
from cyclegan.models import SIZE_MULTIPLE, build_discriminator, build_generator

PACKAGE = "cyclegan"

#: Every loss reported as a metric (progress bar, History, TensorBoard).
LOSS_NAMES = ("gen_loss", "adv_t1", "adv_t2",
              *(f"{term.name}_{contrast}" for term in LOSS_TERMS for contrast in ("t1", "t2")),
              "disc_loss", "disc_t1_loss", "disc_t2_loss")

#: Regular expression for the variable paths of both discriminators.
DISCRIMINATOR_PATHS = r"(.*/)?disc_t[12]_.*"


@keras.saving.register_keras_serializable(package=PACKAGE)
class LinearDecaySchedule(keras.optimizers.schedules.LearningRateSchedule):
    """Constant learning rate for ``constant_steps``, then linear decay to zero."""

    def __init__(self, initial_learning_rate: float, constant_steps: int, decay_steps: int):
        self.initial_learning_rate = float(initial_learning_rate)
        self.constant_steps = int(constant_steps)
        self.decay_steps = int(decay_steps)

    def __call__(self, step):
        step = ops.cast(step, "float32")
        if self.decay_steps == 0:
            return ops.full_like(step, self.initial_learning_rate)
        progress = ops.maximum(step - self.constant_steps, 0.0) / float(self.decay_steps)
        return self.initial_learning_rate * ops.clip(1.0 - progress, 0.0, 1.0)

    def get_config(self):
        return {
            "initial_learning_rate": self.initial_learning_rate,
            "constant_steps": self.constant_steps,
            "decay_steps": self.decay_steps,
        }


def make_schedule(train_config: TrainConfig) -> LinearDecaySchedule:
    steps = train_config.steps_per_epoch
    return LinearDecaySchedule(
        train_config.learning_rate,
        constant_steps=train_config.constant_epochs * steps,
        decay_steps=train_config.decay_epochs * steps,
    )


@keras.saving.register_keras_serializable(package=PACKAGE)
class ImagePool(keras.layers.Layer):
    """History of generated images (Shrivastava et al.), as in the reference.

    While the pool fills, every new image is stored and returned. Once full,
    each image is, with probability 1/2, swapped for a random stored one (which
    is returned and replaced), else returned as is. The buffer lives in
    non-trainable weights, so it is checkpointed and restored with the model.
    Row ``size`` is scratch space for images that are not stored.
    """

    def __init__(self, size: int, image_shape, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.size = int(size)
        self.image_shape = tuple(int(s) for s in image_shape)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed, name=f"{self.name}_seed")
        self.images = self.add_weight(
            shape=(self.size + 1, *self.image_shape), initializer="zeros",
            trainable=False, name="images", dtype="float32",
        )
        self.count = self.add_weight(
            shape=(), initializer="zeros", trainable=False, name="count", dtype="int32",
        )
        self.built = True

    def query(self, images):
        images = ops.cast(images, "float32")
        if self.size == 0:
            return images
        batch = ops.shape(images)[0]
        offsets = ops.arange(batch, dtype="int32")
        fill_slot = self.count + offsets
        filling = fill_slot < self.size
        random_slot = keras.random.randint(
            (batch,), 0, self.size, dtype="int32", seed=self.seed_generator
        )
        coin = keras.random.uniform((batch,), seed=self.seed_generator)
        swap = ops.logical_and(ops.logical_not(filling), coin > 0.5)
        slot = ops.where(filling, fill_slot, random_slot)
        stored = ops.take(self.images, slot, axis=0)
        outputs = ops.where(ops.reshape(swap, (-1, 1, 1, 1)), stored, images)
        target = ops.where(ops.logical_or(filling, swap), slot, self.size)
        self.images.assign(
            ops.scatter_update(self.images, ops.expand_dims(target, -1), images)
        )
        self.count.assign(ops.minimum(self.count + ops.cast(batch, "int32"), self.size))
        return outputs

    def call(self, images):
        return self.query(images)

    def get_config(self):
        return {
            **super().get_config(),
            "size": self.size,
            "image_shape": list(self.image_shape),
            "seed": self.seed,
        }


#: Intensity (in [-1, 1]) under which :func:`invert_tissue` leaves a pixel as it is: air and bone,
#: dark on T1 and on T2 alike.
DARK_LEVEL = -0.9


def invert_tissue(images):
    """The images' inversion as a rough translation: every pixel brighter than ``DARK_LEVEL`` is
    mirrored (``-x``), darker ones (air, bone) stay. T1 and T2 order CSF, grey and white matter in
    reverse, so this has the target's tissue order in both directions; it knows nothing of fat,
    vessels or the size of the contrast, which the CycleGAN terms then learn."""
    return ops.where(images > DARK_LEVEL, -images, images)


def warm_up_on_inversion(gan: "CycleGAN", batches, steps: int, verbose=0):
    """Fit both generators of ``gan`` alone to :func:`invert_tissue` of their inputs for ``steps``
    batches of ``batches`` (a sequence of training batch dicts, as ``CycleGAN.fit`` takes; it is
    cycled through), with an L1 loss and Adam at the run's learning rate. Needs no pairs: each
    image is its own target. Returns the Keras ``History``."""
    tc = gan.train_config
    inputs = {d: keras.Input(shape=(None, None, gan.model_config.channels), name=d)
              for d in ("t1", "t2")}
    outputs = {"t1_to_t2": gan.t1_to_t2(inputs["t1"]), "t2_to_t1": gan.t2_to_t1(inputs["t2"])}
    model = keras.Model(inputs, outputs, name="inversion_warmup")
    model.compile(optimizer=keras.optimizers.Adam(tc.learning_rate, beta_1=tc.beta_1, beta_2=tc.beta_2),
                  loss={"t1_to_t2": "mae", "t2_to_t1": "mae"})

    def pairs():
        while True:
            for i in range(len(batches)):
                batch = batches[i]
                t1, t2 = batch.get("t1_input", batch["t1"]), batch.get("t2_input", batch["t2"])
                yield ({"t1": t1, "t2": t2},
                       {"t1_to_t2": invert_tissue(t1), "t2_to_t1": invert_tissue(t2)})

    return model.fit(pairs(), steps_per_epoch=steps, epochs=1, shuffle=False, verbose=verbose)


class RefinerCrops(keras.utils.PyDataset):
    """``steps`` batches of :data:`REFINE_CROP` crops of (input, the generator's output before its
    refiner, target, pixel weight) arrays, drawn with flips from ``seed``: ``((input, output),
    target, weight)`` as ``fit`` takes them. Images smaller than a crop are padded with
    background of weight 0."""

    def __init__(self, examples: list, steps: int, seed: int = 0, **kwargs):
        super().__init__(**kwargs)
        if not examples:
            raise ValueError("the refiner stage needs aligned pairs")
        self.examples, self.steps, self.seed = examples, steps, seed

    def __len__(self):
        return self.steps

    def __getitem__(self, index):
        rng = np.random.default_rng((self.seed, index))
        batch = [[], [], [], []]
        for _ in range(REFINE_BATCH):
            arrays = self.examples[rng.integers(len(self.examples))]
            height, width = arrays[0].shape
            pad = ((0, max(0, REFINE_CROP - height)), (0, max(0, REFINE_CROP - width)))
            arrays = [np.pad(a, pad, constant_values=0.0 if k == 3 else -1.0) for k, a in enumerate(arrays)]
            top = rng.integers(arrays[0].shape[0] - REFINE_CROP + 1)
            left = rng.integers(arrays[0].shape[1] - REFINE_CROP + 1)
            step = -1 if rng.random() < 0.5 else 1
            for k, a in enumerate(arrays):
                batch[k].append(a[top:top + REFINE_CROP, left:left + REFINE_CROP][:, ::step])
        source, output, target, weight = (np.stack(b).astype(np.float32) for b in batch)
        return (source[..., None], output[..., None]), target[..., None], weight


def refiner_parts(generator: keras.Model) -> tuple:
    """(the generator without its refiner, a model (input, that model's output) -> the
    generator's output) of a generator with a refiner, sharing its layers."""
    name = generator.name
    base = keras.Model(generator.inputs[0], generator.get_layer(f"{name}_tanh").output, name=f"{name}_base")
    channels = generator.inputs[0].shape[-1]
    source = keras.Input(shape=(None, None, channels), name=f"{name}_refine_source")
    drawn = keras.Input(shape=(None, None, channels), name=f"{name}_refine_drawn")
    x = generator.get_layer(f"{name}_refine_concat")([source, drawn])
    layers = {layer.name for layer in generator.layers}
    i = 0
    while f"{name}_refine{i}_conv" in layers:
        x = generator.get_layer(f"{name}_refine{i}_conv")(x)
        i += 1
    x = generator.get_layer(f"{name}_refine_out_conv")(x)
    head = keras.Model([source, drawn], generator.get_layer(f"{name}_refine_add")([drawn, x]),
                       name=f"{name}_refiner")
    return base, head


def fit_refiners(gan: "CycleGAN", examples: list, steps: int, verbose=0, seed: int = 0) -> dict:
    """Fit each generator's refiner alone to the aligned ``examples`` ([(t1, t2, t1 input, t2
    input)] in [-1, 1], see :func:`refiner_examples`), the rest of the generator as it is: the
    generator draws each example's translation of its input once, whole, as at inference, and the
    refiner learns to correct it, with an L1 loss on :class:`RefinerCrops` whose pixels within 3 px
    of the target's edge count ``1 + edge_weight`` times, and Adam at ``refine_learning_rate``.
    Returns ``{direction: (weighted L1 on the examples before, after)}``."""
    if not gan.model_config.refiner_width:
        raise ConfigError("the generators have no refiner to fit (refiner_width is 0)")
    tc = gan.train_config
    results = {}
    for direction, generator in (("t1_to_t2", gan.t1_to_t2), ("t2_to_t1", gan.t2_to_t1)):
        base, head = refiner_parts(generator)
        sources, targets = zip(*[(t1_input, t2) if direction == "t1_to_t2" else (t2_input, t1)
                                 for t1, t2, t1_input, t2_input in examples])
        drawn = _by_shape(lambda batch: base(batch, training=False), sources, multiple=SIZE_MULTIPLE)
        data = []
        for source, out, target in zip(sources, drawn, targets):
            weight = edge_weights(target[None, ..., None], tc.edge_weight)
            weight = np.ones_like(target) if weight is None else ops.convert_to_numpy(weight)[0, ..., 0]
            data.append((source, out.astype(np.float32), target, weight.astype(np.float32)))

        def error():
            outs = _by_shape(lambda batch: head([batch[..., :1], batch[..., 1:]], training=False),
                             [np.stack([source, out], axis=-1) for source, out, _, _ in data])
            return float(np.mean([np.mean(np.abs(out - target) * weight)
                                  for out, (_, _, target, weight) in zip(outs, data)]))

        before = error()
        head.compile(optimizer=keras.optimizers.Adam(tc.refine_learning_rate), loss="mae")
        head.fit(RefinerCrops(data, steps, seed), epochs=1, shuffle=False, verbose=verbose)
        results[direction] = (before, error())
    return results


def _by_shape(model_fn, images: list, batch_size: int = 8, multiple: int = 1) -> list:
    """``model_fn`` applied to ``images`` (H x W, or H x W x C) in batches of images of one shape,
    padded with background to sides that are multiples of ``multiple``, each output cut back to its
    image's height and width, in the images' order: a data set of volumes has thousands of slices
    of a few shapes."""
    from cyclegan.preprocessing import pad_to_multiple

    outputs = [None] * len(images)
    groups = {}
    for index, image in enumerate(images):
        groups.setdefault(np.shape(image), []).append(index)
    for shape, indices in groups.items():
        for start in range(0, len(indices), batch_size):
            chunk = indices[start:start + batch_size]
            batch = np.stack([pad_to_multiple(images[i], multiple) for i in chunk]).astype(np.float32)
            if batch.ndim == 3:
                batch = batch[..., None]
            out = ops.convert_to_numpy(model_fn(batch))[:, :shape[0], :shape[1], 0]
            for i, o in zip(chunk, out):
                outputs[i] = o
    return outputs


def _as_config(value, cls):
    if value is None:
        return cls()
    if isinstance(value, cls):
        return value
    if isinstance(value, dict):
        return cls.from_dict(value)
    raise ConfigError(f"expected a {cls.__name__} or a dict, got {type(value).__name__}")


@keras.saving.register_keras_serializable(package=PACKAGE)
class CycleGAN(keras.Model):
    """Both generators and both discriminators, trained with ``fit()``.

    ``fit()`` expects batches as dicts ``{"t1": images, "t2": images}`` of
    float images in [-1, 1], shape ``(batch, image_size, image_size, 1)``. With
    ``paired_weight > 0`` the two images at each batch index must show the
    same anatomy; the paired L1 term then pulls each translation toward its
    partner. A batch that mixes pairs and unpaired images says which indices
    are aligned in ``"paired"`` (shape ``(batch,)``, 1 or 0): the paired term
    counts only those, the other terms every image. Batches may also hold ``"t1_input"`` and ``"t2_input"``: what the
    generators are shown in place of ``"t1"`` and ``"t2"`` (for instance with
    another contrast, see ``TrainConfig.contrast``), while ``"t1"`` and
    ``"t2"`` stay the targets of the cycle, identity and paired terms and the
    discriminators' real images.
    """

    def __init__(self, model_config=None, train_config=None, **kwargs):
        super().__init__(**kwargs)
        self.model_config = _as_config(model_config, ModelConfig)
        self.train_config = _as_config(train_config, TrainConfig)
        mc, tc = self.model_config, self.train_config
        dtype = "mixed_bfloat16" if tc.mixed_precision else None
        self.t1_to_t2 = build_generator(mc, "t1_to_t2", dtype)
        self.t2_to_t1 = build_generator(mc, "t2_to_t1", dtype)
        self.disc_t1 = build_discriminator(mc, "disc_t1", dtype)
        self.disc_t2 = build_discriminator(mc, "disc_t2", dtype)
        shape = (mc.image_size, mc.image_size, mc.channels)
        self.pool_t1 = ImagePool(tc.pool_size, shape, seed=tc.seed, name="pool_t1")
        self.pool_t2 = ImagePool(tc.pool_size, shape, seed=tc.seed + 1, name="pool_t2")
        # Only runs that augment have the augmentation's random state, so that checkpoints
        # of runs without it keep their variables.
        self.augment_seed = (keras.random.SeedGenerator(tc.seed + 2, name="augment_seed")
                             if tc.diff_augment > 0 else None)
        self.augmentation = Pipeline.of(tc)
        self.loss_trackers = [keras.metrics.Mean(name=name) for name in LOSS_NAMES]
        self.built = True

    # -- Keras plumbing -------------------------------------------------
    @property
    def metrics(self):
        return self.loss_trackers

    @property
    def generators(self):
        return (self.t1_to_t2, self.t2_to_t1)

    @property
    def generator_variables(self):
        """Both generators' trainable variables."""
        return [v for g in self.generators for v in g.trainable_variables]

    @property
    def discriminators(self):
        return (self.disc_t1, self.disc_t2)

    def call(self, inputs, training=False):
        """Translations of a batch dict ``{"t1": ..., "t2": ...}``."""
        t1, t2 = self._unpack(inputs)[2:]
        return {
            "t1_to_t2": self.t1_to_t2(t1, training=training),
            "t2_to_t1": self.t2_to_t1(t2, training=training),
        }

    def compile(self, generator_optimizer=None, discriminator_optimizer=None, **kwargs):
        """Compile with one Adam per side (reference settings by default)."""
        tc = self.train_config

        def adam(**ema):
            return keras.optimizers.Adam(
                learning_rate=make_schedule(tc), beta_1=tc.beta_1, beta_2=tc.beta_2, **ema
            )

        average = {"use_ema": True, "ema_momentum": tc.generator_ema} if tc.generator_ema > 0 else {}
        generator_optimizer = generator_optimizer or adam(**average)
        discriminator_optimizer = discriminator_optimizer or adam()
        optimizer = keras.optimizers.MultiOptimizer(
            keras.optimizers.OptimizerMap(
                generator_optimizer, {DISCRIMINATOR_PATHS: discriminator_optimizer}
            ),
            name="cyclegan_optimizer",
        )
        self.generator_optimizer = generator_optimizer
        self.discriminator_optimizer = discriminator_optimizer
        super().compile(optimizer=optimizer, **kwargs)
        self.optimizer.build(self.trainable_variables)

    @contextlib.contextmanager
    def averaged_generators(self):
        """Within this block the generators hold the moving average of their weights that the
        generator optimizer keeps (``TrainConfig.generator_ema``); their own weights come back
        afterwards, so that training goes on from them. Without an average, or before the
        model is compiled, the generators stay as they are."""
        optimizer = getattr(self, "generator_optimizer", None)
        if (not getattr(optimizer, "use_ema", False) or not optimizer.built
                or int(ops.convert_to_numpy(optimizer.iterations)) == 0):  # no step averaged yet
            yield self
            return
        variables = self.generator_variables
        kept = [ops.convert_to_numpy(v) for v in variables]
        self.optimizer.finalize_variable_values(self.trainable_variables)  # the generators' averages
        try:
            yield self
        finally:
            for variable, value in zip(variables, kept):
                variable.assign(value)

    def fit(self, *args, **kwargs):
        """``keras.Model.fit``. With a moving average (``TrainConfig.generator_ema``), Keras leaves
        the generators holding it when fit ends (``Optimizer.finalize_variable_values``); they get
        their own copy of it, so that under JAX a later fit does not hand one buffer over twice."""
        history = super().fit(*args, **kwargs)
        if getattr(getattr(self, "generator_optimizer", None), "use_ema", False):
            for variable in self.generator_variables:
                variable.assign(ops.convert_to_numpy(variable))
        return history

    def get_config(self):
        return {
            "name": self.name,
            "model_config": self.model_config.to_dict(),
            "train_config": self.train_config.to_dict(),
        }

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    # -- losses -----------------------------------------------------------
    @staticmethod
    def _unpack(data):
        """(real_t1, real_t2, input_t1, input_t2) of a batch; the inputs are the
        real images unless the batch gives ``"t1_input"`` / ``"t2_input"``."""
        if isinstance(data, (tuple, list)):
            data = data[0]
        if not isinstance(data, dict) or "t1" not in data or "t2" not in data:
            raise ValueError('CycleGAN batches must be dicts with keys "t1" and "t2"')
        return data["t1"], data["t2"], data.get("t1_input", data["t1"]), data.get("t2_input", data["t2"])

    @staticmethod
    def _aligned(data):
        """The batch's ``"paired"`` weights (1 where its two images are aligned), or None:
        without them every batch index counts as a pair when ``paired_weight > 0``."""
        if isinstance(data, (tuple, list)):
            data = data[0]
        return data.get("paired") if isinstance(data, dict) else None

    def _draw_augment(self, batch):
        """This step's DiffAugment draws, shape ``(AUGMENT_VIEWS, batch, AUGMENT_DRAWS)``, or
        None when the run does not augment."""
        if self.augment_seed is None:
            return None
        return keras.random.uniform((AUGMENT_VIEWS, batch, AUGMENT_DRAWS), seed=self.augment_seed)

    def _judged(self, discriminator, images, draws, view):
        """``discriminator`` on ``images``, seen through DiffAugment view ``view`` of ``draws``."""
        if draws is not None:
            images = self.augmentation.discriminator(images, draws[view])
        return discriminator(images, training=True)

    def _generator_losses(self, real_t1, real_t2, input_t1, input_t2, aligned=None, draws=None):
        tc = self.train_config
        fake_t2 = self.t1_to_t2(input_t1, training=True)
        fake_t1 = self.t2_to_t1(input_t2, training=True)
        rec_t1 = self.t2_to_t1(fake_t2, training=True)
        rec_t2 = self.t1_to_t2(fake_t1, training=True)
        views = Views(real={"t1": real_t1, "t2": real_t2}, shown={"t1": input_t1, "t2": input_t2},
                      fake={"t1": fake_t1, "t2": fake_t2}, rec={"t1": rec_t1, "t2": rec_t2}, aligned=aligned,
                      same=lambda c: (self.t2_to_t1 if c == "t1" else self.t1_to_t2)(views.real[c], training=True))
        logs = {
            "adv_t1": lsgan_loss(self._judged(self.disc_t1, fake_t1, draws, 0), real=True),
            "adv_t2": lsgan_loss(self._judged(self.disc_t2, fake_t2, draws, 1), real=True),
            **generator_terms(views, tc),
        }
        total = sum(logs.values())
        logs["gen_loss"] = total
        return total, logs, (fake_t1, fake_t2)

    def _discriminator_losses(self, real_t1, real_t2, fake_t1, fake_t2, draws=None):
        loss_t1 = 0.5 * (
            lsgan_loss(self._judged(self.disc_t1, real_t1, draws, 2), real=True)
            + lsgan_loss(self._judged(self.disc_t1, fake_t1, draws, 3), real=False)
        )
        loss_t2 = 0.5 * (
            lsgan_loss(self._judged(self.disc_t2, real_t2, draws, 4), real=True)
            + lsgan_loss(self._judged(self.disc_t2, fake_t2, draws, 5), real=False)
        )
        total = loss_t1 + loss_t2
        return total, {"disc_loss": total, "disc_t1_loss": loss_t1, "disc_t2_loss": loss_t2}

    def _query_pools(self, fake_t1, fake_t2):
        return (
            self.pool_t1.query(ops.stop_gradient(fake_t1)),
            self.pool_t2.query(ops.stop_gradient(fake_t2)),
        )

    def _is_discriminator_variable(self, variable) -> bool:
        ids = getattr(self, "_disc_variable_ids", None)
        if ids is None:
            ids = {id(v) for d in self.discriminators for v in d.trainable_variables}
            self._disc_variable_ids = ids
        return id(variable) in ids

    # -- training steps -----------------------------------------------------
    def train_step(self, *args):
        backend = keras.backend.backend()
        if backend == "jax":
            return self._train_step_jax(*args)
        if backend == "tensorflow":
            return self._train_step_tensorflow(*args)
        raise NotImplementedError(
            f"CycleGAN training supports the tensorflow and jax backends, not {backend!r}"
        )

    def _train_step_tensorflow(self, data):
        import tensorflow as tf

        real_t1, real_t2, input_t1, input_t2 = self._unpack(data)
        gen_vars = self.generator_variables
        disc_vars = [v for d in self.discriminators for v in d.trainable_variables]
        draws = self._draw_augment(ops.shape(real_t1)[0])
        with tf.GradientTape() as tape:
            gen_loss, gen_logs, (fake_t1, fake_t2) = self._generator_losses(
                real_t1, real_t2, input_t1, input_t2, self._aligned(data), draws)
        gen_grads = tape.gradient(gen_loss, gen_vars)
        pooled_t1, pooled_t2 = self._query_pools(fake_t1, fake_t2)
        with tf.GradientTape() as tape:
            disc_loss, disc_logs = self._discriminator_losses(real_t1, real_t2, pooled_t1, pooled_t2, draws)
        disc_grads = tape.gradient(disc_loss, disc_vars)
        self.optimizer.apply(gen_grads + disc_grads, gen_vars + disc_vars)
        values = {**gen_logs, **disc_logs}
        for tracker in self.loss_trackers:
            tracker.update_state(values[tracker.name])
        return {tracker.name: tracker.result() for tracker in self.loss_trackers}

    def _train_step_jax(self, state, data):
        import jax

        trainable_values, non_trainable_values, optimizer_values, metric_values = state
        real_t1, real_t2, input_t1, input_t2 = self._unpack(data)
        aligned = self._aligned(data)
        trainable = self.trainable_variables
        non_trainable = self.non_trainable_variables
        disc_pos = [i for i, v in enumerate(trainable) if self._is_discriminator_variable(v)]
        gen_pos = [i for i in range(len(trainable)) if i not in set(disc_pos)]

        draws = None
        if self.augment_seed is not None:
            with keras.StatelessScope(state_mapping=list(zip(trainable, trainable_values))
                                      + list(zip(non_trainable, non_trainable_values))) as scope:
                draws = self._draw_augment(ops.shape(real_t1)[0])
            non_trainable_values = [scope.get_current_value(v) for v in non_trainable]

        def mapping(positions, values, extra=non_trainable_values):
            merged = list(trainable_values)
            for p, value in zip(positions, values):
                merged[p] = value
            return list(zip(trainable, merged)) + list(zip(non_trainable, extra))

        def gen_loss_fn(gen_values):
            with keras.StatelessScope(state_mapping=mapping(gen_pos, gen_values)):
                loss, logs, fakes = self._generator_losses(
                    real_t1, real_t2, input_t1, input_t2, aligned, draws)
            return loss, (logs, fakes)

        (_, (gen_logs, (fake_t1, fake_t2))), gen_grads = jax.value_and_grad(
            gen_loss_fn, has_aux=True
        )([trainable_values[p] for p in gen_pos])

        with keras.StatelessScope(state_mapping=mapping([], [])) as scope:
            pooled_t1, pooled_t2 = self._query_pools(fake_t1, fake_t2)
        non_trainable_values = [scope.get_current_value(v) for v in non_trainable]

        def disc_loss_fn(disc_values):
            with keras.StatelessScope(
                state_mapping=mapping(disc_pos, disc_values, non_trainable_values)
            ):
                loss, logs = self._discriminator_losses(real_t1, real_t2, pooled_t1, pooled_t2, draws)
            return loss, logs

        (_, disc_logs), disc_grads = jax.value_and_grad(disc_loss_fn, has_aux=True)(
            [trainable_values[p] for p in disc_pos]
        )
        grads = [None] * len(trainable)
        for p, g in zip(gen_pos + disc_pos, list(gen_grads) + list(disc_grads)):
            grads[p] = g
        trainable_values, optimizer_values = self.optimizer.stateless_apply(
            optimizer_values, grads, trainable_values
        )

        values = {**gen_logs, **disc_logs}
        logs, new_metric_values, offset = {}, [], 0
        for tracker in self.loss_trackers:
            count = len(tracker.variables)
            own = tracker.stateless_update_state(
                metric_values[offset : offset + count], values[tracker.name]
            )
            offset += count
            logs[tracker.name] = tracker.stateless_result(own)
            new_metric_values.extend(own)
        return logs, (trainable_values, non_trainable_values, optimizer_values, new_metric_values)
