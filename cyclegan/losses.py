"""Loss functions of the CycleGAN objective, in pure ``keras.ops``."""

from __future__ import annotations

from keras import ops


def lsgan_loss(predictions, real: bool):
    """Least-squares GAN loss: mean squared distance of the logits to 1 or 0."""
    predictions = ops.cast(predictions, "float32")
    target = 1.0 if real else 0.0
    return ops.mean(ops.square(predictions - target))


def l1_loss(a, b):
    """Mean absolute difference, computed in float32."""
    return ops.mean(ops.abs(ops.cast(a, "float32") - ops.cast(b, "float32")))
