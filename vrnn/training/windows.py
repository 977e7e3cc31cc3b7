"""Training data as tensors: inks -> unit-scale offsets -> standardized, padded windows.

Every ink is preprocessed once (:mod:`vrnn.preprocess`), cut into windows of at most
``max_len`` points, standardized with the run's :class:`~vrnn.preprocess.Normalizer`
and padded into one tensor, so a training step only indexes rows. The data order is
a pure function of ``(seed, epoch)`` (:func:`epoch_order`; :func:`mixture_order` for a
mixture of sources with weights): resuming needs no sampler state.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from ..ink import Ink, InkFormatError
from ..preprocess import Normalizer, PreprocessConfig, collate, make_windows, prepare_offsets


@dataclass
class WindowSet:
    """Training windows padded once into tensors: ``x (N, L, 3)``, ``mask (N, L)``, ``lengths (N,)``,
    and ``source (N,)``: the index of the data source each window comes from (0 for one source)."""

    x: torch.Tensor
    mask: torch.Tensor
    lengths: torch.Tensor
    source: torch.Tensor | None = None

    def __post_init__(self):
        if self.source is None:
            self.source = torch.zeros(len(self.lengths), dtype=torch.long)

    def __len__(self) -> int:
        return int(self.x.shape[0])

    @property
    def points(self) -> int:
        return int(self.lengths.sum())

    def rows(self, idx: torch.Tensor) -> WindowSet:
        """The windows ``idx``, in that order."""
        return WindowSet(self.x[idx], self.mask[idx], self.lengths[idx], self.source[idx])

    @staticmethod
    def concat(parts: Sequence[WindowSet]) -> WindowSet:
        """One set of the windows of ``parts``, in order, padded to the longest."""
        parts = [p for p in parts if len(p)]
        if not parts:
            return _empty()
        L = max(p.x.shape[1] for p in parts)
        return WindowSet(torch.cat([_pad_time(p.x, L) for p in parts]),
                         torch.cat([_pad_time(p.mask, L) for p in parts]),
                         torch.cat([p.lengths for p in parts]), torch.cat([p.source for p in parts]))

    def batch(self, idx: torch.Tensor, device: torch.device):
        """Rows ``idx``, trimmed to their longest window, on ``device``."""
        T = int(self.lengths[idx].max())
        x, m = self.x[idx, :T], self.mask[idx, :T]
        if device.type != "cpu":
            x, m = x.to(device, non_blocking=True), m.to(device, non_blocking=True)
        return x, m


def _pad_time(t: torch.Tensor, length: int) -> torch.Tensor:
    """``t`` (batch, time, ...) zero-padded along time to ``length``."""
    if t.shape[1] == length:
        return t
    return torch.cat([t, t.new_zeros((t.shape[0], length - t.shape[1], *t.shape[2:]))], 1)


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


def _empty() -> WindowSet:
    return WindowSet(torch.zeros(0, 1, 3), torch.zeros(0, 1), torch.zeros(0, dtype=torch.long))


def build_windows(offsets: list[np.ndarray], normalizer: Normalizer, max_len: int, min_len: int, *,
                  source: int = 0) -> WindowSet:
    """Cut unit-scale offsets into windows, standardize them and pad them into one :class:`WindowSet`."""
    windows = [normalizer.normalize(w) for w in make_windows(offsets, max_len=max_len, min_len=min_len)]
    if not windows:
        return _empty()
    x, mask = collate(windows)
    return WindowSet(x, mask, mask.sum(1).long(), torch.full((len(windows),), source, dtype=torch.long))


def validation_windows(offsets_by_source: Sequence[list[np.ndarray]], normalizer: Normalizer, *, max_len: int,
                       min_len: int, cap: int) -> WindowSet:
    """Validation windows of each source's offsets: at most ``cap`` of them (a fixed, evenly spread
    subset, so evaluations compare), sorted longest first (similar lengths batch together)."""
    parts = [build_windows(off, normalizer, max_len, min_len, source=k) for k, off in enumerate(offsets_by_source)]
    ws = WindowSet.concat(parts) if len(parts) > 1 else parts[0]
    if cap and len(ws) > cap:
        ws = ws.rows(torch.linspace(0, len(ws) - 1, cap).round().long())
    return ws.rows(torch.argsort(ws.lengths, descending=True))


def epoch_order(n: int, seed: int, epoch: int) -> torch.Tensor:
    """The seeded permutation of ``n`` windows for ``epoch`` (a pure function: resume needs no state)."""
    return torch.from_numpy(np.random.default_rng([seed, epoch]).permutation(n))


def shares(weights: Sequence[float], n: int) -> list[int]:
    """``n`` split in proportion to ``weights`` (largest remainders: the shares sum to ``n``)."""
    total = float(sum(weights))
    exact = [w / total * n for w in weights]
    out = [int(np.floor(e)) for e in exact]
    for k in sorted(range(len(exact)), key=lambda k: (out[k] - exact[k], k))[: n - sum(out)]:
        out[k] += 1
    return out


def mixture_order(source: torch.Tensor, weights: Sequence[float], seed: int, epoch: int) -> torch.Tensor:
    """An epoch of ``len(source)`` window indices in which source ``k`` has the share ``weights[k]``.

    Each source's windows are drawn in seeded permutations, one after another (so a
    source smaller than its share is repeated, each window as often as the others, and
    a larger one is sampled without repeats), then the whole epoch is shuffled. A pure
    function of ``(seed, epoch)``, like :func:`epoch_order`.
    """
    rng = np.random.default_rng([seed, epoch, len(weights)])
    src = source.numpy()
    picks = []
    for k, want in enumerate(shares(weights, len(src))):
        idx = np.flatnonzero(src == k)
        if want == 0 or len(idx) == 0:
            continue
        rounds = -(-want // len(idx))
        picks.append(np.concatenate([idx[rng.permutation(len(idx))] for _ in range(rounds)])[:want])
    order = np.concatenate(picks) if picks else np.zeros(0, dtype=np.int64)
    return torch.from_numpy(order[rng.permutation(len(order))])


def shard(order: torch.Tensor, rank: int, world: int) -> torch.Tensor:
    """This rank's share of an epoch's order: every ``world``-th window, cut so every rank gets as many."""
    return order[rank::world][: len(order) // world]
