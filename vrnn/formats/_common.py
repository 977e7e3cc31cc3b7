"""Shared pieces of the ink readers: size limits, one-line errors, point budgets.

Every reader gets the raw bytes and a :class:`Source`, which knows the file's
display name and the :class:`Limits`, builds the one-line
:class:`~vrnn.ink.InkFormatError` messages (``"<name>: <where>: <problem>"``) and
keeps the running point / ink counts so that a reader stops as soon as a file
goes over budget instead of after it has built everything.
"""

from __future__ import annotations

import json
import zlib
from dataclasses import dataclass

import numpy as np

from vrnn.ink import Ink, InkFormatError
from vrnn.text import one_line as _one_line

_MAX_MESSAGE = 400  # characters in one error message; files can put anything in it


@dataclass(frozen=True)
class Limits:
    """Adjustable bounds on what :func:`vrnn.read_ink` accepts (untrusted input).

    max_bytes:  size of the file, checked before anything is parsed; for ``npz``
                also the total *uncompressed* size of the archive's members.
    max_points: points over all inks of one file.
    max_inks:   inks in one file.
    max_unpacked_bytes: what a compressed file (gzip ``.xopp`` / ``.xoj``, a zip of
                Omniglot drawings) may inflate to in all; decompression stops there
                (gzip and zip bombs), and zip members' declared sizes are checked first.

    The defaults keep any bad file's rejection under about a second on a 2-core
    machine (text parses at 5-15 MB/s); pass larger limits for big trusted data sets
    (``python -m vrnn.train`` reads with :data:`TRAINING_LIMITS`).
    """

    max_bytes: int = 5_000_000
    max_points: int = 500_000
    max_inks: int = 100_000
    max_unpacked_bytes: int = 12_000_000

    def __post_init__(self) -> None:
        for field_name in ("max_bytes", "max_points", "max_inks", "max_unpacked_bytes"):
            value = getattr(self, field_name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"Limits.{field_name} must be a positive int, got {value!r}")


DEFAULT_LIMITS = Limits()
#: Limits for training data read from the user's own disk (still never unpickled).
TRAINING_LIMITS = Limits(
    max_bytes=1_000_000_000, max_points=100_000_000, max_inks=10_000_000, max_unpacked_bytes=4_000_000_000
)


def one_line(text: str, limit: int = _MAX_MESSAGE) -> str:
    """``text`` on one line, cut to ``limit`` characters (:func:`vrnn.text.one_line`)."""
    return _one_line(text, limit)


