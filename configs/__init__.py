"""Experiment configs: one file per experiment family."""
