"""Convolutional network families as flax.linen modules (NHWC)."""
