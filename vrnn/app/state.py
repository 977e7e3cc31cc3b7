"""Per-session data of the app, as one plain object (no Streamlit here).

Widgets keep their own values in ``st.session_state``; what is not a widget lives in a
:class:`SessionData` stored under one key: the parsed upload, the drawings collected for
retraining, the session's retrained models and its training job. When the session
ends, Streamlit drops its state and with it everything here (see :mod:`vrnn.app.jobs`
for how a running training is stopped then).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from vrnn.datasets import lines_if_notebook
from vrnn.ink import Ink, ink_digest
from vrnn.text import one_line

MAX_SESSION_DRAWINGS = 500
MAX_SESSION_MODELS = 3


@dataclass
class UploadResult:
    """One uploaded file, parsed once: its inks, or a one-line error."""

    file_id: str
    name: str
    inks: list[Ink] = field(default_factory=list)
    error: str | None = None


@dataclass
class SessionData:
    upload: UploadResult | None = None
    training_uploads: dict[str, UploadResult] = field(default_factory=dict)
    drawings: list[Ink] = field(default_factory=list)
    models: dict[str, Any] = field(default_factory=dict)  # name -> ModelService of a retrained model
    job: Any = None  # the session's TrainingJob (one at a time)
    job_counter: int = 0
    last_drawing: Ink | None = None

    def add_drawing(self, ink: Ink) -> bool:
        """Keep a drawing for retraining (no duplicates, bounded); True when added."""
        digest = ink_digest(ink)
        if any(ink_digest(d) == digest for d in self.drawings):
            return False
        self.drawings.append(ink.copy())
        del self.drawings[:-MAX_SESSION_DRAWINGS]
        return True

    def add_model(self, name: str, service) -> str:
        """Register a retrained model under a unique name; the oldest goes beyond the cap."""
        base, k = name, 2
        while name in self.models:
            name = f"{base} ({k})"
            k += 1
        self.models[name] = service
        while len(self.models) > MAX_SESSION_MODELS:
            self.models.pop(next(iter(self.models)))
        return name


#: What the app reads, in a user's words (``vrnn.read_ink`` detects the format from name and content).
ACCEPTED_FORMATS = ("InkML (OneNote, Word, PowerPoint, Windows Ink, CROHME), Xournal++ notebooks (.xopp, .xoj), "
                    "Excalidraw boards, IAM-OnDB XML, UJI Pen Characters text, Quick, Draw! ndjson, "
                    "sketch-rnn .npz, Omniglot strokes (.txt or .zip) and this app's own JSON; "
                    "notebook pages are cut into their lines")
#: Upload sizes (the server's ``maxUploadSize`` in ``.streamlit/config.toml`` is the larger one).
MAX_INK_UPLOAD_MB = 5
MAX_TRAINING_UPLOAD_MB = 50


def upload_limits(training: bool):
    """Reading limits of an upload: ``vrnn.read_ink``'s defaults for the ink to look at; room
    for real data sets (e.g. sketch-rnn's omniglot.npz, 7 MB unpacked) for training files."""
    from vrnn.formats import DEFAULT_LIMITS, Limits

    if not training:
        return DEFAULT_LIMITS
    return Limits(max_bytes=MAX_TRAINING_UPLOAD_MB * 1_000_000 * 4, max_points=5_000_000, max_inks=500_000)


def _megabytes(n: int) -> str:
    return f"{n / 1_000_000:.1f} MB"


def parse_upload(file_id: str, name: str, data: bytes, training: bool = False) -> UploadResult:
    """Read an uploaded file with :func:`vrnn.read_ink`; any failure becomes a one-line error
    in the app's words (size limits and accepted formats named)."""
    from vrnn import read_ink

    limit_mb = MAX_TRAINING_UPLOAD_MB if training else MAX_INK_UPLOAD_MB
    if len(data) > limit_mb * 1_000_000:
        what = "training files" if training else "an ink to look at (training files may be up to " \
                                                 f"{MAX_TRAINING_UPLOAD_MB} MB in the Retrain tab)"
        return UploadResult(file_id, name, error=f"{name} is {_megabytes(len(data))}: the app reads up to "
                                                 f"{limit_mb} MB for {what}.")
    try:
        inks = read_ink(data, name=name, limits=upload_limits(training))
    except ValueError as e:  # InkFormatError is a ValueError
        return UploadResult(file_id, name, error=_app_words(name, one_line(str(e))))
    except Exception as e:  # noqa: BLE001 - never a traceback on the page for a user's file
        return UploadResult(file_id, name, error=one_line(f"{name}: could not be read ({type(e).__name__}: {e})"))
    inks = lines_if_notebook(inks, name)  # a notebook is listed and trained on as its lines
    inks = [i for i in inks if i.num_points >= 2]
    if not inks:
        return UploadResult(file_id, name, error=f"{name}: holds no ink with at least two points")
    return UploadResult(file_id, name, inks=inks)


def _app_words(name: str, message: str) -> str:
    """A reader's error as the app says it: no library arguments (``format=``, ``Limits``)."""
    if not message:
        return f"{name}: not a readable ink file. The app reads {ACCEPTED_FORMATS}."
    if "format=" in message or "cannot tell the ink format" in message:
        return f"{name}: not an ink file the app recognises. It reads {ACCEPTED_FORMATS}."
    if "Limits." in message or "over the limit" in message:
        cut = message.split("(Limits.")[0].rstrip(" ;,")
        return f"{cut}: too much ink for the app to read at once."
    return message


def plural(n: int, word: str) -> str:
    """``1 stroke``, ``2 strokes``."""
    return f"{n:,} {word}" + ("" if n == 1 else "s")


def ink_choice_label(index: int, ink: Ink) -> str:
    """How one ink of a multi-ink file is listed: number, label, writer, size."""
    parts = [f"#{index + 1}"]
    if ink.meta.get("caption"):
        parts.append(str(ink.meta["caption"]))  # "page 2, line 5" of a notebook
    if ink.label:
        parts.append(f"“{ink.label[:40]}”")
    if ink.writer:
        parts.append(f"writer {ink.writer}")
    parts.append(f"{plural(len(ink.strokes), 'stroke')}, {plural(ink.num_points, 'point')}")
    return " · ".join(parts)
