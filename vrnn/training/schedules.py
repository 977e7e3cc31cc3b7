"""The learning-rate and KL-weight schedules: pure functions of the step (and budget fraction)."""

from __future__ import annotations

import math


def lr_factor(step: int, fraction: float, warmup_steps: int, min_ratio: float) -> float:
    """Linear warm-up over ``warmup_steps``, then cosine decay to ``min_ratio`` as ``fraction`` goes 0 -> 1."""
    warm = min(1.0, (step + 1) / max(1, warmup_steps))
    f = min(max(fraction, 0.0), 1.0)
    return warm * (min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * f)))


def kl_weight(step: int, warmup_steps: int) -> float:
    """Linear KL warm-up from 0 to 1 over ``warmup_steps`` (1 from the start when 0)."""
    if warmup_steps <= 0:
        return 1.0
    return min(1.0, step / warmup_steps)


def kl_warm(step: int, warmup_steps: int) -> bool:
    """Whether the KL warm-up is over at ``step`` (early stopping counts only from then on)."""
    return step >= warmup_steps
