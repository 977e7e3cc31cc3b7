"""Turn ``--data`` sources into inks for training and evaluation.

A source is ``synthetic`` (the built-in handwriting generator, :func:`vrnn.synthetic_inks`)
or a file or folder of ink files in any format :func:`vrnn.read_ink` reads (folders are
searched recursively for files with a known ink suffix), optionally with a weight:
``SPEC:WEIGHT`` (:class:`DataSource`). Several sources make a mixture
(:func:`load_mixture`): each source's weight is its share of every training epoch.

Every source is split into training, validation and test inks, kept apart by writer:

- ``synthetic``: the generator's own ``"train"``, ``"valid"`` and ``"test"`` writer splits.
- files whose inks carry a split of their own (sketch-rnn ``.npz`` archives, Omniglot's
  among them, put ``meta["split"]``) keep it.
- other files: :func:`holdout_split` holds out whole writers by a hash of the writer id
  (Omniglot's raw strokes: ``omniglot-<Alphabet>-<drawer>``), so a writer in two
  sources is held out of both; an ink without a writer is its own unit, placed by a
  hash of its points.
- ``omniglot-lines:PATH`` (``PATH``: Omniglot raw stroke files, such as
  ``strokes_background_small1.zip``): words and lines composed from the Latin letters
  of one drawer (:mod:`vrnn.compose`): printed handwriting by real hands. The drawers
  are held out like the writers of any file, so a drawer held out of the raw strokes
  is held out of the composed lines too; each split composes ``--synthetic-lines``
  training lines (a tenth of that, at least 16, for validation and test).
- ``omniglot-lines-augmented:PATH``: the same, but each *training* line is written in a
  hand of its own around its drawer's (slant, letter width, size, gaps, baseline, and a
  small jitter of every letter; :func:`vrnn.compose.line_style`), so 16 training drawers
  give many more hands than 16. Validation and test lines are the plain ones, the same
  lines ``omniglot-lines:PATH`` holds out.

Notebook pages (Xournal++ / Xournal, Excalidraw, InkML documents: the
:data:`PAGE_SUFFIXES`) are cut into their lines of writing
(:func:`vrnn.pages.split_pages`): the model trains on lines, not on pages.

Problems with the data raise :class:`DataError`, whose message is one line that
names the source, so the command-line tools can print it and exit with code 2.
"""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .compose import compose_lines, latin_letter
from .formats import TRAINING_LIMITS, read_ink
from .ink import Ink, InkFormatError, ink_digest
from .pages import split_pages
from .synthetic import synthetic_inks
from .text import one_line

SYNTHETIC = "synthetic"
#: File suffixes searched for in a data folder (what :func:`vrnn.read_ink` detects).
INK_SUFFIXES = (".xml", ".txt", ".inkml", ".ndjson", ".jsonl", ".npz", ".json", ".zip", ".xopp", ".xoj", ".excalidraw")
#: Notebook formats whose inks are pages of many lines (cut into lines for training).
PAGE_SUFFIXES = (".xopp", ".xoj", ".excalidraw", ".inkml")
#: ``omniglot-lines:PATH``: lines composed from the Omniglot Latin letters in ``PATH``.
OMNIGLOT_LINES = "omniglot-lines:"
#: ``omniglot-lines-augmented:PATH``: the same, each training line in a hand of its own.
OMNIGLOT_LINES_AUGMENTED = "omniglot-lines-augmented:"
#: Both: the data specs whose lines are composed from Omniglot letters.
COMPOSED_LINES = (OMNIGLOT_LINES, OMNIGLOT_LINES_AUGMENTED)
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


def lines_if_notebook(inks: list[Ink], name: str) -> list[Ink]:
    """The lines of a notebook file's pages (a :data:`PAGE_SUFFIXES` name), else ``inks`` as read."""
    return split_pages(inks) if Path(name or "").suffix.lower() in PAGE_SUFFIXES else inks


def _read_file(path: Path) -> list[Ink]:
    try:
        return lines_if_notebook(list(read_ink(path, limits=TRAINING_LIMITS)), path.name)
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
    if n < 1:
        raise DataError(f"synthetic: need at least 1 line, got {n}")
    return list(synthetic_inks(n, seed=seed, split=split))


def _ink_key(ink: Ink) -> str:
    """The ink itself, by its digest (:func:`vrnn.ink.ink_digest`: the same wherever it was read from)."""
    return f"ink:{ink_digest(ink)}"


def _unit_key(ink: Ink) -> str:
    """The hold-out unit of an ink: its writer, or (no writer) the ink itself."""
    return f"writer:{ink.writer}" if ink.writer is not None else _ink_key(ink)


