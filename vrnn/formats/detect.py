"""Telling the ink format of a file from its content and, failing that, its name.

Content decides first, because names lie (``.xml`` is both IAM-OnDB and InkML,
``.json`` both Quick, Draw! and our own JSON, uploads get renamed):

- gzip magic ``\\x1f\\x8b``: ``xournal`` (``.xopp`` / ``.xoj`` are the only
  gzip formats read);
- zip magic ``PK\\x03\\x04`` / ``PK\\x05\\x06``: by the member names, ``npz``
  for ``.npy`` members, ``xournal`` for a ``content.xml`` (Xournal++'s zip
  container), ``omniglot`` for ``.txt`` members; else the extension (``.zip``:
  ``omniglot``, ``.xopp``: ``xournal``), else ``npz``;
- XML: the root element's local name, ``ink`` for ``inkml``,
  ``WhiteboardCaptureSession`` for ``iam``, ``xournal`` / ``MrWriter`` for
  ``xournal``;
- ``{``: ``excalidraw`` when the head has ``"type": "excalidraw"``; ``json`` when
  it declares ``"format": "vrnn-ink"``; ``ndjson`` when the name says
  ``.ndjson`` / ``.jsonl``, a later line starts with ``{`` or the first line is
  a whole JSON object; else ``json``;
- a first line ``START``: ``omniglot``;
- a first line starting with ``//``, ``WORD``, ``NUMSTROKES``, ``POINTS`` or a
  UNIPEN keyword (``.SEGMENT``, ``.PEN_DOWN``, ...): ``uji``.

Otherwise the extension (``.npz .inkml .ndjson .jsonl .json .txt .xopp .xoj
.excalidraw .zip``) decides.
"""

from __future__ import annotations

import io
import json
import re
import zipfile
import zlib
from pathlib import PurePath

from vrnn.ink import InkFormatError

from ._common import one_line

READ_FORMATS = ("iam", "uji", "inkml", "ndjson", "npz", "json", "xournal", "excalidraw", "omniglot")

_EXTENSIONS = {
    ".npz": "npz",
    ".inkml": "inkml",
    ".ndjson": "ndjson",
    ".jsonl": "ndjson",
    ".json": "json",
    ".txt": "uji",
    ".xopp": "xournal",
    ".xoj": "xournal",
    ".excalidraw": "excalidraw",
    ".zip": "omniglot",
}
_XML_ROOTS = {"ink": "inkml", "WhiteboardCaptureSession": "iam", "xournal": "xournal", "MrWriter": "xournal"}
_EXCALIDRAW = re.compile(r'"type"\s*:\s*"excalidraw(/clipboard)?"')
_HEAD_BYTES = 65536
_VRNN_JSON = re.compile(r'"format"\s*:\s*"vrnn-ink"')
_UJI_FIRST = re.compile(r"(//|WORD\b|NUMSTROKES\b|POINTS\b|\.[A-Z][A-Z_]*\b)")


def _extension(name: str | None) -> str:
    return PurePath(name).suffix.lower() if name else ""


def xml_root_name(head: str) -> str | None:
    """Local name of the first element in ``head``, skipping the prolog; ``None`` if there is none.

    A plain scan with ``str.find`` (no regex over the whole head), so a head full
    of unclosed ``<!--`` stays linear.
    """
    pos = 0
    while True:
        pos = head.find("<", pos)
        if pos < 0:
            return None
        if head.startswith("<?", pos):
            end = head.find("?>", pos + 2)
        elif head.startswith("<!--", pos):
            end = head.find("-->", pos + 4)
        elif head.startswith("<!", pos):
            bracket, close = head.find("[", pos), head.find(">", pos)
            end = head.find("]>", bracket) if 0 <= bracket < close else close
        else:
            match = re.match(r"<\s*([A-Za-z_][\w.:-]*)", head[pos : pos + 256])
            return match.group(1).rpartition(":")[2] if match else None
        if end < 0:
            return None
        pos = end + 1


def detect_format(data: bytes, name: str | None = None) -> str:
    """The reader to use for ``data`` (one of :data:`READ_FORMATS`); unknown content is an error."""
    display = one_line(name or "<bytes>", 200)
    ext = _extension(name)
    if data[:2] == b"\x1f\x8b":
        return "xournal"
    if data[:4] in (b"PK\x03\x04", b"PK\x05\x06"):
        return _zip_format(data, ext)
    head = data[:_HEAD_BYTES].decode("latin-1")
    if head.startswith("\xef\xbb\xbf"):  # UTF-8 byte-order mark, seen as latin-1
        head = head[3:]
    stripped = head.lstrip()
    if stripped.startswith("<"):
        root = xml_root_name(stripped)
        if root in _XML_ROOTS:
            return _XML_ROOTS[root]
        if ext in (".inkml", ".xopp", ".xoj"):
            return _EXTENSIONS[ext]
        raise InkFormatError(
            one_line(
                f"{display}: XML root element <{root}> is neither InkML <ink>, IAM-OnDB "
                "<WhiteboardCaptureSession> nor Xournal <xournal>"
            )
        )
    if stripped.startswith("{") or stripped.startswith("["):
        if ext == ".excalidraw" or _EXCALIDRAW.search(head[:4096]):
            return "excalidraw"
        if _VRNN_JSON.search(head):
            return "json"
        if ext in (".ndjson", ".jsonl"):
            return "ndjson"
        if "\n{" in stripped:  # a second top-level object at column 0: one document per line
            return "ndjson"
        first = stripped.split("\n", 1)[0].strip()
        try:
            if isinstance(json.loads(first), dict):
                return "ndjson"
        except (ValueError, RecursionError):
            pass
        return "json"
    first_line = stripped.split("\n", 1)[0]
    if first_line.strip() == "START":
        return "omniglot"
    if _UJI_FIRST.match(first_line):
        return "uji"
    if ext in _EXTENSIONS:
        return _EXTENSIONS[ext]
    kind = "empty" if not stripped else "unrecognised content"
    raise InkFormatError(
        one_line(f"{display}: cannot tell the ink format ({kind}); pass format= one of {', '.join(READ_FORMATS)}")
    )


def _zip_format(data: bytes, ext: str) -> str:
    """``npz``, ``xournal`` or ``omniglot`` for a zip archive, from its member names."""
    try:
        names = zipfile.ZipFile(io.BytesIO(data)).namelist()
    except (zipfile.BadZipFile, zlib.error, EOFError, ValueError, NotImplementedError):
        names = []  # the reader picked below reports what is wrong
    lowered = [n.lower() for n in names]
    if any(n.endswith(".npy") for n in lowered):
        return "npz"
    if "content.xml" in lowered:
        return "xournal"
    if any(n.endswith(".txt") for n in lowered):
        return "omniglot"
    return {".zip": "omniglot", ".xopp": "xournal"}.get(ext, "npz")
