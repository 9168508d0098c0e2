"""TFDS-backed datasets and host-to-device batching."""