def _position(key: str, seed: int) -> float:
    """Where ``key`` falls in [0, 1) for ``seed``: a hash, so it depends on nothing else."""
    digest = hashlib.sha256(f"{seed}\0{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


def holdout_split(inks: Sequence[Ink], *, valid_fraction: float = 0.1, test_fraction: float = 0.0,
                  seed: int = 0) -> tuple[list[Ink], list[Ink], list[Ink]]:
    """Split inks into ``(train, valid, test)``, holding out whole writers.

    The unit of the split is the writer; an ink without a writer is a unit of its own
    (keyed by a digest of its points, so the same ink gets the same place wherever it is
    read from). Each unit's place is a hash of ``(seed, unit)``: ``valid`` when it falls
    below ``valid_fraction``, ``test`` below ``valid_fraction + test_fraction``, else
    ``train``. So a writer is held out (or not) the same way in every source and every
    mixture it appears in, and evaluating a source alone finds the same test writers as
    training on a mixture that holds it. The fractions are of writers, met on average.

    Small sets: when no unit falls in ``valid`` (and ``valid_fraction > 0``), the unit
    nearest to it is moved there; a unit always stays in ``train``. With a single writer
    (one unit) its inks are split instead: the first ``round(fraction * n)`` of them
    (at least one) in hash order. So any 2 or more inks give a non-empty ``train`` and
    ``valid``. Fewer than 2 inks raise :class:`DataError`. Deterministic, independent of
    the order of ``inks``; each list keeps the input order.
    """
    inks = list(inks)
    if len(inks) < 2:
        raise DataError(f"need at least 2 inks to hold some out for validation, got {len(inks)}")
    keys = [_unit_key(ink) for ink in inks]
    units = sorted(set(keys))
    if len(units) < 2:  # one writer: split its inks, an exact share of them
        order = sorted(range(len(inks)), key=lambda i: (_position(_ink_key(inks[i]), seed), i))
        n_valid = max(1, round(valid_fraction * len(inks))) if valid_fraction > 0 else 0
        n_test = min(round(test_fraction * len(inks)), len(inks) - n_valid - 1)
        place = {i: "valid" for i in order[:n_valid]}
        place.update({i: "test" for i in order[n_valid : n_valid + max(n_test, 0)]})
        parts = [place.get(i, "train") for i in range(len(inks))]
    else:
        pos = {u: _position(u, seed) for u in units}
        where = {u: "valid" if pos[u] < valid_fraction else "test" if pos[u] < valid_fraction + test_fraction
                 else "train" for u in units}
        if valid_fraction > 0 and "valid" not in where.values():
            nearest = min((u for u in units if where[u] != "valid"), key=lambda u: abs(pos[u] - valid_fraction))
            where[nearest] = "valid"
        if "train" not in where.values():
            where[max(units, key=lambda u: (where[u] != "valid", pos[u]))] = "train"
            if "valid" not in where.values():  # two units, both had been held out
                where[min(units, key=lambda u: pos[u])] = "valid"
        parts = [where[k] for k in keys]
    split = {name: [ink for ink, p in zip(inks, parts) if p == name] for name in SPLITS}
    return split["train"], split["valid"], split["test"]


def split_by_writer(inks: Sequence[Ink], *, valid_fraction: float = 0.1, seed: int = 0,
                    reuse_single: bool = False) -> tuple[list[Ink], list[Ink]]:
    """Split inks into ``(train, valid)``, holding out whole writers (:func:`holdout_split`, no test part).

    The one train/validation split of the library, the CLI and the app. Any 2 or more
    inks give disjoint, non-empty sets (2 inks: one each). A single ink has nothing to
    hold out: with ``reuse_single=True`` it is returned as both sets (``([ink], [ink])``:
    validation is then on the training set, and only then), otherwise that raises
    :class:`DataError`.
    """
    inks = list(inks)
    if len(inks) == 1 and reuse_single:
        return inks, list(inks)
    train, valid, _ = holdout_split(inks, valid_fraction=valid_fraction, test_fraction=0.0, seed=seed)
    return train, valid


def _own_split(inks: list[Ink], split: str) -> list[Ink]:
    return [ink for ink in inks if ink.meta.get("split") == split]


# --------------------------------------------------------------------------- sources and mixtures


@dataclass(frozen=True)
class DataSource:
    """One ``--data`` argument: ``SPEC`` or ``SPEC:WEIGHT``.

    ``SPEC`` is ``synthetic`` or a file or folder of ink in any format :func:`vrnn.read_ink`
    reads. ``WEIGHT`` (a positive number; ``None``: not given) is the source's share of
    every training epoch, relative to the other sources' weights.
    """

    spec: str
    weight: float | None = None

    @classmethod
    def parse(cls, text: str) -> DataSource:
        """``"synthetic:0.5"`` -> ``DataSource("synthetic", 0.5)``; the part after the last ``:``
        is a weight when it is a number (write ``PATH:1`` for a path that ends in ``:<number>``)."""
        text = str(text)
        spec, sep, tail = text.rpartition(":")
        if sep and spec:
            try:
                weight = float(tail)
            except ValueError:
                return cls(text)
            if not (np.isfinite(weight) and weight > 0):
                raise DataError(f"--data {text}: the weight after ':' must be a positive number")
            return cls(spec, weight)
        return cls(text)

    def __str__(self) -> str:
        return self.spec if self.weight is None else f"{self.spec}:{self.weight:g}"


@dataclass
class DataMixture:
    """Training and validation inks from one or more sources, and each source's share of an epoch.

    ``train_source[i]`` is the index in ``sources`` of ``train[i]`` (``valid_source``
    likewise for ``valid``); ``weights`` are the
    sources' shares of each epoch's training windows (they sum to 1; weights not given
    count as 1). ``counts``: inks per source and split.
    """

    sources: list[DataSource]
    weights: list[float]
    train: list[Ink]
    valid: list[Ink]
    train_source: list[int]
    valid_source: list[int]
    counts: list[dict[str, int]]

    @property
    def mixed(self) -> bool:
        """More than one source (one source trains on its windows uniformly, weights aside)."""
        return len(self.sources) > 1

    def card(self) -> list[dict]:
        """What the model card records: each source, its weight and its inks per split."""
        return [{"source": src.spec, "weight": round(w, 6), **c}
                for src, w, c in zip(self.sources, self.weights, self.counts)]


def _source_splits(src: DataSource, *, valid_fraction: float, test_fraction: float, seed: int,
                   synthetic_lines: int, synthetic_valid_lines: int | None,
                   wanted: Sequence[str], draw_seed: int | None = None) -> dict[str, list[Ink]]:
    """One source's ``wanted`` splits (see the module docstring for the rules). ``draw_seed``
    (default ``seed``) draws the generated *training* inks (synthetic and composed lines)."""
    draw = {name: seed for name in SPLITS}
    draw["train"] = seed if draw_seed is None else draw_seed
    if src.spec == SYNTHETIC:
        sizes = {"train": synthetic_lines, "valid": synthetic_valid_lines or max(16, synthetic_lines // 10),
                 "test": synthetic_lines}
        return {name: synthetic_split(sizes[name], name, seed=draw[name]) for name in wanted}
    for prefix in COMPOSED_LINES:
        if src.spec.startswith(prefix):
            return _composed_splits(src.spec[len(prefix):], valid_fraction=valid_fraction,
                                    test_fraction=test_fraction, seed=seed, lines=synthetic_lines,
                                    valid_lines=synthetic_valid_lines, augment=prefix == OMNIGLOT_LINES_AUGMENTED,
                                    draw_seed=draw["train"])
    inks = read_inks(src.spec)
    own = {name: _own_split(inks, name) for name in SPLITS}
    if own["train"] and own["valid"]:
        return {name: own[name] for name in wanted}
    train, valid, test = holdout_split(inks, valid_fraction=valid_fraction, test_fraction=test_fraction, seed=seed)
    return {"train": train, "valid": valid, "test": test}


def _composed_splits(path: str, *, valid_fraction: float, test_fraction: float, seed: int, lines: int,
                     valid_lines: int | None, augment: bool = False,
                     draw_seed: int | None = None) -> dict[str, list[Ink]]:
    """``omniglot-lines:PATH``: drawers held out by writer like any file, then lines composed
    from each split's drawers (:func:`vrnn.compose.compose_lines`); ``augment``: the training
    lines in hands of their own (``omniglot-lines-augmented:PATH``); ``draw_seed`` (default
    ``seed``) composes the training lines, ``seed`` holds out the drawers and composes the rest."""
    prefix = OMNIGLOT_LINES_AUGMENTED if augment else OMNIGLOT_LINES
    letters = [ink for ink in read_inks(path) if latin_letter(ink) is not None and ink.writer]
    if len({ink.writer for ink in letters}) < 2:
        raise DataError(f"{prefix}{path}: needs the Omniglot Latin letters of at least 2 drawers")
    parts = holdout_split(letters, valid_fraction=valid_fraction, test_fraction=test_fraction, seed=seed)
    sizes = {"train": lines, "valid": valid_lines or max(16, lines // 10), "test": max(16, lines // 10)}
    out = {}
    for code, name in enumerate(SPLITS):
        try:
            # a split with no drawer (few drawers, small fractions) composes nothing
            drawn = draw_seed if name == "train" and draw_seed is not None else seed
            out[name] = (compose_lines(parts[code], sizes[name], seed=drawn * 7 + code,
                                       augment=augment and name == "train") if parts[code] else [])
        except ValueError as e:
            raise DataError(f"{prefix}{path}: {name} split: {e}") from e
    return out


def load_mixture(specs: Sequence[str | DataSource], *, valid_fraction: float = 0.1, test_fraction: float = 0.1,
                 seed: int = 0, synthetic_lines: int = 2000,
                 synthetic_valid_lines: int | None = None, draw_seed: int | None = None) -> DataMixture:
    """Training and validation inks of one or more ``--data`` sources (``SPEC`` or ``SPEC:WEIGHT``).

    ``seed`` holds out the writers and draws the generated validation inks; ``draw_seed``
    (default ``seed``) draws the generated *training* inks, the synthetic lines and the
    composed Omniglot lines, so a run can train on fresh lines of the same training writers
    while its validation and test inks, and its held-out writers, stay those of ``seed``.

    Each source is split on its own by the rules of the module docstring; writers held
    out (validation and test) are held out by a hash of the writer, so a writer found in
    two sources is held out of both. The test writers are loaded by
    :func:`load_eval_inks`, never here. Validation pools every source's held-out inks.
    """
    sources = [s if isinstance(s, DataSource) else DataSource.parse(s) for s in specs]
    if not sources:
        raise DataError("no --data source given")
    if len({s.spec for s in sources}) < len(sources):
        raise DataError(f"--data: a source is given twice ({', '.join(s.spec for s in sources)})")
    raw = [s.weight if s.weight is not None else 1.0 for s in sources]
    weights = [w / sum(raw) for w in raw]
    train, valid, train_source, valid_source, counts = [], [], [], [], []
    for k, src in enumerate(sources):
        parts = _source_splits(src, valid_fraction=valid_fraction, test_fraction=test_fraction, seed=seed,
                               synthetic_lines=synthetic_lines, synthetic_valid_lines=synthetic_valid_lines,
                               wanted=("train", "valid"), draw_seed=draw_seed)
        if not parts["train"]:
            raise DataError(f"{src.spec}: no training inks after holding out validation and test writers")
        train += parts["train"]
        valid += parts["valid"]
        train_source += [k] * len(parts["train"])
        valid_source += [k] * len(parts["valid"])
        counts.append({"train_inks": len(parts["train"]), "valid_inks": len(parts["valid"]),
                       "train_points": sum(ink.num_points for ink in parts["train"])})
    return DataMixture(sources, weights, train, valid, train_source, valid_source, counts)


def load_train_valid(
    spec: str,
    *,
    valid_fraction: float = 0.1,
    test_fraction: float = 0.1,
    seed: int = 0,
    synthetic_lines: int = 2000,
    synthetic_valid_lines: int | None = None,
) -> tuple[list[Ink], list[Ink]]:
    """Training and validation inks for one data spec (see the module docstring for the rules)."""
    m = load_mixture([DataSource(str(spec))], valid_fraction=valid_fraction, test_fraction=test_fraction, seed=seed,
                     synthetic_lines=synthetic_lines, synthetic_valid_lines=synthetic_valid_lines)
    return m.train, m.valid


def load_eval_inks(spec: str, *, split: str | None = None, seed: int = 0, synthetic_lines: int = 200,
                   valid_fraction: float = 0.1, test_fraction: float = 0.1) -> list[Ink]:
    """Inks to evaluate on.

    ``synthetic`` and ``omniglot-lines:PATH`` give the held-out ``test`` writers unless
    ``split`` says otherwise.
    For files, ``split=None`` or ``"all"`` means every ink; ``"test"``/``"valid"``/
    ``"train"`` pick the inks that carry that split, or else reproduce the writer split
    training makes with the same ``seed`` and fractions (``"test"``: the writers held
    out of both training and validation).
    """
    if split not in (None, "all") + SPLITS:
        raise DataError(f"unknown split {split!r}; choose one of all, {', '.join(SPLITS)}")
    if str(spec) == SYNTHETIC:
        return synthetic_split(synthetic_lines, "test" if split in (None, "all") else split, seed=seed)
    if str(spec).startswith(COMPOSED_LINES) and split in (None, "all"):
        split = "test"  # composed lines: the held-out drawers, like ``synthetic``
    if split in (None, "all"):
        return read_inks(spec)
    inks = _source_splits(DataSource(str(spec)), valid_fraction=valid_fraction, test_fraction=test_fraction,
                          seed=seed, synthetic_lines=synthetic_lines, synthetic_valid_lines=None,
                          wanted=(split,))[split]
    if not inks:
        raise DataError(f"{spec}: no inks in split {split!r} (too few writers to hold some out for it)")
    return inks


def describe(inks: list[Ink]) -> str:
    """``"120 inks, 9 writers, 34,567 points"``: a one-line summary for logs and cards."""
    writers = {ink.writer for ink in inks if ink.writer is not None}
    points = sum(ink.num_points for ink in inks)
    parts = [f"{len(inks):,} inks"]
    if writers:
        parts.append(f"{len(writers):,} writers")
    parts.append(f"{points:,} points")
    return ", ".join(parts)
