"""The one error type of training that is not about the data (:class:`vrnn.datasets.DataError` is)."""

from __future__ import annotations


class TrainingError(RuntimeError):
    """Training cannot go on (e.g. every batch is non-finite, or a checkpoint does not fit)."""
