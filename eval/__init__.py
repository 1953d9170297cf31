"""Evaluation scripts on benchmark tasks (world-model and inverse-model metrics)."""