def snippet(value: object, limit: int = 40) -> str:
    """A short ``repr`` of untrusted data for an error message."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 4] + "...'"


class Source:
    """The file being read: its name for messages, its limits and its running counts."""

    def __init__(self, name: str, limits: Limits) -> None:
        self.name = one_line(name, 200)
        self.limits = limits
        self.points = 0
        self.inks = 0

    def error(self, where: str | None, problem: str) -> InkFormatError:
        """An :class:`InkFormatError` ``"<name>: <where>: <problem>"`` on one line (raise it)."""
        parts = [self.name] + ([where] if where else []) + [problem]
        return InkFormatError(one_line(": ".join(parts)))

    def add_points(self, n: int, where: str | None) -> None:
        """Count ``n`` more points; over :attr:`Limits.max_points` is an error."""
        self.points += int(n)
        if self.points > self.limits.max_points:
            raise self.error(where, f"more than {self.limits.max_points:,} points (Limits.max_points)")

    def add_ink(self, where: str | None) -> None:
        """Count one more ink; over :attr:`Limits.max_inks` is an error."""
        self.inks += 1
        if self.inks > self.limits.max_inks:
            raise self.error(where, f"more than {self.limits.max_inks:,} inks (Limits.max_inks)")

    def make_ink(
        self,
        where: str | None,
        strokes,
        times=None,
        label=None,
        writer=None,
        meta=None,
        *,
        pressure=None,
        allow_empty=False,
    ) -> Ink:
        """Build an :class:`Ink`, counting it.

        An empty stroke or NaN/inf is an error, and so is an ink with no strokes
        unless ``allow_empty`` (only this project's own JSON, which round-trips it).
        """
        if len(strokes) == 0 and not allow_empty:
            raise self.error(where, "no strokes")
        self.add_ink(where)
        try:
            return Ink(strokes=strokes, times=times, label=label, writer=writer, meta=meta or {}, pressure=pressure)
        except InkFormatError as exc:
            raise self.error(where, str(exc)) from None

    def decode_utf8(self, data: bytes) -> str:
        """``data`` as UTF-8 text (a leading byte-order mark is dropped); bad bytes name their line."""
        try:
            return data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            line = data.count(b"\n", 0, exc.start) + 1
            raise self.error(
                f"line {line}", f"not UTF-8 text (byte {data[exc.start]:#04x} at offset {exc.start})"
            ) from None

    def load_json(self, data: bytes):
        """``data`` parsed as one UTF-8 JSON document; bad JSON names its line and column."""
        text = self.decode_utf8(data)
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise self.error(f"line {exc.lineno}", f"invalid JSON: {exc.msg} at column {exc.colno}") from None
        except RecursionError:
            raise self.error("JSON", "nested too deeply") from None


def finite_float(text: str | None) -> float | None:
    """``text`` as a finite float (an XML attribute, say), or ``None`` when absent or not one."""
    try:
        value = float(text) if text is not None else None
    except ValueError:
        return None
    return value if value is not None and np.isfinite(value) else None


def finite_or_error(src: Source, where: str, values: np.ndarray) -> np.ndarray:
    """``values`` unchanged if all finite, else an error naming ``where``."""
    if not np.isfinite(values).all():
        raise src.error(where, "NaN or infinite value")
    return values


def split_lines(text: str) -> list[str]:
    """Lines of ``text`` for LF, CRLF or CR files (unlike ``str.splitlines`` only these end a line)."""
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    return text.split("\n")


def parse_floats(src: Source, where: str, tokens: list[str]) -> np.ndarray:
    """``tokens`` (decimal number strings) as a finite float64 array; the first bad one is named."""
    try:
        values = np.array(tokens, dtype=np.float64)
    except (ValueError, OverflowError):
        bad = next((t for t in tokens if not _is_float(t)), tokens[0] if tokens else "")
        raise src.error(where, f"not a number: {snippet(bad)}") from None
    if values.ndim != 1:  # only if tokens was not a flat list of strings
        raise src.error(where, "not a flat list of numbers")
    return finite_or_error(src, where, values)


def _is_float(token: str) -> bool:
    try:
        float(token)
    except (ValueError, OverflowError):
        return False
    return True


GZIP_MAGIC = b"\x1f\x8b"


def gunzip_bounded(src: Source, data: bytes, where: str = "gzip") -> bytes:
    """The content of gzip ``data`` (one or more members), never inflating past
    :attr:`Limits.max_unpacked_bytes`: a gzip bomb stops there with an error."""
    limit = src.limits.max_unpacked_bytes
    out: list[bytes] = []
    total = 0
    rest = data
    while True:
        inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
        try:
            while True:
                # max_length keeps every step's output bounded (it is >= 1 here: 0 would mean no bound)
                chunk = inflater.decompress(rest, limit + 1 - total)
                total += len(chunk)
                out.append(chunk)
                if total > limit:
                    raise src.error(where, f"inflates to more than {limit:,} bytes (Limits.max_unpacked_bytes)")
                rest = inflater.unconsumed_tail
                if inflater.eof or not rest:
                    break
            rest = inflater.unused_data
        except zlib.error as exc:
            raise src.error(where, f"corrupt gzip data ({exc})") from None
        if not inflater.eof:
            raise src.error(where, "truncated gzip data (the file is cut off)")
        if not rest.strip(b"\0"):  # trailing zero padding is tolerated, like gzip(1) does
            return b"".join(out)
        if not rest.startswith(GZIP_MAGIC):
            raise src.error(where, "trailing garbage after the gzip data")
