"""Turn a ``--data SPEC`` into inks for training and evaluation.

``SPEC`` is ``synthetic`` (the built-in handwriting generator, :func:`vrnn.synthetic_inks`)
or a file or folder of ink files in any format :func:`vrnn.read_ink` reads. Folders are
searched recursively for files with a known ink suffix.

Training needs a validation set kept apart from the training set:

- ``synthetic``: the generator's own ``"train"`` and ``"valid"`` writer splits, and
  ``"test"`` (held-out writers) for evaluation.
- files: inks that carry a split of their own (sketch-rnn ``.npz`` archives put
  ``meta["split"]``) keep it; otherwise :func:`split_by_writer` holds out whole
  writers when writers are known (so validation measures generalization to new
  hands), else random inks.

Problems with the data raise :class:`DataError`, whose message is one line that
names the source, so the command-line tools can print it and exit with code 2.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from .ink import Ink, InkFormatError
from .text import one_line

SYNTHETIC = "synthetic"
#: File suffixes searched for in a data folder (what :func:`vrnn.read_ink` detects).
INK_SUFFIXES = (".xml", ".txt", ".inkml", ".ndjson", ".npz", ".json")
SPLITS = ("train", "valid", "test")


class DataError(ValueError):
    """A data spec that yields no usable ink. The message is one line naming the source."""


def find_ink_files(folder: Path) -> list[Path]:
    """Files under ``folder`` (recursively, sorted) with a known ink suffix; hidden ones skipped."""
    files = []
    for p in sorted(folder.rglob("*")):
        rel = p.relative_to(folder)
        if any(part.startswith(".") for part in rel.parts):
            continue
        if p.is_file() and p.suffix.lower() in INK_SUFFIXES:
            files.append(p)
    return files


def _read_file(path: Path) -> list[Ink]:
    from .formats import read_ink
    from .formats._common import TRAINING_LIMITS

    try:
        return list(read_ink(path, limits=TRAINING_LIMITS))
    except InkFormatError as e:
        raise DataError(one_line(str(e)) or f"{path}: not a readable ink file") from e
    except OSError as e:
        raise DataError(f"{path}: cannot read ({e.strerror or e})") from e


def read_inks(spec: str | Path, *, warn=None) -> list[Ink]:
    """Every ink in a file, or in the ink files of a folder (not ``synthetic``).

    In a folder, a file that cannot be read is reported through ``warn`` (default:
    one line on stderr) and skipped, so one stray file does not stop a run; a folder
    with no readable ink at all is a :class:`DataError`.
    """
    path = Path(spec).expanduser()
    if not path.exists():
        raise DataError(f"{spec}: no such file or folder (use 'synthetic' for the built-in corpus)")
    if path.is_file():
        inks = _read_file(path)
    elif path.is_dir():
        files = find_ink_files(path)
        if not files:
            raise DataError(f"{spec}: no ink files in this folder (looked for {', '.join(INK_SUFFIXES)})")
        warn = warn or (lambda msg: print(f"warning: {msg}", file=sys.stderr))
        inks, errors = [], []
        for f in files:
            try:
                inks.extend(_read_file(f))
            except DataError as e:
                errors.append(str(e))
                warn(f"skipped {e}")
        if not inks and errors:
            raise DataError(f"{spec}: none of its {len(files)} ink files could be read (first: {errors[0]})")
    else:
        raise DataError(f"{spec}: not a regular file or folder")
    inks = [ink for ink in inks if ink.num_points >= 2]
    if not inks:
        raise DataError(f"{spec}: holds no ink with at least 2 points")
    return inks


def synthetic_split(n: int, split: str, *, seed: int = 0) -> list[Ink]:
    """``n`` lines of the synthetic corpus from one writer split (``train``/``valid``/``test``)."""
    from .synthetic import synthetic_inks

    if n < 1:
        raise DataError(f"synthetic: need at least 1 line, got {n}")
    return list(synthetic_inks(n, seed=seed, split=split))


def split_by_writer(inks: list[Ink], *, valid_fraction: float = 0.1, seed: int = 0,
                    reuse_single: bool = False) -> tuple[list[Ink], list[Ink]]:
    """Split inks into ``(train, valid)``, holding out whole writers when writers are known.

    The one train/validation split of the library, the CLI and the app. Writers are
    shuffled with ``seed`` and moved to validation until it holds at least
    ``valid_fraction`` of the inks (at least one ink, and never every writer). Inks
    without a writer count as writers of their own. With a single writer the inks
    themselves are split at random. Deterministic for a seed.

    So any 2 or more inks give disjoint sets (2 inks: one each). A single ink has
    nothing to hold out: with ``reuse_single=True`` it is returned as both sets
    (``([ink], [ink])``: validation is then on the training set, and only then),
    otherwise that raises :class:`DataError`.
    """
    inks = list(inks)
    if len(inks) == 1 and reuse_single:
        return inks, list(inks)
    if len(inks) < 2:
        raise DataError(f"need at least 2 inks to hold some out for validation, got {len(inks)}")
    rng = np.random.default_rng(seed)
    groups: dict[str, list[int]] = {}
    for i, ink in enumerate(inks):
        groups.setdefault(ink.writer if ink.writer is not None else f"\0ink{i}", []).append(i)
    if len(groups) < 2:  # one writer: split its inks
        groups = {str(i): [i] for i in range(len(inks))}
    keys = sorted(groups)
    order = rng.permutation(len(keys))
    target = max(1, int(round(valid_fraction * len(inks))))
    valid_idx: set[int] = set()
    for k in order[:-1]:  # the last writer always stays in training
        if len(valid_idx) >= target:
            break
        valid_idx.update(groups[keys[k]])
    train = [ink for i, ink in enumerate(inks) if i not in valid_idx]
    valid = [ink for i, ink in enumerate(inks) if i in valid_idx]
    return train, valid


def _own_split(inks: list[Ink], split: str) -> list[Ink]:
    return [ink for ink in inks if ink.meta.get("split") == split]


def load_train_valid(
    spec: str,
    *,
    valid_fraction: float = 0.1,
    seed: int = 0,
    synthetic_lines: int = 2000,
    synthetic_valid_lines: int | None = None,
) -> tuple[list[Ink], list[Ink]]:
    """Training and validation inks for a data spec (see the module docstring for the rules)."""
    if str(spec) == SYNTHETIC:
        n_valid = synthetic_valid_lines or max(16, synthetic_lines // 10)
        return synthetic_split(synthetic_lines, "train", seed=seed), synthetic_split(n_valid, "valid", seed=seed)
    inks = read_inks(spec)
    train, valid = _own_split(inks, "train"), _own_split(inks, "valid")
    if train and valid:
        return train, valid
    return split_by_writer(inks, valid_fraction=valid_fraction, seed=seed)


def load_eval_inks(spec: str, *, split: str | None = None, seed: int = 0, synthetic_lines: int = 200) -> list[Ink]:
    """Inks to evaluate on.

    ``synthetic`` gives the held-out ``test`` writers unless ``split`` says otherwise.
    For files, ``split=None`` or ``"all"`` means every ink; ``"test"``/``"valid"``/
    ``"train"`` pick the inks that carry that split, or else reproduce the writer split
    :func:`load_train_valid` makes with the same ``seed`` (``"test"`` then means the
    held-out validation writers, the only inks training never saw).
    """
    if split not in (None, "all") + SPLITS:
        raise DataError(f"unknown split {split!r}; choose one of all, {', '.join(SPLITS)}")
    if str(spec) == SYNTHETIC:
        return synthetic_split(synthetic_lines, "test" if split in (None, "all") else split, seed=seed)
    inks = read_inks(spec)
    if split in (None, "all"):
        return inks
    own = _own_split(inks, split)
    if own:
        return own
    if any(ink.meta.get("split") for ink in inks):
        raise DataError(f"{spec}: no inks in split {split!r}")
    train, valid = split_by_writer(inks, seed=seed)
    return train if split == "train" else valid


def describe(inks: list[Ink]) -> str:
    """``"120 inks, 9 writers, 34,567 points"``: a one-line summary for logs and cards."""
    writers = {ink.writer for ink in inks if ink.writer is not None}
    points = sum(ink.num_points for ink in inks)
    parts = [f"{len(inks):,} inks"]
    if writers:
        parts.append(f"{len(writers):,} writers")
    parts.append(f"{points:,} points")
    return ", ".join(parts)
