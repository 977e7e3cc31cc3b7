"""Reading and writing ink files: :func:`read_ink`, :func:`write_ink`.

Formats read (``format=`` name: what, where the details are):

- ``iam``: IAM-OnDB ``lineStrokes`` XML, one ink per file, times in s (:mod:`.iam`)
- ``uji``: UJI Pen Characters v2 ``WORD`` blocks, and v1 UNIPEN style (:mod:`.uji`)
- ``inkml``: W3C InkML traces, difference encodings, trace groups (:mod:`.inkml`)
- ``ndjson``: Quick, Draw! simplified or raw drawings, one per line (:mod:`.quickdraw`)
- ``npz``: sketch-rnn stroke-3 archives, restricted unpickling (:mod:`.sketchrnn`)
- ``json``: this project's own format, schema below (:mod:`.jsonink`)
- ``xournal``: Xournal++ ``.xopp`` / Xournal ``.xoj`` notebooks, one ink per page,
  pen strokes only (:mod:`.xournal`)
- ``excalidraw``: Excalidraw ``.excalidraw`` scenes, freedraw elements, one ink
  per scene or per frame (:mod:`.excalidraw`)
- ``omniglot``: Omniglot raw stroke drawings, a ``.txt`` or a ``.zip`` of them
  (:mod:`.omniglot`)

A notebook page holds many lines: :func:`vrnn.pages.split_lines` cuts a page
ink into line inks.

With ``format=None`` the format is detected from the content and then the
name (:func:`detect_format`). Formats written: ``json`` (exact round trip) and
``svg`` (:func:`ink_to_svg`).

Untrusted input
---------------
Every problem with a file raises :class:`~vrnn.ink.InkFormatError` (a
``ValueError``) with a one-line message ``"<file>: <where>: <problem>"``;
nothing else escapes. Sizes are bounded by :class:`Limits` (defaults in
:data:`DEFAULT_LIMITS`: 5 MB per file, 500,000 points, 100,000 inks, 12 MB
inflated from a compressed file; pass ``limits=Limits(...)`` to change them);
the byte size is checked before any parsing, for ``npz`` the declared
uncompressed sizes too, and gzip / zip content stops inflating at
``max_unpacked_bytes`` (gzip and zip bombs). Nothing is fetched: references
to other files (Xournal backgrounds, InkML ``href`` outside the document) are
never followed. XML
entity declarations and external references are refused (defusedxml), and
``npz`` pickles may only rebuild numeric numpy arrays: any other pickled
object is refused before it is called.

An empty stroke is an error in every format (a pen-down with no point is
not handwriting); so is an ink with no strokes, except in our own JSON, which
round-trips whatever :class:`~vrnn.ink.Ink` holds. A file with no ink at all is
an error too, except a JSON document with an empty ``inks`` list.

Speed: text formats parse at roughly 5-15 MB of file per CPU second (UJI and
Quick, Draw! fastest; XML slower, since defusedxml's expat handlers run in
Python), sketch-rnn archives at ~25,000 sequences per second. A flaw is
reported as soon as the reader reaches it, so bad files fail fast unless the
flaw sits at the end of a large file.

JSON schema (``"json"``, version 1)
-----------------------------------
::

    {"format": "vrnn-ink", "version": 1,
     "inks": [{"strokes": [[[x, y], ...], ...],      # non-empty [x, y] lists
               "times": [[t, ...], ...] | null,      # seconds, one list per stroke
               "pressure": [[p, ...], ...] | null,   # optional, 1.0 = full pressure
               "label": str | null, "writer": str | null,
               "meta": {str: str | number | bool | null}},   # optional
              ...]}

Floats are written with Python's shortest round-trip ``repr``, so
``read_ink(ink_to_json_bytes(inks), format="json")`` gives bit-identical
arrays, labels, writers, times and pressures. Unknown keys are ignored; other versions
are refused.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import BinaryIO

from vrnn.ink import Ink, InkFormatError

from ._common import DEFAULT_LIMITS, TRAINING_LIMITS, Limits, Source, one_line
from .detect import READ_FORMATS, detect_format
from .excalidraw import read_excalidraw
from .iam import read_iam
from .inkml import read_inkml
from .jsonink import ink_to_json_bytes, read_json
from .omniglot import read_omniglot
from .quickdraw import read_ndjson
from .sketchrnn import read_npz
from .svg import ink_to_svg
from .uji import read_uji
from .xournal import read_xournal

__all__ = [
    "DEFAULT_LIMITS",
    "TRAINING_LIMITS",
    "READ_FORMATS",
    "WRITE_FORMATS",
    "InkFormatError",
    "Limits",
    "detect_format",
    "ink_to_json_bytes",
    "ink_to_svg",
    "read_ink",
    "write_ink",
]

WRITE_FORMATS = ("json", "svg")
_READERS = {
    "iam": read_iam,
    "uji": read_uji,
    "inkml": read_inkml,
    "ndjson": read_ndjson,
    "npz": read_npz,
    "json": read_json,
    "xournal": read_xournal,
    "excalidraw": read_excalidraw,
    "omniglot": read_omniglot,
}
assert tuple(_READERS) == READ_FORMATS


def _too_big(display: str, size: int, limits: Limits) -> InkFormatError:
    return InkFormatError(
        one_line(f"{display}: {size:,} bytes, over the limit of {limits.max_bytes:,} (Limits.max_bytes)")
    )


def _load(source, name: str | None, limits: Limits) -> tuple[bytes, str]:
    """``(bytes, display name)`` of a path, bytes or binary stream, never reading past the size limit."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        display = name or "<bytes>"
        data = bytes(source)
        if len(data) > limits.max_bytes:
            raise _too_big(display, len(data), limits)
        return data, display
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        display = name or str(path)
        try:
            size = path.stat().st_size
            if not path.is_file():
                raise InkFormatError(one_line(f"{display}: not a regular file"))
            if size > limits.max_bytes:
                raise _too_big(display, size, limits)
            with path.open("rb") as handle:
                data = handle.read(limits.max_bytes + 1)
        except OSError as exc:
            raise InkFormatError(one_line(f"{display}: cannot read: {exc.strerror or exc}")) from None
    elif hasattr(source, "read"):
        display = name or getattr(source, "name", None) or "<stream>"
        display = display if isinstance(display, str) else "<stream>"
        data = source.read(limits.max_bytes + 1)
        if not isinstance(data, (bytes, bytearray)):
            raise TypeError("read_ink needs a binary stream (open the file with 'rb')")
        data = bytes(data)
    else:
        raise TypeError(f"read_ink source must be a path, bytes or a binary stream, not {type(source).__name__}")
    if len(data) > limits.max_bytes:
        raise _too_big(display, len(data), limits)
    return data, display


