"""Training data as tensors: inks -> unit-scale offsets -> standardized, padded windows.

Every ink is preprocessed once (:mod:`vrnn.preprocess`), cut into windows of at most
``max_len`` points, standardized with the run's :class:`~vrnn.preprocess.Normalizer`
and padded into one tensor, so a training step only indexes rows. The data order is
:func:`epoch_order`, a pure function of ``(seed, epoch)``: resuming needs no sampler state.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..ink import Ink, InkFormatError
from ..preprocess import Normalizer, PreprocessConfig, collate, make_windows, prepare_offsets


@dataclass
class WindowSet:
    """Training windows padded once into tensors: ``x (N, L, 3)``, ``mask (N, L)``, ``lengths (N,)``."""

    x: torch.Tensor
    mask: torch.Tensor
    lengths: torch.Tensor

    def __len__(self) -> int:
        return int(self.x.shape[0])

    @property
    def points(self) -> int:
        return int(self.lengths.sum())

    def rows(self, idx: torch.Tensor) -> WindowSet:
        """The windows ``idx``, in that order."""
        return WindowSet(self.x[idx], self.mask[idx], self.lengths[idx])

    def batch(self, idx: torch.Tensor, device: torch.device):
        """Rows ``idx``, trimmed to their longest window, on ``device``."""
        T = int(self.lengths[idx].max())
        x, m = self.x[idx, :T], self.mask[idx, :T]
        if device.type != "cpu":
            x, m = x.to(device, non_blocking=True), m.to(device, non_blocking=True)
        return x, m


def prepare_inks(inks: list[Ink], preprocess_config: PreprocessConfig) -> list[np.ndarray]:
    """Unit-scale offsets of each ink (inks with no usable points are skipped)."""
    out = []
    for ink in inks:
        try:
            off = prepare_offsets(ink, preprocess_config)
        except InkFormatError:
            continue
        if len(off) >= 2:
            out.append(off)
    return out


def build_windows(offsets: list[np.ndarray], normalizer: Normalizer, max_len: int, min_len: int) -> WindowSet:
    """Cut unit-scale offsets into windows, standardize them and pad them into one :class:`WindowSet`."""
    windows = [normalizer.normalize(w) for w in make_windows(offsets, max_len=max_len, min_len=min_len)]
    if not windows:
        return WindowSet(torch.zeros(0, 1, 3), torch.zeros(0, 1), torch.zeros(0, dtype=torch.long))
    x, mask = collate(windows)
    return WindowSet(x, mask, mask.sum(1).long())


def validation_windows(offsets: list[np.ndarray], normalizer: Normalizer, *, max_len: int, min_len: int,
                       cap: int) -> WindowSet:
    """Validation windows: at most ``cap`` of them (a fixed, evenly spread subset, so evaluations
    compare), sorted longest first (similar lengths batch together)."""
    ws = build_windows(offsets, normalizer, max_len, min_len)
    if cap and len(ws) > cap:
        ws = ws.rows(torch.linspace(0, len(ws) - 1, cap).round().long())
    return ws.rows(torch.argsort(ws.lengths, descending=True))


def epoch_order(n: int, seed: int, epoch: int) -> torch.Tensor:
    """The seeded permutation of ``n`` windows for ``epoch`` (a pure function: resume needs no state)."""
    return torch.from_numpy(np.random.default_rng([seed, epoch]).permutation(n))


def shard(order: torch.Tensor, rank: int, world: int) -> torch.Tensor:
    """This rank's share of an epoch's order: every ``world``-th window, cut so every rank gets as many."""
    return order[rank::world][: len(order) // world]
