"""Loss functions of the CycleGAN objective, in pure ``keras.ops``."""

from __future__ import annotations

from keras import ops


def lsgan_loss(predictions, real: bool):
    """Least-squares GAN loss: mean squared distance of the logits to 1 or 0."""
    predictions = ops.cast(predictions, "float32")
    target = 1.0 if real else 0.0
    return ops.mean(ops.square(predictions - target))


def l1_loss(a, b, weights=None):
    """Mean absolute difference, computed in float32.

    ``weights`` (shape ``(batch,)``) weigh each image's mean difference; the
    result is still divided by the batch size, so that images with weight 0
    add nothing and the others count as much as in an unweighted batch.
    """
    diff = ops.abs(ops.cast(a, "float32") - ops.cast(b, "float32"))
    if weights is None:
        return ops.mean(diff)
    per_image = ops.mean(ops.reshape(diff, (ops.shape(diff)[0], -1)), axis=1)
    return ops.mean(per_image * ops.cast(weights, "float32"))