def read_ink(
    source: str | os.PathLike | bytes | BinaryIO,
    *,
    format: str | None = None,
    name: str | None = None,
    limits: Limits | None = None,
) -> list[Ink]:
    """Read every ink in a file.

    source: a path, ``bytes`` (then ``name``, the original file name, helps
        detection and messages) or a binary stream (``name`` defaults to its
        ``.name``).
    format: one of :data:`READ_FORMATS`, or ``None`` to detect it.
    limits: size bounds, :data:`DEFAULT_LIMITS` when ``None``.

    Returns the inks in file order. Raises :class:`~vrnn.ink.InkFormatError`
    for any bad or over-limit input (see the module docstring).
    """
    limits = DEFAULT_LIMITS if limits is None else limits
    if not isinstance(limits, Limits):
        raise TypeError(f"limits must be a vrnn.formats.Limits, not {type(limits).__name__}")
    if format is not None and format not in _READERS:
        raise ValueError(f"unknown ink format {format!r}; use one of {', '.join(READ_FORMATS)} or None")
    data, display = _load(source, name, limits)
    src = Source(display, limits)
    fmt = format or detect_format(data, display)
    try:
        return _READERS[fmt](data, src)
    except InkFormatError:
        raise
    except RecursionError:
        raise src.error(fmt, "structure nested too deeply") from None
    except MemoryError:
        raise src.error(fmt, "out of memory while parsing") from None
    except Exception as exc:  # noqa: BLE001 - untrusted input: nothing but InkFormatError may escape
        raise src.error(fmt, f"cannot parse: {type(exc).__name__}: {exc}") from exc


def write_ink(inks: Iterable[Ink] | Ink, dest: str | os.PathLike | BinaryIO, *, format: str = "json") -> None:
    """Write ``inks`` to a path (replaced atomically) or a binary stream, as ``"json"`` or ``"svg"``."""
    inks = [inks] if isinstance(inks, Ink) else list(inks)
    for ink in inks:
        if not isinstance(ink, Ink):
            raise TypeError(f"write_ink needs Ink objects, got {type(ink).__name__}")
    if format == "json":
        payload = ink_to_json_bytes(inks)
    elif format == "svg":
        payload = ink_to_svg(inks).encode("utf-8")
    else:
        raise ValueError(f"unknown output format {format!r}; use one of {', '.join(WRITE_FORMATS)}")
    if isinstance(dest, (str, os.PathLike)):
        path = Path(dest)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
        try:
            with tmp.open("xb") as handle:  # default permissions, unlike mkstemp's 0600
                handle.write(payload)
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
    elif hasattr(dest, "write"):
        dest.write(payload)
    else:
        raise TypeError(f"write_ink dest must be a path or a binary stream, not {type(dest).__name__}")
