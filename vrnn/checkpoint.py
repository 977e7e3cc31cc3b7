"""Checkpoints as files: ``model.safetensors`` (weights) + ``config.json`` (config,
normalization statistics, preprocessing, model card). Nothing is ever pickled or unpickled.

``config.json`` holds the SHA-256 of the weights file, so a half-written or swapped pair
is detected. Files are written to temporary names and renamed into place (weights
first, then the JSON that commits them).

This module knows the file format, not the model classes: ``vrnn.model`` builds a model
from what :func:`read_checkpoint` returns (``vrnn.model.load_model``), so the dependency
points one way (model -> checkpoint).
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch

from . import __version__
from .preprocess import Normalizer, PreprocessConfig

WEIGHTS = "model.safetensors"
CONFIG = "config.json"
FORMAT = "vrnn-checkpoint"
FORMAT_VERSION = 1
PRETRAINED = Path(__file__).resolve().parent.parent / "pretrained"
MAX_CONFIG_BYTES = 1 << 20


class CheckpointError(ValueError):
    """A checkpoint that cannot be loaded; the message says which file and why."""


def bundled_path(kind: str = "vrnn") -> Path:
    """Folder of a bundled model: ``"vrnn"`` (default) or ``"rnn"`` (the baseline)."""
    return PRETRAINED / kind


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file + rename: never a half-written file."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; checkpoints are shared files
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def save_model(model, path, card: dict | None = None) -> Path:
    """Write ``model`` (its ``state_dict``, ``config``, ``normalizer``, ``preprocess_config``
    and ``card``) to the folder ``path`` (created if needed); returns the folder."""
    from safetensors.torch import save

    out = Path(path)
    out.mkdir(parents=True, exist_ok=True)
    if card is not None:
        model.card = dict(card)
    tensors = {k: v.detach().to("cpu", torch.float32).contiguous() for k, v in model.state_dict().items()}
    blob = save(tensors, metadata={"format": FORMAT})
    atomic_write_bytes(out / WEIGHTS, blob)
    meta = {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "library_version": __version__,
        "saved": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "config": model.config.to_dict(),
        "normalizer": model.normalizer.to_dict(),
        "preprocess": model.preprocess_config.to_dict(),
        "weights_sha256": hashlib.sha256(blob).hexdigest(),
        "card": model.card,
    }
    atomic_write_bytes(out / CONFIG, json.dumps(meta, indent=2, allow_nan=False, default=str).encode())
    return out


@dataclass
class Checkpoint:
    """What a checkpoint folder holds, read and checked (see :func:`read_checkpoint`)."""

    folder: Path
    config: dict  # the model config as stored (``vrnn.model.VRNNConfig.from_dict`` parses it)
    normalizer: Normalizer
    preprocess: PreprocessConfig
    card: dict
    tensors: dict[str, torch.Tensor]  # finite float tensors

    def load_into(self, model) -> None:
        """Copy the weights into ``model``; :class:`CheckpointError` unless names and shapes fit."""
        wpath = self.folder / WEIGHTS
        expected = model.state_dict()
        missing = sorted(set(expected) - set(self.tensors))
        extra = sorted(set(self.tensors) - set(expected))
        if missing or extra:
            raise CheckpointError(f"{wpath}: weights do not fit the config (missing {missing[:3]}, unexpected {extra[:3]})")
        for k, v in self.tensors.items():
            if tuple(v.shape) != tuple(expected[k].shape):
                raise CheckpointError(f"{wpath}: {k} has shape {tuple(v.shape)}, config needs {tuple(expected[k].shape)}")
        model.load_state_dict(self.tensors)


def _read_meta(folder: Path) -> dict:
    cfg_path = folder / CONFIG
    if not cfg_path.is_file():
        raise CheckpointError(f"{folder}: no {CONFIG} (not a checkpoint folder)")
    if cfg_path.stat().st_size > MAX_CONFIG_BYTES:
        raise CheckpointError(f"{cfg_path}: larger than {MAX_CONFIG_BYTES} bytes")
    try:
        meta = json.loads(cfg_path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CheckpointError(f"{cfg_path}: not valid JSON ({e})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CheckpointError(f"{cfg_path}: not a {FORMAT} file")
    if meta.get("version") != FORMAT_VERSION:
        raise CheckpointError(f"{cfg_path}: unsupported checkpoint version {meta.get('version')!r}")
    return meta


def read_checkpoint(path=None) -> Checkpoint:
    """Read and check the checkpoint folder ``path`` (``None``: the bundled VRNN).

    Raises :class:`CheckpointError` for anything that is not a valid checkpoint (missing,
    truncated or edited files, a weights checksum that differs, pickles, non-finite or
    non-float tensors).
    """
    from safetensors import SafetensorError
    from safetensors.torch import load

    folder = bundled_path() if path is None else Path(path)
    if not folder.is_dir():
        hint = " (the bundled model is missing: train it with the README's command)" if path is None else ""
        raise CheckpointError(f"{folder}: no such checkpoint folder{hint}")
    meta = _read_meta(folder)
    try:
        config = meta["config"]
        if not isinstance(config, dict):
            raise TypeError("config is not an object")
        normalizer = Normalizer.from_dict(meta["normalizer"])
        pre = PreprocessConfig.from_dict(meta.get("preprocess", {}))
    except (KeyError, TypeError, ValueError) as e:
        raise CheckpointError(f"{folder / CONFIG}: invalid config ({e})") from None
    wpath = folder / WEIGHTS
    if not wpath.is_file():
        raise CheckpointError(f"{wpath}: missing weights file")
    blob = wpath.read_bytes()
    if meta.get("weights_sha256") and hashlib.sha256(blob).hexdigest() != meta["weights_sha256"]:
        raise CheckpointError(f"{wpath}: weights do not match {CONFIG} (checksum differs: truncated or replaced)")
    try:
        tensors = load(blob)
    except (SafetensorError, ValueError, RuntimeError, OSError) as e:
        raise CheckpointError(f"{wpath}: not a safetensors file ({str(e).splitlines()[0] if str(e) else type(e).__name__})") from None
    for k, v in tensors.items():
        if not v.is_floating_point() or not torch.isfinite(v).all():
            raise CheckpointError(f"{wpath}: {k} is not a finite float tensor")
    card = meta.get("card") or {}
    return Checkpoint(folder=folder, config=config, normalizer=normalizer, preprocess=pre,
                      card=card if isinstance(card, dict) else {}, tensors=tensors)
